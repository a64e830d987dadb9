"""The GMM-UBM system: a universal background model by EM, MAP-adapted models, LLR score matrices.

Shared by speaker identification and verification, language ID and emotion recognition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from voxa.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class GmmUbmConfig:
    """The GMM-UBM system's settings.

    Attributes:
        n_components: UBM size.
        covariance_type: ``diag`` or ``full``.
        init: ``split`` (mixing up 1, 2, 4, ... K) or ``kmeans++``.
        max_iter: EM iterations at the final size.
        tol: convergence on the relative change of the average log-likelihood.
        relevance_factor: MAP relevance factor r.
        adapt: which parameters MAP adapts: letters of ``m`` (means), ``w`` (weights), ``v`` (variances).
        top_c: Gaussians per frame used in scoring (``None``: exact).
        max_ubm_frames: random subsample of the background frames used for the UBM.
        seed: initialisation and subsampling seed.
    """

    n_components: int = 256
    covariance_type: str = "diag"
    init: str = "split"
    max_iter: int = 20
    tol: float = 1e-4
    relevance_factor: float = 16.0
    adapt: str = "m"
    top_c: int | None = 5
    max_ubm_frames: int | None = 2_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if set(self.adapt) - set("mwv") or not self.adapt:
            raise ConfigError(f"adapt must be letters of 'mwv', got {self.adapt!r}")


def train_ubm(frames_by_utt: dict[str, torch.Tensor], cfg: GmmUbmConfig):
    """Train the universal background model on the pooled frames (subsampled to ``max_ubm_frames``)."""
    from voxa.gmm.mixture import GaussianMixture

    X = torch.cat(list(frames_by_utt.values()))
    if cfg.max_ubm_frames and X.shape[0] > cfg.max_ubm_frames:
        g = torch.Generator().manual_seed(cfg.seed)
        X = X[torch.randperm(X.shape[0], generator=g)[: cfg.max_ubm_frames]]
    if X.shape[0] < 10 * cfg.n_components:
        log.warning("only %d frames for %d Gaussians", X.shape[0], cfg.n_components)
    ubm = GaussianMixture(n_components=cfg.n_components, covariance_type=cfg.covariance_type,
                     max_iter=cfg.max_iter, tol=cfg.tol, init=cfg.init, random_state=cfg.seed)
    return ubm.fit(X)


def enroll(ubm, frames_by_utt: dict[str, torch.Tensor], groups: dict[str, list[str]],
           cfg: GmmUbmConfig) -> dict[str, Any]:
    """MAP-adapt one model per group (a speaker's utterance ids, or one utterance)."""
    from voxa.utils.threads import numeric_threads

    models = {}
    with numeric_threads():
        for name, utts in tqdm(sorted(groups.items()), desc="enrol", unit="model", leave=False):
            X = torch.cat([frames_by_utt[u] for u in utts])
            models[name] = ubm.map_adapt(X, relevance_factor=cfg.relevance_factor, adapt=cfg.adapt)
    return models


def score_matrix(models: dict[str, Any], ubm, frames_by_utt: dict[str, torch.Tensor],
                 test_ids: Sequence[str], top_c: int | None) -> tuple[np.ndarray, list[str]]:
    """LLR of every test utterance against every model: ``[len(test_ids), len(models)]``."""
    from voxa.gmm.scoring import llr_many
    from voxa.utils.threads import numeric_threads

    names = sorted(models)
    stacked = [models[n] for n in names]
    out = np.zeros((len(test_ids), len(names)))
    # one thread count for the whole loop: a busy core would stall every per-utterance GEMM
    with numeric_threads():
        for i, u in enumerate(tqdm(test_ids, desc="score", unit="utt", leave=False)):
            out[i] = llr_many(stacked, ubm, frames_by_utt[u], top_c=top_c)
    return out, names
