"""LibriSpeech: ``ROOT[/LibriSpeech]/{subset}/{spk}/{chapter}/{spk}-{chapter}-{utt}.flac``."""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxa.data.corpora._common import as_root, gender_word, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["prepare_librispeech"]

_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def _speaker_genders(base: Path) -> dict[str, str]:
    """Reader id -> gender from ``SPEAKERS.TXT`` (``id | sex | subset | minutes | name``)."""
    path = base / "SPEAKERS.TXT"
    if not path.is_file():
        return {}
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or "|" not in line:
                continue
            fields = [x.strip() for x in line.split("|")]
            g = gender_word(fields[1]) if len(fields) > 1 else None
            if g:
                out[fields[0]] = g
    return out


def _transcripts(chapter_dir: Path, speaker: str, chapter: str) -> dict[str, str]:
    path = chapter_dir / f"{speaker}-{chapter}.trans.txt"
    if not path.is_file():
        return {}
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(maxsplit=1)
            if parts:
                out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


def prepare_librispeech(root: str | os.PathLike) -> list[Record]:
    """Records for every LibriSpeech subset found, sorted by utterance id.

    Args:
        root: the folder holding ``LibriSpeech/`` or the ``LibriSpeech`` folder itself.

    Returns:
        One record per ``.flac``: ``speaker`` the reader id, ``language="en"``, ``text`` from the
        chapter's ``*.trans.txt`` (``None`` when transcripts are absent), ``extra`` with ``subset``,
        ``chapter`` and ``gender`` (from ``SPEAKERS.TXT`` when present).

    Raises:
        CorpusError: no ``subset/speaker/chapter/*.flac`` files under the root.
    """
    root = as_root(root)
    base = root / "LibriSpeech" if (root / "LibriSpeech").is_dir() else root
    genders = _speaker_genders(base)
    records = []
    trans_cache: dict[Path, dict[str, str]] = {}
    for flac in base.glob("*/*/*/*.flac"):
        m = _NAME.match(flac.stem)
        chapter_dir = flac.parent
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        # a file whose name disagrees with its folders is not in the publisher's layout
        if not m or m.group(1) != speaker or m.group(2) != chapter:
            continue
        if chapter_dir not in trans_cache:
            trans_cache[chapter_dir] = _transcripts(chapter_dir, speaker, chapter)
        rate, dur = header(flac)
        extra: dict[str, object] = {"subset": chapter_dir.parent.parent.name, "chapter": chapter}
        if speaker in genders:
            extra["gender"] = genders[speaker]
        records.append(Record(id=flac.stem, path=str(flac), duration=dur, sample_rate=rate,
                              speaker=speaker, language="en",
                              text=trans_cache[chapter_dir].get(flac.stem), extra=extra))
    if not records:
        raise CorpusError(f"{root}: no LibriSpeech audio found (expected "
                          f"[LibriSpeech/]{{subset}}/{{speaker}}/{{chapter}}/"
                          f"{{speaker}}-{{chapter}}-{{utt}}.flac)")
    return sorted(records, key=lambda r: r.id)
