"""Language-recognition metrics: Cavg (NIST LRE 2009 / OLR challenge), its minimum over a
global threshold, and the conversion of per-language log-likelihoods into detection LLRs.

A test set of ``n`` trials scored against ``L`` languages is a matrix ``scores [n, L]`` of
detection log-likelihood ratios (higher = more like that column's language) with one true
language per trial. Every trial is a detection trial for every language: a target trial for
its own column and a non-target trial for the ``L - 1`` others. A trial is accepted for a
language when its score is at least the threshold.

Example:
    >>> import numpy as np
    >>> s = np.array([[2.0, -1.0, -3.0], [-1.0, 1.0, -2.0], [-2.0, 0.5, 1.0]])
    >>> cavg(s, [0, 1, 2]), cavg(s, ["en", "fr", "zh"], languages=["en", "fr", "zh"])
    (0.08333333333333333, 0.08333333333333333)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp

from voxa.errors import VoxaError
from voxa.metrics.detection import eer


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _score_matrix(scores: Any, name: str = "scores") -> np.ndarray:
    s = _as_array(scores)
    if s.ndim != 2:
        raise VoxaError(f"{name} must be a 2-D [trials, languages] array, got shape {s.shape}")
    if s.dtype.kind not in "biuf":
        raise VoxaError(f"{name} must be numeric, got dtype {s.dtype}")
    if s.shape[0] == 0:
        raise VoxaError(f"{name} has no trials")
    if s.shape[1] < 2:
        raise VoxaError(f"{name} must have at least 2 language columns, got {s.shape[1]}")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        raise VoxaError(f"{int(np.sum(~np.isfinite(s)))} {name} are NaN or infinite")
    return s


def _inputs(scores: Any, labels: Any, languages: Sequence | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``scores [n, L]`` and column index ``[n]`` of each trial's language."""
    s = _score_matrix(scores)
    n, L = s.shape
    y = _as_array(labels).reshape(-1)
    if y.shape[0] != n:
        raise VoxaError(f"scores have {n} trials but labels has {y.shape[0]}")
    if languages is None:
        if y.dtype.kind not in "iu":
            raise VoxaError("labels are not column indices: pass languages (the names of the "
                            "score columns, in order)")
        codes = y.astype(np.int64)
        if np.any((codes < 0) | (codes >= L)):
            raise VoxaError(f"labels must be column indices in [0, {L}), got {codes.min()}..{codes.max()}")
    else:
        names = _as_array(languages).reshape(-1).tolist()
        if len(names) != L:
            raise VoxaError(f"scores have {L} columns but {len(names)} languages were given")
        if len(set(names)) != L:
            raise VoxaError("languages contains duplicates")
        lookup = {lang: i for i, lang in enumerate(names)}
        uniq, inverse = np.unique(y, return_inverse=True)
        uniq_codes = np.array([lookup.get(u, -1) for u in uniq.tolist()], dtype=np.int64)
        if np.any(uniq_codes < 0):
            raise VoxaError(f"label {uniq.tolist()[int(np.argmin(uniq_codes))]!r} is not one of "
                            "the languages")
        codes = uniq_codes[inverse.reshape(-1)]
    counts = np.bincount(codes, minlength=L)
    if np.any(counts == 0):
        missing = int(np.argmin(counts))
        name = missing if languages is None else _as_array(languages).reshape(-1).tolist()[missing]
        raise VoxaError(f"language {name!r} has no trials (its miss and false-alarm rates are "
                        "undefined)")
    return s, codes


