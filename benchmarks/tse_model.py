"""TSE training step: the band-split ``cpu`` model against the DQ/TS model it replaces, side by side.

Each model runs in its own subprocess (so each peak RSS is its own): forward, backward and an Adam
step on random 8 kHz input of the ``cpu`` preset's shape (batch 8 x 1 s), after one warm-up step;
the median of ``--steps`` steps is reported with the peak RSS.

    python benchmarks/tse_model.py [--threads 1] [--steps 5] [--busy]

``--busy`` keeps the other core busy with a spinning process while timing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import subprocess
import sys
import time

MODELS = {
    "bandsplit (cpu preset)": ("bandsplit", {"dim": 32, "hidden": 32, "n_dq": 2, "n_ts": 2, "n_bands": 14,
                                             "query_fusion": "film"}),
    "dqts D=H=32 2+2 (old cpu preset)": ("dqts", {"dim": 32, "hidden": 32, "n_dq": 2, "n_ts": 2,
                                                  "forget_bias": 3.0}),
}


def _one(name: str, threads: int, steps: int, batch: int, seconds: float) -> dict:
    import torch

    from voxa.tse.models import MODELS as REG
    from voxa.tse.models import StftConfig

    torch.set_num_threads(threads)
    kind, kw = MODELS[name]
    cls, cfg_cls = REG[kind]
    model = cls(cfg_cls(**kw, stft=StftConfig(rate=8000)))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(batch, int(8000 * seconds), generator=g) * 0.05
    tgt = torch.randn(batch, int(8000 * seconds), generator=g) * 0.05
    q = torch.rand(batch, generator=g) * 3 + 0.5
    fwd, step = [], []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        out = model(mix, q)
        loss = (out - tgt).pow(2).mean()
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i:  # the first step warms caches and the allocator
            fwd.append(t1 - t0)
            step.append(t2 - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {"parameters": sum(p.numel() for p in model.parameters()), "forward_s": statistics.median(fwd),
            "step_s": statistics.median(step), "peak_rss_mib": rss}


def _spin() -> None:
    while True:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--busy", action="store_true", help="keep the other core busy while timing")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_one(args.child, args.threads, args.steps, args.batch, args.seconds)))
        return
    spinner = None
    if args.busy:
        spinner = mp.Process(target=_spin, daemon=True)
        spinner.start()
    print(f"torch threads: {args.threads}; batch {args.batch} x {args.seconds} s at 8 kHz; "
          f"other core {'busy' if args.busy else 'idle'}")
    rows = {}
    try:
        for name in MODELS:
            out = subprocess.run([sys.executable, __file__, "--child", name, "--threads", str(args.threads),
                                  "--steps", str(args.steps), "--batch", str(args.batch),
                                  "--seconds", str(args.seconds)], capture_output=True, text=True, check=True)
            rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
            r = rows[name]
            print(f"{name:34s} {r['parameters']:>9,d} params  forward {r['forward_s']:.3f} s  "
                  f"step {r['step_s']:.3f} s  peak RSS {r['peak_rss_mib']:.0f} MiB")
    finally:
        if spinner is not None:
            spinner.terminate()
    new, old = (rows[n]["step_s"] for n in MODELS)
    print(f"speedup vs dqts-cpu: {old / new:.1f}")


if __name__ == "__main__":
    main()
