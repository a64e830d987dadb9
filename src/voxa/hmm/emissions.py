"""Emission models of HMM states: per-frame log-likelihoods ``[..., S]`` and their M-step.

Each model maps frames ``X [N, D]`` or ``[B, T, D]`` (symbols ``[N]``/``[N, 1]`` or ``[B, T]``/
``[B, T, 1]`` for :class:`CategoricalEmission`) to ``[N, S]`` or ``[B, T, S]`` log-likelihoods in
its ``dtype`` (float32 by default: the HMM recursions accumulate in float64), and re-estimates its
parameters from frames and state posteriors ``gamma [N, S]`` (soft from Baum-Welch, one-hot from
Viterbi training). Parameters are kept in float64.

Example:
    >>> import torch
    >>> em = GaussianEmission(torch.zeros(2, 3), torch.ones(2, 3))
    >>> em.log_likelihood(torch.zeros(4, 5, 3)).shape
    torch.Size([4, 5, 2])
"""

from __future__ import annotations

import math

import torch

from voxa.errors import VoxaError

_F64 = torch.float64
_LOG2PI = math.log(2 * math.pi)
_MIN_POST = 1e-10  # a state (or mixture component) with less occupancy than this keeps its parameters


def _frames(X, D: int | None, what: str = "X") -> tuple[torch.Tensor, tuple[int, ...]]:
    """``X`` as ``[N, D]`` plus the leading shape to restore."""
    X = torch.as_tensor(X)
    if X.dim() not in (2, 3):
        raise VoxaError(f"{what}: expected [N, D] or [B, T, D] frames, got shape {tuple(X.shape)}")
    if D is not None and X.shape[-1] != D:
        raise VoxaError(f"{what}: frames have {X.shape[-1]} dims, the model has {D}")
    return X.reshape(-1, X.shape[-1]), tuple(X.shape[:-1])


def _diag_loglik(X: torch.Tensor, means: torch.Tensor, var: torch.Tensor, dtype: torch.dtype
                 ) -> torch.Tensor:
    """``[N, K]`` log N(x; mu_k, diag(var_k)) as three GEMM terms (centred: accurate in float32)."""
    shift = means.mean(0)
    xc = (X.to(_F64) - shift).to(dtype)
    mc = means - shift
    prec = 1.0 / var
    const = -0.5 * ((mc * mc * prec).sum(1) + var.log().sum(1) + means.shape[1] * _LOG2PI)
    out = torch.addmm(const.to(dtype)[None], xc * xc, (-0.5 * prec).T.to(dtype))
    return out.addmm_(xc, (mc * prec).T.to(dtype))


