"""Utterance-level pooling of frame sequences over valid frames only: TAP, statistics, SAP, MHA, ASP.

Each pooling takes ``x [B, T, D]`` and ``lengths [B]`` and returns ``[B, out_dim(D)]``. The attentive
ones (``attentive = True``) also return their frame weights ``[B, T]`` with ``return_weights=True``:
they sum to 1 over each utterance's valid frames and are 0 on padding (for plots over spectrograms).

Example:
    >>> import torch
    >>> pool = SelfAttentivePooling(6, hidden=4)
    >>> v, w = pool(torch.randn(2, 5, 6), torch.tensor([5, 3]), return_weights=True)
    >>> tuple(v.shape), torch.allclose(w.sum(1), torch.ones(2)), w[1, 3:].tolist()
    ((2, 6), True, [0.0, 0.0])
"""

from __future__ import annotations

import torch
import torch.nn as nn

from voxa.nn.layers import lengths_to_mask, masked_mean

__all__ = ["POOLINGS", "AttentiveStatisticsPooling", "MultiHeadAttentionPooling", "SelfAttentivePooling",
           "StatisticsPooling", "TemporalAveragePooling", "build_pooling"]

_EPS = 1e-5


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 (frames) of ``scores [B, T, ...]`` with padded frames at exactly 0."""
    while mask.dim() < scores.dim():
        mask = mask[..., None]
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    # an empty utterance (length 0) would give NaN everywhere
    return w.masked_fill(~mask, 0.0)


def _weighted_stats(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and std over frames of ``x [B, T, D]`` with weights ``w [B, T, 1|D]``."""
    mean = (w * x).sum(1)
    var = (w * (x - mean[:, None]) ** 2).sum(1)
    return mean, var.clamp(min=_EPS).sqrt()


class TemporalAveragePooling(nn.Module):
    """Temporal average pooling (TAP): the mean over valid frames.

    Shapes:
        ``x [B, T, D]``, ``lengths [B]`` -> ``[B, D]``.

    Example:
        >>> TemporalAveragePooling()(torch.ones(1, 4, 2), torch.tensor([2])).tolist()
        [[1.0, 1.0]]
    """

    attentive = False

    def __init__(self, in_dim: int | None = None) -> None:
        super().__init__()

    @staticmethod
    def out_dim(in_dim: int) -> int:
        return in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return masked_mean(x, lengths_to_mask(lengths, x.shape[1])[:, :, None], dim=1)


class StatisticsPooling(nn.Module):
    """Statistics pooling: mean and standard deviation over valid frames, concatenated.

    Shapes:
        ``x [B, T, D]``, ``lengths [B]`` -> ``[B, 2D]``.

    Example:
        >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> StatisticsPooling()(x, torch.tensor([2])).tolist()
        [[2.0, 1.0]]
    """

    attentive = False

    def __init__(self, in_dim: int | None = None) -> None:
        super().__init__()

    @staticmethod
    def out_dim(in_dim: int) -> int:
        return 2 * in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = lengths_to_mask(lengths, x.shape[1]).to(x.dtype)[:, :, None]
        w = m / m.sum(1, keepdim=True).clamp(min=1)
        return torch.cat(_weighted_stats(x, w), dim=1)


