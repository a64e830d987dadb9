"""Neural modules with a dataclass config that save as safetensors plus a JSON header.

A subclass names its config class in ``config_class``, keeps its config in ``self.cfg`` and is
registered with :func:`voxa.utils.serialization.register`; then ``model.save(path)`` writes its
state dict and config, and ``voxa.load(path)`` (or ``Base.load(path)``) rebuilds it without
unpickling. Extra header entries (training settings, a model card) ride along and come back as
``model.voxa_header``.

Example:
    >>> import os, tempfile, torch, voxa
    >>> from dataclasses import dataclass
    >>> from voxa.utils.serialization import register
    >>> @dataclass
    ... class TinyConfig:
    ...     dim: int = 3
    >>> @register("voxa.doc.Tiny")
    ... class Tiny(SavedModule):
    ...     config_class = TinyConfig
    ...     def __init__(self, cfg=None):
    ...         super().__init__()
    ...         self.cfg = cfg or TinyConfig()
    ...         self.lin = torch.nn.Linear(self.cfg.dim, 1)
    >>> path = Tiny(TinyConfig(dim=4)).save(os.path.join(tempfile.mkdtemp(), "t.safetensors"), note="hi")
    >>> m = voxa.load(path)
    >>> m.cfg.dim, m.voxa_header["note"]
    (4, 'hi')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn

from voxa.errors import VoxaError
from voxa.utils.config import from_dict, to_dict


class SavedModule(nn.Module):
    """Base of voxa's neural models: ``self.cfg`` is an instance of ``config_class``."""

    config_class: ClassVar[type]
    voxa_tag: ClassVar[str]

    def header(self) -> dict[str, Any]:
        """What the file's header records: class tag, config and parameter count."""
        return {"class": self.voxa_tag, "config": to_dict(self.cfg),
                "parameters": sum(p.numel() for p in self.parameters())}

    def save(self, path: str | os.PathLike, **extra: Any) -> Path:
        """Write the state dict and header (plus ``extra`` JSON entries) atomically."""
        from voxa.utils.serialization import save_model

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        return save_model(path, tensors, {**extra, **self.header()})

    @classmethod
    def resolve(cls, header: dict[str, Any], path: object) -> type[SavedModule]:
        """The class a header names; it must be ``cls`` or a subclass."""
        from voxa.utils.serialization import registered

        klass = registered().get(header.get("class"))
        if klass is None or not (isinstance(klass, type) and issubclass(klass, cls)):
            raise VoxaError(f"{path}: holds a {header.get('class')!r}, not a {cls.__name__}")
        return klass

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> SavedModule:
        """Rebuild a saved model (in eval mode) on ``device``; its header is kept as ``voxa_header``."""
        from voxa.utils.serialization import load_model

        tensors, header = load_model(path, device=device)
        klass = cls.resolve(header, path)
        try:
            cfg = from_dict(klass.config_class, header.get("config") or {})
        except VoxaError as e:
            raise VoxaError(f"{path}: {e}") from None
        model = klass(cfg)
        try:
            model.load_state_dict(tensors)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise VoxaError(f"{path}: tensors do not fit a {klass.__name__} of this config ({first})"
                            ) from None
        model.voxa_header = header
        return model.to(device).eval()
