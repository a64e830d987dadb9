"""Joint factor analysis (Kenny et al. 2008) with linear scoring (Glembek et al. 2009).

The supervector of utterance ``u`` of speaker ``s`` is

    M_u = m + o + V y_s + U x_u + D z_s,     y_s ~ N(0, I), x_u ~ N(0, I), z_s ~ N(0, I)

with ``m`` the UBM means, ``o`` a mean offset, ``V [K d, R_v]`` the eigenvoices (speaker factors),
``U [K d, R_u]`` the eigenchannels (channel factors) and ``D`` diagonal (the residual that makes
``D z`` a relevance-MAP-like speaker term). Training is decoupled as in Kenny's "A study of
inter-speaker variability in speaker verification" (2008):

1. ``V`` by EM on speaker-pooled statistics (``U = D = 0``), with minimum divergence;
2. ``U`` by EM on per-utterance statistics after removing each speaker's ``V y_s``;
3. ``D`` by EM on speaker-pooled statistics after removing ``V y_s`` and every ``U x_u``
   (initialised from a relevance factor: ``D^2 = Sigma / r``).

Enrolment estimates ``y``, then the enrolment utterances' ``x``, then ``z`` in the same order and
keeps the speaker offset ``V y + D z``. A test utterance is scored against every model at once
by the linear approximation of the log-likelihood ratio:
``score = (V y + D z)^T Sigma^-1 (F - N (o + U x))`` with ``x`` the test utterance's channel
factors, one matrix product ``[n_models, K d] x [K d, n_test]``.

Only diagonal-covariance UBMs are supported (``D`` is diagonal in the supervector space). Under
``torch.distributed`` every speaker's utterances must live on one rank (statistics are pooled by
speaker locally); the EM accumulators are summed over ranks.

Example:
    >>> jfa = JointFactorAnalysis(speaker_rank=100, channel_rank=50).fit(stats, speakers, ubm)
    ... # doctest: +SKIP
    >>> models = jfa.enroll(enrol_stats, enrol_speakers)  # [n_speakers, K, d]  # doctest: +SKIP
    >>> scores = jfa.score(models, test_stats)  # [n_speakers, n_test]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from voxa.errors import ConfigError, VoxaError
from voxa.gmm import distributed as dist_utils
from voxa.gmm.em import LOG_2PI
from voxa.ivector import factor
from voxa.ivector.stats import BaumWelchStats, as_stats, check_stats, ubm_from_tensors
from voxa.utils.serialization import register

if TYPE_CHECKING:
    from voxa.gmm.mixture import GaussianMixture

_CLASS = "voxa.ivector.JointFactorAnalysis"


@register(_CLASS)
class JointFactorAnalysis:
    """Joint factor analysis with speaker (``V``), channel (``U``) and residual (``D``) terms.

    Args:
        speaker_rank: Columns of ``V``.
        channel_rank: Columns of ``U`` (0: no channel factors).
        n_iter: EM iterations for each of ``V`` and ``U``.
        n_iter_d: EM iterations for ``D`` (0 keeps the relevance-factor initialisation).
        relevance_factor: ``r`` of the initial ``D = sqrt(Sigma / r)``.
        min_divergence: Minimum-divergence re-estimation of ``V`` (rescale and shift) and ``U``
            (rescale only, so channel factors stay zero-mean).
        dtype: Compute dtype (accumulators are float64).
        device: Where the model lives (default: the UBM's device).
        seed: Seed of the random initial ``V`` and ``U``.
        progress: Show tqdm bars.
        batch_size: Recordings per batch (default from the largest rank).

    Attributes:
        V_: ``[K, d, R_v]`` float64. U_: ``[K, d, R_u]``. D_: ``[K, d]``.
        sigma_: ``[K, d]`` UBM variances. mean_: ``[K, d]`` offset from the UBM means.
        ubm_: The UBM.
        history_: ``{"V": [...], "U": [...], "D": [...]}`` average per-frame log-likelihoods of
            each stage's EM iterations (each up to its own constant).
    """

    def __init__(self, speaker_rank: int = 100, channel_rank: int = 50, n_iter: int = 10,
                 n_iter_d: int = 5, relevance_factor: float = 16.0, min_divergence: bool = True,
                 dtype: torch.dtype = torch.float32, device: str | torch.device | None = None,
                 seed: int = 0, progress: bool = True, batch_size: int | None = None) -> None:
        if int(speaker_rank) < 1 or int(channel_rank) < 0:
            raise ConfigError(f"speaker_rank must be >= 1 and channel_rank >= 0, got "
                              f"{speaker_rank}, {channel_rank}")
        if int(n_iter) < 0 or int(n_iter_d) < 0:
            raise ConfigError(f"n_iter and n_iter_d must be >= 0, got {n_iter}, {n_iter_d}")
        if float(relevance_factor) <= 0:
            raise ConfigError(f"relevance_factor must be > 0, got {relevance_factor}")
        if dtype not in (torch.float32, torch.float64):
            raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.speaker_rank = int(speaker_rank)
        self.channel_rank = int(channel_rank)
        self.n_iter = int(n_iter)
        self.n_iter_d = int(n_iter_d)
        self.relevance_factor = float(relevance_factor)
        self.min_divergence = bool(min_divergence)
        self.dtype = dtype
        self.device = device
        self.seed = int(seed)
        self.progress = bool(progress)
        self.batch_size = batch_size

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style)."""
        keys = ("speaker_rank", "channel_rank", "n_iter", "n_iter_d", "relevance_factor",
                "min_divergence", "dtype", "device", "seed", "progress", "batch_size")
        return {k: getattr(self, k) for k in keys}

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "V_"):
            raise VoxaError("JointFactorAnalysis is not fitted: call fit() or load() first")

    def _batch(self) -> int:
        if self.batch_size:
            return int(self.batch_size)
        return factor.default_batch_size(max(self.speaker_rank, self.channel_rank, 1))

    def _stats(self, stats: Any) -> BaumWelchStats:
        s = as_stats(stats)
        K, d = self.sigma_.shape
        check_stats(s, K, d)
        return s.to(self.sigma_.device, self.dtype)

    def _means(self, T: torch.Tensor, s: BaumWelchStats, offset: torch.Tensor | None
               ) -> torch.Tensor:
        """Posterior means ``[n, R]`` of the factors of loading ``T`` for statistics ``s``."""
        if T.shape[2] == 0:
            return s.N.new_zeros(len(s), 0)
        prep = factor.prepare(T, self.sigma_, "diag", offset, self.dtype)
        bs = self._batch()
        return torch.cat([factor.posterior(prep, s.N[i:i + bs], s.F[i:i + bs])[0]
                          for i in range(0, len(s), bs)])

    def _offsets(self, T: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Supervector offsets ``T f`` as ``[n, K, d]`` in the compute dtype."""
        return torch.einsum("kdr,nr->nkd", T.to(self.dtype), f)

    def _z(self, D: torch.Tensor, N: torch.Tensor, Fr: torch.Tensor
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posterior of the diagonal factors: ``(E[z], precision l, b = D Sigma^-1 F)``."""
        Dc, sc = D.to(Fr.dtype), self.sigma_.to(Fr.dtype)
        l = 1.0 + (Dc * Dc / sc) * N[:, :, None]
        b = Dc * Fr / sc
        return b / l, l, b

    # ------------------------------------------------------------------ fit
    def fit(self, stats: Any, speakers: Sequence[Any], ubm: GaussianMixture
            ) -> JointFactorAnalysis:
        """Train ``V``, then ``U``, then ``D``.

        Args:
            stats: Per-utterance :class:`BaumWelchStats` (or an ``(N, F)`` tuple) of the training
                utterances, in memory.
            speakers: ``U`` speaker labels, one per utterance.
            ubm: The diagonal-covariance UBM of the statistics.

        Returns:
            ``self``.
        """
        ubm.check_fitted()
        if ubm.covariance_type != "diag":
            raise ConfigError("JointFactorAnalysis needs a diagonal-covariance UBM")
        dev = torch.device(self.device) if self.device is not None else ubm.means_.device
        f64 = {"dtype": torch.float64, "device": dev}
        K, d = ubm.means_.shape
        self.ubm_ = ubm_from_tensors(ubm.weights_.to(dev), ubm.means_.to(dev),
                                     ubm.covariances_.to(dev), "diag", self.dtype,
                                     getattr(ubm, "var_floor_", None))
        self.sigma_ = ubm.covariances_.to(**f64)
        s = self._stats(stats)
        pooled, _, index = s.pool(speakers)
        index = index.to(dev)
        bs = self._batch()
        hist: dict[str, list[float]] = {"U": []}

        # 1. eigenvoices on speaker-pooled statistics
        V = factor.init_loading(self.sigma_, "diag", self.speaker_rank, self.seed)
        offset = torch.zeros(K, d, **f64)
        V, offset, _, hist["V"] = factor.fit_em(
            factor.StatsSource(pooled, K, d), V, self.sigma_, "diag", offset, self.n_iter,
            self.dtype, bs, min_div=self.min_divergence, shift=True, progress=self.progress,
            desc="JFA V")
        self.V_, self.mean_ = V, offset
        y = self._means(V, pooled, offset)
        F_nospk = s.F - s.N[:, :, None] * self._offsets(V, y)[index]

        # 2. eigenchannels on utterance statistics without the speaker part
        U = factor.init_loading(self.sigma_, "diag", self.channel_rank, self.seed + 1)
        nospk = BaumWelchStats(s.N, F_nospk)
        if self.channel_rank > 0:
            U, _, _, hist["U"] = factor.fit_em(
                factor.StatsSource(nospk, K, d), U, self.sigma_, "diag", offset, self.n_iter,
                self.dtype, bs, min_div=self.min_divergence, shift=False, progress=self.progress,
                desc="JFA U")
        self.U_ = U
        x = self._means(U, nospk, offset)

        # 3. diagonal residual on speaker-pooled statistics without speaker and channel parts
        Fr_utt = F_nospk - s.N[:, :, None] * (self._offsets(U, x) + offset.to(self.dtype))
        Fr = torch.zeros_like(pooled.F).index_add_(0, index, Fr_utt)
        self.D_, hist["D"] = self._fit_d(pooled.N, Fr)
        self.history_ = hist
        return self

    def _fit_d(self, N: torch.Tensor, Fr: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        """EM for ``D`` (elementwise: ``D = sum_s F_s E[z_s] / sum_s N_s E[z_s^2]``)."""
        f64 = torch.float64
        D = torch.sqrt(self.sigma_ / self.relevance_factor)
        hist = []
        frames = N.sum(dtype=f64)
        # Gaussian normalisers of the frames (the rest of the likelihood is up to tr(Sigma^-1 S))
        const = -0.5 * (N.sum(0, dtype=f64) * (LOG_2PI + torch.log(self.sigma_)).sum(1)).sum()
        for _ in tqdm(range(self.n_iter_d), desc="JFA D", unit="it", disable=not self.progress,
                      leave=False):
            z, l, b = self._z(D, N, Fr)
            Ezz = 1.0 / l + z * z
            num = (Fr * z).sum(0, dtype=f64)
            den = (N[:, :, None] * Ezz).sum(0, dtype=f64)
            ll = (0.5 * (b * z - torch.log(l))).sum(dtype=f64) + const
            flat = torch.cat([num.reshape(-1), den.reshape(-1), ll[None], frames[None]])
            dist_utils.all_reduce_sum_(flat)
            n = num.numel()
            num, den = flat[:n].view_as(num), flat[n:2 * n].view_as(den)
            hist.append(float(flat[-2].item()) / max(float(flat[-1].item()), 1e-300))
            D = torch.where(den > 0, num / den.clamp_min(1e-300), D)
        return D, hist

    # ------------------------------------------------------------------ enrolment and scoring
    def enroll(self, stats: Any, speakers: Sequence[Any] | None = None) -> torch.Tensor:
        """Speaker models: the offsets ``V y + D z`` of each enrolled speaker.

        Args:
            stats: Enrolment statistics, one row per utterance.
            speakers: Speaker label of each row (rows of one speaker are pooled for ``y`` and
                ``z``, and each row gets its own channel factors); ``None``: every row is its own
                speaker.

        Returns:
            ``[S, K, d]`` in the compute dtype, one row per distinct label in order of first
            appearance (per row when ``speakers`` is ``None``).
        """
        self._check_fitted()
        s = self._stats(stats)
        labels = list(range(len(s))) if speakers is None else speakers
        pooled, _, index = s.pool(labels)
        index = index.to(s.N.device)
        y = self._means(self.V_, pooled, self.mean_)
        spk = self._offsets(self.V_, y)
        F_nospk = s.F - s.N[:, :, None] * spk[index]
        x = self._means(self.U_, BaumWelchStats(s.N, F_nospk), self.mean_)
        Fr_utt = F_nospk - s.N[:, :, None] * (self._offsets(self.U_, x) + self.mean_.to(self.dtype))
        Fr = torch.zeros_like(pooled.F).index_add_(0, index, Fr_utt)
        z, _, _ = self._z(self.D_, pooled.N, Fr)
        return spk + self.D_.to(self.dtype) * z

    def channel_factors(self, stats: Any) -> torch.Tensor:
        """``[n, R_u]`` channel factors of each utterance (UBM plus offset as the speaker)."""
        self._check_fitted()
        return self._means(self.U_, self._stats(stats), self.mean_)

    def score(self, models: torch.Tensor, test_stats: Any) -> torch.Tensor:
        """Linear scores of every model against every test utterance.

        Args:
            models: ``[S, K, d]`` speaker offsets from :meth:`enroll`.
            test_stats: Test statistics ``(N [n, K], F [n, K, d])``.

        Returns:
            ``[S, n]`` scores ``(V y + D z)^T Sigma^-1 (F - N (o + U x))``.
        """
        self._check_fitted()
        K, d = self.sigma_.shape
        models = torch.as_tensor(models)
        if models.dim() != 3 or tuple(models.shape[1:]) != (K, d):
            raise VoxaError(f"models must be [S, {K}, {d}], got {tuple(models.shape)}")
        s = self._stats(test_stats)
        x = self._means(self.U_, s, self.mean_)
        G = s.F - s.N[:, :, None] * (self._offsets(self.U_, x) + self.mean_.to(self.dtype))
        Ms = (models.to(s.F.device, self.dtype) / self.sigma_.to(self.dtype)).reshape(len(models), -1)
        return Ms @ G.reshape(len(s), -1).T

    # ------------------------------------------------------------------ I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the model and its UBM to one safetensors file."""
        self._check_fitted()
        tensors = {"V": self.V_, "U": self.U_, "D": self.D_, "sigma": self.sigma_, "mean": self.mean_}
        header = {"class": _CLASS, "fitted": {"history": self.history_}}
        return factor.save_factor_model(self, path, tensors, header)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device | None = None
             ) -> JointFactorAnalysis:
        """Read a model written by :meth:`save` (onto ``device``, default CPU)."""
        jfa, t, header = factor.load_factor_model(cls, _CLASS, path, device, covariance_type="diag")
        try:
            jfa.V_, jfa.U_, jfa.D_ = t["V"], t["U"], t["D"]
            jfa.sigma_, jfa.mean_ = t["sigma"], t["mean"]
            jfa.history_ = {k: [float(v) for v in vs]
                            for k, vs in header.get("fitted", {}).get("history", {}).items()}
        except (KeyError, TypeError, AttributeError) as e:
            raise VoxaError(f"{path}: malformed JointFactorAnalysis file ({e!r})") from e
        return jfa

    def __repr__(self) -> str:
        return (f"JointFactorAnalysis(speaker_rank={self.speaker_rank}, "
                f"channel_rank={self.channel_rank})")
