"""Utterance vectors (i-vectors, embeddings) on disk: one safetensors file, ids and labels in its header.

:class:`VectorSet` is the object ``voxa.load`` returns for such a file; :func:`save_vectors` and
:func:`load_vectors` are the same format as plain arrays.

Example:
    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "iv.safetensors")
    >>> _ = save_vectors(path, ["a", "b"], np.eye(2), labels={"a": {"speaker": "s1"}})
    >>> ids, X, labels = load_vectors(path)
    >>> ids, X.shape, labels["a"]
    (['a', 'b'], (2, 2), {'speaker': 's1'})
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxa.errors import VoxaError
from voxa.utils.serialization import register

_CLASS = "voxa.Vectors"


def save_vectors(path: str | os.PathLike, ids: Sequence[str], X: Any,
                 labels: Mapping[str, dict[str, str]] | None = None) -> Path:
    """Write ``X [n, dim]`` (float32) for utterances ``ids`` with optional per-id labels, atomically."""
    from voxa.utils.serialization import save_model

    arr = np.asarray(X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != len(ids):
        raise VoxaError(f"{path}: expected [{len(ids)}, dim] vectors, got shape {arr.shape}")
    if len(set(ids)) != len(ids):
        raise VoxaError(f"{path}: duplicate utterance ids")
    header = {"class": _CLASS, "ids": list(ids), "labels": {k: dict(v) for k, v in (labels or {}).items()}}
    return save_model(path, {"vectors": torch.from_numpy(arr)}, header)


def load_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray, dict[str, dict[str, str]]]:
    """``(ids, X [n, dim] float64, labels)`` from a file :func:`save_vectors` wrote."""
    from voxa.utils.serialization import load_model

    tensors, header = load_model(path, expected_class=_CLASS)
    if "vectors" not in tensors or "ids" not in header:
        raise VoxaError(f"{path}: not a vectors file (no 'vectors' tensor or 'ids')")
    X = tensors["vectors"].double().numpy()
    ids = list(header["ids"])
    if X.shape[0] != len(ids):
        raise VoxaError(f"{path}: {X.shape[0]} vectors but {len(ids)} ids")
    return ids, X, dict(header.get("labels") or {})


@register(_CLASS)
class VectorSet:
    """Vectors ``X [n, dim]`` of utterances ``ids`` with per-id ``labels`` (``{"speaker": ...}``)."""

    def __init__(self, ids: Sequence[str], X: Any,
                 labels: Mapping[str, dict[str, str]] | None = None) -> None:
        self.ids = list(ids)
        self.X = np.asarray(X)
        self.labels = {k: dict(v) for k, v in (labels or {}).items()}

    def __len__(self) -> int:
        return len(self.ids)

    def label(self, name: str) -> list[str | None]:
        """Each utterance's ``name`` label (``None`` where it has none)."""
        return [self.labels.get(u, {}).get(name) for u in self.ids]

    def save(self, path: str | os.PathLike) -> Path:
        return save_vectors(path, self.ids, self.X, self.labels)

    @classmethod
    def load(cls, path: str | os.PathLike) -> VectorSet:
        return cls(*load_vectors(path))