def _cost_weights(codes: np.ndarray, L: int, p_target: float, c_miss: float, c_fa: float
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Target mask ``[n, L]`` and each score's share of Cavg when it is an error ``[n, L]``.

    A target score (row of language T, column T) costs ``c_miss p / (L n_T)`` when it is a
    miss; a non-target score (row of language N, column T != N) costs
    ``c_fa (1 - p) / (L (L - 1) n_N)`` when it is a false alarm.
    """
    if not 0.0 < p_target < 1.0:
        raise VoxaError(f"p_target must be in (0, 1), got {p_target}")
    if not (c_miss > 0 and c_fa > 0):
        raise VoxaError(f"c_miss and c_fa must be positive, got {c_miss} and {c_fa}")
    n_per = np.bincount(codes, minlength=L).astype(np.float64)[codes]  # trials of each row's language
    target = np.zeros((codes.shape[0], L), dtype=bool)
    target[np.arange(codes.shape[0]), codes] = True
    w_tar = c_miss * p_target / (L * n_per)
    w_non = c_fa * (1.0 - p_target) / (L * (L - 1) * n_per)
    return target, np.where(target, w_tar[:, None], w_non[:, None])


def cavg(scores: Any, labels: Any, languages: Sequence | None = None, p_target: float = 0.5,
         c_miss: float = 1.0, c_fa: float = 1.0, threshold: float = 0.0) -> float:
    """Average detection cost over target languages (NIST LRE 2009, AP-OLR challenges).

    ``Cavg = 1/L sum_T [c_miss p P_miss(T) + sum_{N != T} c_fa (1 - p) / (L - 1) P_fa(T, N)]``,
    where ``P_miss(T)`` is the fraction of trials of language ``T`` whose score for ``T`` is
    below ``threshold`` and ``P_fa(T, N)`` the fraction of trials of language ``N`` whose score
    for ``T`` is at or above it. Rates are per language, so every language counts equally
    however many trials it has.

    Args:
        scores: ``[n, L]`` detection log-likelihood ratios (see :func:`scores_to_llr`).
        labels: ``[n]`` true language of each trial: column indices, or names when
            ``languages`` is given.
        languages: ``L`` names of the score columns, in order.
        p_target: Target prior ``p``, in ``(0, 1)``.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.
        threshold: Decision threshold on the scores (0 is the Bayes threshold for LLRs at
            ``p = 0.5`` and equal costs).

    Returns:
        Cavg (a cost, not a percentage; ``c_miss p`` for a system rejecting everything).

    Raises:
        VoxaError: On bad shapes, non-finite scores, unknown labels or a language without
            trials.

    Example:
        >>> cavg([[1.0, -1.0], [-1.0, 1.0], [0.5, -0.5]], [0, 1, 1])
        0.25
    """
    s, codes = _inputs(scores, labels, languages)
    target, w = _cost_weights(codes, s.shape[1], p_target, c_miss, c_fa)
    errors = np.where(target, s < threshold, s >= threshold)
    return float(np.sum(w[errors]))


def min_cavg(scores: Any, labels: Any, languages: Sequence | None = None, p_target: float = 0.5,
             c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Cavg at the best single global threshold, shared by all languages.

    Every distinct score (and ``+inf``, reject all) is tried as the threshold; Cavg only changes
    at those values. Per-language thresholds could do better; this is the usual "minimum Cavg"
    of LRE/OLR tools, which measures discrimination independently of the offset of the scores.

    Args:
        scores: ``[n, L]`` detection scores.
        labels: ``[n]`` true languages (column indices, or names with ``languages``).
        languages: ``L`` column names.
        p_target: Target prior.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.

    Returns:
        The minimum Cavg, at most :func:`cavg` at any threshold.

    Example:
        >>> min_cavg([[3.0, 2.0], [1.0, 2.5], [4.0, 0.0]], [0, 1, 0])
        0.0
    """
    s, codes = _inputs(scores, labels, languages)
    target, w = _cost_weights(codes, s.shape[1], p_target, c_miss, c_fa)
    flat = s.reshape(-1)
    order = np.argsort(flat, kind="stable")
    s_sorted = flat[order]
    w_tar = np.where(target.reshape(-1), w.reshape(-1), 0.0)[order]
    w_non = np.where(target.reshape(-1), 0.0, w.reshape(-1))[order]
    # threshold at each distinct score: entries before its first occurrence are rejected
    _, first = np.unique(s_sorted, return_index=True)
    cum_tar = np.concatenate([[0.0], np.cumsum(w_tar)])
    cum_non = np.concatenate([[0.0], np.cumsum(w_non)])
    miss = np.append(cum_tar[first], cum_tar[-1])
    fa = np.append(cum_non[-1] - cum_non[first], 0.0)
    return float(np.min(miss + fa))


def scores_to_llr(loglik: Any) -> np.ndarray:
    """Per-language log-likelihoods to detection log-likelihood ratios.

    ``llr[:, T] = loglik[:, T] - log(1 / (L - 1) sum_{N != T} exp(loglik[:, N]))``: the
    non-target hypothesis is "one of the other languages, equally likely". Log-posteriors of a
    classifier trained with a flat prior serve as log-likelihoods (a per-trial constant cancels).

    Args:
        loglik: ``[n, L]`` log-likelihoods (natural log), ``L >= 2``.

    Returns:
        ``[n, L]`` detection LLRs.

    Example:
        >>> scores_to_llr([[0.0, 0.0, 0.0]]).tolist()
        [[0.0, 0.0, 0.0]]
    """
    ll = _score_matrix(loglik, "loglik")
    L = ll.shape[1]
    out = np.empty_like(ll)
    for t in range(L):  # L is the number of languages: a short loop, each step vectorised
        others = np.delete(ll, t, axis=1)
        out[:, t] = ll[:, t] - (logsumexp(others, axis=1) - math.log(L - 1))
    return out


def lid_metrics(scores: Any, labels: Any, languages: Sequence | None = None,
                p_target: float = 0.5, c_miss: float = 1.0, c_fa: float = 1.0
                ) -> dict[str, float]:
    """The usual language-ID summary of a score matrix.

    Args:
        scores: ``[n, L]`` detection log-likelihood ratios.
        labels: ``[n]`` true languages (column indices, or names with ``languages``).
        languages: ``L`` column names.
        p_target: Target prior of Cavg.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.

    Returns:
        ``{"cavg", "min_cavg", "eer", "accuracy"}``: Cavg at threshold 0, minimum Cavg over a
        global threshold, the EER of all ``n L`` scores pooled as detection trials (``n``
        targets, ``n (L - 1)`` non-targets) and closed-set accuracy of the arg-max column.

    Example:
        >>> m = lid_metrics([[1.0, -1.0], [-1.0, 1.0], [0.5, -0.5]], [0, 1, 1])
        >>> m["cavg"], m["accuracy"]
        (0.25, 0.6666666666666666)
    """
    s, codes = _inputs(scores, labels, languages)
    target, _ = _cost_weights(codes, s.shape[1], p_target, c_miss, c_fa)
    return {
        "cavg": cavg(s, codes, None, p_target, c_miss, c_fa),
        "min_cavg": min_cavg(s, codes, None, p_target, c_miss, c_fa),
        "eer": eer(s.reshape(-1), target.reshape(-1)),
        "accuracy": float(np.mean(np.argmax(s, axis=1) == codes)),
    }
