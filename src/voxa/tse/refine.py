"""Re-synthesising a query output from the model's own separated talkers (an inference option).

A model trained separation first (:mod:`voxa.tse.schedule`) has two outputs besides the query's: the
talkers it separates when its query is one of the separation tokens. Its query output is mostly a
weighted sum of those two talkers plus what the separation does not explain (distortion of the mask,
leftovers of the other talker). :func:`project` replaces the query output ``q`` by its least-squares fit
``w1 s1 + w2 s2`` over the separated outputs: the weights keep the query's choice (and its hedge, when the
model is unsure which talker the distance means), the rest is dropped. On inputs longer than ``block``
samples the weights are fitted per block (half-overlapping, Hann-weighted overlap-add), so a long
recording whose talkers change is not forced onto two fixed weights.

Measured on the D1 test sets at step 176,700 of the committed run (95 present items, 2 s mixtures):
SI-SDRi 2.58 dB against 2.20 for the plain query output (median 4.34 against 2.83); fitting per 1 s or
0.5 s block instead of the whole 2 s gave 2.30 and 2.35 dB, and clamping the weights at zero 2.29 dB.

Example:
    >>> import torch
    >>> s = torch.randn(1, 2, 800)
    >>> q = 0.8 * s[:, 0] + 0.1 * s[:, 1]
    >>> torch.allclose(project(s, q), q, atol=1e-4)
    True
"""

from __future__ import annotations

import torch

from voxa.errors import ConfigError

#: ``none``: the query output as it is; ``project``: re-synthesised from the separated outputs
REFINES = ("none", "project")


def check_refine(name: str) -> str:
    if name not in REFINES:
        raise ConfigError(f"refine must be one of {', '.join(REFINES)}, got {name!r}")
    return name


def _fit(sep: torch.Tensor, q: torch.Tensor, ridge: float) -> torch.Tensor:
    """Least-squares weights of ``q [..., N]`` over ``sep [..., K, N]``: ``[..., K]`` (float64)."""
    s, y = sep.double(), q.double()
    gram = s @ s.transpose(-1, -2)
    # a ridge relative to the outputs' energy keeps a silent (absent-query) block from dividing by zero
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + ridge * (gram.diagonal(dim1=-2, dim2=-1).mean(-1, keepdim=True)[..., None] + 1e-12) * eye
    return torch.linalg.solve(gram, (s @ y[..., None]))[..., 0]


def project(sep: torch.Tensor, q: torch.Tensor, block: int | None = None, ridge: float = 1e-6
            ) -> torch.Tensor:
    """The least-squares fit of ``q`` by the separated outputs.

    Args:
        sep: separated outputs ``[B, K, N]``.
        q: query outputs ``[B, N]``.
        block: fit the weights per block of this many samples with half overlap (``None``, or an input
            not longer than it: one fit over the whole input).
        ridge: Tikhonov weight relative to the mean energy of the separated outputs.

    Returns:
        ``[B, N]``, in ``q``'s dtype.
    """
    b, k, n = sep.shape
    if q.shape != (b, n):
        raise ConfigError(f"query outputs {tuple(q.shape)} do not match separated outputs {tuple(sep.shape)}")
    if block is None or n <= block:
        w = _fit(sep, q, ridge)  # [B, K]: one fit over the whole input
        return (w[:, None, :] @ sep.double())[:, 0].to(q.dtype)
    hop = block // 2
    frames = -(-(n - block) // hop) + 1
    total = (frames - 1) * hop + block
    pad = torch.nn.functional.pad
    sp = pad(sep.double(), (0, total - n)).unfold(-1, block, hop).transpose(1, 2)  # [B, F, K, block]
    qp = pad(q.double(), (0, total - n)).unfold(-1, block, hop)  # [B, F, block]
    fit = (_fit(sp, qp, ridge)[:, :, None, :] @ sp)[:, :, 0]  # [B, F, block]
    # Hann-weighted overlap-add; the floor keeps the first and last half-blocks (one window each) at level
    win = torch.hann_window(block, periodic=True, dtype=torch.float64, device=q.device).clamp(min=1e-3)
    fold = lambda x: torch.nn.functional.fold(x.transpose(1, 2), (1, total), (1, block), stride=(1, hop))  # noqa: E731
    out = fold(fit * win) / fold(win.expand(b, frames, block))
    return out[:, 0, 0, :n].to(q.dtype)
