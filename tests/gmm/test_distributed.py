"""EM over two gloo ranks, each with half of the frames, equals one process on all of them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from voxa.gmm import GaussianMixture
from voxa.gmm import distributed as du

CONFIGS = {
    "given": dict(n_components=4, covariance_type="diag", max_iter=6, dtype=torch.float64,
                  means_init=[[0.0, 0.0], [5.0, 5.0], [-5.0, 4.0], [1.0, 1.0]]),
    "split": dict(n_components=3, covariance_type="full", init="split", max_iter=6,
                  dtype=torch.float64),
}


def _data() -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [6.0, 5.0], [-6.0, 4.0]])
    return centers[rng.integers(0, 3, 3000)] + rng.normal(size=(3000, 2))


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        assert du.is_distributed() and du.world_size() == world and du.rank() == rank
        shard = np.array_split(_data(), world)[rank]
        for name, cfg in CONFIGS.items():
            g = GaussianMixture(**cfg).fit(shard)
            g.save(Path(out) / f"{name}-rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_single_process(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(2, str(tmp_path / "pg-init"), str(tmp_path)), nprocs=2, join=True)
    X = _data()
    for name, cfg in CONFIGS.items():
        single = GaussianMixture(**cfg).fit(X)
        for rank in (0, 1):
            g = GaussianMixture.load(tmp_path / f"{name}-rank{rank}.safetensors")
            for a, b in ((g.weights_, single.weights_), (g.means_, single.means_),
                         (g.covariances_, single.covariances_)):
                torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-8)
            assert g.n_iter_ == single.n_iter_


def test_helpers_are_noops_without_process_group() -> None:
    t = torch.arange(3.0)
    assert du.all_reduce_sum_(t) is t and torch.equal(t, torch.arange(3.0))
    assert du.broadcast_(t) is t
    assert (du.rank(), du.world_size(), du.is_distributed()) == (0, 1, False)
