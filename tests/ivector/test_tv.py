"""Total-variability model: EM monotonicity, recovery of known factors, extraction against the
textbook formula, the likelihood formula, save/load and two-rank training."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from voxa.errors import VoxaError
from voxa.ivector import BaumWelchStats, TotalVariability, baum_welch_stats

R = 4


@pytest.fixture(scope="module")
def data(synth: SimpleNamespace) -> SimpleNamespace:
    """300 utterances of 50-200 frames whose supervector offsets are ``T_true w`` (K=16, d=5)."""
    ubm = synth.make_ubm(16, 5, seed=0, dtype=torch.float32)
    rng = np.random.default_rng(5)
    W = rng.normal(size=(300, R))
    off, _ = synth.low_rank_offsets(ubm, W, seed=6)
    utts = synth.sample_utterances(ubm, off, rng.integers(50, 201, size=300), seed=7)
    stats = baum_welch_stats(ubm, utts, second_order=True)
    tv = TotalVariability(rank=R, n_iter=8, progress=False).fit(stats, ubm)
    return SimpleNamespace(ubm=ubm, W=W, utts=utts, stats=stats, tv=tv)


def _textbook(tv: TotalVariability, N: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w = (I + T^T Sigma^-1 N T)^-1 T^T Sigma^-1 (F - N o), one utterance at a time (float64)."""
    T, sig, o = (t.numpy() for t in (tv.T_, tv.sigma_, tv.mean_))
    K, d, r = T.shape
    ws, covs = [], []
    for n, f in zip(N.astype(np.float64), F.astype(np.float64)):
        L = np.eye(r)
        b = np.zeros(r)
        for k in range(K):
            PT = T[k] / sig[k][:, None]
            L += n[k] * T[k].T @ PT
            b += PT.T @ (f[k] - n[k] * o[k])
        ws.append(np.linalg.solve(L, b))
        covs.append(np.linalg.inv(L))
    return np.array(ws), np.array(covs)


def test_em_log_likelihood_non_decreasing(data: SimpleNamespace) -> None:
    h = np.array(data.tv.history_)
    assert len(h) == 8 and h[-1] > h[0] + 1.0
    assert (np.diff(h) >= -1e-6 * np.abs(h[1:])).all(), h  # float32 E-step: rounding-level noise
    for kw in ({"min_divergence": False}, {"update_sigma": True}):
        tv = TotalVariability(rank=R, n_iter=6, progress=False, dtype=torch.float64, **kw)
        h = np.array(tv.fit(data.stats, data.ubm).history_)
        assert (np.diff(h) >= -1e-10).all(), (kw, h)
    # the likelihood of the fitted model is the best of all
    assert data.tv.log_likelihood(data.stats) >= data.tv.history_[-1] - 1e-5


def test_recovers_known_factors(data: SimpleNamespace) -> None:
    iv = data.tv.transform(data.stats).double().numpy()
    X = np.c_[iv, np.ones(len(iv))]
    coef, *_ = np.linalg.lstsq(X, data.W, rcond=None)
    resid = data.W - X @ coef
    r2 = 1.0 - (resid**2).sum() / ((data.W - data.W.mean(0)) ** 2).sum()
    assert r2 > 0.9, r2


