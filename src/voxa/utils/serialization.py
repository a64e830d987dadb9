"""Save and load models as one safetensors file: the tensors plus a JSON header in its metadata.

The header (class name, config, fitted scalars, voxa version) lives as a JSON string under the
metadata key ``"voxa"`` because safetensors metadata must be ``dict[str, str]``. Nothing is pickled,
so loading a file never runs code.

Example:
    >>> import torch
    >>> save_model("/tmp/m.safetensors", {"w": torch.ones(3)},
    ...            {"class": "Demo", "config": {"k": 3}})  # doctest: +SKIP
    >>> tensors, header = load_model("/tmp/m.safetensors", expected_class="Demo")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from voxa.errors import VoxaError
from voxa.utils.atomic import atomic_path

HEADER_KEY = "voxa"


def save_model(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
               header: dict[str, Any]) -> Path:
    """Write ``tensors`` and a JSON ``header`` to one safetensors file, atomically.

    Args:
        path: Destination file (parents are created).
        tensors: Name to tensor; each is copied to a contiguous CPU tensor (safetensors refuses
            views that share storage).
        header: JSON-serialisable dict, typically ``{"class": ..., "config": {...}}``;
            ``voxa_version`` is added.

    Returns:
        The path written.

    Raises:
        VoxaError: If the header is not JSON-serialisable or a value is not a tensor.
    """
    from safetensors.torch import save_file

    import voxa

    path = Path(path)
    full = dict(header)
    full.setdefault("voxa_version", voxa.__version__)
    try:
        text = json.dumps(full, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise VoxaError(f"{path}: header is not JSON-serialisable: {e}") from e
    clean = {}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise VoxaError(f"{path}: {name!r} is {type(t).__name__}, not a torch.Tensor")
        clean[name] = t.detach().to("cpu").contiguous().clone()
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata={HEADER_KEY: text})
    return path


def load_model(path: str | os.PathLike, expected_class: str | None = None,
               device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_model`.

    Args:
        path: The safetensors file.
        expected_class: If given, the header's ``class`` must equal it.
        device: Where the tensors are placed.

    Returns:
        ``(tensors, header)``.

    Raises:
        VoxaError: If the file is missing, not a safetensors file, has no voxa header, or holds
            another class.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise VoxaError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except VoxaError:
        raise
    except Exception as e:  # safetensors raises its own error types (and OSError) for bad files
        raise VoxaError(f"{path}: not a readable safetensors model file ({e})") from e
    if HEADER_KEY not in meta:
        raise VoxaError(f"{path}: safetensors file without a voxa header")
    try:
        header = json.loads(meta[HEADER_KEY])
    except json.JSONDecodeError as e:
        raise VoxaError(f"{path}: corrupt voxa header ({e})") from e
    if not isinstance(header, dict):
        raise VoxaError(f"{path}: corrupt voxa header (not a JSON object)")
    if expected_class is not None and header.get("class") != expected_class:
        raise VoxaError(f"{path}: holds a {header.get('class')!r}, expected {expected_class!r}")
    return tensors, header
