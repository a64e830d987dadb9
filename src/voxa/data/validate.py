"""Check records for mistakes that break training later; load data from any supported form."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from voxa.data.kaldi_dir import read_kaldi_dir
from voxa.data.manifest import Record, read_manifest
from voxa.errors import ManifestError

__all__ = ["check_sorted", "load_data", "validate"]


def validate(records: Sequence[Record], check_files: bool = True) -> None:
    """Raise on the first problem found in ``records``; return ``None`` when they are fine.

    Checks: empty or duplicate ids, empty paths, negative or non-finite ``start``, non-positive or
    non-finite ``duration``, and (with ``check_files``) audio files that do not exist.

    Args:
        records: the utterances.
        check_files: also check that every audio file exists (one ``stat`` per distinct file).

    Raises:
        ManifestError: one line naming the utterance (and file) and the problem.
    """
    seen: set[str] = set()
    for r in records:
        if not r.id:
            raise ManifestError(f"record with path {r.path!r} has an empty id")
        if r.id in seen:
            raise ManifestError(f"duplicate utterance id {r.id!r}")
        seen.add(r.id)
        if not r.path:
            raise ManifestError(f"utterance {r.id!r} has an empty path")
        if not isinstance(r.start, (int, float)) or not math.isfinite(r.start) or r.start < 0:
            raise ManifestError(f"utterance {r.id!r} has a negative or invalid start {r.start!r}")
        if r.duration is not None and (not isinstance(r.duration, (int, float))
                                       or not math.isfinite(r.duration) or r.duration <= 0):
            raise ManifestError(f"utterance {r.id!r} has a non-positive or invalid duration "
                                f"{r.duration!r}")
    if check_files:
        checked: set[str] = set()
        for r in records:
            if r.path in checked:
                continue
            if not os.path.isfile(r.path):
                raise ManifestError(f"{r.path}: audio file of utterance {r.id!r} not found")
            checked.add(r.path)


def check_sorted(records: Sequence[Record], speakers: bool = False) -> None:
    """Raise unless records are in Kaldi order: ids strictly increasing in C (byte) order.

    Python compares ``str`` by code point, which for UTF-8 is the same as the byte order of
    ``LC_ALL=C sort`` that Kaldi expects.

    Args:
        records: the utterances, in file order.
        speakers: also require that sorting by speaker keeps the same order, as Kaldi's
            ``validate_data_dir.sh`` does (true when every utterance id starts with its speaker id).

    Raises:
        ManifestError: naming the first pair out of order.
    """
    for a, b in zip(records, records[1:]):
        if not a.id < b.id:
            raise ManifestError(f"not in Kaldi sort order: {a.id!r} is followed by {b.id!r}"
                                f"{' (duplicate)' if a.id == b.id else ''}")
    if speakers:
        for a, b in zip(records, records[1:]):
            sa, sb = a.speaker or a.id, b.speaker or b.id
            if sb < sa:
                raise ManifestError(f"utterance order disagrees with speaker order: {a.id!r} "
                                    f"(speaker {sa!r}) comes before {b.id!r} (speaker {sb!r}); "
                                    f"prefix utterance ids with their speaker id")


def load_data(path: str | os.PathLike) -> list[Record]:
    """Load records from a JSONL manifest, a folder holding ``manifest.jsonl``, or a Kaldi data dir.

    A folder holding both ``manifest.jsonl`` and ``wav.scp`` is read from the manifest, which keeps
    more information (channels, extras).

    Args:
        path: a ``.jsonl`` file or a directory.

    Returns:
        The records.

    Raises:
        ManifestError: the path does not exist or holds neither form.
    """
    p = Path(path)
    if p.is_file():
        return read_manifest(p)
    if p.is_dir():
        if (p / "manifest.jsonl").is_file():
            return read_manifest(p / "manifest.jsonl")
        if (p / "wav.scp").is_file():
            return read_kaldi_dir(p)
        raise ManifestError(f"{p}: neither manifest.jsonl nor a Kaldi data directory (wav.scp) "
                            f"found here")
    raise ManifestError(f"{p}: no such manifest file or data directory")
