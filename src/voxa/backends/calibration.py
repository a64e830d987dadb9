"""Score calibration by prior-weighted logistic regression: binary (verification) and
multi-class (language ID).

:class:`LinearCalibration` maps raw detection scores to log-likelihood ratios ``a s + b``
(Brummer's FoCal/BOSARIS recipe); :class:`MultiClassCalibration` maps per-class score vectors
to calibrated log-likelihoods ``a s + b_k`` (FoCal Multiclass).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s = np.concatenate([rng.normal(3.0, 1.0, 500), rng.normal(1.0, 1.0, 500)])
    >>> t = np.arange(1000) < 500
    >>> cal = LinearCalibration().fit(s, t)
    >>> round(cal.scale_, 1), round(cal.offset_, 1)  # the true LLR is 2 s - 4
    (2.1, -4.1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_softmax, logsumexp

from voxa.backends._common import SavableBackend, as_matrix, as_vector
from voxa.errors import ConfigError, VoxaError


def _target_flags(labels: Any, n: int) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n:
        raise VoxaError(f"labels: expected {n} target flags, got {y.shape[0]}")
    if y.dtype.kind == "b":
        t = y
    elif y.dtype.kind in "iuf" and np.all((y == 0) | (y == 1)):
        t = y == 1
    else:
        raise VoxaError("labels must be bool or 0/1 target flags")
    if t.all() or not t.any():
        raise VoxaError("labels: need both target and non-target trials")
    return t


def _minimise(fun: Any, x0: np.ndarray, what: str) -> np.ndarray:
    res = minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-9, "maxiter": 1000})
    if not np.all(np.isfinite(res.x)):
        raise VoxaError(f"{what}: the optimisation diverged (perfectly separated scores?)")
    return res.x


class LinearCalibration(SavableBackend):
    """Affine map of detection scores to log-likelihood ratios, ``llr = a s + b``.

    Fitted by minimising Brummer's prior-weighted logistic loss (the ``Cllr`` at prior
    ``p_target``)::

        p/N_tar sum_tar log(1 + exp(-(a s + b + logit p)))
            + (1-p)/N_non sum_non log(1 + exp(a s + b + logit p))

    so target and non-target trials weigh by the prior, not by their counts, and ``a s + b``
    estimates a likelihood ratio free of the training prior. Perfectly separated training
    scores have no finite optimum (``a`` grows without bound).

    Args:
        p_target: Effective target prior of the objective, in ``(0, 1)``.

    Attributes:
        scale_: ``a``.
        offset_: ``b``.
    """

    _scalars = ("scale_", "offset_")

    def __init__(self, p_target: float = 0.5) -> None:
        if not (isinstance(p_target, (int, float)) and 0.0 < p_target < 1.0):
            raise ConfigError(f"LinearCalibration: p_target must be in (0, 1), got {p_target!r}")
        self.p_target = p_target

    def fit(self, X: Any, y: Any) -> LinearCalibration:
        """Fit on scores ``X [n]`` (or ``[n, 1]``) with target flags ``y [n]`` (bool or 0/1)."""
        s = as_vector(X, "scores")
        t = _target_flags(y, s.shape[0])
        p = float(self.p_target)
        logit_p = math.log(p / (1.0 - p))
        # standardised scores keep the two parameters on comparable scales for BFGS
        m, sd = float(s.mean()), float(s.std())
        z = (s - m) / (sd if sd > 0 else 1.0)
        w = np.where(t, p / t.sum(), (1.0 - p) / (~t).sum())

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            u = theta[0] * z + theta[1] + logit_p
            value = np.sum(w * np.where(t, np.logaddexp(0.0, -u), np.logaddexp(0.0, u)))
            g = w * (expit(u) - t)
            return float(value), np.array([np.sum(g * z), np.sum(g)])

        a, b = _minimise(loss, np.array([1.0, 0.0]), "LinearCalibration")
        scale = a / (sd if sd > 0 else 1.0)
        self.scale_ = float(scale)
        self.offset_ = float(b - scale * m)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Calibrated LLRs ``a s + b`` of scores of any shape (e.g. an ``[N, M]`` trial matrix)."""
        self._check_fitted()
        s = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X, dtype=np.float64)
        if not np.all(np.isfinite(s)):
            raise VoxaError(f"scores: {int(np.sum(~np.isfinite(s)))} values are NaN or infinite")
        return self.scale_ * s + self.offset_


