"""LengthNorm, LDA and WCCN: the property each promises, save/load and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from voxa.backends import LDA, WCCN, LengthNorm
from voxa.errors import ConfigError, VoxaError


def _classes(n_classes=6, per_class=60, dim=10, spread=2.0, seed=0):
    """Gaussian classes with a shared, strongly anisotropic within-class covariance."""
    rng = np.random.default_rng(seed)
    means = spread * rng.normal(size=(n_classes, dim))
    mix = rng.normal(size=(dim, dim)) * np.linspace(0.2, 2.0, dim)
    y = np.repeat(np.arange(n_classes), per_class)
    X = means[y] + rng.normal(size=(y.size, dim)) @ mix.T
    perm = rng.permutation(y.size)
    return X[perm], y[perm]


def _within_cov(Z, y, per_class_average=False):
    classes = np.unique(y)
    if per_class_average:
        return sum(np.cov(Z[y == c], rowvar=False, bias=True) for c in classes) / classes.size
    dev = Z - np.stack([Z[y == c].mean(0) for c in classes])[np.searchsorted(classes, y)]
    return dev.T @ dev / len(y)


def _fisher_ratio(Z, y):
    """trace(S_w^-1 S_b) of projected data."""
    classes = np.unique(y)
    m = Z.mean(0)
    s_b = sum((y == c).sum() * np.outer(Z[y == c].mean(0) - m, Z[y == c].mean(0) - m)
              for c in classes) / len(y)
    return float(np.trace(np.linalg.solve(_within_cov(Z, y), s_b)))


def test_length_norm_gives_unit_norm() -> None:
    X, _ = _classes()
    X = X + 5.0
    for whiten in (True, False):
        Z = LengthNorm(whiten=whiten).fit(X).transform(X[:50] * 3.0)
        np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-12)


def test_length_norm_whitens_before_normalising() -> None:
    X, _ = _classes(seed=1)
    ln = LengthNorm().fit(X)
    W = (X - X.mean(0)) @ ln.whitening_
    np.testing.assert_allclose(np.cov(W, rowvar=False, bias=True), np.eye(X.shape[1]), atol=1e-8)
    expected = W / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(ln.transform(X), expected, atol=1e-12)
    assert np.allclose(LengthNorm(whiten=False).fit(X).whitening_, np.eye(X.shape[1]))


def test_lda_separates_classes_better_than_random_projections() -> None:
    X, y = _classes(seed=2)
    Xtest, ytest = _classes(seed=2, per_class=30)  # same class means (same seed), new samples
    lda = LDA(reg=0.0).fit(X, y)  # unregularised, so the Fisher ratio equals the eigenvalue sum
    assert lda.scalings_.shape == (10, 5)  # default min(classes - 1, d)
    Z, Zt = lda.transform(X), lda.transform(Xtest)
    centroids = np.stack([Z[y == c].mean(0) for c in range(6)])
    pred = np.argmin(((Zt[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == ytest) > 0.95
    ratio = _fisher_ratio(Z, y)
    np.testing.assert_allclose(ratio, lda.eigenvalues_.sum(), rtol=1e-4)
    rng = np.random.default_rng(3)
    Xc = X - X.mean(0)
    for _ in range(20):
        assert _fisher_ratio(Xc @ rng.normal(size=(10, 5)), y) < ratio


def test_lda_projection_whitens_within_class_scatter() -> None:
    X, y = _classes(seed=4)
    Z = LDA(n_components=8, reg=0.0).fit_transform(X, y)
    np.testing.assert_allclose(_within_cov(Z, y), np.eye(8), atol=1e-8)


def test_wccn_makes_within_class_covariance_identity() -> None:
    X, y = _classes(seed=5)
    # unequal class sizes: WCCN averages per-class covariances, not pooled scatter
    keep = ~((y == 0) & (np.arange(y.size) % 3 == 0))
    X, y = X[keep], y[keep]
    Z = WCCN().fit(X, y).transform(X)
    np.testing.assert_allclose(_within_cov(Z, y, per_class_average=True), np.eye(10), atol=1e-8)


@pytest.mark.parametrize("model", [LengthNorm(), LDA(n_components=3), WCCN(reg=0.01)])
def test_save_load_round_trip(model, tmp_path) -> None:
    X, y = _classes(seed=6)
    model.fit(X, y)
    back = type(model).load(model.save(tmp_path / "m.safetensors"))
    assert back.get_params() == model.get_params()
    assert np.array_equal(back.transform(X), model.transform(X))


def test_bad_inputs_raise_clear_errors() -> None:
    X, y = _classes()
    with pytest.raises(VoxaError, match="at least 2 classes"):
        LDA().fit(X, np.zeros(len(y), int))
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(VoxaError, match="NaN"):
        WCCN().fit(bad, y)
    with pytest.raises(VoxaError, match="2-D"):
        LengthNorm().fit(X[0])
    with pytest.raises(VoxaError, match="expected 360 labels"):
        LDA().fit(X, y[:-1])
    with pytest.raises(VoxaError, match="fitted on 10"):
        LDA().fit(X, y).transform(X[:, :4])
    with pytest.raises(VoxaError, match="not fitted"):
        WCCN().transform(X)
    with pytest.raises(ConfigError, match="n_components"):
        LDA(n_components=0)
    with pytest.raises(ConfigError, match="exceeds"):
        LDA(n_components=11).fit(X, y)
    with pytest.raises(VoxaError, match="single vector"):
        WCCN().fit(X[:6], np.arange(6))


def test_nap_removes_the_direction_copies_of_one_utterance_differ_in() -> None:
    from voxa.backends import NAP

    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(40), 3)
    nuisance = np.array([0.6, 0.8, 0.0, 0.0])
    X = rng.normal(size=(40, 4))[g] + np.outer(rng.normal(size=120) * 4, nuisance)
    Z = NAP(n_components=1).fit(X, g).transform(X)
    assert np.abs(Z @ nuisance).max() < 1e-9
    # the class information (the utterance means) mostly survives
    kept = X - np.outer(X @ nuisance, nuisance)
    assert np.linalg.norm(Z, axis=1).mean() > 0.5 * np.linalg.norm(kept, axis=1).mean()


def test_nap_with_too_many_components_is_a_config_error() -> None:
    from voxa.backends import NAP

    with pytest.raises(ConfigError, match="below the dimension"):
        NAP(n_components=4).fit(np.random.default_rng(0).normal(size=(12, 4)), np.repeat(np.arange(4), 3))
