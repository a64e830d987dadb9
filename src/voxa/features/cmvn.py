"""Cepstral mean and variance normalisation: per utterance, sliding window, or global statistics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from voxa.errors import ConfigError
from voxa.utils.serialization import register


def cmvn(feats: torch.Tensor, norm_vars: bool = False, window: int | None = None,
         min_window: int = 100, eps: float = 1e-8) -> torch.Tensor:
    """Normalise ``[..., frames, dims]`` features to zero mean (and unit variance).

    Args:
        feats: features.
        norm_vars: also divide by the standard deviation.
        window: ``None`` for whole-utterance statistics, or a centred sliding window of this many
            frames (Kaldi's ``apply-cmvn-sliding --center``: the window keeps its length at the edges).
        min_window: unused frames below this keep the window from shrinking further at the edges.
        eps: variance floor.

    Example:
        >>> cmvn(torch.randn(200, 13) + 5).mean().abs() < 1e-5
        tensor(True)
    """
    if window is None:
        mean = feats.mean(dim=-2, keepdim=True)
        out = feats - mean
        if norm_vars:
            out = out / (out.pow(2).mean(dim=-2, keepdim=True) + eps).sqrt()
        return out
    return _sliding(feats, int(window), norm_vars, eps)


def _sliding(feats: torch.Tensor, window: int, norm_vars: bool, eps: float) -> torch.Tensor:
    t = feats.shape[-2]
    if t == 0:
        return feats
    w = min(window, t)
    idx = torch.arange(t, device=feats.device)
    start = (idx - w // 2).clamp(min=0)
    start = torch.minimum(start, torch.full_like(start, t - w))
    end = start + w
    x = feats.double()
    zero = x.new_zeros(*x.shape[:-2], 1, x.shape[-1])
    c1 = torch.cat([zero, x.cumsum(-2)], dim=-2)
    mean = (c1[..., end, :] - c1[..., start, :]) / w
    out = x - mean
    if norm_vars:
        c2 = torch.cat([zero, x.pow(2).cumsum(-2)], dim=-2)
        var = (c2[..., end, :] - c2[..., start, :]) / w - mean.pow(2)
        out = out / (var.clamp(min=0) + eps).sqrt()
    return out.to(feats.dtype)


_CLASS = "voxa.features.GlobalCMVN"


@register(_CLASS)
class GlobalCMVN:
    """Global mean/variance statistics accumulated over a corpus (Kaldi's ``compute-cmvn-stats``).

    Statistics are kept in float64, so a corpus of any length can be streamed through ``partial_fit``.

    Example:
        >>> g = GlobalCMVN(norm_vars=True).fit([torch.randn(50, 13) * 3 + 1])
        >>> g.transform(torch.randn(10, 13) * 3 + 1).shape
        torch.Size([10, 13])
    """

    def __init__(self, norm_vars: bool = True, eps: float = 1e-8) -> None:
        self.norm_vars = norm_vars
        self.eps = eps
        self.count = 0.0
        self.sum: np.ndarray | None = None
        self.sumsq: np.ndarray | None = None

    def partial_fit(self, feats: torch.Tensor | np.ndarray) -> GlobalCMVN:
        x = torch.as_tensor(feats).reshape(-1, torch.as_tensor(feats).shape[-1]).double().cpu().numpy()
        if self.sum is None:
            self.sum = np.zeros(x.shape[1])
            self.sumsq = np.zeros(x.shape[1])
        elif x.shape[1] != self.sum.shape[0]:
            raise ConfigError(f"GlobalCMVN: got {x.shape[1]}-dim features after {self.sum.shape[0]}-dim ones")
        self.count += x.shape[0]
        self.sum += x.sum(0)
        self.sumsq += (x * x).sum(0)
        return self

    def fit(self, chunks) -> GlobalCMVN:
        """Accumulate over an iterable of ``[frames, dims]`` arrays (or one array)."""
        if isinstance(chunks, (torch.Tensor, np.ndarray)):
            chunks = [chunks]
        for c in chunks:
            self.partial_fit(c)
        return self

    @property
    def mean_(self) -> np.ndarray:
        self._check()
        return self.sum / self.count

    @property
    def std_(self) -> np.ndarray:
        self._check()
        var = self.sumsq / self.count - self.mean_ ** 2
        return np.sqrt(np.maximum(var, 0.0) + self.eps)

    def _check(self) -> None:
        if self.sum is None or self.count == 0:
            raise ConfigError("GlobalCMVN has no statistics: call fit first")

    def transform(self, feats: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.mean_, dtype=feats.dtype, device=feats.device)
        out = feats - mean
        if self.norm_vars:
            out = out / torch.as_tensor(self.std_, dtype=feats.dtype, device=feats.device)
        return out

    def kaldi_stats(self) -> np.ndarray:
        """Kaldi's ``[2, dims + 1]`` stats matrix (sums and count; sums of squares and 0)."""
        self._check()
        return np.stack([np.append(self.sum, self.count), np.append(self.sumsq, 0.0)])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics (Kaldi's stats matrix as a tensor) to one safetensors file, atomically."""
        from voxa.utils.serialization import save_model

        stats = torch.from_numpy(self.kaldi_stats())
        return save_model(path, {"stats": stats},
                          {"class": _CLASS, "config": {"norm_vars": self.norm_vars, "eps": self.eps}})

    @classmethod
    def load(cls, path: str | os.PathLike, norm_vars: bool | None = None) -> GlobalCMVN:
        """Read statistics written by :meth:`save` (or a ``.npy`` stats matrix of older voxa).

        ``norm_vars`` overrides the saved setting."""
        from voxa.utils.serialization import load_model

        path = Path(path)
        if path.suffix == ".npy":
            try:
                stats, cfg = np.load(path, allow_pickle=False), {}
            except (OSError, ValueError) as e:
                raise ConfigError(f"{path}: not a CMVN statistics file ({e})") from None
        else:
            tensors, header = load_model(path, expected_class=_CLASS)
            stats, cfg = tensors["stats"].double().numpy(), dict(header.get("config") or {})
        if stats.ndim != 2 or stats.shape[0] != 2:
            raise ConfigError(f"{path}: CMVN statistics must be a [2, dims + 1] matrix, got {stats.shape}")
        if norm_vars is not None:
            cfg["norm_vars"] = norm_vars
        g = cls(**cfg)
        g.count, g.sum, g.sumsq = float(stats[0, -1]), stats[0, :-1].copy(), stats[1, :-1].copy()
        return g
