"""Batched Baum-Welch statistics equal a per-utterance loop; pruning, streaming, errors, I/O."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.gmm import GaussianMixture
from voxa.ivector import BaumWelchStats, baum_welch_stats, iter_baum_welch_stats


def _utts(synth: SimpleNamespace, ubm: GaussianMixture, n: int = 60, seed: int = 1
          ) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    K, d = ubm.means_.shape
    lengths = rng.integers(50, 201, size=n)
    lengths[3] = 1  # a one-frame utterance
    lengths[7] = 333  # longer than a segment and than small batches
    return synth.sample_utterances(ubm, rng.normal(scale=0.5, size=(n, K, d)), lengths, seed)


def _loop(ubm: GaussianMixture, utts: list[np.ndarray]) -> list[torch.Tensor]:
    """The textbook statistics, one utterance at a time (float64)."""
    mu = ubm.means_
    out = []
    for x in utts:
        x = torch.as_tensor(x, dtype=torch.float64)
        g = torch.as_tensor(ubm.predict_proba(x), dtype=torch.float64)
        N = g.sum(0)
        diff = x[:, None, :] - mu[None]  # [T, K, d]
        F = (g[:, :, None] * diff).sum(0)
        if ubm.covariance_type == "diag":
            S = (g[:, :, None] * diff * diff).sum(0)
        else:
            S = torch.einsum("tk,tki,tkj->kij", g, diff, diff)
        out.append((N, F, S))
    return [torch.stack(t) for t in zip(*out)]


@pytest.mark.parametrize("kind", ["diag", "full"])
def test_batched_equals_per_utterance_loop(synth: SimpleNamespace, kind: str) -> None:
    ubm = synth.make_ubm(12, 5, seed=0, kind=kind)
    utts = _utts(synth, ubm)
    N_ref, F_ref, S_ref = _loop(ubm, utts)
    for bf in (None, 500):  # one batch; many batches (the 333-frame utterance alone)
        st = baum_welch_stats(ubm, utts, batch_frames=bf, second_order=True)
        assert st.N.dtype == torch.float64 and st.S.shape == S_ref.shape
        torch.testing.assert_close(st.N, N_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(st.F, F_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(st.S, S_ref, atol=1e-5, rtol=1e-5)
    N, F = baum_welch_stats(ubm, utts)  # unpacks as (N, F)
    torch.testing.assert_close(F, F_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(N.sum(1), torch.tensor([len(u) for u in utts], dtype=N.dtype))


def test_float32_matches_float64(synth: SimpleNamespace) -> None:
    ubm = synth.make_ubm(12, 5, seed=0, dtype=torch.float32)
    utts = _utts(synth, ubm)
    N_ref, F_ref, _ = _loop(ubm, utts)
    N, F = baum_welch_stats(ubm, [torch.as_tensor(u, dtype=torch.float32) for u in utts])
    assert F.dtype == torch.float32
    torch.testing.assert_close(N.double(), N_ref, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(F.double(), F_ref, atol=2e-3, rtol=1e-4)


def test_top_c(synth: SimpleNamespace) -> None:
    ubm = synth.make_ubm(12, 5, seed=0)
    utts = _utts(synth, ubm, n=20)
    exact = baum_welch_stats(ubm, utts)
    full = baum_welch_stats(ubm, utts, top_c=12)
    torch.testing.assert_close(full.N, exact.N, atol=1e-10, rtol=0)
    torch.testing.assert_close(full.F, exact.F, atol=1e-10, rtol=0)
    pruned = baum_welch_stats(ubm, utts, top_c=2)
    # every frame still contributes one unit of occupancy, spread over at most 2 components
    torch.testing.assert_close(pruned.N.sum(1), exact.N.sum(1))
    assert not torch.equal(pruned.N, exact.N)


def test_streaming_and_ids(synth: SimpleNamespace, tmp_path: Path) -> None:
    ubm = synth.make_ubm(8, 4, seed=2)
    utts = _utts(synth, ubm, n=15, seed=3)
    whole = baum_welch_stats(ubm, utts)
    parts = list(iter_baum_welch_stats(ubm, iter(utts), batch_frames=400))
    assert len(parts) > 3
    torch.testing.assert_close(BaumWelchStats.concat(parts).F, whole.F)
    named = baum_welch_stats(ubm, {f"u{i}": u for i, u in enumerate(utts)}, batch_frames=400,
                             second_order=True)
    assert named.ids == [f"u{i}" for i in range(15)]
    path = named.save(tmp_path / "stats.safetensors")
    back = BaumWelchStats.load(path)
    assert back.ids == named.ids and torch.equal(back.F, named.F) and torch.equal(back.S, named.S)
    sub = named[[0, 2]]
    assert sub.ids == ["u0", "u2"] and torch.equal(sub.N, named.N[[0, 2]])


def test_pool(synth: SimpleNamespace) -> None:
    ubm = synth.make_ubm(8, 4, seed=2)
    st = baum_welch_stats(ubm, _utts(synth, ubm, n=10, seed=4))
    labels = ["a", "b", "a", "c", "b", "a", "c", "c", "a", "b"]
    pooled, names, index = st.pool(labels)
    assert names == ["a", "b", "c"] and index.tolist()[:4] == [0, 1, 0, 2]
    torch.testing.assert_close(pooled.F[0], st.F[[0, 2, 5, 8]].sum(0))


def test_bad_input(synth: SimpleNamespace) -> None:
    ubm = synth.make_ubm(8, 4, seed=2)
    with pytest.raises(VoxaError, match="match the UBM"):
        baum_welch_stats(ubm, [np.zeros((10, 5))])
    with pytest.raises(VoxaError, match="utterance 1: no frames"):
        baum_welch_stats(ubm, [np.zeros((10, 4)), np.zeros((0, 4))])
    bad = np.zeros((10, 4))
    bad[3, 1] = np.nan
    with pytest.raises(VoxaError, match="utterance 2: frames contain NaN"):
        baum_welch_stats(ubm, [np.zeros((10, 4)), np.zeros((10, 4)), bad], batch_frames=15)
    with pytest.raises(VoxaError, match="no utterances"):
        baum_welch_stats(ubm, [])
    with pytest.raises(VoxaError, match="top_c"):
        baum_welch_stats(ubm, [np.zeros((10, 4))], top_c=0)
