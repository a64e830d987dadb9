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

    header = read_header(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types (and OSError) for bad files
        raise VoxaError(f"{path}: not a readable safetensors model file ({e})") from e
    if expected_class is not None and header.get("class") != expected_class:
        raise VoxaError(f"{path}: holds a {header.get('class')!r}, expected {expected_class!r}")
    return tensors, header


# ---------------------------------------------------------------------------------------------- registry
# Modules that define saveable classes; importing them fills the registry (``register``). A new kind of
# model adds its module here and decorates its class, and ``voxa.load`` restores it.
MODEL_MODULES = (
    "voxa.gmm.mixture",
    "voxa.ivector.stats",
    "voxa.ivector.tv",
    "voxa.ivector.jfa",
    "voxa.backends",
    "voxa.backends.chain",
    "voxa.utils.vectors",
    "voxa.features.cmvn",
    "voxa.tse.models",
    "voxa.hmm.models",
    "voxa.asr.acoustic",
    "voxa.asr.hybrid",
    "voxa.asr.ctc_model",
    "voxa.nn.models",
    "voxa.nn.las",
)

_REGISTRY: dict[str, type] = {}


def register(tag: str, *aliases: str):
    """Class decorator: files whose header ``class`` is ``tag`` (or an old alias) load as this class.

    The class must have ``save(path)`` and a classmethod ``load(path)``; its tag is kept as
    ``cls.voxa_tag``. Tags are dotted (``voxa.gmm.GaussianMixture``).
    """
    if "." not in tag:
        raise ValueError(f"class tag {tag!r} must be dotted (voxa.<package>.<Class>)")

    def deco(cls: type) -> type:
        for t in (tag, *aliases):
            old = _REGISTRY.get(t)
            if old is not None and old.__qualname__ != cls.__qualname__:
                raise ValueError(f"class tag {t!r} is taken by {old.__module__}.{old.__qualname__}")
            _REGISTRY[t] = cls
        cls.voxa_tag = tag
        return cls

    return deco


def registered() -> dict[str, type]:
    """Every tag voxa can load, to its class (importing the modules that define them)."""
    import importlib

    for m in MODEL_MODULES:
        importlib.import_module(m)
    return dict(_REGISTRY)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a voxa safetensors file, without reading its tensors.

    Raises:
        VoxaError: If the file is missing, not safetensors, or has no (or a corrupt) voxa header.
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise VoxaError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types (and OSError) for bad files
        raise VoxaError(f"{path}: not a readable safetensors model file ({e})") from e
    if HEADER_KEY not in meta:
        raise VoxaError(f"{path}: not a voxa model file (safetensors without a voxa header)")
    try:
        header = json.loads(meta[HEADER_KEY])
    except json.JSONDecodeError as e:
        raise VoxaError(f"{path}: corrupt voxa header ({e})") from e
    if not isinstance(header, dict):
        raise VoxaError(f"{path}: corrupt voxa header (not a JSON object)")
    return header


def class_of(path: str | os.PathLike) -> type:
    """The registered class a saved file holds (a back-end chain folder of older voxa included)."""
    path = Path(path)
    classes = registered()
    if path.is_dir() and (path / "chain.json").is_file():
        return classes["voxa.backends.BackendChain"]
    tag = read_header(path).get("class")
    if tag not in classes:
        raise VoxaError(f"{path}: holds an unknown class {tag!r}; this voxa loads "
                        f"{len(classes)} kinds (voxa.utils.serialization.registered())")
    return classes[tag]


def load(path: str | os.PathLike, **kwargs: Any) -> Any:
    """Restore any object voxa saved, from the class tag in its header.

    Args:
        path: A file written by :func:`save` (or by an object's own ``save``).
        **kwargs: Passed to the class's ``load`` (e.g. ``device``).

    Returns:
        The object: a ``GaussianMixture``, a back-end, a ``BackendChain``, a ``VectorSet``, a TSE
        model, ...

    Raises:
        VoxaError: If the file is missing, was not written by voxa, or holds a class this voxa does not
            know.

    Example:
        >>> import os, tempfile, numpy as np, voxa
        >>> from voxa.backends import LDA
        >>> lda = LDA(n_components=1).fit(np.random.default_rng(0).normal(size=(20, 3)), [0, 1] * 10)
        >>> path = voxa.save(lda, os.path.join(tempfile.mkdtemp(), "lda.safetensors"))
        >>> type(voxa.load(path)).__name__
        'LDA'
    """
    return class_of(path).load(path, **kwargs)


def save(obj: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Write any registered voxa object to ``path`` (atomically); returns the path.

    Raises:
        VoxaError: If ``obj`` is not of a class voxa can save.
    """
    registered()
    tag = getattr(type(obj), "voxa_tag", None)
    if tag is None or _REGISTRY.get(tag) is None or not isinstance(obj, _REGISTRY[tag]):
        raise VoxaError(f"{type(obj).__name__} is not a kind of object voxa saves")
    out = obj.save(path, **kwargs)
    return Path(out) if out is not None else Path(path)
