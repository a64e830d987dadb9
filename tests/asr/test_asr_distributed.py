"""Monophone training over two gloo ranks, each with half of the utterances, equals one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from voxa.asr.acoustic import AcousticModel
from voxa.asr.training import MonoConfig, train_mono

_MEANS = {"a": 2.0, "b": -2.0}


def _corpus() -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    g = torch.Generator().manual_seed(0)
    texts, feats = {}, {}
    for i, words in enumerate([["a", "b"], ["b", "a"], ["a"], ["b", "b"], ["a", "a", "b"], ["b"]] * 2):
        sil = [torch.zeros(8, 2)]
        x = torch.cat(sil + [torch.full((10 + i % 3, 2), _MEANS[w]) for w in words] + sil)
        feats[f"u{i:02d}"] = x + 0.4 * torch.randn(x.shape, generator=g)
        texts[f"u{i:02d}"] = words
    return feats, texts


_PRONS = {"a": [(("a",), 1.0)], "b": [(("b",), 1.0)]}


def _cfg() -> MonoConfig:
    return MonoConfig(num_iters=5, max_gaussians=16, mixup_iters=4, silence_states=3)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        feats, texts = _corpus()
        mine = sorted(texts)[rank::world]
        am = train_mono({k: feats[k] for k in mine}, {k: texts[k] for k in mine}, _PRONS, _cfg(),
                        progress=False)
        am.save(Path(out) / f"rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_train_the_single_process_model(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    os.environ.pop("MASTER_ADDR", None)
    mp.spawn(_worker, args=(2, str(tmp_path / "pg-init"), str(tmp_path)), nprocs=2, join=True)
    feats, texts = _corpus()
    single = train_mono(feats, texts, _PRONS, _cfg(), progress=False)
    for rank in (0, 1):
        am = AcousticModel.load(tmp_path / f"rank{rank}.safetensors")
        assert am.num_gaussians == single.num_gaussians
        torch.testing.assert_close(am.means, single.means, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(am.log_weights, single.log_weights, atol=1e-4, rtol=1e-4)
