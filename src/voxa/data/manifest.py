"""Manifest records: one utterance (or segment of a file) per JSON line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from voxa.errors import ManifestError
from voxa.utils.atomic import atomic_path
from voxa.utils.jsonl import iter_jsonl

_FIELDS = ("id", "path", "channel", "start", "duration", "sample_rate", "speaker", "language",
           "emotion", "text", "extra")


@dataclass
class Record:
    """One utterance.

    Attributes:
        id: unique utterance id (Kaldi's utterance id).
        path: audio file (absolute, or relative to the manifest's folder when read).
        channel: channel index to use; ``None`` means mix all channels down.
        start: offset into the file in seconds.
        duration: length in seconds; ``None`` means to the end of the file.
        sample_rate: the file's rate in Hz (informative; loaders read the header).
        speaker, language, emotion, text: labels, ``None`` when unknown.
        extra: free-form JSON-serialisable extras (gender, phone alignments, distances, ...).
    """

    id: str
    path: str
    channel: int | None = None
    start: float = 0.0
    duration: float | None = None
    sample_rate: int | None = None
    speaker: str | None = None
    language: str | None = None
    emotion: str | None = None
    text: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if v is not None and v != {}}
        if d.get("start") == 0.0:
            d.pop("start")
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> Record:
        unknown = set(d) - set(_FIELDS)
        if unknown:
            # unknown keys are kept as extras rather than rejected: manifests from other tools
            extra = dict(d.get("extra") or {})
            extra.update({k: d[k] for k in unknown})
            d = {k: v for k, v in d.items() if k in _FIELDS}
            d["extra"] = extra
        if "id" not in d or "path" not in d:
            raise ManifestError(f"{where}: record lacks 'id' or 'path'")
        try:
            return cls(**d)
        except TypeError as e:
            raise ManifestError(f"{where}: bad record ({e})") from None

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.start + self.duration


def write_manifest(path: str | os.PathLike, records: Iterable[Record]) -> Path:
    """Write records as JSONL atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(r.to_json() + "\n")
    return path


def iter_manifest(path: str | os.PathLike) -> Iterator[Record]:
    """Stream records from a JSONL manifest; relative audio paths resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.parent
    for n, d in iter_jsonl(path, ManifestError):
        r = Record.from_dict(d, where=f"{path}:{n}")
        if not os.path.isabs(r.path):
            r.path = str(base / r.path)
        yield r


def read_manifest(path: str | os.PathLike) -> list[Record]:
    """Read a whole JSONL manifest."""
    return list(iter_manifest(path))


RECORD_FIELDS = tuple(f.name for f in fields(Record))
