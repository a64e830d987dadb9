"""Mixtures per second of voxa's on-the-fly TSE loader, beside one training step of the extraction model.

    python benchmarks/tse_loader.py --bank exp/banks/D1 [--speech DATA] [--rate 8000] [--seconds 2]
           [--batch 4] [--workers 0 1 2]

Builds a small D1 bank if --bank is absent. The loader must never be the bottleneck: the script
prints mixtures/s for each worker count and, when voxa.tse.models is importable, the seconds of a
training step of the `cpu` preset's model on the same batch, and the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--bank", default=None)
    ap.add_argument("--speech", default=str(root.parent / "shared/data/librispeech/LibriSpeech"))
    ap.add_argument("--rate", type=int, default=8000)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    args = ap.parse_args()

    from voxa.data.corpora import prepare
    from voxa.tse.data import MixtureConfig, MixtureDataset, collate, speech_pools

    bank = args.bank
    if bank is None:
        from voxa.tse.sim.presets import build_bank

        bank = str(root / "exp/bench/D1-small")
        build_bank("D1", bank, size=300, rate=args.rate, seed=0)
    recs = prepare("librispeech", args.speech, root / "exp/bench/librispeech")
    pools = speech_pools(recs)
    cfg = MixtureConfig(seconds=args.seconds, rate=args.rate, r_spk=0.5)
    for preload in (False, True):
        ds = MixtureDataset(bank, "train", pools["train"], cfg, length=args.count, preload=preload)
        for w in args.workers:
            dl = DataLoader(ds, batch_size=args.batch, num_workers=w, collate_fn=collate)
            t0 = time.perf_counter()
            n = sum(b["mix"].shape[0] for b in dl)
            dt = time.perf_counter() - t0
            print(f"preload={preload!s:<5} workers={w}: {n / dt:8.1f} mixtures/s "
                  f"({args.seconds:g} s at {args.rate} Hz, batch {args.batch})")
    try:
        from voxa.tasks.tse import build_model
        from voxa.tse.losses import tse_loss
    except ImportError:
        print("voxa.tse.models not available yet: no training-step comparison")
        return
    model = build_model("cpu")
    batch = collate([ds[i] for i in range(args.batch)])
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(3):
        t0 = time.perf_counter()
        est = model(batch["mix"], batch["query"])
        loss = tse_loss(est, batch["target"], batch["mix"], batch["present"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step = time.perf_counter() - t0
    print(f"training step of the cpu preset on this batch: {step:.3f} s "
          f"= {args.batch / step:.1f} mixtures/s consumed")


if __name__ == "__main__":
    main()
