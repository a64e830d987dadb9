"""Score normalisation with impostor cohorts: Z-norm, T-norm, S-norm and adaptive S-norm.

Every function takes a trial score matrix ``scores [N, M]`` (enrolment models by test
utterances) and cohort scores with the side being normalised in rows:

* ``enroll_cohort [N, Ce]``: each enrolment model scored against ``Ce`` cohort (impostor)
  utterances; normalises per model (Z-norm);
* ``test_cohort [M, Ct]``: each test utterance scored against ``Ct`` cohort models;
  normalises per test (T-norm).

For a symmetric scorer (cosine, PLDA) both come from the same cohort set. Standard deviations
are population ones (``ddof=0``).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> s, ce, ct = rng.normal(size=(3, 4)), rng.normal(size=(3, 50)), rng.normal(size=(4, 50))
    >>> bool(np.allclose(as_norm(s, ce, ct, top_n=50), snorm(s, ce, ct)))
    True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voxa.backends._common import as_matrix
from voxa.errors import ConfigError, VoxaError


def _cohort_stats(cohort: np.ndarray, name: str, top_n: int | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-row mean and std ``[rows]`` of the cohort scores (of the ``top_n`` highest only)."""
    if cohort.shape[1] < 2:
        raise VoxaError(f"{name}: need at least 2 cohort scores per row, got {cohort.shape[1]}")
    if top_n is not None and top_n < cohort.shape[1]:
        # the top_n largest per row, unordered: partition is O(C) where a sort is O(C log C)
        cohort = -np.partition(-cohort, top_n - 1, axis=1)[:, :top_n]
    mean, std = cohort.mean(axis=1), cohort.std(axis=1)
    if np.any(std == 0):
        raise VoxaError(f"{name}: row {int(np.argmax(std == 0))} has constant cohort scores "
                        "(zero standard deviation)")
    return mean, std


def _inputs(scores: Any, enroll_cohort: Any | None, test_cohort: Any | None
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    s = as_matrix(scores, "scores")
    ce = ct = None
    if enroll_cohort is not None:
        ce = as_matrix(enroll_cohort, "enroll_cohort")
        if ce.shape[0] != s.shape[0]:
            raise VoxaError(f"enroll_cohort has {ce.shape[0]} rows but scores has {s.shape[0]} "
                            "enrolment rows")
    if test_cohort is not None:
        ct = as_matrix(test_cohort, "test_cohort")
        if ct.shape[0] != s.shape[1]:
            raise VoxaError(f"test_cohort has {ct.shape[0]} rows but scores has {s.shape[1]} "
                            "test columns")
    return s, ce, ct


def znorm(scores: Any, enroll_cohort: Any) -> np.ndarray:
    """Zero normalisation: standardise each model's scores by its impostor-score statistics.

    Args:
        scores: ``[N, M]`` trial scores.
        enroll_cohort: ``[N, Ce]`` each enrolment model's scores against cohort utterances.

    Returns:
        ``[N, M]`` ``(scores - mean_e) / std_e`` with statistics per row of ``enroll_cohort``.
    """
    s, ce, _ = _inputs(scores, enroll_cohort, None)
    mean, std = _cohort_stats(ce, "enroll_cohort")
    return (s - mean[:, None]) / std[:, None]


def tnorm(scores: Any, test_cohort: Any) -> np.ndarray:
    """Test normalisation: standardise each test's scores by its scores against cohort models.

    Args:
        scores: ``[N, M]`` trial scores.
        test_cohort: ``[M, Ct]`` each test utterance's scores against cohort models.

    Returns:
        ``[N, M]`` ``(scores - mean_t) / std_t`` with statistics per row of ``test_cohort``.
    """
    s, _, ct = _inputs(scores, None, test_cohort)
    mean, std = _cohort_stats(ct, "test_cohort")
    return (s - mean[None, :]) / std[None, :]


def snorm(scores: Any, enroll_cohort: Any, test_cohort: Any) -> np.ndarray:
    """Symmetric normalisation: the average of Z-norm and T-norm.

    Args:
        scores: ``[N, M]`` trial scores.
        enroll_cohort: ``[N, Ce]`` enrolment-side cohort scores.
        test_cohort: ``[M, Ct]`` test-side cohort scores.

    Returns:
        ``[N, M]`` ``(znorm + tnorm) / 2``.
    """
    return as_norm(scores, enroll_cohort, test_cohort, top_n=None)


def as_norm(scores: Any, enroll_cohort: Any, test_cohort: Any, top_n: int | None = 200
            ) -> np.ndarray:
    """Adaptive symmetric normalisation (Sturim & Reynolds 2005; Matejka et al. 2017).

    As :func:`snorm`, but each side's mean and standard deviation come from its ``top_n``
    highest cohort scores only, i.e. the impostors closest to that model or test utterance.

    Args:
        scores: ``[N, M]`` trial scores.
        enroll_cohort: ``[N, Ce]`` enrolment-side cohort scores.
        test_cohort: ``[M, Ct]`` test-side cohort scores.
        top_n: Cohort size per side (at least 2); a cohort smaller than ``top_n`` is used
            whole, and ``None`` uses every score (plain S-norm).

    Returns:
        ``[N, M]`` normalised scores.
    """
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer))
                              or top_n < 2):
        raise ConfigError(f"top_n must be an int >= 2 or None, got {top_n!r}")
    s, ce, ct = _inputs(scores, enroll_cohort, test_cohort)
    mean_e, std_e = _cohort_stats(ce, "enroll_cohort", top_n)
    mean_t, std_t = _cohort_stats(ct, "test_cohort", top_n)
    return 0.5 * ((s - mean_e[:, None]) / std_e[:, None] + (s - mean_t[None, :]) / std_t[None, :])
