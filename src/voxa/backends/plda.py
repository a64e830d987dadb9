"""Probabilistic LDA: two-covariance and simplified (SPLDA) models, EM training, LLR scoring.

Both models make a speaker's vectors ``x_j = y + e_j`` with a speaker variable
``y ~ N(mu, B)`` shared by the speaker's vectors and independent ``e_j ~ N(0, W)``:

* ``kind="two-covariance"`` (Brummer & de Villiers, Odyssey 2010): ``B`` and ``W`` are full
  covariances; EM re-estimates ``mu``, ``B`` and ``W``.
* ``kind="simplified"`` (Prince & Elder 2007; Kenny 2010; SPLDA in Sizov, Lee & Kinnunen 2014):
  ``x = mu + Phi z + eps`` with ``z ~ N(0, I_r)``, so ``B = Phi Phi^T`` has rank ``r``
  (``n_speaker_factors``) and ``W`` is the full covariance of ``eps``; EM re-estimates ``Phi``
  and ``W`` with ``mu`` fixed at the training mean (its usual estimate).

Verification scores are exact log-likelihood ratios ``log p(E, T | same) - log p(E | .) p(T | .)``
computed in closed form after simultaneous diagonalisation of ``B`` and ``W``, which also
handles a singular ``B``. Multi-utterance enrolment uses the proper sufficient statistics: the
mean of a speaker's ``n`` vectors is distributed ``N(mu, B + W / n)`` and the deviations from
it do not depend on the speaker, so passing the average of the ``n`` vectors together with
``n`` gives the exact LLR of all of them (not the "average and score as one vector"
approximation, which is ``n = 1``).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat(np.arange(100), 5)
    >>> X = 2.0 * rng.normal(size=(100, 4))[spk] + rng.normal(size=(500, 4))
    >>> plda = PLDA().fit(X, spk)
    >>> plda.score(X[:3], X[3:6]).shape
    (3, 3)
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import scipy.linalg

from voxa.backends._common import SavableBackend, as_labels, as_matrix
from voxa.errors import ConfigError, VoxaError

log = logging.getLogger(__name__)

KINDS = ("two-covariance", "simplified")
_LOG_2PI = math.log(2.0 * math.pi)
# Directions in which the initial between-class covariance is (numerically) null get this
# fraction of the average within-class variance: EM cannot grow a direction that starts at
# exactly zero variance, and with fewer classes than dimensions the class means span less
# than the whole space.
_B_INIT_FLOOR = 1e-3


class _Stats:
    """Sufficient statistics of labelled training vectors, centred on their global mean."""

    def __init__(self, X: np.ndarray, codes: np.ndarray, k: int) -> None:
        self.center = X.mean(axis=0)
        Xc = X - self.center
        self.n_vectors, self.dim = X.shape
        self.counts = np.bincount(codes, minlength=k).astype(np.float64)  # [S]
        self.sums = np.zeros((k, self.dim))  # [S, d]
        np.add.at(self.sums, codes, Xc)
        self.means = self.sums / self.counts[:, None]
        self.scatter = Xc.T @ Xc  # sum of x x^T  [d, d]
        self.within = self.scatter - (self.means * self.counts[:, None]).T @ self.means
        # speakers grouped by their number of vectors: posteriors depend on the count only
        self.group_n, self.group_of = np.unique(self.counts, return_inverse=True)
        self.group_size = np.bincount(self.group_of).astype(np.float64)


def _chol(A: np.ndarray, what: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError as e:
        raise VoxaError(f"PLDA: the {what} is not positive definite (too few vectors per class "
                        "for the dimension? reduce it with LDA first)") from e


def _log_likelihood(st: _Stats, mu: np.ndarray, B: np.ndarray, W: np.ndarray) -> float:
    """Average log-likelihood per vector of the training data under the model.

    ``log p(X_s) = log N(mean_s; mu, B + W / n_s) + log p(deviations from mean_s | W)``, the
    second factor being free of ``B``.
    """
    L_w = _chol(W, "within-class covariance")
    logdet_w = 2.0 * np.sum(np.log(np.diag(L_w)))
    n_within = st.n_vectors - st.counts.size
    total = -0.5 * n_within * (st.dim * _LOG_2PI + logdet_w)
    total -= 0.5 * st.dim * np.sum(np.log(st.counts))
    total -= 0.5 * np.trace(scipy.linalg.cho_solve((L_w, True), st.within))
    for g, n in enumerate(st.group_n):
        L = _chol(B + W / n, "speaker-mean covariance")
        dev = st.means[st.group_of == g] - mu
        # through the explicit inverse of the d x d factor: scipy's solve_triangular is orders
        # of magnitude slower on small systems
        z = dev @ np.linalg.inv(L).T
        total -= 0.5 * (dev.shape[0] * (st.dim * _LOG_2PI + 2.0 * np.sum(np.log(np.diag(L))))
                        + np.sum(z * z))
    return float(total / st.n_vectors)


def _em_two_covariance(st: _Stats, mu: np.ndarray, B: np.ndarray, W: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One EM iteration of the two-covariance model; returns the new ``(mu, B, W)``."""
    S, d = st.means.shape
    Ey = np.empty((S, d))
    cov_sum_spk = np.zeros((d, d))  # sum over speakers of Cov[y_s | X_s]
    cov_sum_vec = np.zeros((d, d))  # the same weighted by n_s
    for g, n in enumerate(st.group_n):
        # posterior of y in gain form, which needs no inverse of B (B may be singular)
        gain = scipy.linalg.solve(B + W / n, B, assume_a="pos").T  # B (B + W/n)^-1
        post_cov = B - gain @ B
        post_cov = (post_cov + post_cov.T) / 2
        sel = st.group_of == g
        Ey[sel] = mu + (st.means[sel] - mu) @ gain.T
        cov_sum_spk += st.group_size[g] * post_cov
        cov_sum_vec += st.group_size[g] * n * post_cov
    mu_new = Ey.mean(axis=0)
    B_new = (cov_sum_spk + Ey.T @ Ey) / S - np.outer(mu_new, mu_new)
    cross = st.sums.T @ Ey  # sum_s f_s E[y_s]^T
    W_new = (st.scatter - cross - cross.T + cov_sum_vec + (Ey * st.counts[:, None]).T @ Ey) \
        / st.n_vectors
    return mu_new, (B_new + B_new.T) / 2, (W_new + W_new.T) / 2


