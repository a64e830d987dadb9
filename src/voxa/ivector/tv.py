"""The total-variability (i-vector) model: EM training and batched i-vector extraction.

Dehak et al. (2011) "Front-end factor analysis for speaker verification": the GMM supervector of
an utterance is ``M = m + T w`` with ``T [K d, R]`` low rank and ``w ~ N(0, I)``; the i-vector is
the posterior mean of ``w`` given the utterance's Baum-Welch statistics. ``T`` is trained by EM
(Kenny et al. 2005) with optional minimum-divergence re-estimation; the kernels live in
:mod:`voxa.ivector.factor`.

Example:
    >>> import torch
    >>> from voxa.gmm import GaussianMixture
    >>> from voxa.ivector import TotalVariability, baum_welch_stats
    >>> ubm = GaussianMixture(8, max_iter=5, random_state=0).fit(torch.randn(5000, 4))
    >>> utts = [torch.randn(100, 4) + 0.3 * torch.randn(4) for _ in range(50)]
    >>> stats = baum_welch_stats(ubm, utts)
    >>> tv = TotalVariability(rank=3, n_iter=5, progress=False).fit(stats, ubm)
    >>> tv.transform(stats).shape
    torch.Size([50, 3])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from voxa.errors import ConfigError, VoxaError
from voxa.ivector import factor
from voxa.ivector.stats import as_stats, check_stats, iter_baum_welch_stats, ubm_from_tensors
from voxa.utils.serialization import register

if TYPE_CHECKING:
    from voxa.gmm.mixture import GaussianMixture

log = logging.getLogger(__name__)

_CLASS = "voxa.ivector.TotalVariability"


@register(_CLASS)
class TotalVariability:
    """Total-variability model (i-vector extractor), scikit-learn style.

    Args:
        rank: i-vector dimension ``R``.
        n_iter: EM iterations.
        min_divergence: Apply minimum-divergence re-estimation after each M-step (rescale ``T``
            by the Cholesky factor of the average ``E[w w^T]`` and shift the mean supervector by
            ``T`` times the average ``E[w]``).
        update_sigma: Re-estimate the UBM covariances too (needs second-order statistics).
        dtype: Compute dtype of the E-step and extraction (accumulators are always float64).
        device: Where the model lives (default: the UBM's device).
        seed: Seed of the random initial ``T``.
        progress: Show tqdm bars (EM iterations, extraction batches).
        batch_size: Utterances per batch (default: ``[B, R, R]`` about 16M values).
        init_scale: Prior spread of ``T w`` at initialisation, in UBM standard deviations.

    Attributes:
        T_: ``[K, d, R]`` float64 loading matrix.
        sigma_: ``[K, d]`` (diag UBM) or ``[K, d, d]`` float64 covariances.
        mean_: ``[K, d]`` float64 offset of the mean supervector from the UBM means.
        ubm_: The UBM (a :class:`~voxa.gmm.GaussianMixture`, restored by :meth:`load`).
        history_: Average per-frame log-likelihood of each EM iteration's E-step (the parameters
            before that iteration's M-step); the ``tr(Sigma^-1 S)`` term is included only when
            the statistics carry ``S``, otherwise the values are exact up to a constant.
        n_iter_: EM iterations run.

    Example:
        >>> tv = TotalVariability(rank=400, n_iter=10).fit(stats, ubm)  # doctest: +SKIP
        >>> ivecs = tv.transform(test_stats)  # [U, 400]  # doctest: +SKIP
        >>> ivecs = tv.extract([feats1, feats2])  # from frames  # doctest: +SKIP
    """

    def __init__(self, rank: int = 400, n_iter: int = 10, min_divergence: bool = True,
                 update_sigma: bool = False, dtype: torch.dtype = torch.float32,
                 device: str | torch.device | None = None, seed: int = 0, progress: bool = True,
                 batch_size: int | None = None, init_scale: float = 1.0) -> None:
        if int(rank) < 1:
            raise ConfigError(f"rank must be >= 1, got {rank}")
        if int(n_iter) < 0:
            raise ConfigError(f"n_iter must be >= 0, got {n_iter}")
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if batch_size is not None and int(batch_size) < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.rank = int(rank)
        self.n_iter = int(n_iter)
        self.min_divergence = bool(min_divergence)
        self.update_sigma = bool(update_sigma)
        self.dtype = dtype
        self.device = device
        self.seed = int(seed)
        self.progress = bool(progress)
        self.batch_size = batch_size
        self.init_scale = float(init_scale)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        keys = ("rank", "n_iter", "min_divergence", "update_sigma", "dtype", "device", "seed",
                "progress", "batch_size", "init_scale")
        return {k: getattr(self, k) for k in keys}

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "T_"):
            raise VoxaError("TotalVariability is not fitted: call fit() or load() first")

    def _batch(self) -> int:
        return int(self.batch_size) if self.batch_size else factor.default_batch_size(self.rank)

    @property
    def _kind(self) -> str:
        return self.ubm_.covariance_type

    def _prepared(self) -> factor.Prepared:
        # Rebuilt only when the parameters change (fit/load clear it): it costs K R^2 d flops.
        if getattr(self, "_prep", None) is None:
            self._prep = factor.prepare(self.T_, self.sigma_, self._kind, self.mean_, self.dtype)
        return self._prep

    # ------------------------------------------------------------------ fit
    def fit(self, stats: Any, ubm: GaussianMixture) -> TotalVariability:
        """Train ``T`` by EM.

        Args:
            stats: :class:`BaumWelchStats` (or an ``(N, F)`` / ``(N, F, S)`` tuple) of the training
                utterances; or a list of them, or a zero-argument callable returning a fresh
                iterable of them (several passes are made). Under ``torch.distributed`` each rank
                passes its own shard; the accumulators are summed over ranks.
            ubm: The fitted UBM the statistics were computed with.

        Returns:
            ``self``.

        Raises:
            VoxaError: The statistics do not match the UBM, are empty or non-finite, or
                ``update_sigma`` is set without second-order statistics.
        """
        ubm.check_fitted()
        dev = torch.device(self.device) if self.device is not None else ubm.means_.device
        f64 = {"dtype": torch.float64, "device": dev}
        K, d = ubm.means_.shape
        source = factor.StatsSource(stats, K, d)
        kind = ubm.covariance_type
        self.ubm_ = ubm_from_tensors(ubm.weights_.to(dev), ubm.means_.to(dev),
                                     ubm.covariances_.to(dev), kind, self.dtype,
                                     getattr(ubm, "var_floor_", None))
        self._prep = None
        sigma = ubm.covariances_.to(**f64)
        T = factor.init_loading(sigma, kind, self.rank, self.seed, self.init_scale)
        offset = torch.zeros(K, d, **f64) if self.min_divergence else None
        T, offset, sigma, hist = factor.fit_em(
            source, T, sigma, kind, offset, self.n_iter, self.dtype, self._batch(),
            min_div=self.min_divergence, shift=True, sigma_update=self.update_sigma,
            floor=self.ubm_.var_floor_, progress=self.progress, desc="TV EM")
        for i, ll in enumerate(hist, 1):
            log.info("TV EM iteration %d: avg log-likelihood %.6f", i, ll)
        self.T_, self.sigma_ = T, sigma
        self.mean_ = offset if offset is not None else torch.zeros(K, d, **f64)
        self.history_, self.n_iter_ = hist, len(hist)
        return self

    def fit_transform(self, stats: Any, ubm: GaussianMixture) -> torch.Tensor:
        """:meth:`fit` then :meth:`transform` on the same (single) statistics."""
        return self.fit(stats, ubm).transform(stats)

    def log_likelihood(self, stats: Any) -> float:
        """Average per-frame log-likelihood of ``stats`` under the fitted model (see
        :func:`voxa.ivector.factor.log_likelihood`: up to a constant unless ``stats`` hold ``S``)."""
        self._check_fitted()
        K, d, _ = self.T_.shape
        acc = factor.e_step(factor.StatsSource(stats, K, d), self.T_, self.sigma_, self._kind,
                            self.mean_, self.dtype, self._batch())
        return factor.log_likelihood(acc, self.sigma_, self._kind, self.mean_)

    # ------------------------------------------------------------------ extraction
    def transform(self, stats: Any, return_cov: bool = False
                  ) -> torch.Tensor | np.ndarray | tuple[Any, Any]:
        """i-vectors: posterior means of ``w`` (optionally with their covariances).

        For a batch of utterances, ``L_u = I + sum_k N_uk T_k^T Sigma_k^-1 T_k`` is one GEMM and
        ``L_u w_u = T^T Sigma^-1 (F_u - N_u o)`` is solved by batched Cholesky.

        Args:
            stats: :class:`BaumWelchStats` or ``(N [U, K], F [U, K, d])`` (numpy or torch).
            return_cov: Also return the posterior covariances ``L_u^-1``.

        Returns:
            ``[U, R]`` i-vectors (a float64 numpy array when ``N`` is numpy, else a tensor in
            ``dtype`` on the model's device); with ``return_cov``, ``(ivectors, [U, R, R])``.
        """
        self._check_fitted()
        as_np = isinstance(stats, tuple) and isinstance(stats[0], np.ndarray)
        s = as_stats(stats)
        K, d, R = self.T_.shape
        check_stats(s, K, d)
        prep = self._prepared()
        dev, bs = self.T_.device, self._batch()
        ws, covs = [], []
        bar = tqdm(total=len(s), desc="i-vectors", unit="utt", disable=not self.progress,
                   leave=False)
        for i in range(0, len(s), bs):
            N = s.N[i:i + bs].to(dev, self.dtype)
            F = s.F[i:i + bs].to(dev, self.dtype)
            w, chol, _ = factor.posterior(prep, N, F)
            ws.append(w)
            if return_cov:
                covs.append(torch.cholesky_inverse(chol))
            bar.update(N.shape[0])
        bar.close()
        out = torch.cat(ws)
        cov = torch.cat(covs) if return_cov else None
        if as_np:
            out = out.cpu().numpy().astype(np.float64)
            cov = cov.cpu().numpy().astype(np.float64) if cov is not None else None
        return (out, cov) if return_cov else out

    def extract(self, utterances: Iterable[Any] | Mapping[str, Any] | Callable[[], Iterable],
                top_c: int | None = None, batch_frames: int | None = None,
                return_cov: bool = False) -> Any:
        """i-vectors straight from frames, using the stored UBM (statistics are streamed).

        Args:
            utterances: Per-utterance frames ``[T_u, d]`` (see
                :func:`~voxa.ivector.iter_baum_welch_stats`).
            top_c: Top-C posterior pruning for the statistics.
            batch_frames: Frames per statistics batch.
            return_cov: Also return ``[U, R, R]`` posterior covariances.

        Returns:
            ``[U, R]`` tensor (and covariances with ``return_cov``).
        """
        self._check_fitted()
        outs = [self.transform(s, return_cov=return_cov)
                for s in iter_baum_welch_stats(self.ubm_, utterances, top_c, batch_frames,
                                               dtype=self.dtype, progress=self.progress)]
        if not outs:
            raise VoxaError("no utterances")
        if return_cov:
            return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
        return torch.cat(outs)

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model and its UBM to one safetensors file (tensors + JSON header)."""
        self._check_fitted()
        header = {"class": _CLASS, "covariance_type": self._kind,
                  "fitted": {"n_iter": self.n_iter_, "history": [float(h) for h in self.history_]}}
        return factor.save_factor_model(self, path, {"T": self.T_, "sigma": self.sigma_, "mean": self.mean_},
                                        header)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None
             ) -> TotalVariability:
        """Read a model written by :meth:`save` (onto ``device``, default CPU)."""
        tv, t, header = factor.load_factor_model(cls, _CLASS, path, device)
        try:
            tv.T_, tv.sigma_, tv.mean_ = t["T"], t["sigma"], t["mean"]
        except KeyError as e:
            raise VoxaError(f"{path}: malformed TotalVariability file ({e!r})") from e
        fitted = header.get("fitted", {})
        tv.history_ = [float(h) for h in fitted.get("history", [])]
        tv.n_iter_ = int(fitted.get("n_iter", 0))
        tv._prep = None
        return tv

    def __repr__(self) -> str:
        return f"TotalVariability(rank={self.rank}, n_iter={self.n_iter})"

