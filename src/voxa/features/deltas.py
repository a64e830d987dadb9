"""Time derivatives of feature streams by regression (Kaldi's ``add-deltas``, HTK's formula)."""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=16)
def _delta_kernels(order: int, window: int) -> tuple[torch.Tensor, int]:
    """Kernels for orders 0..order applied to the original features, as Kaldi builds them:
    order i is order i-1 convolved with the regression filter ``j / sum(j^2)``, j = -window..window."""
    norm = 2.0 * sum(j * j for j in range(1, window + 1))
    reg = torch.tensor([j / norm for j in range(-window, window + 1)], dtype=torch.float64)
    kernels = [torch.ones(1, dtype=torch.float64)]
    for _ in range(order):
        prev = kernels[-1]
        cur = torch.zeros(prev.numel() + 2 * window, dtype=torch.float64)
        for j in range(2 * window + 1):
            cur[j:j + prev.numel()] += reg[j] * prev
        kernels.append(cur)
    half = order * window
    out = torch.zeros(order + 1, 2 * half + 1, dtype=torch.float64)
    for i, k in enumerate(kernels):
        off = half - (k.numel() - 1) // 2
        out[i, off:off + k.numel()] = k
    return out.float(), half


def add_deltas(feats: torch.Tensor, order: int = 2, window: int = 2) -> torch.Tensor:
    """Append deltas up to ``order`` to ``[..., frames, dims]`` features: ``[..., frames, dims*(order+1)]``.

    The first and last frames are repeated at the edges, as Kaldi does; delta-deltas are the
    regression applied twice to the original features (so they match ``add-deltas`` exactly).

    Example:
        >>> add_deltas(torch.randn(100, 13)).shape
        torch.Size([100, 39])
    """
    if order == 0:
        return feats
    if order < 0 or window < 1:
        raise ValueError(f"need order >= 0 and window >= 1, got {order}, {window}")
    kernels, half = _delta_kernels(order, window)
    shape = feats.shape
    t, d = shape[-2], shape[-1]
    if feats.numel() == 0:
        return feats.new_zeros(*shape[:-1], d * (order + 1))
    x = feats.reshape(-1, t, d).transpose(1, 2).reshape(-1, 1, t)  # [B*D, 1, T]
    x = F.pad(x, (half, half), mode="replicate") if half < t else _pad_clamp(x, half)
    y = F.conv1d(x, kernels.to(x.device, x.dtype).unsqueeze(1))  # [B*D, order+1, T]
    y = y.reshape(-1, d, order + 1, t).permute(0, 3, 2, 1).reshape(*shape[:-1], d * (order + 1))
    return y


def _pad_clamp(x: torch.Tensor, half: int) -> torch.Tensor:
    # replicate padding wider than the signal itself (very short utterances)
    t = x.shape[-1]
    idx = torch.arange(-half, t + half, device=x.device).clamp(0, t - 1)
    return x[..., idx]


def deltas(feats: torch.Tensor, window: int = 2) -> torch.Tensor:
    """First-order regression deltas of ``[..., frames, dims]`` (same shape)."""
    d = feats.shape[-1]
    return add_deltas(feats, 1, window)[..., d:]