def test_batched_extraction_equals_textbook(data: SimpleNamespace) -> None:
    tv = data.tv
    N, F = (t.numpy() for t in data.stats)
    w_ref, cov_ref = _textbook(tv, N, F)
    w, cov = tv.transform(data.stats, return_cov=True)
    assert w.shape == (300, R) and cov.shape == (300, R, R)
    np.testing.assert_allclose(w.double().numpy(), w_ref, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(cov.double().numpy(), cov_ref, atol=1e-5, rtol=1e-4)
    # numpy in, numpy out; float64 compute agrees to far tighter tolerances
    tv64 = TotalVariability(rank=R, n_iter=2, progress=False, dtype=torch.float64, batch_size=64)
    tv64.fit(data.stats, data.ubm)
    w_ref, cov_ref = _textbook(tv64, N, F)
    w64, cov64 = tv64.transform((N.astype(np.float64), F.astype(np.float64)), return_cov=True)
    assert isinstance(w64, np.ndarray)
    np.testing.assert_allclose(w64, w_ref, atol=1e-10, rtol=1e-10)
    np.testing.assert_allclose(cov64, cov_ref, atol=1e-10, rtol=1e-10)


def test_save_load_round_trip(data: SimpleNamespace, tmp_path: Path) -> None:
    tv = data.tv
    back = TotalVariability.load(tv.save(tmp_path / "tv.safetensors"))
    assert back.rank == R and back.history_ == tv.history_ and back.ubm_.covariance_type == "diag"
    assert torch.equal(back.transform(data.stats), tv.transform(data.stats))
    # standalone extraction from frames with the stored UBM
    frames = [torch.as_tensor(u, dtype=torch.float32) for u in data.utts[:40]]
    torch.testing.assert_close(back.extract(frames), tv.transform(data.stats[:40]),
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_log_likelihood_is_exact_for_hard_alignments(synth: SimpleNamespace, kind: str) -> None:
    """With one component per frame the model is linear-Gaussian: compare with its density."""
    rng = np.random.default_rng(0)
    K, d, r = 4, 3, 2
    ubm = synth.make_ubm(K, d, seed=1, kind=kind)
    mu, cov = ubm.means_.numpy(), ubm.covariances_.numpy()
    full = cov if kind == "full" else np.einsum("kd,de->kde", cov, np.eye(d))
    utts = []
    for _ in range(6):
        comp = rng.integers(0, K, size=12)
        x = mu[comp] + np.einsum("nij,nj->ni", np.linalg.cholesky(full[comp]), rng.normal(size=(12, d)))
        utts.append((comp, x))
    N = np.stack([np.bincount(c, minlength=K) for c, _ in utts]).astype(np.float64)
    F = np.zeros((len(utts), K, d))
    S = np.zeros((len(utts), K, d) if kind == "diag" else (len(utts), K, d, d))
    for u, (c, x) in enumerate(utts):
        y = x - mu[c]
        np.add.at(F[u], c, y)
        np.add.at(S[u], c, y * y if kind == "diag" else y[:, :, None] * y[:, None, :])
    stats = BaumWelchStats(torch.from_numpy(N), torch.from_numpy(F), torch.from_numpy(S))
    tv = TotalVariability(rank=r, n_iter=2, progress=False, dtype=torch.float64).fit(stats, ubm)
    T, o = tv.T_.numpy(), tv.mean_.numpy()
    exact = 0.0
    for c, x in utts:
        A = T[c].reshape(-1, r)  # [12 d, r]
        C = A @ A.T
        for i, k in enumerate(c):
            C[i * d:(i + 1) * d, i * d:(i + 1) * d] += full[k]
        exact += multivariate_normal(mean=(mu[c] + o[c]).ravel(), cov=C).logpdf(x.ravel())
    assert tv.log_likelihood(stats) * N.sum() == pytest.approx(exact, rel=1e-9)


def test_full_covariance_ubm(synth: SimpleNamespace) -> None:
    ubm = synth.make_ubm(8, 4, seed=1, kind="full")
    rng = np.random.default_rng(0)
    utts = synth.sample_utterances(ubm, rng.normal(scale=0.4, size=(80, 8, 4)),
                                   rng.integers(50, 150, 80), 1)
    stats = baum_welch_stats(ubm, utts, second_order=True)
    assert stats.S.shape == (80, 8, 4, 4)
    tv = TotalVariability(rank=3, n_iter=5, update_sigma=True, progress=False,
                          dtype=torch.float64).fit(stats, ubm)
    assert (np.diff(tv.history_) >= -1e-10).all(), tv.history_
    assert tv.sigma_.shape == (8, 4, 4) and not torch.equal(tv.sigma_, ubm.covariances_)
    T, sig, o = tv.T_, tv.sigma_, tv.mean_
    w = tv.transform(stats)
    for u in (0, 41):
        N, F = stats.N[u], stats.F[u]
        PT = torch.linalg.solve(sig, T)  # Sigma_k^-1 T_k
        L = torch.eye(3, dtype=torch.float64) + torch.einsum("k,kdr,kds->rs", N, T, PT)
        b = torch.einsum("kdr,kd->r", PT, F - N[:, None] * o)
        torch.testing.assert_close(w[u], torch.linalg.solve(L, b), atol=1e-10, rtol=1e-10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    from voxa.gmm import GaussianMixture
    from voxa.gmm import distributed as du

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        assert du.is_distributed() and du.rank() == rank
        stats = BaumWelchStats.load(Path(folder) / "stats.safetensors")
        ubm = GaussianMixture.load(Path(folder) / "ubm.safetensors")
        shard = stats[rank::world]  # interleaved rows: each rank's batches differ from the single run
        tv = TotalVariability(rank=R, n_iter=1, progress=False, batch_size=37).fit(shard, ubm)
        tv.save(Path(folder) / f"tv-rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_single_process(data: SimpleNamespace, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    os.environ.pop("MASTER_ADDR", None)
    data.stats.save(tmp_path / "stats.safetensors")
    data.ubm.save(tmp_path / "ubm.safetensors")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    single = TotalVariability(rank=R, n_iter=1, progress=False).fit(data.stats, data.ubm)
    for rank in (0, 1):
        tv = TotalVariability.load(tmp_path / f"tv-rank{rank}.safetensors")
        torch.testing.assert_close(tv.T_, single.T_, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tv.mean_, single.mean_, atol=1e-5, rtol=1e-5)
        assert tv.history_[0] == pytest.approx(single.history_[0], rel=1e-6)


def test_bad_input(data: SimpleNamespace) -> None:
    with pytest.raises(VoxaError, match="not fitted"):
        TotalVariability(rank=2).transform(data.stats)
    wrong = BaumWelchStats(data.stats.N[:, :8], data.stats.F[:, :8])
    with pytest.raises(VoxaError, match="UBM has"):
        data.tv.transform(wrong)
    with pytest.raises(VoxaError, match="UBM has"):
        TotalVariability(rank=2, progress=False).fit(wrong, data.ubm)
    nan = BaumWelchStats(data.stats.N.clone(), data.stats.F.clone())
    nan.F[0, 0, 0] = float("nan")
    with pytest.raises(VoxaError, match="NaN"):
        data.tv.transform(nan)
    with pytest.raises(VoxaError, match="second-order"):
        TotalVariability(rank=2, update_sigma=True, progress=False).fit(
            BaumWelchStats(*data.stats), data.ubm)
    with pytest.raises(VoxaError, match="rank"):
        TotalVariability(rank=0)