class SelfAttentivePooling(nn.Module):
    """Self-attentive pooling (SAP): a small MLP scores each frame; the softmax over valid frames
    weights the mean.

    Args:
        in_dim: Frame dims ``D``.
        hidden: Hidden units of the scoring MLP.

    Shapes:
        ``x [B, T, D]``, ``lengths [B]`` -> ``[B, D]`` (and weights ``[B, T]``).

    Example:
        >>> SelfAttentivePooling(3, hidden=2)(torch.randn(2, 4, 3), torch.tensor([4, 1])).shape
        torch.Size([2, 3])
    """

    attentive = True

    def __init__(self, in_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    @staticmethod
    def out_dim(in_dim: int) -> int:
        return in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        w = _masked_softmax(self.score(x).squeeze(-1), lengths_to_mask(lengths, x.shape[1]))
        v = (w[:, :, None] * x).sum(1)
        return (v, w) if return_weights else v


class MultiHeadAttentionPooling(nn.Module):
    """Multi-head attention pooling (India et al., 2019): the feature dims are split into ``heads``
    equal parts, each with its own frame attention (a linear score), and the heads' weighted means are
    concatenated.

    Args:
        in_dim: Frame dims ``D`` (divisible by ``heads``).
        heads: Number of heads.

    Shapes:
        ``x [B, T, D]``, ``lengths [B]`` -> ``[B, D]``; the weights returned are the heads' average
        ``[B, T]`` (``weights_per_head`` gives ``[B, T, heads]``).

    Example:
        >>> MultiHeadAttentionPooling(6, heads=3)(torch.randn(2, 4, 6), torch.tensor([4, 2])).shape
        torch.Size([2, 6])
    """

    attentive = True

    def __init__(self, in_dim: int, heads: int = 4) -> None:
        super().__init__()
        if in_dim % heads:
            raise ValueError(f"MHA pooling: {in_dim} dims do not split into {heads} heads")
        self.heads = heads
        self.u = nn.Parameter(torch.randn(heads, in_dim // heads) / (in_dim // heads) ** 0.5)
        self.b = nn.Parameter(torch.zeros(heads))

    @staticmethod
    def out_dim(in_dim: int) -> int:
        return in_dim

    def weights_per_head(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each head's frame weights ``[B, T, heads]``."""
        b, t, d = x.shape
        xh = x.reshape(b, t, self.heads, d // self.heads)
        return _masked_softmax(torch.einsum("bthd,hd->bth", xh, self.u) + self.b,
                               lengths_to_mask(lengths, t))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        w = self.weights_per_head(x, lengths)
        v = (w[..., None] * x.reshape(b, t, self.heads, d // self.heads)).sum(1).reshape(b, d)
        return (v, w.mean(-1)) if return_weights else v


class AttentiveStatisticsPooling(nn.Module):
    """Attentive statistics pooling (ASP, Okabe et al., 2018): SAP's frame weights give a weighted
    mean and a weighted standard deviation, concatenated.

    Args:
        in_dim: Frame dims ``D``.
        hidden: Hidden units of the scoring MLP.

    Shapes:
        ``x [B, T, D]``, ``lengths [B]`` -> ``[B, 2D]`` (and weights ``[B, T]``).

    Example:
        >>> AttentiveStatisticsPooling(3, hidden=2)(torch.randn(2, 4, 3), torch.tensor([4, 2])).shape
        torch.Size([2, 6])
    """

    attentive = True

    def __init__(self, in_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    @staticmethod
    def out_dim(in_dim: int) -> int:
        return 2 * in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        w = _masked_softmax(self.score(x).squeeze(-1), lengths_to_mask(lengths, x.shape[1]))
        v = torch.cat(_weighted_stats(x, w[:, :, None]), dim=1)
        return (v, w) if return_weights else v


#: short names (the models' ``pooling`` setting) to classes
POOLINGS: dict[str, type[nn.Module]] = {
    "tap": TemporalAveragePooling,
    "stats": StatisticsPooling,
    "sap": SelfAttentivePooling,
    "mha": MultiHeadAttentionPooling,
    "asp": AttentiveStatisticsPooling,
}


def build_pooling(name: str, in_dim: int, hidden: int = 128, heads: int = 4) -> nn.Module:
    """The pooling ``name`` (a key of :data:`POOLINGS`) for ``in_dim``-dim frames.

    Example:
        >>> build_pooling("asp", 8, hidden=4).out_dim(8)
        16
    """
    from voxa.errors import ConfigError

    if name not in POOLINGS:
        raise ConfigError(f"unknown pooling {name!r}; choose one of: {', '.join(POOLINGS)}")
    if name in ("sap", "asp"):
        return POOLINGS[name](in_dim, hidden=hidden)
    if name == "mha":
        return POOLINGS[name](in_dim, heads=heads)
    return POOLINGS[name](in_dim)