class GaussianEmission:
    """One Gaussian per state.

    Args:
        means: ``[S, D]``.
        covars: ``[S, D]`` variances (``"diag"``) or ``[S, D, D]`` covariances (``"full"``).
        covariance_type: ``"diag"`` or ``"full"``.
        dtype: Dtype of the log-likelihoods.
    """

    def __init__(self, means, covars, covariance_type: str = "diag", dtype: torch.dtype = torch.float32):
        if covariance_type not in ("diag", "full"):
            raise VoxaError(f"covariance_type must be 'diag' or 'full', got {covariance_type!r}")
        self.means = torch.as_tensor(means, dtype=_F64)
        self.covars = torch.as_tensor(covars, dtype=_F64)
        self.covariance_type, self.dtype = covariance_type, dtype
        S, D = self.means.shape
        want = (S, D) if covariance_type == "diag" else (S, D, D)
        if tuple(self.covars.shape) != want:
            raise VoxaError(f"covars: expected {want} for {covariance_type!r}, got "
                            f"{tuple(self.covars.shape)}")

    @property
    def n_states(self) -> int:
        return int(self.means.shape[0])

    def log_likelihood(self, X) -> torch.Tensor:
        """``[N, S]`` or ``[B, T, S]`` log-likelihoods of ``X [N, D]`` or ``[B, T, D]``."""
        X, lead = _frames(X, self.means.shape[1])
        if self.covariance_type == "diag":
            ll = _diag_loglik(X, self.means, self.covars, self.dtype)
        else:
            try:
                L = torch.linalg.cholesky(self.covars)
            except RuntimeError as e:
                raise VoxaError(f"covars: a covariance is not positive definite ({e})") from e
            # [S, D, N] whitened residuals: one batched triangular solve for all states
            xc = X.to(_F64).T[None] - self.means[:, :, None]
            z = torch.linalg.solve_triangular(L, xc, upper=False)
            logdet = 2 * torch.diagonal(L, dim1=1, dim2=2).log().sum(1)
            ll = (-0.5 * ((z * z).sum(1) + (logdet + self.means.shape[1] * _LOG2PI)[:, None])).T
            ll = ll.to(self.dtype)
        return ll.reshape(*lead, -1)

    def m_step(self, X: torch.Tensor, gamma: torch.Tensor, covars_prior: float = 0.0,
               covars_weight: float = 1.0, update_means: bool = True, update_covars: bool = True) -> None:
        """Re-estimate from frames ``X [N, D]`` and posteriors ``gamma [N, S]`` (hmmlearn's formulas).

        ``covars_prior`` is added to the scatter and the occupancy is raised by
        ``max(covars_weight - 1, 0)`` (diag) or ``max(covars_weight - D, 0)`` (full), as in
        hmmlearn's ``GaussianHMM``; the defaults give maximum likelihood.
        """
        X, g = X.to(_F64), gamma.to(_F64)
        post = g.sum(0)
        obs = g.T @ X
        ok = post > _MIN_POST
        means = self.means
        if update_means:
            means = torch.where(ok[:, None], obs / post.clamp_min(_MIN_POST)[:, None], self.means)
        if update_covars:
            if self.covariance_type == "diag":
                c_n = g.T @ (X * X) - 2 * means * obs + means ** 2 * post[:, None]
                c_d = max(covars_weight - 1, 0) + post[:, None]
                cov = (covars_prior + c_n) / c_d.clamp_min(1e-5)
                cov = torch.where(ok[:, None], cov, self.covars)
            else:
                om = obs[:, :, None] * means[:, None, :]
                c_n = (torch.einsum("ns,ni,nj->sij", g, X, X) - om - om.transpose(1, 2)
                       + means[:, :, None] * means[:, None, :] * post[:, None, None])
                c_d = max(covars_weight - X.shape[1], 0) + post[:, None, None]
                cov = (covars_prior + c_n) / c_d.clamp_min(1e-5)
                cov = torch.where(ok[:, None, None], cov, self.covars)
            self.covars = cov
        self.means = means