class MultiClassCalibration(SavableBackend):
    """Scale and per-class offset of log-likelihood score vectors, ``a s_k + b_k``.

    Fitted by prior-weighted multinomial logistic regression: maximise
    ``sum_i (pi_{y_i} / N_{y_i}) log softmax(a s_i + b + log pi)_{y_i}``, so every class counts
    by its prior ``pi`` rather than by its number of trials. The output are calibrated
    log-likelihoods up to a per-vector constant (``b`` is centred to zero mean); turn them
    into detection LLRs with :func:`voxa.metrics.scores_to_llr`.

    Args:
        classes: Names of the score columns, so that labels may be names; default: labels are
            column indices ``0..K-1``.
        priors: ``[K]`` class priors of the objective (default flat).

    Attributes:
        classes_: ``[K]`` column labels.
        scale_: ``a``.
        offsets_: ``[K]`` ``b``.
    """

    _arrays = ("classes_", "offsets_")
    _scalars = ("scale_",)

    def __init__(self, classes: Sequence | None = None, priors: Sequence[float] | None = None
                 ) -> None:
        if classes is not None and len(set(classes)) != len(classes):
            raise ConfigError("MultiClassCalibration: classes contains duplicates")
        if priors is not None:
            pr = np.asarray(priors, dtype=np.float64)
            if pr.ndim != 1 or np.any(pr <= 0) or not np.all(np.isfinite(pr)):
                raise ConfigError("MultiClassCalibration: priors must be positive numbers")
        self.classes = None if classes is None else list(classes)
        self.priors = None if priors is None else [float(p) for p in priors]

    def _codes(self, y: Any, n: int, k: int) -> np.ndarray:
        labels = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y).reshape(-1)
        if labels.shape[0] != n:
            raise VoxaError(f"labels: expected {n}, got {labels.shape[0]}")
        lookup = {c: i for i, c in enumerate(self.classes_.tolist())}
        uniq, inverse = np.unique(labels, return_inverse=True)
        uniq_codes = np.array([lookup.get(u, -1) for u in uniq.tolist()], dtype=np.int64)
        if np.any(uniq_codes < 0):
            bad = uniq.tolist()[int(np.argmin(uniq_codes))]
            raise VoxaError(f"labels: {bad!r} is not one of the {k} score columns")
        return uniq_codes[inverse.reshape(-1)]

    def fit(self, X: Any, y: Any) -> MultiClassCalibration:
        """Fit on score vectors ``X [n, K]`` with labels ``y [n]`` (column indices or names)."""
        s = as_matrix(X, "scores")
        n, k = s.shape
        if k < 2:
            raise VoxaError("scores: need at least 2 classes (columns)")
        if self.classes is not None and len(self.classes) != k:
            raise VoxaError(f"scores have {k} columns but {len(self.classes)} classes were given")
        self.classes_ = np.arange(k) if self.classes is None else np.asarray(self.classes)
        codes = self._codes(y, n, k)
        counts = np.bincount(codes, minlength=k)
        if np.any(counts == 0):
            raise VoxaError(f"labels: class {self.classes_[int(np.argmin(counts))]!r} has no trials")
        pi = np.full(k, 1.0 / k) if self.priors is None else np.asarray(self.priors) / sum(self.priors)
        if pi.shape[0] != k:
            raise VoxaError(f"priors has {pi.shape[0]} entries for {k} classes")
        w = (pi / counts)[codes]
        log_pi = np.log(pi)
        sd = float(s.std()) or 1.0
        z = s / sd
        onehot = np.eye(k)[codes]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            u = theta[0] * z + theta[1:] + log_pi
            logp = log_softmax(u, axis=1)
            g = w[:, None] * (np.exp(logp) - onehot)  # d loss / d u
            return float(-np.sum(w * logp[np.arange(n), codes])), \
                np.concatenate([[np.sum(g * z)], g.sum(axis=0)])

        theta = _minimise(loss, np.concatenate([[1.0], np.zeros(k)]), "MultiClassCalibration")
        self.scale_ = float(theta[0] / sd)
        # softmax ignores a common offset; centring fixes it
        self.offsets_ = theta[1:] - theta[1:].mean()
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``[n, K]`` calibrated log-likelihoods ``a s + b`` of score vectors ``X [n, K]``."""
        self._check_fitted()
        return self.scale_ * as_matrix(X, "scores", dim=self.offsets_.shape[0]) + self.offsets_

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``[n, K]`` log-posteriors at the fitted priors."""
        self._check_fitted()
        pi = np.full(self.offsets_.shape[0], 1.0 / self.offsets_.shape[0]) if self.priors is None \
            else np.asarray(self.priors) / sum(self.priors)
        u = self.transform(X) + np.log(pi)
        return u - logsumexp(u, axis=1, keepdims=True)


