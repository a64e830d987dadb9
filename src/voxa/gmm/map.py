"""MAP adaptation of a GMM (the UBM) to a speaker's frames (Reynolds, Quatieri & Dunn, 2000).

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture
    >>> ubm = GaussianMixture(4, random_state=0).fit(torch.randn(4000, 2))
    >>> spk = ubm.map_adapt(torch.randn(300, 2) + 0.5, relevance_factor=16, adapt="mw")
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from voxa.errors import VoxaError
from voxa.gmm.em import floor_covariances, split_stats

_NAMES = {"m": "means", "w": "weights", "v": "variances", "means": "means",
          "weights": "weights", "variances": "variances", "covariances": "variances"}


def parse_adapt(adapt: str | Iterable[str]) -> frozenset[str]:
    """Normalise ``"mwv"``-style letters or names to a set of ``{"means", "weights", "variances"}``.

    Example:
        >>> sorted(parse_adapt("mw"))
        ['means', 'weights']
    """
    if isinstance(adapt, str):
        items = [adapt] if adapt in _NAMES and len(adapt) > 1 else list(adapt)
    else:
        items = list(adapt)
    bad = [a for a in items if a not in _NAMES]
    if bad or not items:
        raise VoxaError(f"adapt must be letters of 'mwv' or names means/weights/variances, "
                        f"got {adapt!r}")
    return frozenset(_NAMES[a] for a in items)


def map_estimate(stats: torch.Tensor, shift: torch.Tensor, weights: torch.Tensor,
                 means: torch.Tensor, covs: torch.Tensor, kind: str, floor: torch.Tensor,
                 relevance_factor: float, adapt: frozenset[str]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The MAP parameters from UBM-posterior statistics.

    Args:
        stats: ``[K, D']`` float64 ``sum gamma phi(x - shift)`` under the UBM.
        shift: ``[d]`` the shift of the statistics.
        weights: ``[K]`` UBM weights.
        means: ``[K, d]`` UBM means.
        covs: ``[K, d]`` or ``[K, d, d]`` UBM covariances.
        kind: ``"diag"`` or ``"full"``.
        floor: ``[d]`` variance floor.
        relevance_factor: ``r >= 0``.
        adapt: Subset of ``{"means", "weights", "variances"}``.

    Returns:
        ``(weights, means, covs)`` in float64.
    """
    r = float(relevance_factor)
    if r < 0:
        raise VoxaError(f"relevance_factor must be >= 0, got {r}")
    d = means.shape[1]
    c = shift.to(torch.float64)
    w0, mu0, cv0 = (t.to(torch.float64) for t in (weights, means, covs))
    N, F, S = split_stats(stats, d, kind)
    seen = N > 0
    Ns = torch.where(seen, N, torch.ones_like(N))
    # r = 0 with n_k = 0 would be 0/0: such components keep the UBM values (alpha = 0).
    alpha = torch.where(seen, N / (N + r) if r > 0 else torch.ones_like(N), torch.zeros_like(N))
    mu0c = mu0 - c
    Ey = torch.where(seen[:, None], F / Ns[:, None], mu0c)
    mu_c = alpha[:, None] * Ey + (1 - alpha[:, None]) * mu0c if "means" in adapt else mu0c
    w = w0
    if "weights" in adapt:
        w = alpha * N / N.sum().clamp_min(1e-300) + (1 - alpha) * w0
        w = w / w.sum()
    cv = cv0
    if "variances" in adapt:
        if kind == "diag":
            Eyy = torch.where(seen[:, None], S / Ns[:, None], cv0 + mu0c * mu0c)
            m2 = alpha[:, None] * Eyy + (1 - alpha[:, None]) * (cv0 + mu0c * mu0c)
            cv = m2 - mu_c * mu_c
        else:
            outer0 = mu0c[:, :, None] * mu0c[:, None, :]
            Eyy = torch.where(seen[:, None, None], S / Ns[:, None, None], cv0 + outer0)
            a = alpha[:, None, None]
            m2 = a * Eyy + (1 - a) * (cv0 + outer0)
            cv = m2 - mu_c[:, :, None] * mu_c[:, None, :]
            cv = 0.5 * (cv + cv.transpose(-1, -2))
        cv = floor_covariances(cv, floor.to(cv), kind)
    return w, mu_c + c, cv
