"""Input checks and pickle-free save/load shared by the back-ends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from sklearn.base import BaseEstimator

from voxa.errors import ConfigError, VoxaError

T = TypeVar("T", bound="SavableBackend")


def as_matrix(X: Any, name: str = "X", dim: int | None = None) -> np.ndarray:
    """A finite, non-empty float64 ``[n, d]`` copy-or-view of an array, list or torch tensor.

    Raises:
        VoxaError: If ``X`` is not numeric, not 2-D, empty, has NaN/inf, or has ``d != dim``.
    """
    if hasattr(X, "detach"):  # torch without importing torch here
        X = X.detach().cpu().numpy()
    try:
        a = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise VoxaError(f"{name}: expected a numeric [n, dims] array ({e})") from e
    if a.ndim != 2:
        raise VoxaError(f"{name}: expected a 2-D [n, dims] array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise VoxaError(f"{name}: empty array of shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise VoxaError(f"{name}: has {a.shape[1]} dims but the model was fitted on {dim}")
    if not np.all(np.isfinite(a)):
        raise VoxaError(f"{name}: {int(np.sum(~np.isfinite(a)))} values are NaN or infinite")
    return a


def as_vector(x: Any, name: str = "scores") -> np.ndarray:
    """A finite, non-empty float64 ``[n]`` array (``[n, 1]`` is flattened)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise VoxaError(f"{name}: expected numbers ({e})") from e
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.size == 0:
        raise VoxaError(f"{name}: expected a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise VoxaError(f"{name}: {int(np.sum(~np.isfinite(a)))} values are NaN or infinite")
    return a


def as_labels(y: Any, n: int, min_classes: int = 2, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Class labels (ints or strings) as ``(classes [k] sorted, codes [n] in 0..k-1)``.

    Raises:
        VoxaError: If ``y`` is not 1-D of length ``n``, holds NaN, or has fewer than
            ``min_classes`` distinct values.
    """
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise VoxaError(f"{name}: expected {n} labels (one per row), got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.any(np.isnan(labels)):
        raise VoxaError(f"{name}: labels contain NaN")
    if labels.dtype.kind not in "biufUS":
        raise VoxaError(f"{name}: labels must be ints or strings, got dtype {labels.dtype}")
    classes, codes = np.unique(labels, return_inverse=True)
    if classes.size < min_classes:
        raise VoxaError(f"{name}: need at least {min_classes} classes, got {classes.size}")
    return classes, codes.reshape(-1)


def check_positive(name: str, value: float) -> None:
    """Raise ConfigError unless ``value`` is a positive finite number."""
    if not (isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)
            and value > 0):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


class SavableBackend(BaseEstimator):
    """scikit-learn estimator whose fitted state saves to one safetensors file, without pickle.

    Subclasses list their fitted array attributes in ``_arrays`` and JSON scalars (iteration
    counts, histories) in ``_scalars``; constructor arguments (``get_params``) form the header's
    config. Numeric arrays become tensors; text arrays (string class labels) go in the header.
    """

    _arrays: ClassVar[tuple[str, ...]] = ()
    _scalars: ClassVar[tuple[str, ...]] = ()

    def _array_names(self) -> tuple[str, ...]:
        return self._arrays

    def _check_fitted(self) -> None:
        if not all(hasattr(self, a) for a in self._array_names() + self._scalars):
            raise VoxaError(f"{type(self).__name__} is not fitted: call fit() or load() first")

    def _after_load(self) -> None:
        """Rebuild derived (unsaved) state; called by :meth:`load`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from voxa.utils.serialization import register

        register(cls._class_id())(cls)

    @classmethod
    def _class_id(cls) -> str:
        return f"voxa.backends.{cls.__name__}"

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fitted model as ``(tensors, header)``, the form :meth:`save` writes (and chains nest)."""
        import torch

        self._check_fitted()
        tensors: dict[str, torch.Tensor] = {}
        text: dict[str, list] = {}
        for name in self._array_names():
            a = np.asarray(getattr(self, name))
            if a.dtype.kind in "US":
                text[name] = a.tolist()
            else:
                tensors[name] = torch.from_numpy(np.ascontiguousarray(a))
        header = {"class": self._class_id(), "config": self.get_params(), "text_arrays": text,
                  "fitted": {k: getattr(self, k) for k in self._scalars}}
        return tensors, header

    @classmethod
    def from_state(cls: type[T], tensors: dict[str, Any], header: dict[str, Any], where: object = "") -> T:
        """Rebuild a model from :meth:`state`'s ``(tensors, header)``; ``where`` names it in errors."""
        try:
            model = cls(**header["config"])
            for name, t in tensors.items():
                setattr(model, name, t.numpy())
            for name, values in header.get("text_arrays", {}).items():
                setattr(model, name, np.asarray(values))
            for name, value in header.get("fitted", {}).items():
                setattr(model, name, value)
        except (KeyError, TypeError, ValueError) as e:
            raise VoxaError(f"{where}: malformed {cls.__name__} file ({e!r})") from e
        missing = [a for a in model._array_names() if not hasattr(model, a)]
        if missing:
            raise VoxaError(f"{where}: malformed {cls.__name__} file (missing {', '.join(missing)})")
        model._after_load()
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to one safetensors file (tensors + JSON header), atomically."""
        from voxa.utils.serialization import save_model

        tensors, header = self.state()
        return save_model(path, tensors, header)

    @classmethod
    def load(cls: type[T], path: str | os.PathLike) -> T:
        """Read a model written by :meth:`save`."""
        from voxa.utils.serialization import load_model

        tensors, header = load_model(path, expected_class=cls._class_id())
        return cls.from_state(tensors, header, path)
