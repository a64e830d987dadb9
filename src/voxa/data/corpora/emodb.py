"""Berlin Database of Emotional Speech (EmoDB): ``ROOT/wav/SSTTTEV.wav``."""

from __future__ import annotations

import os
import re

from voxa.data.corpora._common import as_root, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["EMOTIONS", "prepare_emodb"]

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
            "T": "sadness", "N": "neutral"}
"""The emotion letter in EmoDB file names (German initials: Wut, Langeweile, Ekel, Angst, Freude,
Trauer, Neutral) and its English word."""

# From the corpus documentation (speaker: sex, age); not stored in any file of the release.
_SPEAKERS = {"03": ("male", 31), "08": ("female", 34), "09": ("female", 21), "10": ("male", 32),
             "11": ("male", 26), "12": ("male", 30), "13": ("female", 32), "14": ("female", 35),
             "15": ("male", 25), "16": ("female", 31)}
_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([WLEAFTN])([a-z])$")


def prepare_emodb(root: str | os.PathLike) -> list[Record]:
    """Records for EmoDB, sorted by id (the file stem, which starts with the speaker).

    Args:
        root: the corpus folder holding ``wav/``, or the ``wav`` folder itself.

    Returns:
        One record per file: ``emotion`` as an English word, ``speaker`` (two digits),
        ``language="de"``, ``extra`` with ``text_code`` (e.g. ``a01``), ``version`` and the
        speaker's documented ``gender`` and ``age``.

    Raises:
        CorpusError: no ``SSTTTEV.wav`` files under the root.
    """
    root = as_root(root)
    wav_dir = root / "wav" if (root / "wav").is_dir() else root
    records = []
    for wav in wav_dir.glob("*.wav"):
        m = _NAME.match(wav.stem)
        if not m:
            continue
        speaker, text_code, emo, version = m.groups()
        rate, dur = header(wav)
        extra: dict[str, object] = {"text_code": text_code, "version": version}
        if speaker in _SPEAKERS:
            extra["gender"], extra["age"] = _SPEAKERS[speaker]
        records.append(Record(id=wav.stem, path=str(wav), duration=dur, sample_rate=rate,
                              speaker=speaker, language="de", emotion=EMOTIONS[emo], extra=extra))
    if not records:
        raise CorpusError(f"{root}: no EmoDB audio found (expected wav/SSTTTEV.wav, e.g. "
                          f"wav/03a01Fa.wav)")
    return sorted(records, key=lambda r: r.id)
