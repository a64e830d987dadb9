"""Shifted delta cepstra (Torres-Carrasquillo et al. 2002) for language identification."""

from __future__ import annotations

import torch

from voxa.errors import ConfigError


def sdc(cepstra: torch.Tensor, n: int = 7, d: int = 1, p: int = 3, k: int = 7,
        include_static: bool = False, kaldi_compat: bool = False) -> torch.Tensor:
    """N-d-P-k shifted delta cepstra (default 7-1-3-7, 49 dims; 56 with the statics).

    Block ``i`` (0..k-1) at frame t is ``c[t + iP + d] - c[t + iP - d]`` over the first ``n``
    cepstra; frames past the edges repeat the first or last frame.

    Args:
        cepstra: ``[..., frames, >= n]``.
        n, d, p, k: the N-d-P-k parameters.
        include_static: prepend the ``n`` static cepstra.
        kaldi_compat: Kaldi's ``ShiftedDeltaFeatures``: each block is the regression delta of
            window ``d`` (for d = 1, half the plain difference) at frame ``t + iP``, clamped to the
            last frame.

    Returns:
        ``[..., frames, n * k]`` (or ``n * (k + 1)`` with statics).

    Example:
        >>> sdc(torch.randn(100, 13)).shape
        torch.Size([100, 49])
    """
    for name, v, lo in (("N", n, 1), ("d", d, 1), ("P", p, 1), ("k", k, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"sdc {name}={v!r} must be an integer >= {lo}")
    if cepstra.shape[-1] < n:
        raise ConfigError(f"sdc N={n} must be at most the number of cepstra "
                          f"({cepstra.shape[-1]}): raise num_ceps to at least {n}")
    c = cepstra[..., :n]
    t = c.shape[-2]
    if kaldi_compat:
        from voxa.features.deltas import deltas

        dl = deltas(c, window=d)
        idx = (torch.arange(t, device=c.device)[:, None]
               + p * torch.arange(k, device=c.device)[None, :]).clamp(max=max(t - 1, 0))
        out = dl[..., idx, :].reshape(*c.shape[:-2], t, k * n)
        return torch.cat([c, out], dim=-1) if include_static else out
    base = torch.arange(t, device=c.device)[:, None] + p * torch.arange(k, device=c.device)[None, :]
    plus = (base + d).clamp(0, t - 1)
    minus = (base - d).clamp(0, t - 1)
    out = c[..., plus, :] - c[..., minus, :]  # [..., T, k, n]
    out = out.reshape(*c.shape[:-2], t, k * n)
    return torch.cat([c, out], dim=-1) if include_static else out
