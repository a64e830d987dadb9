"""Classification metrics against scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from voxa.errors import VoxaError
from voxa.metrics import (
    accuracy,
    confusion_matrix,
    per_class_recall,
    plot_confusion_matrix,
    uar,
    unweighted_average_recall,
)


def _random_labels(seed=0, n=500, k=5):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # mostly right, so the matrix is diagonal-heavy and the classes unbalanced in recall
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, n))
    return y_true, y_pred


def test_accuracy_matches_sklearn():
    y_true, y_pred = _random_labels()
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))


def test_confusion_matrix_matches_sklearn_ints():
    y_true, y_pred = _random_labels(seed=1)
    matrix, labels = confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y_true, y_pred))
    assert labels == [0, 1, 2, 3, 4]
    assert matrix.dtype.kind == "i" and matrix.sum() == y_true.size


def test_confusion_matrix_matches_sklearn_strings_with_label_order():
    names = np.array(["neutral", "happy", "sad", "angry"])
    y_true, y_pred = _random_labels(seed=2, k=4)
    t, p = names[y_true].tolist(), names[y_pred].tolist()
    order = ["sad", "angry", "neutral", "happy"]
    matrix, labels = confusion_matrix(t, p, labels=order)
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(t, p, labels=order))
    assert labels == order


def test_confusion_matrix_ignores_labels_outside_the_given_set():
    matrix, _ = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], labels=[0, 2])
    np.testing.assert_array_equal(matrix, [[1, 0], [0, 1]])


def test_per_class_recall_matches_sklearn():
    y_true, y_pred = _random_labels(seed=3)
    ours = per_class_recall(y_true, y_pred)
    ref = skm.recall_score(y_true, y_pred, average=None)
    np.testing.assert_allclose(list(ours.values()), ref)
    assert list(ours) == [0, 1, 2, 3, 4]


def test_uar_matches_balanced_accuracy():
    y_true, y_pred = _random_labels(seed=4)
    assert uar(y_true, y_pred) == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert uar is unweighted_average_recall


def test_uar_ignores_classes_only_predicted():
    y_true = ["a", "a", "b", "b"]
    y_pred = ["a", "c", "b", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the unseen class
        ref = skm.balanced_accuracy_score(y_true, y_pred)
    assert uar(y_true, y_pred) == pytest.approx(ref) == 0.75
    assert np.isnan(per_class_recall(y_true, y_pred)["c"])


def test_uar_differs_from_accuracy_on_imbalanced_data():
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10
    assert accuracy(y_true, y_pred) == pytest.approx(0.9)
    assert uar(y_true, y_pred) == pytest.approx(0.5)


def test_tensor_inputs_match_numpy():
    y_true, y_pred = _random_labels(seed=5)
    m_np, _ = confusion_matrix(y_true, y_pred)
    m_t, labels = confusion_matrix(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    np.testing.assert_array_equal(m_np, m_t)
    assert labels == [0, 1, 2, 3, 4]
    assert uar(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == uar(y_true, y_pred)


@pytest.mark.parametrize("y_true,y_pred,kwargs,match", [
    ([0, 1, 2], [0, 1], {}, "labels but"),
    ([], [], {}, "empty"),
    ([0, 1], ["a", "b"], {}, "mix numeric and text"),
    ([0, 1], [0, 1], {"labels": [0, 0]}, "duplicates"),
])
def test_bad_inputs_raise_voxa_error(y_true, y_pred, kwargs, match):
    with pytest.raises(VoxaError, match=match):
        confusion_matrix(y_true, y_pred, **kwargs)


def test_uar_with_no_reference_classes_raises():
    with pytest.raises(VoxaError, match="none of the requested labels"):
        uar([0, 0], [0, 0], labels=[1])


def test_plot_confusion_matrix_writes_png(tmp_path, png_plot):
    matrix, labels = confusion_matrix(*_random_labels(seed=6))
    out = plot_confusion_matrix(matrix, labels, tmp_path / "cm.png", title="five classes")
    png_plot(out, (636, 547))


def test_plot_confusion_matrix_counts_mode_and_empty_row(tmp_path, png_plot):
    path = tmp_path / "counts.png"
    plot_confusion_matrix(np.array([[3, 1], [0, 0]]), ["yes", "no"], path, normalize=False)
    png_plot(path, (561, 470))


def test_plot_confusion_matrix_rejects_shape_mismatch(tmp_path):
    with pytest.raises(VoxaError, match="shape"):
        plot_confusion_matrix(np.eye(3), ["a", "b"], tmp_path / "x.png")
