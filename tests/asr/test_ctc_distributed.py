"""RNN-CTC training over two gloo ranks (DDP through the shared trainer) equals one process.

The CTC loss is the batch mean of per-utterance negative log-likelihoods, so DDP's average of two
per-rank means over B utterances is the single process's mean over 2B; the BLSTM has no dropout and no
batch statistics, and padding never reaches the recurrence, so the weights agree up to float summation
order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from voxa.asr.ctc_model import CtcTrainConfig, train_ctc
from voxa.nn.trainer import TrainerConfig

PER_RANK_BATCH = 2
WORLD = 2
VOCAB = ["<blank>", "a", "b", "c"]


def _data():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 5, generator=g) * 2
    feats, targets = {}, {}
    for i in range(10):
        y = torch.randint(1, 4, (3,), generator=g)
        frames = torch.cat([centres[0].expand(2, 5)] + [torch.cat([centres[int(t)].expand(4, 5),
                                                                   centres[0].expand(2, 5)]) for t in y])
        feats[f"u{i}"] = frames + 0.2 * torch.randn(frames.shape, generator=g)
        targets[f"u{i}"] = y.tolist()
    return feats, targets


def _cfg(batch_size: int) -> CtcTrainConfig:
    return CtcTrainConfig(model={"hidden": 6, "layers": 1, "dropout": 0.0}, valid_fraction=0.2,
                          trainer=TrainerConfig(epochs=2, batch_size=batch_size, lr=1e-2, progress=False,
                                                amp=False, checkpoint_every=0, seed=1))


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        feats, targets = _data()
        train_ctc(feats, targets, VOCAB, _cfg(PER_RANK_BATCH), Path(out) / "exp-ddp")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters importing torch
def test_two_gloo_ranks_train_the_same_ctc_weights_as_one_process(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(WORLD, str(tmp_path / "pg-init"), str(tmp_path)), nprocs=WORLD, join=True)
    feats, targets = _data()
    train_ctc(feats, targets, VOCAB, _cfg(WORLD * PER_RANK_BATCH), tmp_path / "exp-single")
    s = torch.load(tmp_path / "exp-single" / "checkpoint.pt", weights_only=True)
    d = torch.load(tmp_path / "exp-ddp" / "checkpoint.pt", weights_only=True)
    assert d["global_step"] == s["global_step"] == 2 * (8 // (WORLD * PER_RANK_BATCH))
    for k in s["model"]:
        torch.testing.assert_close(d["model"][k], s["model"][k], atol=1e-5, rtol=1e-4, msg=k)
    # it did train: the weights moved from their seeded start
    from voxa.asr.ctc_model import CtcConfig, CtcModel

    torch.manual_seed(1)
    start = CtcModel(CtcConfig(input_dim=5, vocab=VOCAB, hidden=6, layers=1, dropout=0.0)).state_dict()
    assert max(float((start[k] - s["model"][k]).abs().max()) for k in start if "feat" not in k) > 1e-3
