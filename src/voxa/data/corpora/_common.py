"""Helpers shared by the corpus preparers."""

from __future__ import annotations

import os
from pathlib import Path

from voxa.audio import info
from voxa.errors import AudioError, CorpusError


def as_root(root: str | os.PathLike) -> Path:
    """The corpus root as an absolute path (symlinks kept), or CorpusError if it is no folder."""
    p = Path(root).expanduser().absolute()
    if not p.is_dir():
        raise CorpusError(f"{p}: corpus root is not a directory")
    return p


def header(path: Path) -> tuple[int, float]:
    """``(sample_rate, duration)`` from the file header, as a CorpusError naming the file."""
    try:
        i = info(path)
    except AudioError as e:
        raise CorpusError(str(e)) from None
    return i.sample_rate, i.duration


def gender_word(value: str | None) -> str | None:
    """Normalise ``F``/``M``/``female``/``male`` to ``"female"``/``"male"``."""
    if value is None:
        return None
    v = value.strip().lower()
    return {"f": "female", "female": "female", "m": "male", "male": "male"}.get(v)
