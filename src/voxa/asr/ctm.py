"""Time alignments on disk: Kaldi CTM files and Praat TextGrids.

A CTM line is ``utt channel start duration token [confidence]`` (times in seconds), as Kaldi's
``nbest-to-ctm`` / ``lattice-to-ctm-conf`` write it and NIST's ``sclite`` reads it; ``;;`` lines are
comments. In memory an alignment is a list of ``(start_s, end_s, label)`` segments per utterance, the
form :mod:`voxa.metrics.boundaries` compares.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxa.errors import ManifestError
from voxa.utils.atomic import atomic_path

__all__ = ["CtmEntry", "ctm_segments", "read_ctm", "read_textgrid", "write_ctm", "write_textgrid"]

Segment = tuple[float, float, str]


@dataclass(frozen=True)
class CtmEntry:
    """One CTM line.

    Attributes:
        utt: utterance (or recording) id.
        channel: channel field, ``"1"`` in Kaldi's output (``"A"`` in some NIST files).
        start: start time in seconds.
        duration: length in seconds.
        token: the word or phone.
        conf: confidence in [0, 1], ``None`` when the line has none.
    """

    utt: str
    channel: str
    start: float
    duration: float
    token: str
    conf: float | None = None

    @property
    def end(self) -> float:
        return self.start + self.duration


def _entries(alignments: Mapping[str, Sequence[Sequence]] | Iterable[CtmEntry], channel: str
             ) -> Iterable[CtmEntry]:
    if isinstance(alignments, Mapping):
        for utt, segments in alignments.items():
            for seg in segments:
                start, end, token = float(seg[0]), float(seg[1]), str(seg[2])
                conf = float(seg[3]) if len(seg) > 3 and seg[3] is not None else None
                yield CtmEntry(utt, channel, start, end - start, token, conf)
    else:
        yield from alignments


def write_ctm(path: str | os.PathLike, alignments: Mapping[str, Sequence[Sequence]] | Iterable[CtmEntry],
              channel: str = "1", precision: int = 3) -> Path:
    """Write a CTM file atomically.

    Args:
        path: the file to write.
        alignments: ``{utt: [(start_s, end_s, token), ...]}`` (a fourth item, when present and not
            ``None``, is the confidence), or :class:`CtmEntry` objects; written in the given order.
        channel: channel field for the mapping form.
        precision: decimals for times (Kaldi's ``nbest-to-ctm`` defaults to 2, exact only for 10 ms
            frames; 3 keeps millisecond boundaries).

    Returns:
        ``path``.

    Raises:
        ManifestError: a token or utterance id with white space, or a negative duration.

    Example:
        >>> import tempfile
        >>> p = write_ctm(tempfile.mkdtemp() + "/a.ctm", {"u1": [(0.5, 0.82, "yes", 0.9)]})
        >>> p.read_text()
        'u1 1 0.500 0.320 yes 0.90\\n'
    """
    path = Path(path)
    lines = []
    for e in _entries(alignments, channel):
        if len(e.utt.split()) != 1 or len(e.token.split()) != 1 or len(str(e.channel).split()) != 1:
            raise ManifestError(f"{path}: CTM fields may not be empty or hold white space: {e}")
        if e.duration < 0:
            raise ManifestError(f"{path}: negative duration in {e}")
        line = f"{e.utt} {e.channel} {e.start:.{precision}f} {e.duration:.{precision}f} {e.token}"
        lines.append(line if e.conf is None else f"{line} {e.conf:.2f}")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_ctm(path: str | os.PathLike) -> list[CtmEntry]:
    """Read a CTM file (5 or 6 fields a line; blank and ``;;`` lines skipped), in file order.

    Raises:
        ManifestError: missing file, or a line with the wrong number of fields or bad numbers, naming
            the file and line.

    Example:
        >>> import tempfile
        >>> p = write_ctm(tempfile.mkdtemp() + "/a.ctm", {"u1": [(0.0, 0.25, "no")]})
        >>> read_ctm(p)[0].end
        0.25
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: CTM file not found")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields or fields[0].startswith(";;"):
                continue
            if len(fields) not in (5, 6):
                raise ManifestError(f"{path}:{n}: expected 'utt channel start dur token [conf]', "
                                    f"got {len(fields)} fields")
            try:
                start, dur = float(fields[2]), float(fields[3])
                conf = float(fields[5]) if len(fields) == 6 else None
            except ValueError:
                raise ManifestError(f"{path}:{n}: bad number in {line.strip()!r}") from None
            out.append(CtmEntry(fields[0], fields[1], start, dur, fields[4], conf))
    return out