def _em_simplified(st: _Stats, Phi: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One EM iteration of SPLDA (mean fixed at zero in centred coordinates): new ``(Phi, W)``."""
    S = st.means.shape[0]
    r = Phi.shape[1]
    L_w = _chol(W, "within-class covariance")
    W_inv_phi = scipy.linalg.cho_solve((L_w, True), Phi)  # W^-1 Phi  [d, r]
    P = Phi.T @ W_inv_phi  # Phi^T W^-1 Phi  [r, r]
    proj = st.sums @ W_inv_phi  # Phi^T W^-1 f_s per speaker  [S, r]
    Ez = np.empty((S, r))
    Rzz = np.zeros((r, r))  # sum_s n_s E[z_s z_s^T]
    for g, n in enumerate(st.group_n):
        post_cov = np.linalg.inv(np.eye(r) + n * P)
        post_cov = (post_cov + post_cov.T) / 2
        sel = st.group_of == g
        Ez[sel] = proj[sel] @ post_cov
        Rzz += st.group_size[g] * n * post_cov
    Rzz += (Ez * st.counts[:, None]).T @ Ez
    Rxz = st.sums.T @ Ez  # sum_s f_s E[z_s]^T  [d, r]
    Phi_new = scipy.linalg.solve(Rzz, Rxz.T, assume_a="pos").T
    W_new = (st.scatter - Phi_new @ Rxz.T) / st.n_vectors
    return Phi_new, (W_new + W_new.T) / 2


class PLDA(SavableBackend):
    """PLDA back-end for fixed-length utterance vectors (i-vectors, x-vectors).

    Train it on length-normalised, optionally LDA-reduced vectors with speaker labels; score
    enrolment against test vectors as log-likelihood ratios.

    Args:
        kind: ``"two-covariance"`` or ``"simplified"`` (see the module docstring).
        n_speaker_factors: Rank ``r`` of the speaker subspace for ``kind="simplified"``
            (default: the full dimension ``d``); must be ``None`` for the two-covariance model.
        max_iter: EM iterations (Kaldi's ``ivector-compute-plda`` runs 10).
        tol: Stop early when an iteration raises the average log-likelihood per training vector
            by less than this many nats (``0`` runs all ``max_iter``).

    Attributes:
        mean_: ``[d]`` model mean ``mu``.
        between_covariance_: ``[d, d]`` ``B``.
        within_covariance_: ``[d, d]`` ``W``.
        loadings_: ``[d, r]`` ``Phi`` (``kind="simplified"`` only).
        history_: Average log-likelihood per training vector at the initial estimate and after
            every EM iteration (non-decreasing, as EM guarantees).
        n_iter_: EM iterations run.
        converged_: Whether ``tol`` stopped EM before ``max_iter``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> spk = np.repeat(np.arange(50), 4)
        >>> X = rng.normal(size=(50, 3))[spk] + 0.5 * rng.normal(size=(200, 3))
        >>> plda = PLDA(kind="simplified", n_speaker_factors=2).fit(X, spk)
        >>> plda.loadings_.shape, plda.score(X[:4], X[4:8]).shape
        ((3, 2), (4, 4))
    """

    _scalars = ("history_", "n_iter_", "converged_")

    def __init__(self, kind: str = "two-covariance", n_speaker_factors: int | None = None,
                 max_iter: int = 10, tol: float = 1e-6) -> None:
        if kind not in KINDS:
            raise ConfigError(f"PLDA: kind must be one of {KINDS}, got {kind!r}")
        if n_speaker_factors is not None:
            if kind != "simplified":
                raise ConfigError("PLDA: n_speaker_factors applies to kind='simplified' only")
            if isinstance(n_speaker_factors, bool) or not isinstance(n_speaker_factors, int) \
                    or n_speaker_factors < 1:
                raise ConfigError(f"PLDA: n_speaker_factors must be a positive int, "
                                  f"got {n_speaker_factors!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
            raise ConfigError(f"PLDA: max_iter must be an int >= 0, got {max_iter!r}")
        if not (isinstance(tol, (int, float)) and tol >= 0):
            raise ConfigError(f"PLDA: tol must be a number >= 0, got {tol!r}")
        self.kind = kind
        self.n_speaker_factors = n_speaker_factors
        self.max_iter = max_iter
        self.tol = tol

    def _array_names(self) -> tuple[str, ...]:
        base = ("mean_", "between_covariance_", "within_covariance_")
        return base + ("loadings_",) if self.kind == "simplified" else base

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any) -> PLDA:
        """Train by EM on ``X [n, d]`` with speaker labels ``y [n]``.

        Needs at least two speakers and, for ``W`` to be estimable, more vectors than speakers
        (speakers with a single vector are used, but inform only ``B + W``).
        """
        X = as_matrix(X)
        d = X.shape[1]
        classes, codes = as_labels(y, X.shape[0])
        st = _Stats(X, codes, classes.size)
        if st.n_vectors == classes.size:
            raise VoxaError("PLDA: every speaker has a single vector; the within-class "
                            "covariance cannot be estimated")
        r = d if self.n_speaker_factors is None else int(self.n_speaker_factors)
        if r > d:
            raise ConfigError(f"PLDA: n_speaker_factors={r} exceeds the dimension {d}")

        # start from the scatter of the class means and the pooled within-class scatter
        W = st.within / st.n_vectors
        dm = st.means - st.means.mean(axis=0)
        evals, U = np.linalg.eigh(dm.T @ dm / classes.size)
        evals = np.maximum(evals, _B_INIT_FLOOR * np.trace(W) / d)
        mu = np.zeros(d)
        if self.kind == "two-covariance":
            B = (U * evals) @ U.T
            mu = st.means.mean(axis=0)
        else:
            Phi = U[:, ::-1][:, :r] * np.sqrt(evals[::-1][:r])
            B = Phi @ Phi.T
        history = [_log_likelihood(st, mu, B, W)]
        converged = False
        it = 0
        for it in range(1, self.max_iter + 1):
            if self.kind == "two-covariance":
                mu, B, W = _em_two_covariance(st, mu, B, W)
            else:
                Phi, W = _em_simplified(st, Phi, W)
                B = Phi @ Phi.T
            history.append(_log_likelihood(st, mu, B, W))
            log.debug("PLDA EM iteration %d: %.6f nats/vector", it, history[-1])
            if self.tol > 0 and history[-1] - history[-2] < self.tol:
                converged = True
                break
        self.mean_ = st.center + mu
        self.between_covariance_ = B
        self.within_covariance_ = W
        if self.kind == "simplified":
            self.loadings_ = Phi
        self.history_ = history
        self.n_iter_ = it
        self.converged_ = converged
        self._after_load()
        return self

    def _after_load(self) -> None:
        # B and W diagonalised together: V^T W V = I, V^T B V = diag(psi)
        psi, V = scipy.linalg.eigh(self.between_covariance_, self.within_covariance_)
        self._psi = np.maximum(psi, 0.0)
        self._V = V

    def log_likelihood(self, X: Any, y: Any) -> float:
        """Average log-likelihood per vector of labelled data ``X [n, d]``, ``y [n]``."""
        self._check_fitted()
        X = as_matrix(X, dim=self.mean_.shape[0])
        classes, codes = as_labels(y, X.shape[0], min_classes=1)
        st = _Stats(X, codes, classes.size)
        return _log_likelihood(st, self.mean_ - st.center, self.between_covariance_,
                               self.within_covariance_)

    # ------------------------------------------------------------------ scoring
    def _counts(self, n: Any, rows: int, name: str) -> np.ndarray:
        if n is None:
            return np.ones(rows)
        c = np.asarray(n, dtype=np.float64).reshape(-1)
        if c.shape[0] != rows:
            raise VoxaError(f"{name}: expected {rows} counts, got {c.shape[0]}")
        if not np.all(np.isfinite(c) & (c >= 1)):
            raise VoxaError(f"{name}: counts must be >= 1")
        return c

    def score(self, enroll: Any, test: Any, n_enroll: Any = None, n_test: Any = None) -> np.ndarray:
        """Verification log-likelihood ratios of every enrolment against every test vector.

        A row of ``enroll`` (or ``test``) may be the mean of several vectors of one speaker;
        give their number in ``n_enroll`` (``n_test``) and the LLR is the exact one of all of
        them (see the module docstring). With the default counts of 1 every row is one vector.

        Args:
            enroll: ``[N, d]`` enrolment vectors or per-model means.
            test: ``[M, d]`` test vectors or means.
            n_enroll: ``[N]`` number of vectors averaged into each enrolment row (default 1).
            n_test: ``[M]`` the same for the test rows.

        Returns:
            ``[N, M]`` natural-log likelihood ratios (same speaker vs different speakers).
        """
        self._check_fitted()
        d = self.mean_.shape[0]
        e = (as_matrix(enroll, "enroll", dim=d) - self.mean_) @ self._V
        t = (as_matrix(test, "test", dim=d) - self.mean_) @ self._V
        ne = self._counts(n_enroll, e.shape[0], "n_enroll")
        nt = self._counts(n_test, t.shape[0], "n_test")
        b = self._psi
        out = np.empty((e.shape[0], t.shape[0]))
        e_groups, e_of = np.unique(ne, return_inverse=True)
        t_groups, t_of = np.unique(nt, return_inverse=True)
        for i, n1 in enumerate(e_groups):
            rows = e_of == i
            a_e = b + 1.0 / n1
            for j, n2 in enumerate(t_groups):
                cols = t_of == j
                # per diagonalised dimension: [e, t] ~ N(0, [[a_e, b], [b, a_t]]) when the same
                # speaker, N(0, diag(a_e, a_t)) otherwise; s_t is the Schur complement of a_e
                a_t = b + 1.0 / n2
                s_t = a_t - b * b / a_e
                c_e = -0.5 * b * b / (a_e * a_e * s_t)
                c_x = b / (a_e * s_t)
                c_t = -0.5 * (1.0 / s_t - 1.0 / a_t)
                const = 0.5 * np.sum(np.log(a_t) - np.log(s_t))
                ee, tt = e[rows], t[cols]
                out[np.ix_(rows, cols)] = ((ee * ee) @ c_e)[:, None] + (ee * c_x) @ tt.T \
                    + ((tt * tt) @ c_t)[None, :] + const
        return out
