"""Read and write Kaldi data directories (``wav.scp``, ``segments``, ``utt2spk``, ``text``, ...).

Only plain file entries are supported in ``wav.scp``: piped commands (``utt sox in.wav -t wav - |``)
and archive offsets cannot be turned into a manifest path and are rejected with a clear error.

Besides the standard files, two non-standard per-utterance files carry manifest labels:
``utt2lang`` (language) and ``utt2emo`` (emotion). A record's ``channel``, ``sample_rate`` and
``extra`` have no Kaldi counterpart; they live only in the JSONL manifest.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from voxa.data.manifest import Record
from voxa.errors import ManifestError
from voxa.utils.atomic import write_text_atomic

__all__ = ["KALDI_FILES", "read_kaldi_dir", "write_kaldi_dir"]

KALDI_FILES = ("wav.scp", "segments", "utt2spk", "spk2utt", "text", "utt2lang", "utt2emo",
               "utt2dur")
"""Every file this module reads or writes in a data directory."""

_WS = re.compile(r"\s")
_ARK_OFFSET = re.compile(r":\d+$")


def _fmt_time(t: float) -> str:
    # six decimals keeps sample accuracy at 16 kHz without float noise like 0.30000000000000004
    return repr(round(float(t), 6))


def _check_token(value: str, what: str, utt: str) -> str:
    if not value or _WS.search(value):
        raise ManifestError(f"{utt}: {what} {value!r} is empty or contains whitespace, which Kaldi "
                            f"files cannot hold")
    return value


def _recording_ids(paths: Iterable[str]) -> dict[str, str]:
    """Map each distinct path to a recording id: its file stem, made unique where stems collide."""
    paths = sorted(set(paths))
    by_stem: dict[str, list[str]] = {}
    for p in paths:
        stem = _WS.sub("_", Path(p).stem) or "rec"
        by_stem.setdefault(stem, []).append(p)
    out: dict[str, str] = {}
    for stem, ps in by_stem.items():
        if len(ps) == 1:
            out[ps[0]] = stem
        else:
            # same stem in different folders (e.g. TIMIT's SA1 per speaker): a path hash keeps the
            # id stable across runs and independent of which other files are present
            for p in ps:
                out[p] = f"{stem}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
    return out


def write_kaldi_dir(records: Iterable[Record], outdir: str | os.PathLike, *,
                    segments: bool | None = None,
                    speaker_fn: Callable[[Record], str | None] | None = None,
                    labels: bool = True) -> Path:
    """Write records as a Kaldi data directory, sorted by utterance id as Kaldi requires.

    ``segments`` is written when some record starts after 0 s or several records share one audio
    file; ``wav.scp`` is then keyed by recording id (the file stem, made unique if stems collide).
    A record starting at 0 that has its file to itself is written without ``segments`` even when its
    ``duration`` is shorter than the file; pass ``segments=True`` to force the segment form.

    Records without a speaker get their own utterance id as speaker (Kaldi's convention);
    :func:`read_kaldi_dir` maps that back to ``None``. Kaldi files that this call does not write
    (say a ``segments`` left from an earlier run) are removed so that the directory stays
    consistent.

    Args:
        records: the utterances.
        outdir: the data directory (created if missing).
        segments: force (``True``) or forbid (``False``) ``segments``; ``None`` decides as above.
        speaker_fn: speaker id for ``utt2spk`` instead of ``record.speaker`` (e.g. a room for RIRs).
        labels: also write ``text``, ``utt2lang``, ``utt2emo`` and ``utt2dur`` where known.

    Returns:
        The data directory.

    Raises:
        ManifestError: duplicate ids, ids or speakers containing whitespace, or ``segments=False``
            for records that need them.
    """
    outdir = Path(outdir)
    recs = sorted(records, key=lambda r: r.id)
    seen: set[str] = set()
    for r in recs:
        _check_token(r.id, "utterance id", r.id)
        if r.id in seen:
            raise ManifestError(f"duplicate utterance id {r.id!r}")
        seen.add(r.id)

    per_path: dict[str, int] = {}
    for r in recs:
        per_path[r.path] = per_path.get(r.path, 0) + 1
    needs_segments = any(r.start > 0 for r in recs) or any(n > 1 for n in per_path.values())
    if segments is False and needs_segments:
        raise ManifestError(f"{outdir}: records start after 0 s or share files; they need a "
                            f"segments file")
    use_segments = needs_segments if segments is None else segments

    written: dict[str, str] = {}
    if use_segments:
        rec_ids = _recording_ids(r.path for r in recs)
        written["wav.scp"] = "".join(f"{rid} {p}\n" for p, rid in
                                     sorted(rec_ids.items(), key=lambda kv: kv[1]))
        written["segments"] = "".join(
            f"{r.id} {rec_ids[r.path]} {_fmt_time(r.start)} "
            f"{'-1' if r.end is None else _fmt_time(r.end)}\n" for r in recs)
    else:
        written["wav.scp"] = "".join(f"{r.id} {r.path}\n" for r in recs)

    spk2utt: dict[str, list[str]] = {}
    utt2spk_lines = []
    for r in recs:
        spk = speaker_fn(r) if speaker_fn is not None else r.speaker
        spk = r.id if spk is None else _check_token(str(spk), "speaker", r.id)
        utt2spk_lines.append(f"{r.id} {spk}\n")
        spk2utt.setdefault(spk, []).append(r.id)
    written["utt2spk"] = "".join(utt2spk_lines)
    written["spk2utt"] = "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items()))

    if labels:
        text = [f"{r.id} {' '.join(r.text.split())}".rstrip() + "\n" for r in recs
                if r.text is not None]
        if text:
            written["text"] = "".join(text)
        for name, attr, what in (("utt2lang", "language", "language"),
                                 ("utt2emo", "emotion", "emotion")):
            lines = [f"{r.id} {_check_token(getattr(r, attr), what, r.id)}\n" for r in recs
                     if getattr(r, attr) is not None]
            if lines:
                written[name] = "".join(lines)
        if recs and all(r.duration is not None for r in recs):
            written["utt2dur"] = "".join(f"{r.id} {_fmt_time(r.duration)}\n" for r in recs)

    outdir.mkdir(parents=True, exist_ok=True)
    for name, content in written.items():
        write_text_atomic(outdir / name, content)
    for name in KALDI_FILES:
        if name not in written and (outdir / name).is_file():
            (outdir / name).unlink()
    return outdir


def _read_table(path: Path, min_fields: int, max_fields: int | None = None
                ) -> list[tuple[int, list[str]]]:
    """Lines of a Kaldi table as ``(line number, fields)``; blank lines are skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < min_fields or (max_fields is not None and len(parts) > max_fields):
                want = (f"{min_fields}" if max_fields == min_fields
                        else f"at least {min_fields}" if max_fields is None
                        else f"{min_fields} to {max_fields}")
                raise ManifestError(f"{path}:{n}: expected {want} fields, got {len(parts)}")
            out.append((n, parts))
    return out


def _read_map(path: Path, known: set[str] | None, rest_of_line: bool = False) -> dict[str, str]:
    """``key value`` per line; duplicate keys and keys outside ``known`` are errors."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            if rest_of_line:
                value = parts[1].strip() if len(parts) > 1 else ""
            else:
                if len(parts) != 2 or len(parts[1].split()) != 1:
                    raise ManifestError(f"{path}:{n}: expected 'key value', got {line!r}")
                value = parts[1]
            if key in out:
                raise ManifestError(f"{path}:{n}: duplicate key {key!r}")
            if known is not None and key not in known:
                raise ManifestError(f"{path}:{n}: utterance {key!r} is not in wav.scp/segments")
            out[key] = value
    return out


def _read_wav_scp(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise ManifestError(f"{path}:{n}: expected 'id path', got {line!r}")
            key, target = parts[0], parts[1].strip()
            if target.endswith("|") or target == "-":
                raise ManifestError(f"{path}:{n}: piped or stdin entry {target!r} is not "
                                    f"supported; write the audio to files first")
            if _ARK_OFFSET.search(target) and not os.path.exists(target):
                raise ManifestError(f"{path}:{n}: archive offset entry {target!r} is not "
                                    f"supported; write the audio to files first")
            if key in out:
                raise ManifestError(f"{path}:{n}: duplicate id {key!r}")
            out[key] = target
    return out


def _parse_time(value: str, path: Path, n: int, what: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise ManifestError(f"{path}:{n}: {what} {value!r} is not a number") from None
    return t


def read_kaldi_dir(path: str | os.PathLike) -> list[Record]:
    """Read a Kaldi data directory into records, in ``wav.scp``/``segments`` order.

    Reads ``wav.scp`` (required), ``segments``, ``utt2spk``, ``text``, ``utt2lang``, ``utt2emo``
    and ``utt2dur`` when present. A speaker equal to its utterance id (Kaldi's stand-in for "no
    speaker") becomes ``None``. Relative paths in ``wav.scp`` are kept as written: Kaldi resolves
    them against the working directory, not the data directory.

    Args:
        path: the data directory.

    Returns:
        One record per utterance.

    Raises:
        ManifestError: a missing ``wav.scp``, a malformed line (``"<file>:<line>: <problem>"``),
            piped ``wav.scp`` entries, or files naming unknown utterances.
    """
    d = Path(path)
    scp = d / "wav.scp"
    if not scp.is_file():
        raise ManifestError(f"{d}: not a Kaldi data directory (no wav.scp)")
    wavs = _read_wav_scp(scp)

    recs: list[Record] = []
    seg_file = d / "segments"
    if seg_file.is_file():
        seen: set[str] = set()
        for n, (utt, rec, s, e) in _read_table(seg_file, 4, 4):
            if utt in seen:
                raise ManifestError(f"{seg_file}:{n}: duplicate utterance id {utt!r}")
            seen.add(utt)
            if rec not in wavs:
                raise ManifestError(f"{seg_file}:{n}: recording {rec!r} is not in wav.scp")
            start = _parse_time(s, seg_file, n, "start")
            end = _parse_time(e, seg_file, n, "end")
            # Kaldi's extract-segments reads an end of -1 as "to the end of the recording"
            if start < 0 or (end != -1 and end <= start):
                raise ManifestError(f"{seg_file}:{n}: bad segment times start={s} end={e}")
            recs.append(Record(id=utt, path=wavs[rec], start=start,
                               duration=None if end == -1 else end - start))
    else:
        recs = [Record(id=utt, path=p) for utt, p in wavs.items()]

    known = {r.id for r in recs}
    by_id = {r.id: r for r in recs}
    if (d / "utt2spk").is_file():
        for utt, spk in _read_map(d / "utt2spk", known).items():
            by_id[utt].speaker = None if spk == utt else spk
    if (d / "text").is_file():
        for utt, text in _read_map(d / "text", known, rest_of_line=True).items():
            by_id[utt].text = text
    if (d / "utt2lang").is_file():
        for utt, lang in _read_map(d / "utt2lang", known).items():
            by_id[utt].language = lang
    if (d / "utt2emo").is_file():
        for utt, emo in _read_map(d / "utt2emo", known).items():
            by_id[utt].emotion = emo
    f = d / "utt2dur"
    if f.is_file():
        seen_dur: set[str] = set()
        for n, (utt, dur) in _read_table(f, 2, 2):
            if utt not in known:
                raise ManifestError(f"{f}:{n}: utterance {utt!r} is not in wav.scp/segments")
            if utt in seen_dur:
                raise ManifestError(f"{f}:{n}: duplicate key {utt!r}")
            seen_dur.add(utt)
            value = _parse_time(dur, f, n, "duration")
            if value <= 0:
                raise ManifestError(f"{f}:{n}: non-positive duration {dur}")
            # segments are authoritative; utt2dur only fills in whole-file utterances
            if by_id[utt].duration is None:
                by_id[utt].duration = value
    return recs
