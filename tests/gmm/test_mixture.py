"""GaussianMixture: EM correctness against known mixtures and scikit-learn, init, floors, I/O."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.gmm import GaussianMixture

TRUE_W = np.array([0.5, 0.3, 0.2])
TRUE_MU = np.array([[0.0, 0.0], [6.0, 5.0], [-6.0, 4.0]])
TRUE_COV = np.array([[[1.0, 0.5], [0.5, 1.0]],
                     [[0.5, -0.2], [-0.2, 1.5]],
                     [[0.3, 0.0], [0.0, 0.6]]])


def draw(n: int, seed: int = 0, diag: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = rng.choice(3, size=n, p=TRUE_W)
    covs = TRUE_COV * np.eye(2) if diag else TRUE_COV
    chol = np.linalg.cholesky(covs)
    z = rng.normal(size=(n, 2))
    return TRUE_MU[lab] + np.einsum("nij,nj->ni", chol[lab], z)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return draw(6000)


def _sorted(g: GaussianMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(g.means_[:, 0].numpy())[[1, 2, 0]]  # match TRUE_MU order: 0, +6, -6
    return g.weights_.numpy()[order], g.means_.numpy()[order], g.covariances_.numpy()[order]


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_recovers_known_mixture(kind: str) -> None:
    X = draw(6000, diag=kind == "diag")
    g = GaussianMixture(3, covariance_type=kind, random_state=0).fit(X)
    w, mu, cov = _sorted(g)
    np.testing.assert_allclose(w, TRUE_W, atol=0.03)
    np.testing.assert_allclose(mu, TRUE_MU, atol=0.1)
    want = np.stack([np.diag(c) for c in TRUE_COV]) if kind == "diag" else TRUE_COV
    np.testing.assert_allclose(cov, want, atol=0.12)
    assert g.converged_ and g.n_iter_ >= 1
    assert abs(g.lower_bound_ - g.score(X)) < 1e-3


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_loglik_monotone(kind: str, data: np.ndarray) -> None:
    g = GaussianMixture(5, covariance_type=kind, max_iter=25, tol=0.0, kmeans_iter=0,
                        random_state=1, prune=None, dtype=torch.float64).fit(data)
    h = np.array(g.history_)
    assert len(h) == 25
    assert np.all(np.diff(h) >= -1e-6 * np.abs(h[:-1])), h


def _sklearn_twin(g: GaussianMixture):
    from sklearn.mixture import GaussianMixture as SkGMM
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    sk = SkGMM(g.weights_.shape[0], covariance_type=g.covariance_type)
    sk.weights_ = g.weights_.numpy()
    sk.means_ = g.means_.numpy()
    sk.covariances_ = g.covariances_.numpy()
    sk.precisions_cholesky_ = _compute_precision_cholesky(sk.covariances_, g.covariance_type)
    return sk


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_score_samples_and_proba_match_sklearn(kind: str, data: np.ndarray) -> None:
    g = GaussianMixture(4, covariance_type=kind, max_iter=5, random_state=0).fit(data)
    sk = _sklearn_twin(g)
    np.testing.assert_allclose(g.score_samples(data), sk.score_samples(data), atol=1e-4)
    p = g.predict_proba(data)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(p, sk.predict_proba(data), atol=1e-4)
    assert (g.predict(data) == p.argmax(1)).all()
    assert abs(g.score(data) - sk.score(data)) < 1e-4
    assert g.log_likelihood(data) == pytest.approx(g.score(data) * len(data), rel=1e-6)
    assert g.bic(data) == pytest.approx(sk.bic(data), rel=1e-5)
    # torch input gives torch output
    t = g.score_samples(torch.from_numpy(data))
    assert isinstance(t, torch.Tensor) and t.shape == (len(data),)


@pytest.mark.parametrize("K", [4, 6])
@pytest.mark.parametrize("kind", ["diag", "full"])
def test_split_init_reaches_k(K: int, kind: str, data: np.ndarray) -> None:
    g = GaussianMixture(K, covariance_type=kind, init="split", max_iter=5).fit(data)
    assert g.weights_.shape == (K,) and g.means_.shape == (K, 2)
    assert torch.isfinite(g.covariances_).all()
    assert g.weights_.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_variance_floor_holds(kind: str) -> None:
    rng = np.random.default_rng(0)
    a = np.c_[rng.normal(size=500), np.full(500, 3.0)]  # zero variance in dim 1
    b = rng.normal(size=(500, 2)) * 2 + 10
    X = np.r_[a, b]
    g = GaussianMixture(2, covariance_type=kind, var_floor=0.01, random_state=0).fit(X)
    floor = g.var_floor_.numpy()
    np.testing.assert_allclose(floor, 0.01 * X.var(0), rtol=1e-6)
    cov = g.covariances_.numpy()
    var = cov if kind == "diag" else np.diagonal(cov, axis1=1, axis2=2)
    assert (var >= floor * (1 - 1e-9)).all()
    assert np.isclose(var, floor[None], rtol=1e-6).any()  # the floor was active somewhere
    if kind == "full":
        s = np.sqrt(floor)
        lam = np.linalg.eigvalsh(cov / (s[:, None] * s[None, :]))
        assert (lam >= 1 - 1e-6).all()


@pytest.mark.parametrize("prune", ["split", "drop", None])
def test_starved_component(prune: str | None, data: np.ndarray) -> None:
    mu0 = np.array([[0.0, 0.0], [6.0, 5.0], [-6.0, 4.0], [1e4, 1e4]])
    g = GaussianMixture(4, means_init=mu0, prune=prune, max_iter=10).fit(data)
    for t in (g.weights_, g.means_, g.covariances_):
        assert torch.isfinite(t).all()
    assert g.weights_.sum().item() == pytest.approx(1.0)
    assert g.weights_.shape[0] == (3 if prune == "drop" else 4)
    if prune == "split":
        assert g.weights_.min().item() > 0.01
    assert np.isfinite(g.score_samples(data)).all()


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_more_components_than_distinct_points(kind: str) -> None:
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 2.0], [5.0, -1.0]]), 100, axis=0)
    for init in ("kmeans++", "split"):
        g = GaussianMixture(8, covariance_type=kind, init=init, random_state=0,
                            max_iter=10).fit(X)
        assert torch.isfinite(g.means_).all() and torch.isfinite(g.covariances_).all()
        assert g.weights_.sum().item() == pytest.approx(1.0)
        assert np.isfinite(g.score_samples(X)).all()


@pytest.mark.parametrize("init", ["kmeans++", "split"])
def test_chunks_equal_whole_array(init: str, data: np.ndarray) -> None:
    kw = dict(init=init, random_state=3, max_iter=8, dtype=torch.float64)
    whole = GaussianMixture(4, **kw).fit(data)
    bounds = [0, 700, 2500, 2501, 4000, len(data)]
    chunks = [data[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    listed = GaussianMixture(4, **kw).fit(chunks)
    called = GaussianMixture(4, **kw).fit(lambda: (torch.from_numpy(c) for c in chunks))
    for g in (listed, called):
        for a, b in ((g.weights_, whole.weights_), (g.means_, whole.means_),
                     (g.covariances_, whole.covariances_)):
            torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-8)
        assert g.n_iter_ == whole.n_iter_


def test_one_shot_iterator_refused(data: np.ndarray) -> None:
    with pytest.raises(VoxaError, match="one-shot"):
        GaussianMixture(2).fit(iter([data]))
    with pytest.raises(VoxaError):
        GaussianMixture(2).fit(np.zeros(10))
    with pytest.raises(VoxaError, match="fewer"):
        GaussianMixture(20).fit(data[:5])
    with pytest.raises(VoxaError, match="NaN"):
        GaussianMixture(2).fit(np.full((10, 2), np.nan))
    with pytest.raises(VoxaError, match="not fitted"):
        GaussianMixture(2).score_samples(data)


def test_tol_absolute_and_relative(data: np.ndarray) -> None:
    loose = GaussianMixture(3, tol=1.0, tol_type="absolute", random_state=0).fit(data)
    assert loose.converged_ and loose.n_iter_ == 2
    tight = GaussianMixture(3, tol=0.0, max_iter=4, random_state=0).fit(data)
    assert not tight.converged_ and tight.n_iter_ == 4


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_save_load_roundtrip(kind: str, data: np.ndarray, tmp_path) -> None:
    g = GaussianMixture(3, covariance_type=kind, random_state=0, max_iter=5).fit(data)
    path = g.save(tmp_path / "ubm.safetensors")
    h = GaussianMixture.load(path)
    for a, b in ((g.weights_, h.weights_), (g.means_, h.means_),
                 (g.covariances_, h.covariances_), (g.var_floor_, h.var_floor_)):
        assert torch.equal(a, b)
    assert (h.covariance_type, h.n_components, h.dtype) == (kind, 3, torch.float32)
    assert (h.n_iter_, h.converged_, h.history_) == (g.n_iter_, g.converged_, g.history_)
    np.testing.assert_array_equal(g.score_samples(data), h.score_samples(data))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ubm.safetensors"]


def test_load_errors(tmp_path) -> None:
    from voxa.utils.serialization import save_model

    with pytest.raises(VoxaError, match="no such"):
        GaussianMixture.load(tmp_path / "missing.safetensors")
    other = save_model(tmp_path / "o.safetensors", {"x": torch.ones(2)}, {"class": "Other"})
    with pytest.raises(VoxaError, match="expected"):
        GaussianMixture.load(other)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data: np.ndarray) -> None:
    kw = dict(random_state=0, max_iter=5, dtype=torch.float64)
    cpu = GaussianMixture(3, **kw).fit(data)
    gpu = GaussianMixture(3, device="cuda", **kw).fit(data)
    torch.testing.assert_close(gpu.means_.cpu(), cpu.means_, atol=1e-6, rtol=1e-6)
