"""Time derivatives of feature streams by regression (Kaldi's ``add-deltas``, HTK's formula)."""

from __future__ import annotations

import torch

from voxa.errors import ConfigError


def check_deltas(order: object, window: object = 2) -> None:
    """:class:`voxa.errors.ConfigError` unless ``0 <= order <= 3`` and ``window >= 1`` (integers)."""
    for name, v, lo, hi in (("deltas", order, 0, 3), ("delta window", window, 1, 100)):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"{name}={v!r} must be an integer in {lo}..{hi}")


def add_deltas(feats: torch.Tensor, order: int = 2, window: int = 2) -> torch.Tensor:
    """Append deltas up to ``order`` to ``[..., frames, dims]`` features: ``[..., frames, dims*(order+1)]``.

    The first and last frames are repeated at the edges, as Kaldi does; delta-deltas are the
    regression applied twice to the original features (so they match ``add-deltas`` exactly).
    Order ``k`` is the regression of order ``k - 1`` taken on a sequence padded by ``order *
    window`` repeated frames, which equals Kaldi's convolved kernels on the padded original; as
    shifted differences it is a few passes over the features, where a 1-channel convolution over
    a long utterance was measured 20x slower.

    Raises:
        ConfigError: ``order`` outside 0..3 or ``window < 1``.

    Example:
        >>> add_deltas(torch.randn(100, 13)).shape
        torch.Size([100, 39])
    """
    check_deltas(order, window)
    if order == 0:
        return feats
    shape = feats.shape
    t, d = shape[-2], shape[-1]
    if feats.numel() == 0:
        return feats.new_zeros(*shape[:-1], d * (order + 1))
    half = order * window
    idx = torch.arange(-half, t + half, device=feats.device).clamp_(0, t - 1)
    z = feats.index_select(-2, idx)
    norm = 2.0 * sum(j * j for j in range(1, window + 1))
    outs = [feats]
    for k in range(1, order + 1):
        n = z.shape[-2] - 2 * window
        c, lo = window, window
        acc = torch.sub(z[..., c + 1:c + 1 + n, :], z[..., lo - 1:lo - 1 + n, :]).mul_(1.0 / norm)
        for j in range(2, window + 1):
            acc.add_(z[..., c + j:c + j + n, :], alpha=j / norm)
            acc.sub_(z[..., c - j:c - j + n, :], alpha=j / norm)
        z = acc
        off = (order - k) * window
        outs.append(z[..., off:off + t, :])
    return torch.cat(outs, dim=-1)


def deltas(feats: torch.Tensor, window: int = 2) -> torch.Tensor:
    """First-order regression deltas of ``[..., frames, dims]`` (same shape).

    Example:
        >>> deltas(torch.arange(10.0).unsqueeze(1))[3:7, 0]
        tensor([1., 1., 1., 1.])
    """
    d = feats.shape[-1]
    return add_deltas(feats, 1, window)[..., d:]
