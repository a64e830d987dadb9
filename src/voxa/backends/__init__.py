"""Score back-ends for fixed-length utterance vectors (i-vectors, x-vectors).

Pre-processing (:class:`LengthNorm`, :class:`LDA`, :class:`WCCN`, :class:`NAP`), verification scoring
(:func:`cosine_scores`, :class:`CosineScorer`, :class:`PLDA`), closed-set classifiers
(:class:`SVMBackend`, :class:`LogisticBackend`), score normalisation (:func:`znorm`,
:func:`tnorm`, :func:`snorm`, :func:`as_norm`) and calibration (:class:`LinearCalibration`,
:class:`MultiClassCalibration`). Every class is a scikit-learn style estimator on numpy arrays
and saves to / loads from one safetensors file without pickle. ``BACKENDS`` maps short names to
the classes, for recipes.

Example:
    >>> import numpy as np
    >>> from voxa.backends import BACKENDS, LDA, LengthNorm, PLDA
    >>> rng = np.random.default_rng(0)
    >>> spk = np.repeat(np.arange(40), 6)
    >>> X = rng.normal(size=(40, 10))[spk] + 0.5 * rng.normal(size=(240, 10))
    >>> lda = LDA(n_components=6).fit(X, spk)
    >>> lnorm = LengthNorm().fit(lda.transform(X))
    >>> Z = lnorm.transform(lda.transform(X))
    >>> plda = BACKENDS["plda"]().fit(Z, spk)
    >>> plda.score(Z[:2], Z[2:5]).shape
    (2, 3)
"""

from __future__ import annotations

from voxa.backends.calibration import LinearCalibration, MultiClassCalibration, MultiClassFusion
from voxa.backends.cosine import CosineScorer, cosine_scores
from voxa.backends.logistic import LogisticBackend
from voxa.backends.norm import as_norm, snorm, tnorm, znorm
from voxa.backends.plda import PLDA
from voxa.backends.preprocess import LDA, NAP, WCCN, LengthNorm
from voxa.backends.svm import SVMBackend

BACKENDS: dict[str, type] = {
    "lnorm": LengthNorm,
    "lda": LDA,
    "wccn": WCCN,
    "nap": NAP,
    "plda": PLDA,
    "cosine": CosineScorer,
    "svm": SVMBackend,
    "logreg": LogisticBackend,
    "calibration": LinearCalibration,
    "fusion": MultiClassFusion,
}

__all__ = [
    "BACKENDS", "CosineScorer", "LDA", "LengthNorm", "LinearCalibration", "LogisticBackend",
    "MultiClassCalibration", "MultiClassFusion", "NAP", "PLDA", "SVMBackend", "WCCN", "as_norm",
    "cosine_scores", "snorm", "tnorm", "znorm",
]
