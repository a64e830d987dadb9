"""Detection (speaker / language verification) metrics: DET curve, EER, minDCF, actDCF, Cllr.

Conventions follow NIST SRE, Kaldi and BOSARIS: a trial is accepted when its score is at least
the threshold, higher scores are more target-like, and ``labels`` marks target trials (bool or
0/1). Every metric is a fraction (not a percentage). Inputs may be numpy arrays, lists or torch
tensors; all work is vectorised over trials.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxa.errors import VoxaError

_LN2 = math.log(2.0)


def _as_array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_trials(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and flatten a trial list into float64 scores and bool target flags."""
    s = _as_array(scores)
    y = _as_array(labels)
    if s.shape != y.shape:
        raise VoxaError(f"scores have shape {s.shape} but labels have shape {y.shape}")
    if s.dtype.kind not in "biuf":
        raise VoxaError(f"scores must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(s)):
        raise VoxaError(f"{int(np.sum(~np.isfinite(s)))} scores are NaN or infinite")
    if y.dtype.kind == "b":
        t = y.reshape(-1)
    elif y.dtype.kind in "iuf":
        y = y.reshape(-1)
        if not np.all((y == 0) | (y == 1)):
            raise VoxaError("labels must be bool or 0/1 target indicators")
        t = y == 1
    else:
        raise VoxaError(f"labels must be bool or 0/1, got dtype {y.dtype}")
    n_tar = int(t.sum())
    if n_tar == 0:
        raise VoxaError("there are no target trials (labels are all 0/False)")
    if n_tar == t.size:
        raise VoxaError("there are no non-target trials (labels are all 1/True)")
    return s, t


def _check_costs(p_target: float, c_miss: float, c_fa: float) -> None:
    if not 0.0 < p_target < 1.0:
        raise VoxaError(f"p_target must be in (0, 1), got {p_target}")
    if not (c_miss > 0 and c_fa > 0):
        raise VoxaError(f"c_miss and c_fa must be positive, got {c_miss} and {c_fa}")


def _det(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DET points of validated trials (see :func:`det_curve`)."""
    order = np.argsort(s, kind="stable")
    s_sorted, t_sorted = s[order], t[order]
    # one operating point per distinct score, so that tied trials move together
    thresholds, first = np.unique(s_sorted, return_index=True)
    tar_below = np.concatenate([[0], np.cumsum(t_sorted)])[first]
    non_below = first - tar_below
    n_tar = int(t.sum())
    n_non = t.size - n_tar
    p_miss = np.append(tar_below / n_tar, 1.0)
    p_fa = np.append((n_non - non_below) / n_non, 0.0)
    return p_miss, p_fa, np.append(thresholds, np.inf)


def det_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold.

    A trial is accepted when ``score >= threshold``. Trials with equal scores are grouped, so
    each point is a realisable operating point. The curve runs from accept-all
    (``p_miss = 0, p_fa = 1``, at the lowest score) to reject-all (``p_miss = 1, p_fa = 0``, at
    threshold ``+inf``).

    Args:
        scores: ``[n]`` trial scores, higher = more target-like.
        labels: ``[n]`` bool or 0/1, true for target trials.

    Returns:
        ``(p_miss, p_fa, thresholds)``, each ``[m + 1]`` for ``m`` distinct scores; thresholds
        ascending, so ``p_miss`` is non-decreasing and ``p_fa`` non-increasing.

    Example:
        >>> p_miss, p_fa, thr = det_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        >>> p_miss.tolist(), p_fa.tolist()
        ([0.0, 0.0, 0.5, 0.5, 1.0], [1.0, 0.5, 0.5, 0.0, 0.0])
    """
    return _det(*_check_trials(scores, labels))


def _eer_point(p_miss: np.ndarray, p_fa: np.ndarray, thr: np.ndarray) -> tuple[float, float]:
    """Interpolated crossing of the DET curve with ``p_miss == p_fa`` and its threshold."""
    diff = p_miss - p_fa
    # diff < 0 at accept-all and > 0 at reject-all, so a crossing exists with i >= 1
    i = int(np.argmax(diff >= 0))
    a = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = p_miss[i - 1] + a * (p_miss[i] - p_miss[i - 1])
    lo, hi = thr[i - 1], thr[i]
    threshold = lo + a * (hi - lo) if np.isfinite(hi) else lo
    return float(eer), float(threshold)


def eer(scores: Any, labels: Any) -> float:
    """Equal error rate, as the interpolated crossing of the DET curve with ``p_miss == p_fa``.

    The DET points of :func:`det_curve` are joined by straight segments (the ROC of randomly
    interpolating between neighbouring thresholds) and the EER is where that line crosses the
    diagonal. This matches the common ``brentq(interp1d(fpr, tpr))`` recipe. It is never below
    the ROC convex-hull EER of BOSARIS/pyllr (the hull lies under the curve), and it agrees with
    that and with closest-point conventions (Kaldi's ``compute-eer``) to within one trial step.

    Args:
        scores: ``[n]`` trial scores, higher = more target-like.
        labels: ``[n]`` bool or 0/1, true for target trials.

    Returns:
        EER as a fraction in ``[0, 1]``: 0 for perfect separation, 1 for perfectly reversed.

    Example:
        >>> eer([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        0.5
    """
    return _eer_point(*det_curve(scores, labels))[0]


def eer_threshold(scores: Any, labels: Any) -> float:
    """Score threshold at the EER operating point (accept when ``score >= threshold``).

    Interpolated linearly between the two distinct scores bracketing the crossing, in the same
    proportion as the EER itself; see :func:`eer`.

    Args:
        scores: ``[n]`` trial scores.
        labels: ``[n]`` bool or 0/1 target flags.

    Returns:
        The threshold, in score units.

    Example:
        >>> eer_threshold([0.0, 1.0, 2.0, 3.0], [0, 0, 1, 1])
        2.0
    """
    return _eer_point(*det_curve(scores, labels))[1]


def _dcf_norm(p_target: float, c_miss: float, c_fa: float) -> float:
    # cost of the better of the two trivial systems (accept all / reject all)
    return min(c_miss * p_target, c_fa * (1.0 - p_target))


def _min_dcf(p_miss: np.ndarray, p_fa: np.ndarray, p_target: float, c_miss: float, c_fa: float,
             normalize: bool) -> float:
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    best = float(np.min(dcf))
    return best / _dcf_norm(p_target, c_miss, c_fa) if normalize else best


def min_dcf(scores: Any, labels: Any, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0, normalize: bool = True) -> float:
    """Minimum detection cost over all thresholds (NIST SRE, Kaldi ``compute_min_dcf.py``).

    ``DCF = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa``, normalised by
    ``min(c_miss * p_target, c_fa * (1 - p_target))`` so that 1 is the cost of a system that
    always gives the same decision.

    Args:
        scores: ``[n]`` trial scores.
        labels: ``[n]`` bool or 0/1 target flags.
        p_target: Prior probability of a target trial, in ``(0, 1)``.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.
        normalize: Divide by the cost of the best trivial system.

    Returns:
        The (normalised) minimum DCF; at most 1 when normalised.

    Example:
        >>> min_dcf([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1], p_target=0.05)
        0.0
    """
    _check_costs(p_target, c_miss, c_fa)
    p_miss, p_fa, _ = det_curve(scores, labels)
    return _min_dcf(p_miss, p_fa, p_target, c_miss, c_fa, normalize)


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Bayes decision threshold on log-likelihood ratios: ``-log(p c_miss / ((1 - p) c_fa))``.

    Example:
        >>> bayes_threshold(0.5), round(bayes_threshold(0.01), 4)
        (0.0, 4.5951)
    """
    _check_costs(p_target, c_miss, c_fa)
    return math.log((1.0 - p_target) * c_fa / (p_target * c_miss))


def _act_dcf(s: np.ndarray, t: np.ndarray, p_target: float, c_miss: float, c_fa: float,
             normalize: bool) -> float:
    thr = bayes_threshold(p_target, c_miss, c_fa)
    p_miss = float(np.mean(s[t] < thr))
    p_fa = float(np.mean(s[~t] >= thr))
    dcf = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return dcf / _dcf_norm(p_target, c_miss, c_fa) if normalize else dcf


def act_dcf(scores: Any, labels: Any, p_target: float = 0.01, c_miss: float = 1.0,
            c_fa: float = 1.0, normalize: bool = True) -> float:
    """Actual detection cost when the scores are used as natural-log likelihood ratios.

    Trials are accepted when ``score >= bayes_threshold(p_target, c_miss, c_fa)``; the cost is
    normalised as in :func:`min_dcf`, so ``act_dcf >= min_dcf`` and the gap measures
    miscalibration.

    Args:
        scores: ``[n]`` log-likelihood-ratio scores.
        labels: ``[n]`` bool or 0/1 target flags.
        p_target: Prior probability of a target trial, in ``(0, 1)``.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.
        normalize: Divide by the cost of the best trivial system.

    Returns:
        The (normalised) actual DCF; may exceed 1 for badly calibrated scores.

    Example:
        >>> act_dcf([-3.0, -2.0, 2.0, 3.0], [0, 0, 1, 1], p_target=0.5)
        0.0
    """
    _check_costs(p_target, c_miss, c_fa)
    s, t = _check_trials(scores, labels)
    return _act_dcf(s, t, p_target, c_miss, c_fa, normalize)


def _cllr(s: np.ndarray, t: np.ndarray) -> float:
    # log(1 + exp(x)) without overflow: logaddexp(0, x)
    c_tar = np.mean(np.logaddexp(0.0, -s[t]))
    c_non = np.mean(np.logaddexp(0.0, s[~t]))
    return float(0.5 * (c_tar + c_non) / _LN2)


def cllr(scores: Any, labels: Any) -> float:
    """Log-likelihood-ratio cost (Brümmer), in bits.

    ``Cllr = (mean(log2(1 + exp(-llr_tar))) + mean(log2(1 + exp(llr_non)))) / 2``. A system
    that always outputs 0 (no information) scores exactly 1; a perfect one scores 0.

    Args:
        scores: ``[n]`` natural-log likelihood-ratio scores.
        labels: ``[n]`` bool or 0/1 target flags.

    Returns:
        Cllr in bits (non-negative, unbounded above for confidently wrong scores).

    Example:
        >>> cllr([0.0, 0.0], [0, 1])
        1.0
    """
    return _cllr(*_check_trials(scores, labels))


def min_cllr(scores: Any, labels: Any) -> float:
    """Cllr after optimal monotonic calibration (pool-adjacent-violators), in bits.

    The scores are mapped by isotonic regression to target posteriors, which are turned into
    LLRs by removing the empirical prior log-odds; tied scores share one value. ``cllr - min_cllr``
    is the calibration loss.

    Args:
        scores: ``[n]`` trial scores (any monotonic scale).
        labels: ``[n]`` bool or 0/1 target flags.

    Returns:
        Minimum Cllr in bits, in ``[0, 1]``.

    Example:
        >>> min_cllr([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1])
        0.0
    """
    from sklearn.isotonic import IsotonicRegression

    s, t = _check_trials(scores, labels)
    post = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(s, t.astype(np.float64))
    prior_log_odds = math.log(t.sum() / (t.size - t.sum()))
    # PAV never gives a target posterior 0 nor a non-target posterior 1, so the infinities
    # below land only where they cost nothing (log(1 + exp(-inf)) = 0)
    with np.errstate(divide="ignore"):
        llr = np.log(post) - np.log1p(-post) - prior_log_odds
    return _cllr(llr, t)


def detection_metrics(scores: Any, labels: Any, p_targets: Sequence[float] = (0.01, 0.05),
                      c_miss: float = 1.0, c_fa: float = 1.0) -> dict[str, float | int]:
    """All the usual verification metrics at once, sharing one sort of the scores.

    Args:
        scores: ``[n]`` trial scores (LLRs for the ``act_dcf``/``cllr`` entries to be meaningful).
        labels: ``[n]`` bool or 0/1 target flags.
        p_targets: Target priors for minDCF and actDCF; the first is also reported as ``min_dcf``.
        c_miss: Cost of a miss.
        c_fa: Cost of a false alarm.

    Returns:
        ``{"eer", "eer_threshold", "min_dcf", "min_dcf_<p>", "act_dcf_<p>" for each p,
        "cllr", "n_target", "n_nontarget"}`` with ``<p>`` formatted by ``{p:g}`` (``0.01``).

    Example:
        >>> m = detection_metrics([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1])
        >>> m["eer"], m["min_dcf_0.01"], m["n_target"]
        (0.0, 0.0, 2)
    """
    if len(p_targets) == 0:
        raise VoxaError("p_targets is empty")
    for p in p_targets:
        _check_costs(p, c_miss, c_fa)
    s, t = _check_trials(scores, labels)
    p_miss, p_fa, thr = _det(s, t)
    e, e_thr = _eer_point(p_miss, p_fa, thr)
    out: dict[str, float | int] = {"eer": e, "eer_threshold": e_thr}
    for p in p_targets:
        out[f"min_dcf_{p:g}"] = _min_dcf(p_miss, p_fa, p, c_miss, c_fa, True)
        out[f"act_dcf_{p:g}"] = _act_dcf(s, t, p, c_miss, c_fa, True)
    out["min_dcf"] = out[f"min_dcf_{p_targets[0]:g}"]
    out["cllr"] = _cllr(s, t)
    out["n_target"] = int(t.sum())
    out["n_nontarget"] = int(t.size - t.sum())
    return out


_DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)


def plot_det(curves: Mapping[str, tuple[Any, Any]] | tuple[Any, Any], path: str | os.PathLike,
             title: str = "") -> Path:
    """Draw DET curves on normal-deviate (probit) axes and save them as a PNG.

    Args:
        curves: ``{name: (scores, labels)}``, or a single ``(scores, labels)`` pair.
        path: Output PNG path (written atomically).
        title: Figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> plot_det({"x-vector": (scores, labels)}, "det.png")  # doctest: +SKIP
    """
    from scipy.stats import norm

    from voxa.plots import plt, save_figure

    if not isinstance(curves, Mapping):
        if not (isinstance(curves, Sequence) and len(curves) == 2):
            raise VoxaError("curves must be {name: (scores, labels)} or one (scores, labels) pair")
        curves = {"system": curves}
    if not curves:
        raise VoxaError("no curves to plot")

    lo, hi = 0.0005, 0.5
    # probit of 0 or 1 is infinite; pin such points just outside the visible range
    clip = (lo / 2, 1 - lo / 2)

    def probit(p: np.ndarray | float) -> np.ndarray:
        return norm.ppf(np.clip(p, *clip))

    fig, ax = plt.subplots(figsize=(6, 6))
    for name, pair in curves.items():
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise VoxaError(f"curve {name!r} must be a (scores, labels) pair")
        p_miss, p_fa, thr = det_curve(*pair)
        e, _ = _eer_point(p_miss, p_fa, thr)
        (line,) = ax.plot(probit(p_fa), probit(p_miss), lw=1.5, label=f"{name} (EER {100 * e:.2f}%)")
        ax.plot(probit(e), probit(e), "o", color=line.get_color(), ms=6)
    ticks = norm.ppf(_DET_TICKS)
    tick_labels = [f"{100 * p:g}" for p in _DET_TICKS]
    ax.plot([norm.ppf(lo), norm.ppf(hi)], [norm.ppf(lo), norm.ppf(hi)], ":", color="gray", lw=0.8)
    ax.set_xticks(ticks, tick_labels)
    ax.set_yticks(ticks, tick_labels)
    ax.set_xlim(norm.ppf(lo), norm.ppf(hi))
    ax.set_ylim(norm.ppf(lo), norm.ppf(hi))
    ax.set_xlabel("false alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title or "DET curve")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    return save_figure(fig, path)
