"""Synthetic UBMs and utterances drawn from known supervector offsets, shared by the i-vector tests."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from voxa.gmm import GaussianMixture


def make_ubm(K: int, d: int, seed: int = 0, kind: str = "diag",
             dtype: torch.dtype = torch.float64) -> GaussianMixture:
    """A UBM with well-separated components and exactly the parameters drawn here (no EM)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(K, d))
    var = rng.uniform(0.5, 1.5, size=(K, d))
    if kind == "diag":
        cov = var
    else:
        A = rng.normal(scale=0.3, size=(K, d, d))
        cov = np.einsum("kij,klj->kil", A, A) + var[:, :, None] * np.eye(d)
    w = rng.dirichlet(np.full(K, 10.0))
    return GaussianMixture(K, covariance_type=kind, means_init=means, weights_init=w,
                           covariances_init=cov, max_iter=0, var_floor=1e-6, dtype=dtype
                           ).fit(means)


def sample_utterances(ubm: GaussianMixture, offsets: np.ndarray, lengths: np.ndarray,
                      seed: int) -> list[np.ndarray]:
    """Frames of utterance u drawn from the UBM with component means shifted by ``offsets[u]``."""
    rng = np.random.default_rng(seed)
    w = ubm.weights_.numpy()
    mu = ubm.means_.numpy()
    cov = ubm.covariances_.numpy()
    K, d = mu.shape
    utt = np.repeat(np.arange(len(lengths)), lengths)
    comp = rng.choice(K, size=utt.shape[0], p=w)
    eps = rng.normal(size=(utt.shape[0], d))
    if ubm.covariance_type == "diag":
        noise = eps * np.sqrt(cov[comp])
    else:
        noise = np.einsum("nij,nj->ni", np.linalg.cholesky(cov)[comp], eps)
    x = mu[comp] + offsets[utt, comp] + noise
    return np.split(x, np.cumsum(lengths)[:-1])


def low_rank_offsets(ubm: GaussianMixture, W: np.ndarray, seed: int, scale: float = 0.5
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets [U, K, d], T [K, d, R])`` with offsets ``T w_u`` for the rows ``w_u`` of ``W``."""
    rng = np.random.default_rng(seed)
    K, d = ubm.means_.shape
    R = W.shape[1]
    std = np.sqrt(ubm.covariances_.numpy() if ubm.covariance_type == "diag"
                  else np.diagonal(ubm.covariances_.numpy(), axis1=1, axis2=2))
    T = scale * std[:, :, None] * rng.normal(size=(K, d, R))
    return np.einsum("kdr,ur->ukd", T, W), T


@pytest.fixture(scope="session")
def synth() -> SimpleNamespace:
    """The generators above (``make_ubm``, ``sample_utterances``, ``low_rank_offsets``)."""
    return SimpleNamespace(make_ubm=make_ubm, sample_utterances=sample_utterances,
                           low_rank_offsets=low_rank_offsets)
