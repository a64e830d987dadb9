"""Closed-set classification metrics: accuracy, confusion matrix, per-class recall and UAR.

Inputs may be numpy arrays, lists or torch tensors of class labels (ints or strings) of equal
length. Everything is vectorised over samples; the only Python loops run over distinct labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxa.errors import VoxaError


def _as_array(x: Any, name: str) -> np.ndarray:
    """A 1-D numpy view of a list, array or (possibly GPU, grad-tracking) tensor."""
    if hasattr(x, "detach"):  # torch without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise VoxaError(f"{name} must be a sequence of labels, got a scalar")
    return arr.reshape(-1)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_array(y_true, "y_true")
    p = _as_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise VoxaError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if t.size == 0:
        raise VoxaError("y_true and y_pred are empty")
    # numpy would silently turn ints into strings when concatenated with strings
    if (t.dtype.kind in "biuf") != (p.dtype.kind in "biuf"):
        raise VoxaError(f"y_true ({t.dtype}) and y_pred ({p.dtype}) mix numeric and text labels")
    return t, p


def _index(y: np.ndarray, lookup: dict) -> np.ndarray:
    """Map each label to its row in ``lookup`` (-1 when absent), looping only over distinct labels."""
    uniq, inverse = np.unique(y, return_inverse=True)
    codes = np.array([lookup.get(u, -1) for u in uniq.tolist()], dtype=np.int64)
    return codes[inverse.reshape(-1)]


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the reference.

    Args:
        y_true: ``[n]`` reference labels.
        y_pred: ``[n]`` predicted labels.

    Returns:
        Accuracy in ``[0, 1]``.

    Example:
        >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
        0.75
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any,
                     labels: Sequence | None = None) -> tuple[np.ndarray, list]:
    """Count matrix of reference (rows) against predicted (columns) labels.

    As in scikit-learn, samples whose reference or prediction is not in ``labels`` are ignored.

    Args:
        y_true: ``[n]`` reference labels (ints or strings).
        y_pred: ``[n]`` predicted labels.
        labels: Row/column order; default: sorted union of the labels seen in either input.

    Returns:
        ``(matrix, labels)``: ``matrix`` is int64 ``[k, k]`` with ``matrix[i, j]`` the number of
        samples of class ``labels[i]`` predicted as ``labels[j]``; ``labels`` is a list of ``k``.

    Example:
        >>> m, labs = confusion_matrix(["a", "b", "b"], ["a", "a", "b"])
        >>> m.tolist(), labs
        ([[1, 0], [1, 1]], ['a', 'b'])
    """
    t, p = _pair(y_true, y_pred)
    if labels is None:
        labs = np.unique(np.concatenate([t, p])).tolist()
    else:
        labs = _as_array(labels, "labels").tolist()
        if not labs:
            raise VoxaError("labels is empty")
        if len(set(labs)) != len(labs):
            raise VoxaError("labels contains duplicates")
    lookup = {lab: i for i, lab in enumerate(labs)}
    ti, pi = _index(t, lookup), _index(p, lookup)
    keep = (ti >= 0) & (pi >= 0)
    k = len(labs)
    flat = np.bincount(ti[keep] * k + pi[keep], minlength=k * k)
    return flat.reshape(k, k).astype(np.int64), labs


def per_class_recall(y_true: Any, y_pred: Any, labels: Sequence | None = None) -> dict:
    """Recall (hit rate) of every class.

    Args:
        y_true: ``[n]`` reference labels.
        y_pred: ``[n]`` predicted labels.
        labels: Classes to report; default: every label seen in either input.

    Returns:
        ``{label: recall}``; ``nan`` for a class with no reference samples.

    Example:
        >>> per_class_recall([0, 0, 1, 1], [0, 1, 1, 1])
        {0: 0.5, 1: 1.0}
    """
    matrix, labs = confusion_matrix(y_true, y_pred, labels)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)
    return {lab: float(r) for lab, r in zip(labs, recall)}


def unweighted_average_recall(y_true: Any, y_pred: Any, labels: Sequence | None = None) -> float:
    """Unweighted average recall (UAR, balanced accuracy): mean recall over classes.

    Classes with no reference samples are left out of the mean, matching scikit-learn's
    ``balanced_accuracy_score``; predictions of such classes still count as errors elsewhere.

    Args:
        y_true: ``[n]`` reference labels.
        y_pred: ``[n]`` predicted labels.
        labels: Classes to average over; default: every label seen in either input.

    Returns:
        UAR in ``[0, 1]``.

    Example:
        >>> unweighted_average_recall([0, 0, 0, 1], [0, 0, 0, 0])
        0.5
    """
    recall = np.array(list(per_class_recall(y_true, y_pred, labels).values()))
    if np.all(np.isnan(recall)):
        raise VoxaError("none of the requested labels occurs in y_true")
    return float(np.nanmean(recall))


uar = unweighted_average_recall


def plot_confusion_matrix(matrix: Any, labels: Sequence, path: str | os.PathLike,
                          normalize: bool = True, title: str = "") -> Path:
    """Draw a confusion matrix as an annotated heat map and save it as a PNG.

    Args:
        matrix: ``[k, k]`` counts, rows = reference, columns = prediction.
        labels: ``k`` class names in row order.
        path: Output PNG path (written atomically).
        normalize: Colour and annotate by row-normalised percentages (per-class recall on the
            diagonal) instead of raw counts; counts are still shown under the percentage.
        title: Figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        >>> m, labs = confusion_matrix([0, 1, 1], [0, 1, 0])
        >>> plot_confusion_matrix(m, labs, "cm.png")  # doctest: +SKIP
    """
    from voxa.plots import plt, save_figure

    counts = np.asarray(matrix.detach().cpu().numpy() if hasattr(matrix, "detach") else matrix)
    labs = [str(lab) for lab in labels]
    k = len(labs)
    if counts.ndim != 2 or counts.shape != (k, k):
        raise VoxaError(f"matrix has shape {counts.shape} but there are {k} labels")
    rows = counts.sum(axis=1, keepdims=True)
    pct = 100.0 * counts / np.maximum(rows, 1)  # empty rows stay 0 instead of nan
    shown = pct if normalize else counts

    size = max(4.0, 0.6 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalize else max(shown.max(), 1))
    fig.colorbar(im, ax=ax, label="% of reference class" if normalize else "count")
    ax.set_xticks(range(k), labs, rotation=45 if max(map(len, labs), default=0) > 3 else 0,
                  ha="right" if max(map(len, labs), default=0) > 3 else "center")
    ax.set_yticks(range(k), labs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title or "confusion matrix")
    if k <= 30:  # beyond that the text is unreadable anyway
        cut = (100 if normalize else max(shown.max(), 1)) / 2
        fontsize = 9 if k <= 10 else 6
        for i in range(k):
            for j in range(k):
                text = f"{pct[i, j]:.1f}%\n({int(counts[i, j])})" if normalize \
                    else f"{int(counts[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                        color="white" if shown[i, j] > cut else "black")
    return save_figure(fig, path)
