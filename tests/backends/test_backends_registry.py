"""The BACKENDS registry and the estimator conventions every back-end follows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from voxa.backends import BACKENDS, LDA, PLDA, WCCN, LengthNorm


def test_registry_names_the_back_ends() -> None:
    assert set(BACKENDS) == {"lnorm", "lda", "wccn", "nap", "plda", "cosine", "svm", "logreg",
                             "calibration", "fusion"}
    for cls in BACKENDS.values():
        assert callable(cls.save) and callable(cls.load)


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_fit_returns_self_and_clone_keeps_params(name: str) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    X = rng.normal(size=(40, 3)) + 2.0 * np.eye(3)[y % 3]
    model = BACKENDS[name](n_components=1) if name == "nap" else BACKENDS[name]()
    if name == "calibration":
        X, y = X[:, 0], (y == 0)
    if name == "fusion":  # fuses several systems' [n, classes] score matrices
        X, y = [X, X[:, ::-1]], y % 3
    assert model.fit(X, y) is model
    assert clone(model).get_params() == model.get_params()


def test_pipeline_of_preprocessors_feeds_plda() -> None:
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(1)
    spk = np.repeat(np.arange(30), 5)
    X = rng.normal(size=(30, 8))[spk] + 0.5 * rng.normal(size=(150, 8))
    pre = make_pipeline(LDA(n_components=6), WCCN(), LengthNorm())
    Z = pre.fit_transform(X, spk)
    assert Z.shape == (150, 6)
    s = PLDA().fit(Z, spk).score(Z[:5], Z[:5])
    assert np.all(np.diag(s) > 0)