class GMMEmission:
    """A mixture of ``M`` diagonal Gaussians per state.

    Args:
        weights: ``[S, M]`` mixture weights (rows sum to 1).
        means: ``[S, M, D]``.
        covars: ``[S, M, D]`` variances.
        dtype: Dtype of the log-likelihoods.
    """

    def __init__(self, weights, means, covars, dtype: torch.dtype = torch.float32):
        self.weights = torch.as_tensor(weights, dtype=_F64)
        self.means = torch.as_tensor(means, dtype=_F64)
        self.covars = torch.as_tensor(covars, dtype=_F64)
        self.dtype = dtype
        S, M, D = self.means.shape
        if tuple(self.weights.shape) != (S, M) or tuple(self.covars.shape) != (S, M, D):
            raise VoxaError(f"GMM emission: weights [S, M] = {(S, M)} and covars [S, M, D] = {(S, M, D)} "
                            f"expected, got {tuple(self.weights.shape)} and {tuple(self.covars.shape)}")

    @property
    def n_states(self) -> int:
        return int(self.means.shape[0])

    def component_log_likelihood(self, X: torch.Tensor) -> torch.Tensor:
        """``[N, S, M]`` ``log w_sm + log N(x; mu_sm, var_sm)`` of ``X [N, D]``."""
        S, M, D = self.means.shape
        ll = _diag_loglik(X, self.means.reshape(S * M, D), self.covars.reshape(S * M, D), self.dtype)
        return ll.reshape(-1, S, M) + self.weights.log().to(self.dtype)

    def log_likelihood(self, X) -> torch.Tensor:
        """``[N, S]`` or ``[B, T, S]`` log-likelihoods of ``X [N, D]`` or ``[B, T, D]``."""
        X, lead = _frames(X, self.means.shape[2])
        return torch.logsumexp(self.component_log_likelihood(X), 2).reshape(*lead, -1)

    def m_step(self, X: torch.Tensor, gamma: torch.Tensor, update_weights: bool = True,
               update_means: bool = True, update_covars: bool = True) -> None:
        """Maximum-likelihood re-estimation from ``X [N, D]`` and state posteriors ``gamma [N, S]``.

        The variances are centred on the new means (exact EM; hmmlearn's ``GMMHMM`` centres on the
        old ones, which differs by ``(mu_new - mu_old)**2``).
        """
        X, g = X.to(_F64), gamma.to(_F64)
        S, M, D = self.means.shape
        r = g[:, :, None] * torch.softmax(self.component_log_likelihood(X).to(_F64), 2)  # [N, S, M]
        pm = r.sum(0)
        ok = pm > _MIN_POST
        rf = r.reshape(-1, S * M)
        if update_weights:
            tot = pm.sum(1, keepdim=True)
            self.weights = torch.where(tot > _MIN_POST, pm / tot.clamp_min(_MIN_POST), self.weights)
        den = pm.clamp_min(_MIN_POST)[..., None]
        means = self.means
        if update_means:
            means = torch.where(ok[..., None], (rf.T @ X).reshape(S, M, D) / den, self.means)
        if update_covars:
            ex2 = (rf.T @ (X * X)).reshape(S, M, D) / den
            ex1 = (rf.T @ X).reshape(S, M, D) / den
            var = ex2 - 2 * means * ex1 + means ** 2
            self.covars = torch.where(ok[..., None], var.clamp_min(1e-10), self.covars)
        self.means = means


class CategoricalEmission:
    """A categorical distribution over ``K`` symbols per state.

    Args:
        emissionprob: ``[S, K]`` probabilities (rows sum to 1).
        dtype: Dtype of the log-likelihoods.
    """

    def __init__(self, emissionprob, dtype: torch.dtype = torch.float32):
        self.emissionprob = torch.as_tensor(emissionprob, dtype=_F64)
        self.dtype = dtype
        if self.emissionprob.dim() != 2:
            raise VoxaError(f"emissionprob: expected [S, K], got {tuple(self.emissionprob.shape)}")

    @property
    def n_states(self) -> int:
        return int(self.emissionprob.shape[0])

    def symbols(self, X) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Flat int64 symbols ``[N]`` of ``X`` and its leading shape."""
        X = torch.as_tensor(X)
        if X.dim() >= 2 and X.shape[-1] == 1:
            X = X[..., 0]
        if X.dim() not in (1, 2):
            raise VoxaError(f"X: expected symbols [N, 1] or [B, T, 1], got shape {tuple(X.shape)}")
        if X.is_floating_point():
            if not bool((X == X.round()).all()):
                raise VoxaError("X: categorical symbols must be integers")
        x = X.reshape(-1).long()
        K = self.emissionprob.shape[1]
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= K):
            raise VoxaError(f"X: symbols must be in 0..{K - 1}, got {int(x.min())}..{int(x.max())}")
        return x, tuple(X.shape)

    def log_likelihood(self, X) -> torch.Tensor:
        """``[N, S]`` or ``[B, T, S]`` log probabilities of the symbols."""
        x, lead = self.symbols(X)
        return self.emissionprob.log().to(self.dtype).T[x].reshape(*lead, -1)

    def m_step(self, X, gamma: torch.Tensor, prior: float = 1.0) -> None:
        """Counts of each symbol under ``gamma [N, S]`` plus ``prior - 1``, normalised (hmmlearn's)."""
        x, _ = self.symbols(X)
        counts = torch.zeros_like(self.emissionprob).index_add_(1, x, gamma.to(_F64).T)
        counts = (counts + (prior - 1.0)).clamp_min(0.0)
        tot = counts.sum(1, keepdim=True)
        self.emissionprob = torch.where(tot > 0, counts / tot.clamp_min(1e-300), self.emissionprob)
