"""Which query fusion lets the band-split model use its query soonest? (issue 13, item 1)

Two fixed synthetic two-talker mixtures (tests/tse/test_models.py's), each queried at both talkers'
distances: the same input with two targets, so only a model that reads the query can fit both. For each
fusion (``append``: the paper's extra step at the end; ``ends``: one at each end; ``film``: scale and shift
of every step, identity at the start) and seed, the band-split model (D = H = 16, 1 DQ + 1 TS) trains with
Adam 3e-3; printed: the training loss and the query margin (SI-SDR to the right talker minus to the other,
worst of the 4 outputs) at fixed steps.

    python scripts/tse_query_fusion_probe.py [--steps 150] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tse"))
from test_models import _two_talker_items  # noqa: E402

from voxa.metrics.separation import si_sdr  # noqa: E402
from voxa.tse.losses import tse_loss  # noqa: E402
from voxa.tse.models import BandSplitConfig, BandSplitModel, StftConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--every", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mix, tgt, q = _two_talker_items()
    other = tgt[[1, 0, 3, 2]]
    present = torch.ones(4, dtype=torch.bool)
    marks = range(args.every, args.steps + 1, args.every)
    print("fusion  seed  " + "  ".join(f"step {s:4d}: loss / margin" for s in marks))
    for fusion in ("append", "ends", "film"):
        for seed in args.seeds:
            torch.manual_seed(seed)
            m = BandSplitModel(BandSplitConfig(dim=16, hidden=16, n_dq=1, n_ts=1, query_fusion=fusion,
                                               stft=StftConfig(rate=8000)))
            opt = torch.optim.Adam(m.parameters(), 3e-3)
            cells = []
            for step in range(1, args.steps + 1):
                loss = tse_loss(m(mix, q), tgt, mix, present)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
                opt.step()
                if step % args.every == 0:
                    with torch.no_grad():
                        y = m(mix, q)
                        margin = float((si_sdr(y, tgt) - si_sdr(y, other)).min())
                        cells.append(f"{float(tse_loss(y, tgt, mix, present)):6.2f} / {margin:6.2f}")
            print(f"{fusion:6s}  {seed:4d}  " + "            ".join(cells), flush=True)


if __name__ == "__main__":
    main()
