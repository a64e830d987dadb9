"""One-vs-rest support vector machine back-end (linear, polynomial or RBF kernel).

Each class gets its own binary :class:`sklearn.svm.SVC` trained against all the others, so
``decision_function`` gives a true one-vs-rest score per class (the classic language-ID SVM
back-end), not scikit-learn's multi-class ``SVC`` vote aggregation.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1, 2], 40)
    >>> X = rng.normal(size=(120, 5)) + 3.0 * np.eye(5)[y]
    >>> svm = SVMBackend(kernel="rbf").fit(X, y)
    >>> svm.decision_function(X).shape, float(np.mean(svm.predict(X) == y)) > 0.9
    ((120, 3), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxa.backends._common import SavableBackend, as_labels, as_matrix, check_positive
from voxa.errors import ConfigError

KERNELS = ("linear", "poly", "rbf")
# Elements of one kernel block [support vectors, test rows] (32 MiB of float64).
_BLOCK = 1 << 22


class SVMBackend(SavableBackend):
    """One-vs-rest SVMs over utterance vectors, scored without keeping the scikit-learn objects.

    After training, only the fitted arrays are kept: per class, its support vectors, their
    signed dual coefficients and the intercept, plus the resolved kernel parameters. The
    decision function ``f_c(x) = sum_i alpha_ci K(sv_ci, x) + b_c`` is evaluated from those
    arrays (it matches ``SVC.decision_function`` to rounding), so :meth:`save` stores them as
    tensors and :meth:`load` needs neither pickle nor a refit.

    Args:
        kernel: ``"linear"`` (``x.y``), ``"poly"`` (``(gamma x.y + coef0)^degree``) or ``"rbf"``
            (``exp(-gamma |x - y|^2)``).
        C: Soft-margin penalty.
        degree: Degree of the polynomial kernel.
        gamma: ``"scale"`` (``1 / (d var(X))``, scikit-learn's default), ``"auto"`` (``1 / d``)
            or a positive number; resolved at fit time into ``gamma_``.
        coef0: Constant of the polynomial kernel.
        class_weight: ``None`` or ``"balanced"`` (re-weights each one-vs-rest problem so the
            single class counts as much as the rest).
        tol: Tolerance of libsvm's stopping criterion.
        max_iter: libsvm iteration limit (``-1``: none).

    Attributes:
        classes_: ``[K]`` sorted class labels.
        support_vectors_: ``[total, d]`` support vectors of all ``K`` machines, class by class.
        dual_coef_: ``[total]`` signed dual coefficients ``alpha``.
        n_support_: ``[K]`` number of support vectors of each machine.
        intercept_: ``[K]`` intercepts.
        gamma_: Resolved kernel ``gamma``.
    """

    _arrays = ("classes_", "support_vectors_", "dual_coef_", "n_support_", "intercept_")
    _scalars = ("gamma_",)

    def __init__(self, kernel: str = "linear", C: float = 1.0, degree: int = 3,
                 gamma: str | float = "scale", coef0: float = 0.0, class_weight: str | None = None,
                 tol: float = 1e-3, max_iter: int = -1) -> None:
        if kernel not in KERNELS:
            raise ConfigError(f"SVMBackend: kernel must be one of {KERNELS}, got {kernel!r}")
        check_positive("SVMBackend: C", C)
        check_positive("SVMBackend: tol", tol)
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise ConfigError(f"SVMBackend: degree must be a positive int, got {degree!r}")
        if gamma not in ("scale", "auto"):
            check_positive("SVMBackend: gamma ('scale', 'auto' or a number)", gamma)
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"SVMBackend: class_weight must be None or 'balanced', "
                              f"got {class_weight!r}")
        self.kernel = kernel
        self.C = C
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.class_weight = class_weight
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any) -> SVMBackend:
        """Train one machine per class on ``X [n, d]`` with labels ``y [n]`` (at least 2 classes)."""
        from sklearn.svm import SVC

        X = as_matrix(X)
        self.classes_, codes = as_labels(y, X.shape[0])
        svs, duals, n_sv, intercepts = [], [], [], []
        gamma = None
        for c in range(self.classes_.size):
            svc = SVC(C=self.C, kernel=self.kernel, degree=self.degree, gamma=self.gamma,
                      coef0=self.coef0, class_weight=self.class_weight, tol=self.tol,
                      max_iter=self.max_iter).fit(X, codes == c)
            # labels are False/True, so positive decisions mean class c
            svs.append(svc.support_vectors_)
            duals.append(svc.dual_coef_[0])
            n_sv.append(svc.support_vectors_.shape[0])
            intercepts.append(float(svc.intercept_[0]))
            gamma = float(svc._gamma)  # "scale"/"auto" resolved; only SVC knows its rule exactly
        self.support_vectors_ = np.concatenate(svs, axis=0)
        self.dual_coef_ = np.concatenate(duals)
        self.n_support_ = np.array(n_sv, dtype=np.int64)
        self.intercept_ = np.array(intercepts)
        self.gamma_ = gamma
        return self

    def _kernel(self, A: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``[len(A), len(X)]`` kernel matrix."""
        dot = A @ X.T
        if self.kernel == "linear":
            return dot
        if self.kernel == "poly":
            return (self.gamma_ * dot + self.coef0) ** self.degree
        sq = (A * A).sum(1)[:, None] + (X * X).sum(1)[None, :] - 2.0 * dot
        return np.exp(-self.gamma_ * np.maximum(sq, 0.0))

    def decision_function(self, X: Any) -> np.ndarray:
        """``[n, K]`` one-vs-rest decision scores (positive: on the class's side of its margin)."""
        self._check_fitted()
        X = as_matrix(X, dim=self.support_vectors_.shape[1])
        K, total = self.classes_.size, self.dual_coef_.shape[0]
        # block-diagonal [K, total] so every machine's sum over its own SVs is one GEMM
        owner = np.repeat(np.arange(K), self.n_support_)
        coef = np.zeros((K, total))
        coef[owner, np.arange(total)] = self.dual_coef_
        out = np.empty((X.shape[0], K))
        step = max(1, _BLOCK // max(total, 1))
        for s in range(0, X.shape[0], step):
            out[s:s + step] = (coef @ self._kernel(self.support_vectors_, X[s:s + step])).T
        return out + self.intercept_

    def predict(self, X: Any) -> np.ndarray:
        """``[n]`` label of the highest-scoring machine."""
        scores = self.decision_function(X)  # before touching classes_, so an unfitted model says so
        return self.classes_[np.argmax(scores, axis=1)]
