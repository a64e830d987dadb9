"""voxa.hmm estimators against hmmlearn (the oracle): same likelihoods, paths and one EM step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.hmm import GMMHMM, CategoricalHMM, GaussianHMM, Topology

hmm = pytest.importorskip("hmmlearn.hmm")

S, D = 3, 4
_RNG = np.random.default_rng(0)
LENGTHS = [40, 25, 60]
N = sum(LENGTHS)
X = _RNG.normal(size=(N, D)) + np.repeat(_RNG.integers(0, 3, N // 5 + 1), 5)[:N, None] * 1.5
SYMBOLS = _RNG.integers(0, 5, size=(N, 1))
START = np.array([0.5, 0.3, 0.2])
TRANS = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]])
MEANS = np.array([[0.0] * D, [1.5] * D, [3.0] * D]) + _RNG.normal(scale=0.2, size=(S, D))
DIAG = _RNG.uniform(0.6, 1.5, size=(S, D))
_Q = _RNG.normal(size=(S, D, D)) * 0.3
FULL = _Q @ _Q.transpose(0, 2, 1) + np.eye(D)


def _pair(kind: str, n_iter: int = 1):
    """(voxa model, hmmlearn model) with the same parameters, set by hand."""
    kw = dict(n_iter=n_iter, init_params="", tol=-np.inf)
    if kind in ("diag", "full"):
        v = GaussianHMM(S, covariance_type=kind, dtype=torch.float64, **kw)
        h = hmm.GaussianHMM(S, covariance_type=kind, **kw)
        for m in (v, h):
            m.means_, m.covars_ = MEANS, DIAG if kind == "diag" else FULL
    elif kind == "gmm":
        v = GMMHMM(S, n_mix=2, dtype=torch.float64, **kw)
        h = hmm.GMMHMM(S, n_mix=2, covariance_type="diag", **kw)
        for m in (v, h):
            m.weights_ = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])
            m.means_ = np.stack([MEANS - 0.5, MEANS + 0.5], 1)
            m.covars_ = np.stack([DIAG, DIAG * 1.3], 1)
    else:
        v = CategoricalHMM(S, n_features=5, dtype=torch.float64, **kw)
        h = hmm.CategoricalHMM(S, n_features=5, **kw)
        p = _RNG.random((S, 5))
        for m in (v, h):
            m.emissionprob_ = p / p.sum(1, keepdims=True)
    for m in (v, h):
        m.startprob_, m.transmat_ = START, TRANS
    return v, h


def _data(kind):
    return SYMBOLS if kind == "cat" else X


@pytest.mark.parametrize("kind", ["diag", "full", "gmm", "cat"])
def test_score_matches_hmmlearn(kind):
    v, h = _pair(kind)
    ref = h.score(_data(kind), LENGTHS)
    assert v.score(_data(kind), LENGTHS) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("kind", ["diag", "full", "cat"])
def test_viterbi_path_matches_hmmlearn(kind):
    v, h = _pair(kind)
    lp_h, path_h = h.decode(_data(kind), LENGTHS)
    lp_v, path_v = v.decode(_data(kind), LENGTHS)
    np.testing.assert_array_equal(path_v.numpy(), path_h)
    assert lp_v == pytest.approx(lp_h, rel=1e-6)


def test_posteriors_match_hmmlearn():
    v, h = _pair("diag")
    np.testing.assert_allclose(v.predict_proba(X, LENGTHS).numpy(), h.predict_proba(X, LENGTHS), atol=1e-8)


@pytest.mark.parametrize("kind", ["diag", "full", "gmm", "cat"])
def test_one_baum_welch_iteration_matches_hmmlearn(kind):
    v, h = _pair(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h_means_old = getattr(h, "means_", None)
        h_means_old = None if h_means_old is None else h_means_old.copy()
        h.fit(_data(kind), LENGTHS)
    v.fit(_data(kind), LENGTHS)
    for name in ("startprob_", "transmat_", "means_", "weights_", "emissionprob_"):
        if hasattr(h, name) and hasattr(v, name):
            np.testing.assert_allclose(getattr(v, name).numpy(), getattr(h, name), rtol=1e-5, atol=1e-8,
                                       err_msg=name)
    if kind in ("diag", "full"):
        ref = h._covars_ if kind == "diag" else h.covars_
        np.testing.assert_allclose(v.covars_.numpy(), ref, rtol=1e-5, atol=1e-8)
    elif kind == "gmm":
        # hmmlearn's GMMHMM centres the new variances on the old means; voxa on the new ones
        ref = h.covars_ - (h.means_ - h_means_old) ** 2
        np.testing.assert_allclose(v.covars_.numpy(), ref, rtol=1e-5, atol=1e-8)


def test_float32_emissions_score_close_to_hmmlearn():
    v, h = _pair("diag")
    v.dtype = torch.float32
    assert v.score(X, LENGTHS) == pytest.approx(h.score(X, LENGTHS), rel=1e-5)


def test_left_to_right_zeros_stay_zero():
    topo = Topology.left_to_right(S, skips=False)
    m = GaussianHMM(S, topology=topo, n_iter=5, random_state=0).fit(X, LENGTHS)
    zero = topo.log_A == -np.inf
    assert bool((m.transmat_[zero] == 0).all()) and bool((m.transmat_[~zero] > 0).all())
    assert m.startprob_.tolist() == [1.0, 0.0, 0.0]


def _sample_known(n_seq=20, T=100, seed=1):
    h = hmm.GaussianHMM(3, covariance_type="diag", random_state=seed)
    h.startprob_ = np.array([0.6, 0.3, 0.1])
    h.transmat_ = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    h.means_ = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    h.covars_ = np.full((3, 2), 0.5)
    Xs = [h.sample(T, random_state=seed + i)[0] for i in range(n_seq)]
    return np.concatenate(Xs), [T] * n_seq, h.means_


@pytest.mark.parametrize("training", ["baum-welch", "viterbi"])
def test_fit_recovers_the_means_of_a_known_hmm(training):
    Xk, lk, means = _sample_known()
    m = GaussianHMM(3, n_iter=20, random_state=0, training=training).fit(Xk, lk)
    got = m.means_.numpy()
    order = [int(np.argmin(((got - mu) ** 2).sum(1))) for mu in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(got[order], means, atol=0.15)
    assert m.history_[-1] >= m.history_[0]


def test_torch_inputs_are_accepted():
    v, _ = _pair("diag")
    assert v.score(torch.from_numpy(X), torch.tensor(LENGTHS)) == pytest.approx(v.score(X, LENGTHS))


@pytest.mark.parametrize("bad", [
    lambda m: m.score(X[:, :2], LENGTHS),
    lambda m: m.score(X, [10, 10]),
    lambda m: m.score(X[0], None),
    lambda m: m.fit(np.full((10, D), np.nan)),
])
def test_bad_input_is_one_line_voxa_error(bad):
    v, _ = _pair("diag")
    with pytest.raises(VoxaError) as e:
        bad(v)
    assert "\n" not in str(e.value)


def test_save_load_round_trip(tmp_path):
    topo = Topology.left_to_right(S, final=True)
    m = GMMHMM(S, n_mix=2, topology=topo, n_iter=2, random_state=0).fit(X, LENGTHS)
    back = GMMHMM.load(m.save(tmp_path / "m.safetensors"))
    assert back.score(X, LENGTHS) == pytest.approx(m.score(X, LENGTHS), rel=1e-12)