def ctm_segments(entries: Iterable[CtmEntry]) -> dict[str, list[Segment]]:
    """``{utt: [(start_s, end_s, token), ...]}`` sorted by start, utterances in first-seen order.

    Example:
        >>> ctm_segments([CtmEntry("u", "1", 0.5, 0.25, "b"), CtmEntry("u", "1", 0.0, 0.5, "a")])
        {'u': [(0.0, 0.5, 'a'), (0.5, 0.75, 'b')]}
    """
    out: dict[str, list[Segment]] = {}
    for e in entries:
        out.setdefault(e.utt, []).append((e.start, e.end, e.token))
    for segs in out.values():
        segs.sort(key=lambda s: s[0])
    return out


def _tier(name: str, segments: Sequence[Sequence], duration: float, path: Path):
    from praatio.data_classes.interval_tier import IntervalTier

    entries = []
    prev_end = 0.0
    for seg in sorted(segments, key=lambda s: float(s[0])):
        start, end, label = float(seg[0]), float(seg[1]), str(seg[2])
        if not 0.0 <= start < end <= duration + 1e-9:
            raise ManifestError(f"{path}: tier {name!r}: interval ({start}, {end}, {label!r}) is empty or "
                                f"outside [0, {duration}]")
        if start < prev_end - 1e-9:
            raise ManifestError(f"{path}: tier {name!r}: interval ({start}, {end}, {label!r}) overlaps the "
                                f"one before")
        entries.append((start, min(end, duration), label))
        prev_end = end
    return IntervalTier(name, entries, 0.0, duration)


def write_textgrid(path: str | os.PathLike, words: Sequence[Sequence],
                   phones: Sequence[Sequence] | None = None, duration: float | None = None) -> Path:
    """Write a Praat TextGrid (long format) with interval tiers ``words`` and, if given, ``phones``.

    Gaps between intervals become empty intervals, as Praat wants; :func:`read_textgrid` drops them.

    Args:
        path: the file to write (atomically).
        words: ``[(start_s, end_s, label), ...]``, not overlapping.
        phones: the same for phones, or ``None`` for a words tier only.
        duration: the TextGrid's end time; default the last interval's end.

    Returns:
        ``path``.

    Raises:
        ManifestError: an empty, overlapping or out-of-range interval, or nothing to write.

    Example:
        >>> import tempfile
        >>> p = write_textgrid(tempfile.mkdtemp() + "/a.TextGrid", [(0.1, 0.4, "yes")],
        ...                    [(0.1, 0.2, "y"), (0.2, 0.3, "eh"), (0.3, 0.4, "s")], duration=0.5)
        >>> read_textgrid(p)["words"]
        [(0.1, 0.4, 'yes')]
    """
    from praatio import textgrid

    path = Path(path)
    tiers = {"words": list(words)}
    if phones is not None:
        tiers["phones"] = list(phones)
    ends = [float(s[1]) for segs in tiers.values() for s in segs]
    if duration is None:
        if not ends:
            raise ManifestError(f"{path}: no intervals and no duration: nothing to write")
        duration = max(ends)
    tg = textgrid.Textgrid(0.0, float(duration))
    for name, segs in tiers.items():
        tg.addTier(_tier(name, segs, float(duration), path))
    with atomic_path(path, suffix=".TextGrid") as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True, reportingMode="error")
    return path


def read_textgrid(path: str | os.PathLike) -> dict[str, list[Segment]]:
    """The interval tiers of a TextGrid: ``{tier name: [(start_s, end_s, label), ...]}``, empty labels
    dropped, in file order (``words`` and ``phones`` for files :func:`write_textgrid` wrote).

    Raises:
        ManifestError: missing or unreadable file.
    """
    from praatio import textgrid
    from praatio.data_classes.interval_tier import IntervalTier

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: TextGrid not found")
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=False, reportingMode="silence")
    except Exception as e:  # praatio raises bare Exceptions and its own types on bad files
        raise ManifestError(f"{path}: cannot read TextGrid ({type(e).__name__}: {e})") from None
    out = {}
    for name in tg.tierNames:
        tier = tg.getTier(name)
        if isinstance(tier, IntervalTier):
            out[name] = [(float(s), float(e), str(lab)) for s, e, lab in tier.entries if str(lab).strip()]
    return out
