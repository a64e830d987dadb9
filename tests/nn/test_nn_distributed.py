"""train_classifier over two gloo ranks (DDP, each rank half of every batch) equals one process.

Both ranks get the whole training set; the Trainer's EpochSampler gives rank r the items ``r::2`` of the
epoch's permutation, so at step k the two per-rank batches of ``B`` items are exactly the single
process's batch k of ``2B`` items, and DDP's gradient average of two batch means is the mean over
``2B``. The model is the frame DNN: layer norm and no dropout, so nothing in its forward depends on
which items share a batch (batch norm would: its training statistics are per rank), and the same
weights follow up to float summation order.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from voxa.tasks.neural import NeuralConfig, train_classifier

PER_RANK_BATCH = 4
WORLD = 2


def _data():
    g = torch.Generator().manual_seed(0)
    feats, ids, labels = {}, [], []
    for c, name in enumerate(["aa", "bb"]):
        for k in range(16):
            t = int(torch.randint(15, 31, (1,), generator=g))
            u = f"{name}{k:02d}"
            feats[u] = torch.randn(t, 4, generator=g) + (1.5 if c else -1.5) * torch.eye(1, 4)
            ids.append(u)
            labels.append(name)
    return feats, ids, labels


def _cfg(batch_size: int) -> NeuralConfig:
    # crops of varied length: per-rank batches pad to their own longest item, the single batch to the
    # longest of both, so this also checks that padding stays inert under DDP
    return NeuralConfig.from_dict({
        "system": "dnn", "model": {"hidden": 8, "layers": 1, "context": 1}, "crop": [10, 20],
        "valid_fraction": 0.25,
        "trainer": {"epochs": 3, "batch_size": batch_size, "lr": 1e-2, "progress": False, "amp": False,
                    "checkpoint_every": 0, "seed": 3}})


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        feats, ids, labels = _data()
        # one folder shared by the ranks, as under torchrun: rank 0 writes it, and every rank reads the
        # best model back only after the trainer's closing barrier
        model = train_classifier(feats, ids, labels, _cfg(PER_RANK_BATCH), Path(out) / "exp-ddp")
        torch.save(model.state_dict(), Path(out) / f"returned-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _valid_losses(path: Path) -> list[float]:
    with open(path, newline="") as f:
        return [float(r["valid_loss"]) for r in csv.DictReader(f)]


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        # only the float summation order differs (measured: 3e-8 after 9 steps)
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


@pytest.mark.slow  # ~20 s: two spawned interpreters importing torch
def test_two_gloo_ranks_train_the_same_weights_as_one_process(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(WORLD, str(tmp_path / "pg-init"), str(tmp_path)), nprocs=WORLD, join=True)

    feats, ids, labels = _data()
    single = train_classifier(feats, ids, labels, _cfg(WORLD * PER_RANK_BATCH), tmp_path / "exp-single")
    s_ckpt = torch.load(tmp_path / "exp-single" / "checkpoint.pt", weights_only=True)
    d_ckpt = torch.load(tmp_path / "exp-ddp" / "checkpoint.pt", weights_only=True)
    assert d_ckpt["global_step"] == s_ckpt["global_step"] == 3 * 24 // (WORLD * PER_RANK_BATCH)
    assert single.training_summary["n_fit"] == 24

    # final weights against the single process
    _close(d_ckpt["model"], s_ckpt["model"])
    # the best model (chosen on the same validation losses) that train_classifier returns, on both ranks
    for rank in range(WORLD):
        _close(torch.load(tmp_path / f"returned-rank{rank}.pt", weights_only=True), single.state_dict())
    v_single, v_ddp = (_valid_losses(tmp_path / e / "train_log.csv") for e in ("exp-single", "exp-ddp"))
    assert len(v_single) == 3
    torch.testing.assert_close(torch.tensor(v_ddp), torch.tensor(v_single), atol=1e-5, rtol=1e-5)
    # it did train: the weights moved from their seeded start
    torch.manual_seed(3)
    from voxa.nn.models import build_model

    start = build_model("dnn", 4, 2, hidden=8, layers=1, context=1).state_dict()
    assert max(float((start[k] - s_ckpt["model"][k]).abs().max()) for k in start) > 1e-3
