"""MAP adaptation (Reynolds et al., 2000) and GMM-UBM LLR scoring, exact and top-C."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.gmm import GaussianMixture, llr, llr_many, parse_adapt


def blobs(n: int, centers: np.ndarray, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, len(centers), size=n)
    return centers[lab] + scale * rng.normal(size=(n, centers.shape[1]))


CENTERS = np.random.default_rng(42).normal(scale=8.0, size=(8, 3))


@pytest.fixture(scope="module", params=["diag", "full"])
def ubm(request) -> GaussianMixture:
    X = blobs(8000, CENTERS, 0)
    return GaussianMixture(8, covariance_type=request.param, random_state=0, max_iter=30,
                           dtype=torch.float64).fit(X)


def test_relevance_extremes(ubm: GaussianMixture) -> None:
    X = blobs(600, CENTERS[:3], 1) + 0.4
    same = ubm.map_adapt(X, relevance_factor=1e12, adapt="mwv")
    torch.testing.assert_close(same.means_, ubm.means_, atol=1e-7, rtol=0)
    torch.testing.assert_close(same.weights_, ubm.weights_, atol=1e-9, rtol=0)
    torch.testing.assert_close(same.covariances_, ubm.covariances_, atol=1e-7, rtol=0)

    ml = ubm.map_adapt(X, relevance_factor=0.0)
    gamma = torch.as_tensor(ubm.predict_proba(X))
    n = gamma.sum(0)
    seen = n > 1e-6
    ml_means = (gamma.T @ torch.as_tensor(X)) / n[:, None]
    torch.testing.assert_close(ml.means_[seen], ml_means[seen], atol=1e-6, rtol=1e-6)
    # weights and variances are not adapted by default
    assert torch.equal(ml.weights_, ubm.weights_)
    assert torch.equal(ml.covariances_, ubm.covariances_)


def test_only_components_that_see_data_move(ubm: GaussianMixture) -> None:
    # frames around one component: far components get (numerically) no posterior mass
    k = int(torch.argmax(ubm.weights_))
    X = ubm.means_[k].numpy() + 0.3 * np.random.default_rng(2).normal(size=(200, 3))
    spk = ubm.map_adapt(X, relevance_factor=16, adapt="mwv")
    gamma = torch.as_tensor(ubm.predict_proba(X)).sum(0)
    shift = (spk.means_ - ubm.means_).abs().amax(1)
    assert shift[k] > 1e-3
    far = gamma < 1e-10
    assert far.sum() >= 4
    assert shift[far].max() < 1e-9
    dvar = (spk.covariances_ - ubm.covariances_).abs().reshape(8, -1).amax(1)
    assert dvar[far].max() < 1e-9
    assert spk.weights_.sum().item() == pytest.approx(1.0)
    assert spk.weights_[k] > ubm.weights_[k]


def test_map_variances_respect_floor(ubm: GaussianMixture) -> None:
    X = np.repeat(ubm.means_[:1].numpy(), 50, axis=0)  # zero spread
    spk = ubm.map_adapt(X, relevance_factor=0.0, adapt=("means", "variances"))
    var = spk.covariances_ if ubm.covariance_type == "diag" else \
        spk.covariances_.diagonal(dim1=1, dim2=2)
    assert (var >= ubm.var_floor_ * (1 - 1e-9)).all()


def test_parse_adapt() -> None:
    assert parse_adapt("m") == {"means"}
    assert parse_adapt("mwv") == {"means", "weights", "variances"}
    assert parse_adapt(("means",)) == {"means"}
    assert parse_adapt("weights") == {"weights"}
    with pytest.raises(VoxaError):
        parse_adapt("mx")


def test_topc_llr_close_to_exact(ubm: GaussianMixture) -> None:
    X = blobs(1200, CENTERS[:4], 3)
    spk = ubm.map_adapt(X[:800], adapt="mwv")
    test = X[800:]
    exact = llr(spk, ubm, test)
    fast = llr(spk, ubm, test, top_c=5)
    assert isinstance(fast, float)
    assert exact > 0.05  # the speaker's own data scores above the UBM
    assert abs(fast - exact) < 1e-3
    # reference: the difference of the models' average log-likelihoods
    assert exact == pytest.approx(spk.score(test) - ubm.score(test), abs=1e-8)
    assert llr(ubm, ubm, test, top_c=3) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("top_c", [None, 3])
def test_llr_many_equals_loop(ubm: GaussianMixture, top_c: int | None) -> None:
    spks = [ubm.map_adapt(blobs(300, CENTERS[i:i + 2], 10 + i), adapt="mw") for i in range(5)]
    test = torch.from_numpy(blobs(500, CENTERS, 20))
    many = llr_many(spks, ubm, test, top_c=top_c)
    loop = np.array([llr(s, ubm, test, top_c=top_c) for s in spks])
    assert isinstance(many, np.ndarray) and many.shape == (5,)
    np.testing.assert_allclose(many, loop, atol=1e-9)
    assert llr_many([], ubm, test).shape == (0,)


def test_scoring_errors(ubm: GaussianMixture) -> None:
    other = GaussianMixture(2, random_state=0).fit(blobs(500, CENTERS, 0))
    with pytest.raises(VoxaError, match="does not match"):
        llr(other, ubm, blobs(10, CENTERS, 0))
    with pytest.raises(VoxaError, match="frames"):
        llr(ubm, ubm, np.zeros((10, 5)))
