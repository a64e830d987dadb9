"""PLDA: EM on data drawn from known models, closed-form LLRs against brute-force Gaussians."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from voxa.backends import PLDA
from voxa.errors import ConfigError, VoxaError

D = 5


def _truth(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, B, W) of a known model; B has rank 2 for the simplified kind."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    if kind == "simplified":
        Phi = rng.normal(size=(D, 2)) * [2.0, 1.2]
        B = Phi @ Phi.T
    else:
        B = (Q * [4.0, 2.0, 1.0, 0.5, 0.25]) @ Q.T
    R, _ = np.linalg.qr(rng.normal(size=(D, D)))
    W = (R * [1.0, 0.8, 0.6, 0.4, 0.3]) @ R.T
    return rng.normal(size=D), B, W


def _draw(mu, B, W, n_speakers=1000, seed=1):
    """Vectors of speakers with 1 to 12 utterances each (unbalanced), and their labels."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 13, size=n_speakers)
    y = np.repeat(np.arange(n_speakers), counts)
    spk = rng.multivariate_normal(mu, B, size=n_speakers, method="eigh")
    X = spk[y] + rng.multivariate_normal(np.zeros(D), W, size=y.size)
    return X, y


@pytest.fixture(scope="module", params=["two-covariance", "simplified"])
def fitted(request):
    kind = request.param
    mu, B, W = _truth(kind)
    X, y = _draw(mu, B, W)
    r = 2 if kind == "simplified" else None
    plda = PLDA(kind=kind, n_speaker_factors=r, max_iter=40, tol=0.0).fit(X, y)
    return plda, (mu, B, W), X, y


def test_em_log_likelihood_increases_monotonically(fitted) -> None:
    plda, _, X, y = fitted
    h = np.array(plda.history_)
    assert len(h) == 41 and plda.n_iter_ == 40
    assert np.all(np.diff(h) >= -1e-10 * np.abs(h[:-1])), np.diff(h)
    assert h[-1] > h[0] + 1e-4
    assert plda.log_likelihood(X, y) == pytest.approx(h[-1], abs=1e-9)


def test_em_recovers_true_covariances(fitted) -> None:
    plda, (mu, B, W), _, _ = fitted
    rel = np.linalg.norm(plda.between_covariance_ - B) / np.linalg.norm(B)
    assert rel < 0.15, rel
    rel_w = np.linalg.norm(plda.within_covariance_ - W) / np.linalg.norm(W)
    assert rel_w < 0.08, rel_w
    assert np.linalg.norm(plda.mean_ - mu) < 0.25
    if plda.kind == "simplified":
        np.testing.assert_allclose(plda.loadings_ @ plda.loadings_.T, plda.between_covariance_)
        assert np.linalg.matrix_rank(plda.between_covariance_) == 2


def _brute_llr(plda, enroll, test):
    """log p(enroll..., test | one speaker) - log p(enroll... | one speaker) - log p(test)."""
    B, W, mu = plda.between_covariance_, plda.within_covariance_, plda.mean_

    def log_same(vectors):
        n = len(vectors)
        cov = np.kron(np.ones((n, n)), B) + np.kron(np.eye(n), W)
        return multivariate_normal(np.tile(mu, n), cov).logpdf(np.concatenate(vectors))

    return log_same(list(enroll) + [test]) - log_same(list(enroll)) - log_same([test])


def test_llr_equals_brute_force_gaussian_ratio(fitted) -> None:
    plda, _, X, _ = fitted
    got = plda.score(X[:3], X[10:14])
    for i in range(3):
        for j in range(4):
            assert got[i, j] == pytest.approx(_brute_llr(plda, X[i:i + 1], X[10 + j]), abs=1e-8)


def test_multi_utterance_enrolment_uses_sufficient_statistics(fitted) -> None:
    plda, _, X, _ = fitted
    enroll = X[20:23]
    want = _brute_llr(plda, enroll, X[30])
    got = plda.score(enroll.mean(0, keepdims=True), X[30:31], n_enroll=[3])[0, 0]
    assert got == pytest.approx(want, abs=1e-8)
    # scoring the mean as if it were one vector is a different (approximate) number
    assert abs(plda.score(enroll.mean(0, keepdims=True), X[30:31])[0, 0] - want) > 1e-3
    # mixed counts in one call match per-count calls
    both = plda.score(X[:2], X[5:9], n_enroll=[3, 1], n_test=[1, 2, 2, 1])
    assert both[0, 1] == pytest.approx(plda.score(X[:1], X[6:7], [3], [2])[0, 0], abs=1e-12)
    assert both[1, 3] == pytest.approx(plda.score(X[1:2], X[8:9])[0, 0], abs=1e-12)


def test_llr_is_symmetric_and_separates_speakers(fitted) -> None:
    plda, _, X, y = fitted
    s = plda.score(X[:40], X[40:90])
    np.testing.assert_allclose(s, plda.score(X[40:90], X[:40]).T, atol=1e-10)
    # speakers are contiguous, so rows and columns from the same block share speakers
    rest = plda.score(X[:300], X[:300])
    tar = y[:300, None] == y[None, :300]
    assert rest[tar].mean() > 0 > rest[~tar].mean()


def test_save_load_round_trip(fitted, tmp_path) -> None:
    plda, _, X, _ = fitted
    back = PLDA.load(plda.save(tmp_path / "plda.safetensors"))
    assert back.get_params() == plda.get_params() and back.history_ == plda.history_
    assert np.array_equal(back.score(X[:5], X[5:9], n_enroll=[1, 2, 3, 4, 5]),
                          plda.score(X[:5], X[5:9], n_enroll=[1, 2, 3, 4, 5]))


def test_bad_inputs_raise_clear_errors() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    with pytest.raises(VoxaError, match="single vector"):
        PLDA().fit(X, np.arange(20))
    with pytest.raises(VoxaError, match="at least 2 classes"):
        PLDA().fit(X, np.zeros(20, int))
    with pytest.raises(ConfigError, match="kind"):
        PLDA(kind="heavy-tailed")
    with pytest.raises(ConfigError, match="simplified"):
        PLDA(n_speaker_factors=2)
    with pytest.raises(ConfigError, match="exceeds"):
        PLDA(kind="simplified", n_speaker_factors=4).fit(X, np.repeat(np.arange(5), 4))
    plda = PLDA().fit(X, np.repeat(np.arange(5), 4))
    with pytest.raises(VoxaError, match="fitted on 3"):
        plda.score(X[:, :2], X)
    with pytest.raises(VoxaError, match="counts must be >= 1"):
        plda.score(X[:2], X, n_enroll=[1, 0])
    with pytest.raises(VoxaError, match="NaN"):
        plda.score(X[:2], np.full((1, 3), np.nan))