class MultiClassFusion(SavableBackend):
    """Linear fusion of several systems' class-score matrices: ``sum_s a_s S_s + b``.

    One weight per system and one offset per class (so a handful of parameters, not a classifier
    over the stacked scores), fitted like :class:`MultiClassCalibration` by prior-weighted
    multinomial logistic regression with flat priors: every class counts equally, which is what
    unweighted average recall rewards. Each system's scores are standardised first (their own
    mean and standard deviation over the training trials).

    Args:
        l2: ridge penalty on the weights (keeps them finite when one system separates the data).

    Attributes:
        weights_: ``[S]`` per-system weights (on standardised scores).
        offsets_: ``[K]`` class offsets.
        means_, scales_: ``[S]`` standardisation of each system's scores.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1, 2], 30)
        >>> good = np.eye(3)[y] * 2 + rng.normal(size=(90, 3))
        >>> noise = rng.normal(size=(90, 3))
        >>> f = MultiClassFusion().fit([good, noise], y)
        >>> bool(f.weights_[0] > abs(f.weights_[1]))
        True
    """

    _arrays = ("weights_", "offsets_", "means_", "scales_")
    _scalars = ()

    def __init__(self, l2: float = 1e-3) -> None:
        self.l2 = float(l2)

    def _stack(self, systems: Sequence[Any]) -> np.ndarray:
        mats = [as_matrix(s, f"scores[{i}]") for i, s in enumerate(systems)]
        if not mats or any(m.shape != mats[0].shape for m in mats):
            raise VoxaError("fusion needs one or more score matrices of the same shape [n, K]")
        return np.stack(mats)  # [S, n, K]

    def fit(self, systems: Sequence[Any], y: Any) -> MultiClassFusion:
        """Fit on ``systems`` (a list of ``[n, K]`` score matrices) with labels ``y`` (column indices)."""
        X = self._stack(systems)
        S, n, k = X.shape
        codes = np.asarray(y).reshape(-1).astype(np.int64)
        if codes.shape[0] != n or codes.min() < 0 or codes.max() >= k:
            raise VoxaError(f"labels must be {n} column indices in 0..{k - 1}")
        counts = np.bincount(codes, minlength=k)
        if np.any(counts == 0):
            raise VoxaError(f"labels: class {int(np.argmin(counts))} has no trials")
        self.means_ = X.mean(axis=(1, 2))
        self.scales_ = X.std(axis=(1, 2)) + 1e-12
        Z = (X - self.means_[:, None, None]) / self.scales_[:, None, None]
        w = (1.0 / k / counts)[codes]
        onehot = np.eye(k)[codes]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            a, b = theta[:S], theta[S:]
            u = np.einsum("s,snk->nk", a, Z) + b
            logp = log_softmax(u, axis=1)
            g = w[:, None] * (np.exp(logp) - onehot)
            val = -np.sum(w * logp[np.arange(n), codes]) + self.l2 * np.sum(a * a)
            grad_a = np.einsum("nk,snk->s", g, Z) + 2 * self.l2 * a
            return float(val), np.concatenate([grad_a, g.sum(axis=0)])

        theta = _minimise(loss, np.concatenate([np.ones(S) / S, np.zeros(k)]), "MultiClassFusion")
        self.weights_ = theta[:S]
        self.offsets_ = theta[S:] - theta[S:].mean()
        return self

    def transform(self, systems: Sequence[Any]) -> np.ndarray:
        """``[n, K]`` fused scores (log-likelihoods up to a per-row constant)."""
        self._check_fitted()
        X = self._stack(systems)
        if X.shape[0] != self.weights_.shape[0]:
            raise VoxaError(f"fusion was fitted on {self.weights_.shape[0]} systems, got {X.shape[0]}")
        Z = (X - self.means_[:, None, None]) / self.scales_[:, None, None]
        return np.einsum("s,snk->nk", self.weights_, Z) + self.offsets_

    def predict_log_proba(self, systems: Sequence[Any]) -> np.ndarray:
        """``[n, K]`` log-posteriors under flat priors."""
        return log_softmax(self.transform(systems), axis=1)
