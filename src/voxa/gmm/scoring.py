"""GMM-UBM log-likelihood-ratio scoring, exact or with top-C fast scoring.

The score of an utterance ``X [T, d]`` against a speaker model is the average over frames of
``log p(x | speaker) - log p(x | UBM)``. With ``top_c=C`` the C best UBM components of each frame
(ranked by the UBM's weighted densities) are the only ones evaluated in both models, the standard
fast scoring of adapted GMMs (Reynolds et al., 2000): it costs ``C`` instead of ``K`` densities
per frame and speaker.

Every model is evaluated through the same feature map ``phi(x - c)`` (see :mod:`voxa.gmm.em`),
with ``c`` the UBM's centring shift, so a model's densities are a row of ``phi @ W.T``.

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture
    >>> ubm = GaussianMixture(8, random_state=0).fit(torch.randn(4000, 3))
    >>> spk = ubm.map_adapt(torch.randn(400, 3) + 1.0)
    >>> s = llr(spk, ubm, torch.randn(200, 3) + 1.0, top_c=5)
    >>> scores = llr_many([spk, ubm], ubm, torch.randn(200, 3), top_c=5)  # shape (2,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from voxa.errors import VoxaError
from voxa.gmm.em import natural_params, phi
from voxa.utils.threads import numeric_threads

if TYPE_CHECKING:
    from voxa.gmm.mixture import ArrayLike, GaussianMixture

# Elements of the largest per-chunk temporary (gathered parameters or [chunk, S, K] densities).
_BUDGET = 1 << 22


def _check(models: Sequence[GaussianMixture], ubm: GaussianMixture) -> None:
    ubm.check_fitted()
    for m in models:
        m.check_fitted()
        if m.means_.shape != ubm.means_.shape or m.covariance_type != ubm.covariance_type:
            raise VoxaError(f"speaker model {tuple(m.means_.shape)} {m.covariance_type} does not "
                            f"match the UBM {tuple(ubm.means_.shape)} {ubm.covariance_type}")


def _frames(ubm: GaussianMixture, X: ArrayLike) -> torch.Tensor:
    t = torch.as_tensor(X)
    if t.dim() != 2 or t.shape[1] != ubm.means_.shape[1]:
        raise VoxaError(f"frames must be [T, {ubm.means_.shape[1]}], got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise VoxaError("cannot score an utterance without frames")
    return t.to(ubm.means_.device, ubm.dtype)


def _params(model: GaussianMixture, shift: torch.Tensor) -> torch.Tensor:
    return natural_params(model.weights_, model.means_, model.covariances_,
                          model.covariance_type, shift)


@numeric_threads()
def llr(speaker: GaussianMixture, ubm: GaussianMixture, X: ArrayLike,
        top_c: int | None = None) -> float:
    """Average per-frame log-likelihood ratio of ``X`` between a speaker model and the UBM.

    Args:
        speaker: Adapted model with the UBM's shape.
        ubm: The universal background model.
        X: ``[T, d]`` frames (numpy or torch).
        top_c: ``None`` for exact scoring, else the number of best UBM components per frame.

    Returns:
        The mean over frames of ``log p(x|speaker) - log p(x|ubm)`` as a Python float.
    """
    _check([speaker], ubm)
    x = _frames(ubm, X)
    kind, dt = ubm.covariance_type, ubm.dtype
    shift = ubm.weights_ @ ubm.means_
    Wu = _params(ubm, shift).to(dt)
    Ws = _params(speaker, shift).to(dt)
    K, D = Wu.shape
    C = K if top_c is None else max(1, min(int(top_c), K))
    step = max(1, _BUDGET // (max(K, D) if top_c is None else max(K, C * D)))
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for s in range(0, x.shape[0], step):
        f = phi(x[s:s + step] - shift.to(dt), kind)
        Lu = f @ Wu.T
        if top_c is None:
            Ls = f @ Ws.T
            diff = torch.logsumexp(Ls, 1) - torch.logsumexp(Lu, 1)
        else:
            best, idx = torch.topk(Lu, C, dim=1)
            Ls = torch.einsum("nd,ncd->nc", f, Ws[idx])  # only the C selected components
            diff = torch.logsumexp(Ls, 1) - torch.logsumexp(best, 1)
        total += diff.sum(dtype=torch.float64)
    return float((total / x.shape[0]).item())


@numeric_threads()
def llr_many(speakers: Sequence[GaussianMixture], ubm: GaussianMixture, X: ArrayLike,
             top_c: int | None = None) -> np.ndarray:
    """Score one utterance against many speaker models at once.

    The speakers' parameters are stacked into ``W [S, K, D']``; exact scoring is one GEMM
    ``[n, D'] x [D', S K]`` per chunk, top-C gathers ``W[:, idx]`` ``[S, n, C, D']`` for the
    UBM's best components of each frame.

    Args:
        speakers: ``S`` adapted models with the UBM's shape.
        ubm: The universal background model.
        X: ``[T, d]`` frames.
        top_c: ``None`` (exact) or C.

    Returns:
        ``[S]`` float64 numpy array of average per-frame LLRs, equal to ``[llr(s, ubm, X) ...]``.

    Example:
        >>> scores = llr_many(models, ubm, feats, top_c=5)  # doctest: +SKIP
    """
    if len(speakers) == 0:
        return np.zeros(0)
    _check(speakers, ubm)
    x = _frames(ubm, X)
    kind, dt = ubm.covariance_type, ubm.dtype
    shift = ubm.weights_ @ ubm.means_
    Wu = _params(ubm, shift).to(dt)
    Ws = torch.stack([_params(m, shift) for m in speakers]).to(dt)  # [S, K, D']
    S, K, D = Ws.shape
    C = K if top_c is None else max(1, min(int(top_c), K))
    per_frame = S * K + K if top_c is None else S * C * D + K
    step = max(1, _BUDGET // per_frame)
    total = torch.zeros(S, dtype=torch.float64, device=x.device)
    Wflat = Ws.reshape(S * K, D)
    for s in range(0, x.shape[0], step):
        f = phi(x[s:s + step] - shift.to(dt), kind)
        Lu = f @ Wu.T
        if top_c is None:
            Ls = (f @ Wflat.T).view(-1, S, K)
            diff = torch.logsumexp(Ls, 2) - torch.logsumexp(Lu, 1)[:, None]
        else:
            best, idx = torch.topk(Lu, C, dim=1)
            G = Ws[:, idx]  # [S, n, C, D']
            Ls = (G @ f[None, :, :, None])[..., 0]  # [S, n, C]
            diff = (torch.logsumexp(Ls, 2) - torch.logsumexp(best, 1)[None]).T
        total += diff.sum(0, dtype=torch.float64)
    return (total / x.shape[0]).cpu().numpy()
