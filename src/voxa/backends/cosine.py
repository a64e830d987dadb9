"""Cosine scoring of enrolment against test vectors, with per-model averaging of enrolments.

Example:
    >>> import numpy as np
    >>> cosine_scores(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[2.0, 0.0]])).round(4)
    array([[1.    ],
           [0.7071]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxa.backends._common import SavableBackend, as_labels, as_matrix
from voxa.errors import VoxaError


def _unit_rows(X: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise VoxaError(f"{name}: row {int(np.argmax(norms[:, 0] == 0))} is a zero vector "
                        "(cosine undefined)")
    return X / norms


def cosine_scores(enroll: Any, test: Any) -> np.ndarray:
    """Cosine similarity of every enrolment vector with every test vector.

    Args:
        enroll: ``[N, d]`` enrolment vectors.
        test: ``[M, d]`` test vectors.

    Returns:
        ``[N, M]`` float64 scores in ``[-1, 1]``.

    Raises:
        VoxaError: On bad shapes, mismatched dimensions, NaN, or an all-zero vector.
    """
    e = as_matrix(enroll, "enroll")
    t = as_matrix(test, "test", dim=e.shape[1])
    return _unit_rows(e, "enroll") @ _unit_rows(t, "test").T


class CosineScorer(SavableBackend):
    """Cosine scoring against models built by averaging each model's enrolment vectors.

    Args:
        length_norm: Scale each enrolment vector to unit length before averaging, so that long
            vectors do not dominate a model (the usual practice); otherwise average raw vectors.

    Attributes:
        classes_: ``[K]`` sorted model ids.
        models_: ``[K, d]`` averaged enrolment vectors, one per model id.

    Example:
        >>> import numpy as np
        >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> s = CosineScorer().fit(X, ["a", "a", "b"]).score(np.array([[1.0, 1.0]]))
        >>> s.round(4)
        array([[ 1.    ],
               [-0.7071]])
    """

    _arrays = ("classes_", "models_")

    def __init__(self, length_norm: bool = True) -> None:
        self.length_norm = length_norm

    def fit(self, X: Any, y: Any) -> CosineScorer:
        """Enrol: average ``X [n, d]`` per model id ``y [n]`` (ints or strings)."""
        X = as_matrix(X)
        self.classes_, codes = as_labels(y, X.shape[0], min_classes=1)
        if self.length_norm:
            X = _unit_rows(X, "X")
        counts = np.bincount(codes, minlength=self.classes_.size).astype(np.float64)
        sums = np.zeros((self.classes_.size, X.shape[1]))
        np.add.at(sums, codes, X)
        self.models_ = sums / counts[:, None]
        return self

    def score(self, test: Any) -> np.ndarray:
        """``[K, M]`` cosine scores of every model (rows, in ``classes_`` order) with every test
        vector ``test [M, d]``."""
        self._check_fitted()
        return cosine_scores(self.models_, test)

    def decision_function(self, X: Any) -> np.ndarray:
        """``[n, K]`` scores in scikit-learn's orientation (the transpose of :meth:`score`)."""
        return self.score(X).T

    def predict(self, X: Any) -> np.ndarray:
        """``[n]`` id of the best-scoring model for each vector."""
        scores = self.decision_function(X)  # before touching classes_, so an unfitted model says so
        return self.classes_[np.argmax(scores, axis=1)]
