"""TIMIT, in the NLTK sample layout and in the full LDC93S1 layout.

NLTK sample: ``ROOT/drN-{f,m}xxxN/{sent}.wav`` with ``.txt``, ``.wrd`` and ``.phn`` beside it.
LDC: ``ROOT/{TRAIN,TEST}/DRN/{F,M}XXXN/{SENT}.WAV`` (any case, also below ``TIMIT/`` or
``data/``). The LDC ``.WAV`` files are NIST SPHERE, which libsndfile reads directly. Some
redistributions add a RIFF copy named ``SA1.WAV.wav``; each sentence is taken once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxa.data.corpora._common import as_root, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["prepare_timit", "read_alignment"]

_NLTK_DIR = re.compile(r"^dr(\d)-([fm][a-z]{3}\d)$", re.IGNORECASE)
_LDC_SPK = re.compile(r"^[fm][a-z]{3}\d$", re.IGNORECASE)
_LDC_DR = re.compile(r"^dr(\d)$", re.IGNORECASE)


def read_alignment(path: Path, rate: int) -> list[list[float | str]]:
    """``[[start_s, end_s, label], ...]`` from a TIMIT ``.wrd``/``.phn`` file (times in samples).

    Raises:
        CorpusError: a line that is not ``start end label`` with integer sample times.
    """
    out: list[list[float | str]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                s, e = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                raise CorpusError(f"{path}:{n}: expected 'start end label', got "
                                  f"{line.strip()!r}") from None
            if len(parts) != 3:
                raise CorpusError(f"{path}:{n}: expected 'start end label', got "
                                  f"{line.strip()!r}")
            out.append([round(s / rate, 6), round(e / rate, 6), parts[2]])
    return out


def _read_text(path: Path) -> str:
    # the line is "<start sample> <end sample> <sentence>"
    parts = path.read_text(encoding="utf-8", errors="replace").split(maxsplit=2)
    return parts[2].strip() if len(parts) == 3 else ""


def _classify(wav: Path) -> dict[str, str] | None:
    """Speaker, dialect and split from a file's folders, or None if not in a TIMIT layout."""
    spk_dir = wav.parent
    m = _NLTK_DIR.match(spk_dir.name)
    if m:
        return {"speaker": m.group(2).lower(), "dialect": f"dr{m.group(1)}"}
    if _LDC_SPK.match(spk_dir.name):
        d = _LDC_DR.match(spk_dir.parent.name)
        if d:
            info = {"speaker": spk_dir.name.lower(), "dialect": f"dr{d.group(1)}"}
            split = spk_dir.parent.parent.name.lower()
            if split in ("train", "test"):
                info["split"] = split
            return info
    return None


def prepare_timit(root: str | os.PathLike) -> list[Record]:
    """Records for TIMIT (NLTK sample or LDC layout), sorted by id ``{speaker}-{sentence}``.

    Args:
        root: the corpus folder.

    Returns:
        One record per sentence recording: ``speaker`` (e.g. ``fvmh0``), ``language="en"``,
        ``text`` from the ``.txt`` file, ``extra`` with ``gender``, ``dialect`` (``dr1``..``dr8``),
        ``split`` (LDC only), ``words`` and ``phones`` as ``[[start_s, end_s, label], ...]``.

    Raises:
        CorpusError: no TIMIT speaker folders with audio under the root, or a malformed
            alignment file.
    """
    root = as_root(root)
    by_id: dict[str, Record] = {}
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        folder = Path(dirpath)
        lower = {f.lower(): f for f in files}
        for name in sorted(files):
            if not name.lower().endswith(".wav"):
                continue
            sent = name.split(".")[0].lower()
            wav = folder / name
            meta = _classify(wav)
            if meta is None:
                continue
            utt = f"{meta['speaker']}-{sent}"
            if utt in by_id:
                # SA1.WAV and a converted SA1.WAV.wav are the same sentence; two speaker folders
                # of the same name (TRAIN and TEST) would be a broken copy of the corpus
                if Path(by_id[utt].path).parent == folder:
                    continue
                raise CorpusError(f"{root}: utterance {utt} found twice ({by_id[utt].path} and "
                                  f"{wav})")
            rate, dur = header(wav)
            extra: dict[str, object] = {"gender": "female" if meta["speaker"][0] == "f"
                                        else "male", "dialect": meta["dialect"]}
            if "split" in meta:
                extra["split"] = meta["split"]
            text = None
            base = name.split(".")[0].lower()
            if base + ".txt" in lower:
                text = _read_text(folder / lower[base + ".txt"])
            if base + ".wrd" in lower:
                extra["words"] = read_alignment(folder / lower[base + ".wrd"], rate)
            if base + ".phn" in lower:
                extra["phones"] = read_alignment(folder / lower[base + ".phn"], rate)
            by_id[utt] = Record(id=utt, path=str(wav), duration=dur, sample_rate=rate,
                                speaker=meta["speaker"], language="en", text=text, extra=extra)
    if not by_id:
        raise CorpusError(f"{root}: no TIMIT audio found (expected drN-xxxxN/*.wav as in the NLTK "
                          f"sample, or {{TRAIN,TEST}}/DRN/XXXXN/*.WAV as in the LDC release)")
    return sorted(by_id.values(), key=lambda r: r.id)
