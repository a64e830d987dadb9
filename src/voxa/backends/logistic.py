"""Multi-class (multinomial) logistic regression back-end returning log-posteriors.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["en", "fr", "zh"], 30)
    >>> X = rng.normal(size=(90, 4)) + 2.0 * np.eye(4)[np.repeat([0, 1, 2], 30)]
    >>> lp = LogisticBackend().fit(X, y).predict_log_proba(X)
    >>> lp.shape, bool(np.allclose(np.exp(lp).sum(1), 1.0))
    ((90, 3), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from voxa.backends._common import SavableBackend, as_labels, as_matrix, check_positive
from voxa.errors import ConfigError


class LogisticBackend(SavableBackend):
    """L2-regularised multinomial logistic regression (scikit-learn's ``LogisticRegression``,
    lbfgs), kept as its weights only.

    The posteriors are ``softmax(W x + b)``; ``W`` and ``b`` are what :meth:`save` stores. With
    two classes scikit-learn fits a single sigmoid; it is stored as the equivalent two-row
    softmax (first row zero). Subtracting the log of the training class priors from the
    log-posteriors gives log-likelihoods up to a per-vector constant, which is what
    :func:`voxa.metrics.scores_to_llr` needs.

    Args:
        C: Inverse L2 regularisation strength.
        max_iter: lbfgs iteration limit.
        tol: lbfgs tolerance.
        class_weight: ``None`` or ``"balanced"`` (weights inversely proportional to class size,
            i.e. a flat training prior).

    Attributes:
        classes_: ``[K]`` sorted class labels.
        coef_: ``[K, d]`` weights ``W``.
        intercept_: ``[K]`` biases ``b``.
    """

    _arrays = ("classes_", "coef_", "intercept_")

    def __init__(self, C: float = 1.0, max_iter: int = 1000, tol: float = 1e-4,
                 class_weight: str | None = None) -> None:
        check_positive("LogisticBackend: C", C)
        check_positive("LogisticBackend: tol", tol)
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ConfigError(f"LogisticBackend: max_iter must be a positive int, got {max_iter!r}")
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"LogisticBackend: class_weight must be None or 'balanced', "
                              f"got {class_weight!r}")
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight

    def fit(self, X: Any, y: Any) -> LogisticBackend:
        """Train on ``X [n, d]`` with labels ``y [n]`` (at least 2 classes)."""
        from sklearn.linear_model import LogisticRegression

        X = as_matrix(X)
        self.classes_, codes = as_labels(y, X.shape[0])
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol,
                                class_weight=self.class_weight).fit(X, codes)
        coef, intercept = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        self.coef_ = np.asarray(coef, dtype=np.float64)
        self.intercept_ = np.asarray(intercept, dtype=np.float64)
        return self

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``[n, K]`` natural-log posteriors (each row's exponentials sum to 1)."""
        self._check_fitted()
        z = as_matrix(X, dim=self.coef_.shape[1]) @ self.coef_.T + self.intercept_
        return z - logsumexp(z, axis=1, keepdims=True)

    def decision_function(self, X: Any) -> np.ndarray:
        """``[n, K]`` log-posteriors. (scikit-learn's returns the unnormalised ``W x + b``; the
        two differ by a per-row constant, so rankings and LLR conversion are unaffected.)"""
        return self.predict_log_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """``[n]`` most probable label."""
        scores = self.predict_log_proba(X)  # before touching classes_, so an unfitted model says so
        return self.classes_[np.argmax(scores, axis=1)]
