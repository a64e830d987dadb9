"""Gaussian mixture models trained by EM, in torch, with chunked data and optional scale-out.

:class:`GaussianMixture` follows scikit-learn's estimator (``fit``, ``score_samples``, ``score``,
``predict_proba``, ``predict``, ``bic``; attributes ``weights_``, ``means_``, ``covariances_``,
``converged_``, ``n_iter_``, ``lower_bound_``) and adds what a GMM-UBM speech system needs:
training on more frames than fit in memory (``fit`` takes a re-iterable or a callable that yields
feature chunks), HTK/Kaldi-style binary splitting, a variance floor relative to the global
variance, handling of starved components, MAP adaptation, GPU execution and ``torch.distributed``
all-reduce of the sufficient statistics.

Example:
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(2000, 4))
    >>> gmm = GaussianMixture(8, random_state=0).fit(X)
    >>> gmm.score_samples(X).shape
    (2000,)
    >>> spk = gmm.map_adapt(X[:200], relevance_factor=16)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from voxa.errors import VoxaError
from voxa.gmm import distributed as dist_utils
from voxa.gmm.em import (
    StatsAccumulator,
    floor_covariances,
    m_step,
    m_step_single,
    natural_params,
    phi,
    phi_dim,
)
from voxa.utils.serialization import register
from voxa.utils.threads import numeric_threads

log = logging.getLogger(__name__)

ArrayLike = Union[np.ndarray, torch.Tensor]
FrameSource = Union[ArrayLike, Iterable[ArrayLike], Callable[[], Iterable[ArrayLike]]]

_CLASS = "voxa.gmm.GaussianMixture"
# Elements of the widest per-chunk temporary ([chunk, max(K, D')]): 4-8 MiB keeps the E-step's
# passes over it mostly in cache while chunks stay large enough for efficient GEMMs.
_CHUNK_BUDGET = 1 << 20
_SPLIT_EPS = 0.2  # HTK's mixing-up perturbation, in standard deviations
_MIN_FLOOR = 1e-10  # absolute lower bound of the variance floor (constant dimensions)


def _as_tensor(a: Any, what: str = "frames") -> torch.Tensor:
    try:
        t = torch.as_tensor(a)
    except (TypeError, ValueError, RuntimeError) as e:
        raise VoxaError(f"{what}: cannot convert {type(a).__name__} to a tensor ({e})") from e
    if t.dim() != 2:
        raise VoxaError(f"{what}: expected a 2-D [frames, dims] array, got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.int16)):
        raise VoxaError(f"{what}: expected real numbers, got {t.dtype}")
    return t


class _Source:
    """Frames as chunks ``[m, d]`` on ``device`` in ``dtype``, once or on every iteration."""

    def __init__(self, X: FrameSource, device: torch.device, dtype: torch.dtype, chunk: int,
                 multi_pass: bool = True) -> None:
        self.device, self.dtype, self.chunk = device, dtype, chunk
        self._array: torch.Tensor | None = None
        self._factory: Callable[[], Iterable[Any]] | None = None
        self._once: Iterator[Any] | None = None
        self.d: int | None = None
        if isinstance(X, (np.ndarray, torch.Tensor)):
            t = _as_tensor(X)
            # Converted once: per-pass host-to-device copies would dominate on a GPU.
            self._array = t.to(device=device, dtype=dtype)
            self.d = t.shape[1]
        elif callable(X):
            self._factory = X
        elif isinstance(X, Iterator):
            if multi_pass:
                raise VoxaError("fit needs several passes over the frames but got a one-shot "
                                "iterator: pass a list of arrays or a callable returning a fresh "
                                "iterator")
            self._once = X
        elif isinstance(X, Iterable):
            self._factory = lambda: iter(X)
        else:
            raise VoxaError(f"frames: expected an array, tensor, iterable of arrays or callable, "
                            f"got {type(X).__name__}")

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._array is not None:
            chunks: Iterable[Any] = (self._array,)
        elif self._factory is not None:
            chunks = self._factory()
        else:
            if self._once is None:
                raise VoxaError("frames: the one-shot iterator was already consumed")
            chunks, self._once = self._once, None
        for c in chunks:
            t = _as_tensor(c)
            if self.d is None:
                self.d = t.shape[1]
            elif t.shape[1] != self.d:
                raise VoxaError(f"frames: chunk has {t.shape[1]} dims, expected {self.d}")
            t = t.to(device=self.device, dtype=self.dtype)
            for s in range(0, t.shape[0], self.chunk):
                yield t[s:s + self.chunk]


def _hash_keys(idx: torch.Tensor, seed: int) -> torch.Tensor:
    """Deterministic pseudo-random int64 keys of global frame indices (unique per index).

    Sampling by smallest key picks the same frames however the data are chunked; 32-bit products
    with multipliers below 2**31 never overflow int64.
    """
    M = 0xFFFFFFFF
    h = (idx & M) ^ (((idx >> 32) * 0x7FEB352D) & M) ^ (seed & M)
    for mult, sh in ((0x2C1B3C6D, 16), (0x297A2D39, 15), (0x3C6EF372 | 1, 13)):
        h = (h * mult) & M
        h = h ^ (h >> sh)
    return (h << 31) | (idx & 0x7FFFFFFF)


def _seed_of(random_state: int | None) -> int:
    if random_state is None:
        return int(torch.randint(0, 2**31 - 1, ()).item())
    return int(random_state) & 0x7FFFFFFF


@register(_CLASS)
class GaussianMixture:
    """Gaussian mixture model with diagonal or full covariances, fitted by EM.

    Args:
        n_components: Number of Gaussians ``K``.
        covariance_type: ``"diag"`` (``covariances_ [K, d]``) or ``"full"`` (``[K, d, d]``).
        max_iter: EM iterations at the final size (after initialisation).
        tol: Convergence threshold on the change of the average per-frame log-likelihood between
            iterations. With ``tol_type="relative"`` (default) EM stops when
            ``|L_t - L_{t-1}| <= tol * |L_{t-1}|``; ``"absolute"`` uses ``<= tol`` like
            scikit-learn.
        tol_type: ``"relative"`` or ``"absolute"``.
        init: ``"kmeans++"`` (k-means++ seeding and Lloyd iterations on a random subsample) or
            ``"split"`` (binary splitting 1, 2, 4, ..., K with ``split_iter`` EM iterations after
            each split; when ``K`` is not a power of two the last round splits only the heaviest
            components).
        random_state: Seed of the subsample and k-means++ (``None``: random).
        var_floor: Variance floor relative to the global variance of the training data (HTK's
            vFloors): every variance is kept ``>= var_floor * global_var`` (for full covariances,
            ``Sigma - diag(floor)`` is kept positive semi-definite). Stored as ``var_floor_ [d]``.
        min_weight: Components whose weight falls below this are starved.
        prune: What happens to starved components: ``"split"`` (default) re-seeds each by
            splitting the heaviest component so ``K`` stays fixed; ``"drop"`` removes them (then
            ``weights_.shape[0] < n_components``); ``None`` keeps them.
        split_iter: EM iterations between splits (``init="split"``).
        kmeans_iter: Lloyd iterations (``init="kmeans++"``).
        init_samples: Frames subsampled for k-means (default ``clip(40 K, 20000, 200000)``).
        weights_init: Optional ``[K]`` initial weights (with ``means_init``; skips ``init``).
        means_init: Optional ``[K, d]`` initial means.
        covariances_init: Optional initial covariances (default: the global covariance).
        chunk_size: Frames per chunk in the E-step (default: sized so that ``[chunk, K]`` holds
            about 1M values).
        dtype: E-step dtype (float32 or float64). Statistics and the M-step are always float64.
        device: Where the model lives and computes (default: the device of a tensor passed to
            ``fit``, else CPU).
        verbose: Log the average log-likelihood of each iteration at INFO level.

    Attributes:
        weights_: ``[K]`` float64 tensor on ``device``.
        means_: ``[K, d]``.
        covariances_: ``[K, d]`` (diag) or ``[K, d, d]`` (full).
        var_floor_: ``[d]`` absolute variance floor.
        converged_: Whether ``tol`` was met before ``max_iter``.
        n_iter_: EM iterations run at the final size.
        lower_bound_: Average per-frame log-likelihood of the last E-step (that is, of the
            parameters before the last M-step, as in scikit-learn).
        history_: Average log-likelihood of every EM iteration at the final size.

    Example:
        >>> import torch
        >>> X = torch.randn(5000, 3)
        >>> gmm = GaussianMixture(4, init="split", max_iter=20).fit(X)
        >>> bool(torch.allclose(gmm.predict_proba(X[:10]).sum(1), torch.ones(10)))
        True
    """

    def __init__(self, n_components: int = 1, covariance_type: str = "diag", max_iter: int = 100,
                 tol: float = 1e-4, tol_type: str = "relative", init: str = "kmeans++",
                 random_state: int | None = None, var_floor: float = 1e-3,
                 min_weight: float = 1e-5, prune: str | None = "split", split_iter: int = 3,
                 kmeans_iter: int = 10, init_samples: int | None = None,
                 weights_init: ArrayLike | None = None, means_init: ArrayLike | None = None,
                 covariances_init: ArrayLike | None = None, chunk_size: int | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
                 verbose: bool = False) -> None:
        if int(n_components) < 1:
            raise VoxaError(f"n_components must be >= 1, got {n_components}")
        if covariance_type not in ("diag", "full"):
            raise VoxaError(f"covariance_type must be 'diag' or 'full', got {covariance_type!r}")
        if init not in ("kmeans++", "split"):
            raise VoxaError(f"init must be 'kmeans++' or 'split', got {init!r}")
        if tol_type not in ("relative", "absolute"):
            raise VoxaError(f"tol_type must be 'relative' or 'absolute', got {tol_type!r}")
        if prune not in ("split", "drop", None):
            raise VoxaError(f"prune must be 'split', 'drop' or None, got {prune!r}")
        if dtype not in (torch.float32, torch.float64):
            raise VoxaError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.n_components = int(n_components)
        self.covariance_type = covariance_type
        self.max_iter = int(max_iter)
        self.tol = float(tol)
        self.tol_type = tol_type
        self.init = init
        self.random_state = random_state
        self.var_floor = float(var_floor)
        self.min_weight = float(min_weight)
        self.prune = prune
        self.split_iter = int(split_iter)
        self.kmeans_iter = int(kmeans_iter)
        self.init_samples = init_samples
        self.weights_init = weights_init
        self.means_init = means_init
        self.covariances_init = covariances_init
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------ helpers
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        keys = ("n_components", "covariance_type", "max_iter", "tol", "tol_type", "init",
                "random_state", "var_floor", "min_weight", "prune", "split_iter", "kmeans_iter",
                "init_samples", "weights_init", "means_init", "covariances_init", "chunk_size",
                "dtype", "device", "verbose")
        return {k: getattr(self, k) for k in keys}

    def _resolve_device(self, X: Any) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        if isinstance(X, torch.Tensor):
            return X.device
        return torch.device("cpu")

    def _chunk(self, K: int, d: int) -> int:
        if self.chunk_size:
            return int(self.chunk_size)
        # phi [chunk, D'] is read sequentially by GEMMs, so it may be 4x wider than [chunk, K].
        width = max(K, phi_dim(d, self.covariance_type) // 4)
        return int(min(65536, max(256, _CHUNK_BUDGET // width)))

    def check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise VoxaError("GaussianMixture is not fitted: call fit() or load() first")

    @property
    def n_features_in_(self) -> int:
        """Feature dimension ``d`` of the fitted model."""
        self.check_fitted()
        return int(self.means_.shape[1])

    def _log(self, msg: str, *args: Any) -> None:
        if self.verbose:
            log.info(msg, *args)

    def _e_pass(self, src: Iterable[torch.Tensor], w: torch.Tensor, mu: torch.Tensor,
                cov: torch.Tensor, stats: bool = True, reduce: bool = True
                ) -> tuple[StatsAccumulator, torch.Tensor]:
        """One pass over the data: returns the (all-reduced) accumulators and the shift used."""
        kind = self.covariance_type
        # Centring on the mixture mean keeps the x^2 - 2 x mu + mu^2 expansion accurate in float32.
        shift = w @ mu
        W = natural_params(w, mu, cov, kind, shift).to(self.dtype)
        c = shift.to(self.dtype)
        acc = StatsAccumulator(mu.shape[0], mu.shape[1], kind, self.dtype, mu.device)
        buf = None  # phi of every chunk in one buffer (fresh pages per chunk cost GEMM speed)
        for x in src:
            if kind == "diag":
                if buf is None or buf.shape[0] < x.shape[0]:
                    buf = torch.empty(x.shape[0], phi_dim(x.shape[1], kind), dtype=self.dtype,
                                      device=x.device)
                f = phi(torch.sub(x, c, out=buf[:x.shape[0], x.shape[1]:2 * x.shape[1]]), kind,
                        out=buf[:x.shape[0]])
            else:
                f = phi(x - c, kind)
            acc.add(f, W, stats=stats)
        if reduce and dist_utils.is_distributed():
            acc.unpack(dist_utils.all_reduce_sum_(acc.packed()))
        return acc, shift

    # ------------------------------------------------------------------ init
    def _global_pass(self, src: _Source, want_sample: int, seed: int
                     ) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Global frame count, mean and covariance (all ranks) and a uniform subsample (local)."""
        kind = self.covariance_type
        total: torch.Tensor | None = None
        keys = xs = None
        offset = 0
        for x in src:
            if not bool(torch.isfinite(x).all()):
                raise VoxaError("frames contain NaN or infinite values")
            f = phi(x.to(torch.float64), kind).sum(0)
            total = f if total is None else total + f
            if want_sample:
                idx = torch.arange(offset, offset + x.shape[0], device=x.device)
                k = torch.cat([keys, _hash_keys(idx, seed)]) if keys is not None \
                    else _hash_keys(idx, seed)
                v = torch.cat([xs, x]) if xs is not None else x
                if k.shape[0] > want_sample:
                    k, order = torch.topk(k, want_sample, largest=False, sorted=False)
                    v = v[order]
                keys, xs = k, v
            offset += x.shape[0]
        if src.d is None:
            raise VoxaError("frames: no data")
        if total is None:
            total = torch.zeros(phi_dim(src.d, kind), dtype=torch.float64, device=src.device)
        dist_utils.all_reduce_sum_(total)
        n = float(total[-1].item())
        if n < 1:
            raise VoxaError("frames: no data")
        mean, cov = m_step_single(total[None], kind, torch.zeros(src.d, dtype=torch.float64,
                                                                 device=total.device))
        sample = None
        if xs is not None:
            sample = xs[torch.argsort(keys)]  # a fixed order, whatever the chunking
        return n, mean[0], cov[0], sample

    def _kmeans_pp(self, sample: torch.Tensor, K: int, seed: int, gcov: torch.Tensor,
                   floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """k-means++ seeding plus Lloyd iterations on ``sample [m, d]`` (CPU, float64)."""
        dev = gcov.device
        X = sample.to("cpu", torch.float64)
        m = X.shape[0]
        g = torch.Generator().manual_seed(seed)
        centers = torch.empty(K, X.shape[1], dtype=torch.float64)
        centers[0] = X[torch.randint(m, (1,), generator=g)]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2: one GEMV per new centre instead of three
        # passes over [m, d] (the seeding was most of a 256-component fit's start-up).
        xx = (X * X).sum(1)
        d2 = (xx - 2.0 * (X @ centers[0]) + centers[0].dot(centers[0])).clamp_(min=0.0)
        for k in range(1, K):  # sequential by construction of k-means++ (K steps, not frames)
            p = d2 if float(d2.sum()) > 0 else torch.ones_like(d2)
            c = X[torch.multinomial(p, 1, generator=g)][0]
            centers[k] = c
            dk = torch.addmv(xx, X, c, alpha=-2.0).add_(c.dot(c)).clamp_(min=0.0)
            torch.minimum(d2, dk, out=d2)
        for _ in range(self.kmeans_iter):
            labels = torch.argmin((centers * centers).sum(1) - 2.0 * X @ centers.T, dim=1)
            sums = torch.zeros_like(centers).index_add_(0, labels, X)
            counts = torch.bincount(labels, minlength=K).to(X)
            centers = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
        labels = torch.argmin((centers * centers).sum(1) - 2.0 * X @ centers.T, dim=1)
        kind = self.covariance_type
        shift = X.mean(0)
        stats = torch.zeros(K, phi_dim(X.shape[1], kind), dtype=torch.float64)
        stats.index_add_(0, labels, phi(X - shift, kind))
        prev_cov = gcov.to("cpu")[None].expand(K, *gcov.shape).clone()
        w, mu, cov = m_step(stats, kind, shift, floor.to("cpu"), prev=(centers, prev_cov))
        # A cluster of one frame has zero spread: give it the global covariance instead.
        n_k = stats[:, -1]
        lone = n_k < 2
        cov = torch.where(lone.view(-1, *([1] * (cov.dim() - 1))),
                          floor_covariances(prev_cov, floor.to("cpu"), kind), cov)
        return w.to(dev), mu.to(dev), cov.to(dev)

    def _split_directions(self, mu: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        """Perturbations ``[k, d]``: 0.2 sigma in every dim (diag) or along the main axis (full)."""
        if self.covariance_type == "diag":
            return _SPLIT_EPS * torch.sqrt(cov)
        lam, V = torch.linalg.eigh(cov)
        return _SPLIT_EPS * torch.sqrt(lam[:, -1:].clamp_min(0)) * V[:, :, -1]

    def _split(self, w: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor, n_new: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split the ``n_new`` heaviest components in two (mixing up)."""
        order = torch.argsort(w, descending=True)[:n_new]
        delta = self._split_directions(mu[order], cov[order])
        mu = mu.clone()
        w = w.clone()
        new_mu = mu[order] - delta
        mu[order] = mu[order] + delta
        w[order] = w[order] / 2
        return (torch.cat([w, w[order]]), torch.cat([mu, new_mu]),
                torch.cat([cov, cov[order]]))

    def _prune(self, w: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Apply the starved-component policy; returns the parameters and how many were starved."""
        starved = w < self.min_weight
        n_bad = int(starved.sum().item())
        if n_bad == 0 or self.prune is None:
            return w, mu, cov, 0
        if n_bad == w.shape[0]:  # nothing to split from: keep them, uniformly weighted
            return torch.full_like(w, 1.0 / w.shape[0]), mu, cov, n_bad
        if self.prune == "drop":
            keep = ~starved
            w = w[keep]
            return w / w.sum(), mu[keep], cov[keep], n_bad
        w, mu, cov = w.clone(), mu.clone(), cov.clone()
        w[starved] = 0.0
        for j in torch.nonzero(starved)[:, 0].tolist():  # few components, not frames
            h = int(torch.argmax(w).item())
            delta = self._split_directions(mu[h:h + 1], cov[h:h + 1])[0]
            mu[j] = mu[h] - delta
            mu[h] = mu[h] + delta
            w[h] = w[h] / 2
            w[j] = w[h]
            cov[j] = cov[h]
        return w / w.sum(), mu, cov, n_bad

    def _em_step(self, src: Iterable[torch.Tensor], w: torch.Tensor, mu: torch.Tensor,
                 cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float, int]:
        acc, shift = self._e_pass(src, w, mu, cov)
        ll = float((acc.loglik / acc.frames).item())
        w, mu, cov = m_step(acc.stats, self.covariance_type, shift, self.var_floor_,
                            prev=(mu, cov))
        w, mu, cov, n_bad = self._prune(w, mu, cov)
        return w, mu, cov, ll, n_bad

    def _initial(self, src: _Source, device: torch.device) -> tuple[torch.Tensor, ...]:
        K, kind = self.n_components, self.covariance_type
        seed = _seed_of(self.random_state)
        explicit = self.means_init is not None
        m = 0
        if self.init == "kmeans++" and not explicit and dist_utils.rank() == 0:
            m = self.init_samples or int(min(max(40 * K, 20_000), 200_000))
        n, gmean, gcov, sample = self._global_pass(src, m, seed)
        if n < K:
            raise VoxaError(f"{int(n)} frames are fewer than n_components={K}")
        d = gmean.shape[0]
        gvar = gcov if kind == "diag" else gcov.diagonal()
        self.var_floor_ = (self.var_floor * gvar).clamp_min(_MIN_FLOOR)
        f64 = {"dtype": torch.float64, "device": device}
        if explicit:
            mu = torch.as_tensor(self.means_init).to(**f64)
            if mu.shape != (K, d):
                raise VoxaError(f"means_init must be [{K}, {d}], got {tuple(mu.shape)}")
            w = (torch.as_tensor(self.weights_init).to(**f64) if self.weights_init is not None
                 else torch.full((K,), 1.0 / K, **f64))
            if self.covariances_init is not None:
                cov = torch.as_tensor(self.covariances_init).to(**f64)
            else:
                cov = gcov[None].expand(K, *gcov.shape).clone()
            want = (K, d) if kind == "diag" else (K, d, d)
            if w.shape != (K,) or cov.shape != want:
                raise VoxaError(f"weights_init must be [{K}] and covariances_init {list(want)}")
            w = w / w.sum()
            cov = floor_covariances(cov, self.var_floor_, kind)
        elif self.init == "kmeans++":
            if dist_utils.rank() == 0:
                if sample is None or sample.shape[0] < K:
                    raise VoxaError(f"fewer frames than n_components={K} on rank 0")
                w, mu, cov = self._kmeans_pp(sample, K, seed, gcov, self.var_floor_)
            else:
                w = torch.empty(K, **f64)
                mu = torch.empty(K, d, **f64)
                cov = torch.empty(K, *gcov.shape, **f64)
        else:
            w = torch.ones(1, **f64)
            mu = gmean[None].clone()
            cov = floor_covariances(gcov[None].clone(), self.var_floor_, kind)
        for t in (w, mu, cov):  # identical start on every rank
            dist_utils.broadcast_(t, src=0)
        w, mu, cov, _ = self._prune(w, mu, cov)
        if self.init == "split" and not explicit:
            k = 1
            while k < K:
                w, mu, cov = self._split(w, mu, cov, min(k, K - k))
                k = w.shape[0]
                for _ in range(self.split_iter):
                    w, mu, cov, ll, _ = self._em_step(src, w, mu, cov)
                self._log("split to %d components: avg log-likelihood %.6f", k, ll)
        return w, mu, cov

    # ------------------------------------------------------------------ fit
    def fit(self, X: FrameSource, y: Any = None) -> GaussianMixture:
        """Estimate the parameters by EM.

        Args:
            X: ``[n, d]`` numpy array or torch tensor; or a re-iterable (e.g. a list) of such
                chunks; or a zero-argument callable returning a fresh iterator of chunks on each
                call (several passes are made, so a one-shot generator is refused).
            y: Ignored (scikit-learn compatibility).

        Returns:
            ``self``.

        Runs with :func:`voxa.utils.threads.auto_threads` torch threads: the cores that other
        processes leave free, unless the user chose a count (``torch.set_num_threads``,
        ``VOXA_NUM_THREADS``), since one thread sharing a busy core stalls the whole team.
        """
        with numeric_threads():
            return self._fit(X)

    def _fit(self, X: FrameSource) -> GaussianMixture:
        device = self._resolve_device(X)
        d_guess = _as_tensor(X).shape[1] if isinstance(X, (np.ndarray, torch.Tensor)) else 64
        src = _Source(X, device, self.dtype, self._chunk(self.n_components, d_guess))
        w, mu, cov = self._initial(src, device)
        self.history_: list[float] = []
        self.converged_ = False
        self.n_iter_ = 0
        prev = None
        for it in range(1, self.max_iter + 1):
            w, mu, cov, ll, n_bad = self._em_step(src, w, mu, cov)
            self.history_.append(ll)
            self.n_iter_ = it
            self._log("EM iteration %d: avg log-likelihood %.6f", it, ll)
            if n_bad:
                self._log("%d starved component(s) %s", n_bad,
                          "dropped" if self.prune == "drop" else "re-seeded")
            elif prev is not None:
                change = abs(ll - prev)
                bound = self.tol * abs(prev) if self.tol_type == "relative" else self.tol
                if change <= bound:
                    self.converged_ = True
                    break
            prev = None if n_bad else ll
        self.weights_, self.means_, self.covariances_ = w, mu, cov
        self.lower_bound_ = self.history_[-1] if self.history_ else float("nan")
        self.device_ = device
        return self

    # ------------------------------------------------------------------ scoring
    def _score_source(self, X: FrameSource) -> tuple[_Source, bool]:
        self.check_fitted()
        dev = self.means_.device
        src = _Source(X, dev, self.dtype, self._chunk(self.weights_.shape[0], self.n_features_in_),
                      multi_pass=False)
        if src.d is not None and src.d != self.n_features_in_:
            raise VoxaError(f"frames have {src.d} dims, the model {self.n_features_in_}")
        return src, isinstance(X, np.ndarray)

    def _out(self, t: torch.Tensor, as_numpy: bool) -> ArrayLike:
        return t.detach().cpu().numpy().astype(np.float64) if as_numpy else t

    @numeric_threads()
    def score_samples(self, X: FrameSource) -> ArrayLike:
        """Per-frame log-likelihood ``log p(x)``.

        Args:
            X: ``[n, d]`` frames (or chunks, see :meth:`fit`).

        Returns:
            ``[n]``: a float64 numpy array for numpy input, else a tensor in ``dtype`` on the
            model's device.
        """
        src, as_np = self._score_source(X)
        kind = self.covariance_type
        shift = self.weights_ @ self.means_
        W = natural_params(self.weights_, self.means_, self.covariances_, kind, shift).to(self.dtype)
        c = shift.to(self.dtype)
        acc = StatsAccumulator(W.shape[0], self.n_features_in_, kind, self.dtype, W.device)
        out = [acc.add(phi(x - c, kind), W, stats=False) for x in src]
        res = torch.cat(out) if out else torch.zeros(0, dtype=self.dtype, device=W.device)
        return self._out(res, as_np)

    def score(self, X: FrameSource, y: Any = None) -> float:
        """Average per-frame log-likelihood (scikit-learn's ``score``)."""
        return self.log_likelihood(X, average=True)

    def log_likelihood(self, X: FrameSource, average: bool = False) -> float:
        """Total log-likelihood ``sum_t log p(x_t)`` (or its mean over frames if ``average``)."""
        s = torch.as_tensor(self.score_samples(X)).to(torch.float64)
        if average:
            return float(s.mean().item()) if s.numel() else float("nan")
        return float(s.sum().item())

    @numeric_threads()
    def predict_proba(self, X: FrameSource) -> ArrayLike:
        """Posterior component probabilities ``[n, K]`` (rows sum to 1)."""
        src, as_np = self._score_source(X)
        kind = self.covariance_type
        shift = self.weights_ @ self.means_
        W = natural_params(self.weights_, self.means_, self.covariances_, kind, shift).to(self.dtype)
        c = shift.to(self.dtype)
        out = []
        for x in src:
            L = phi(x - c, kind) @ W.T
            out.append(torch.softmax(L, dim=1))
        res = torch.cat(out) if out else torch.zeros(0, W.shape[0], dtype=self.dtype)
        return self._out(res, as_np)

    def predict(self, X: FrameSource) -> ArrayLike:
        """Most probable component of each frame ``[n]`` (int64)."""
        return self.predict_proba(X).argmax(1)

    def n_parameters(self) -> int:
        """Free parameters: ``K - 1`` weights, ``K d`` means and the covariances."""
        self.check_fitted()
        K, d = self.means_.shape
        cov = K * d if self.covariance_type == "diag" else K * d * (d + 1) // 2
        return int(K - 1 + K * d + cov)

    def bic(self, X: FrameSource) -> float:
        """Bayesian information criterion ``-2 log L + p log n`` (lower is better)."""
        s = torch.as_tensor(self.score_samples(X)).to(torch.float64)
        return float(-2.0 * s.sum().item() + self.n_parameters() * math.log(s.numel()))

    def aic(self, X: FrameSource) -> float:
        """Akaike information criterion ``-2 log L + 2 p``."""
        s = torch.as_tensor(self.score_samples(X)).to(torch.float64)
        return float(-2.0 * s.sum().item() + 2 * self.n_parameters())

    # ------------------------------------------------------------------ MAP
    @numeric_threads()
    def map_adapt(self, frames: FrameSource, relevance_factor: float = 16.0,
                  adapt: str | Iterable[str] = ("means",)) -> GaussianMixture:
        """MAP-adapt this model (the UBM) to ``frames`` (Reynolds, Quatieri & Dunn, 2000).

        With UBM posteriors ``gamma``, ``n_k = sum_t gamma_tk`` and ``alpha_k = n_k / (n_k + r)``:
        ``mu_k' = alpha_k E_k[x] + (1 - alpha_k) mu_k``;
        ``w_k' ∝ alpha_k n_k / T + (1 - alpha_k) w_k`` (renormalised);
        ``sigma_k'^2 = alpha_k E_k[x^2] + (1 - alpha_k)(sigma_k^2 + mu_k^2) - mu_k'^2``
        (outer products for full covariances), then the variance floor. Components that see no
        data are unchanged.

        Args:
            frames: The speaker's ``[n, d]`` frames (or chunks; one pass).
            relevance_factor: ``r``; 0 gives the ML estimates for components that see data.
            adapt: Which parameters: letters of ``"mwv"`` (e.g. ``"m"``, ``"mw"``, ``"mwv"``) or
                names among ``"means"``, ``"weights"``, ``"variances"``/``"covariances"``.

        Returns:
            A new fitted :class:`GaussianMixture` (the speaker model).
        """
        from voxa.gmm.map import map_estimate, parse_adapt

        which = parse_adapt(adapt)
        src, _ = self._score_source(frames)
        acc, shift = self._e_pass(src, self.weights_, self.means_, self.covariances_,
                                  reduce=False)
        w, mu, cov = map_estimate(acc.stats, shift, self.weights_, self.means_, self.covariances_,
                                  self.covariance_type, self.var_floor_, relevance_factor, which)
        return self._with_params(w, mu, cov)

    def _with_params(self, w: torch.Tensor, mu: torch.Tensor, cov: torch.Tensor
                     ) -> GaussianMixture:
        new = GaussianMixture(**{**self.get_params(), "weights_init": None, "means_init": None,
                                 "covariances_init": None})
        new.weights_, new.means_, new.covariances_ = w, mu, cov
        new.var_floor_ = self.var_floor_.clone()
        new.converged_, new.n_iter_, new.lower_bound_ = True, 0, float("nan")
        new.history_ = []
        new.device_ = mu.device
        return new

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one safetensors file (tensors + JSON header), atomically."""
        from voxa.utils.serialization import save_model

        self.check_fitted()
        cfg = {k: v for k, v in self.get_params().items()
               if k not in ("weights_init", "means_init", "covariances_init", "device")}
        cfg["dtype"] = str(self.dtype).replace("torch.", "")
        header = {"class": _CLASS, "config": cfg,
                  "fitted": {"converged": bool(self.converged_), "n_iter": int(self.n_iter_),
                             "lower_bound": float(self.lower_bound_),
                             "history": [float(h) for h in self.history_]}}
        tensors = {"weights": self.weights_, "means": self.means_,
                   "covariances": self.covariances_, "var_floor": self.var_floor_}
        return save_model(path, tensors, header)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None
             ) -> GaussianMixture:
        """Read a model written by :meth:`save` (onto ``device``, default CPU)."""
        from voxa.utils.serialization import load_model

        tensors, header = load_model(path, expected_class=_CLASS)
        try:
            cfg = dict(header["config"])
            cfg["dtype"] = {"float32": torch.float32, "float64": torch.float64}[cfg["dtype"]]
            gmm = cls(**cfg, device=device)
            dev = torch.device(device) if device is not None else torch.device("cpu")
            w, mu, cov, floor = (tensors[k].to(dev, torch.float64)
                                 for k in ("weights", "means", "covariances", "var_floor"))
            fitted = header.get("fitted", {})
        except (KeyError, TypeError, ValueError) as e:
            raise VoxaError(f"{path}: malformed GaussianMixture file ({e!r})") from e
        gmm.weights_, gmm.means_, gmm.covariances_, gmm.var_floor_ = w, mu, cov, floor
        gmm.converged_ = bool(fitted.get("converged", False))
        gmm.n_iter_ = int(fitted.get("n_iter", 0))
        gmm.lower_bound_ = float(fitted.get("lower_bound", float("nan")))
        gmm.history_ = [float(h) for h in fitted.get("history", [])]
        gmm.device_ = dev
        return gmm

    def __repr__(self) -> str:
        return (f"GaussianMixture(n_components={self.n_components}, "
                f"covariance_type={self.covariance_type!r}, init={self.init!r})")
