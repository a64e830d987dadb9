"""SVMBackend (one-vs-rest SVC) and LogisticBackend: agreement with scikit-learn, accuracy, I/O."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from voxa.backends import LogisticBackend, SVMBackend
from voxa.errors import ConfigError, VoxaError


def _data(n_per=40, seed=0, names=False):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    X = rng.normal(size=(y.size, 4)) + 2.5 * np.eye(4)[y]
    perm = rng.permutation(y.size)
    X, y = X[perm], y[perm]
    return X, (np.array(["en", "fr", "zh"])[y] if names else y)


@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf"])
def test_svm_scores_are_one_vs_rest_svc_decisions(kernel: str) -> None:
    X, y = _data()
    Xt, _ = _data(seed=1)
    svm = SVMBackend(kernel=kernel, C=0.5, coef0=1.0).fit(X, y)
    got = svm.decision_function(Xt)
    assert got.shape == (Xt.shape[0], 3)
    for c in range(3):
        ref = SVC(kernel=kernel, C=0.5, coef0=1.0).fit(X, y == c).decision_function(Xt)
        np.testing.assert_allclose(got[:, c], ref, atol=1e-8)


def test_svm_predicts_held_out_classes_and_string_labels() -> None:
    X, y = _data(names=True)
    Xt, yt = _data(seed=1, names=True)
    svm = SVMBackend(kernel="rbf").fit(X, y)
    assert list(svm.classes_) == ["en", "fr", "zh"]
    pred = svm.predict(Xt)
    assert np.mean(pred == yt) > 0.9
    assert np.array_equal(pred, svm.classes_[svm.decision_function(Xt).argmax(1)])


@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf"])
def test_svm_save_load_gives_identical_decisions(kernel: str, tmp_path) -> None:
    X, y = _data(names=True)
    svm = SVMBackend(kernel=kernel, gamma=0.3, degree=2).fit(X, y)
    back = SVMBackend.load(svm.save(tmp_path / "svm.safetensors"))
    assert back.get_params() == svm.get_params() and back.gamma_ == svm.gamma_
    assert np.array_equal(back.decision_function(X), svm.decision_function(X))
    assert np.array_equal(back.predict(X), svm.predict(X))


def test_logistic_returns_sklearn_log_posteriors() -> None:
    X, y = _data(names=True)
    Xt, _ = _data(seed=2)
    lr = LogisticBackend(C=0.3).fit(X, y)
    lp = lr.predict_log_proba(Xt)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, atol=1e-12)
    ref = LogisticRegression(C=0.3, max_iter=1000).fit(X, np.searchsorted(lr.classes_, y))
    np.testing.assert_allclose(lp, ref.predict_log_proba(Xt), atol=1e-10)
    np.testing.assert_allclose(lr.decision_function(Xt), lp)


def test_logistic_binary_is_stored_as_two_class_softmax(tmp_path) -> None:
    X, y = _data()
    keep = y < 2
    lr = LogisticBackend().fit(X[keep], y[keep])
    assert lr.coef_.shape == (2, 4)
    ref = LogisticRegression(max_iter=1000).fit(X[keep], y[keep])
    np.testing.assert_allclose(lr.predict_log_proba(X), ref.predict_log_proba(X), atol=1e-10)
    back = LogisticBackend.load(lr.save(tmp_path / "lr.safetensors"))
    assert np.array_equal(back.predict_log_proba(X), lr.predict_log_proba(X))


def test_bad_inputs_raise_clear_errors() -> None:
    X, y = _data()
    with pytest.raises(ConfigError, match="kernel"):
        SVMBackend(kernel="sigmoid")
    with pytest.raises(ConfigError, match="C must be a positive"):
        SVMBackend(C=0)
    with pytest.raises(ConfigError, match="class_weight"):
        LogisticBackend(class_weight={0: 2.0})
    with pytest.raises(VoxaError, match="at least 2 classes"):
        SVMBackend().fit(X, np.zeros(len(y), int))
    with pytest.raises(VoxaError, match="not fitted"):
        LogisticBackend().predict(X)
    with pytest.raises(VoxaError, match="fitted on 4"):
        SVMBackend().fit(X, y).decision_function(X[:, :3])
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(VoxaError, match="NaN or infinite"):
        LogisticBackend().fit(bad, y)
