"""Free Spoken Digit Dataset (FSDD): ``ROOT/recordings/{digit}_{speaker}_{take}.wav``, 8 kHz."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from voxa.data.corpora._common import as_root, gender_word, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["prepare_fsdd"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)$")


def _speaker_table(root: Path) -> dict[str, dict[str, str]]:
    """``speakers.tsv`` (speaker, gender, accent, language) from the root or, when the root is the
    recordings folder, its parent."""
    for folder in (root, root.parent):
        tsv = folder / "speakers.tsv"
        if tsv.is_file():
            with open(tsv, encoding="utf-8", newline="") as f:
                return {row["speaker"]: row for row in csv.DictReader(f, delimiter="\t")
                        if row.get("speaker")}
    return {}


def prepare_fsdd(root: str | os.PathLike) -> list[Record]:
    """Records for FSDD, sorted by id ``{speaker}-{digit}-{take:02d}``.

    Args:
        root: the repository checkout (holding ``recordings/``) or the ``recordings`` folder.

    Returns:
        One record per file: ``text`` the digit as an English word, ``speaker``, ``language="en"``,
        ``extra`` with ``digit`` and ``take`` (ints) and ``gender``/``accent`` from
        ``speakers.tsv`` when present.

    Raises:
        CorpusError: no ``{digit}_{speaker}_{take}.wav`` files under the root.
    """
    root = as_root(root)
    rec_dir = root / "recordings" if (root / "recordings").is_dir() else root
    table = _speaker_table(rec_dir)
    records = []
    for wav in rec_dir.glob("*.wav"):
        m = _NAME.match(wav.stem)
        if not m:
            continue
        digit, speaker, take = int(m.group(1)), m.group(2), int(m.group(3))
        rate, dur = header(wav)
        extra: dict[str, object] = {"digit": digit, "take": take}
        row = table.get(speaker)
        if row:
            if gender_word(row.get("gender")):
                extra["gender"] = gender_word(row.get("gender"))
            if row.get("accent"):
                extra["accent"] = row["accent"]
        records.append(Record(id=f"{speaker}-{digit}-{take:02d}", path=str(wav), duration=dur,
                              sample_rate=rate, speaker=speaker, language="en",
                              text=DIGIT_WORDS[digit], extra=extra))
    if not records:
        raise CorpusError(f"{root}: no FSDD recordings found (expected "
                          f"recordings/{{digit}}_{{speaker}}_{{take}}.wav)")
    return sorted(records, key=lambda r: r.id)
