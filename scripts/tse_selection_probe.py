"""Is a staged TSE run limited by separation or by selection? Scores, on the present items of fixed mixture
sets, the query output against the model's own two separated (token) outputs.

For each present item: the query output's SI-SDR improvement (what ``voxa tse evaluate`` reports); the
better token output's (the oracle: perfect selection from the model's own separation); the token output
most like the query output (a hard choice); and how often that choice, and a choice by sweeping the query
(each token output's distance = the query in 0.5-5 m whose output is most like it; the one nearer the
asked distance wins), is the right talker.

    python scripts/tse_selection_probe.py models/tse/bandsplit-d1/checkpoint.pt exp/tse/testsets/D1-8k-s{0..4}
"""
import sys

import numpy as np
import torch

from voxa.metrics.separation import si_sdr
from voxa.tasks.tse import build_model, preset
from voxa.tse.data import MixtureSet
from voxa.tse.schedule import two_outputs

torch.set_num_threads(1)
st = torch.load(sys.argv[1], weights_only=True)
m = build_model(preset("cpu"))
m.load_state_dict(st["model"])
m.eval()
grid = torch.arange(0.5, 5.01, 0.25)
query, oracle, hard, right_hard, right_sweep = [], [], [], [], []
for root in sys.argv[2:]:
    ms = MixtureSet(root)
    with torch.no_grad():
        for i in range(len(ms)):
            it = ms[i]
            if not it["present"]:
                continue
            mix, tgt = it["mix"].reshape(1, -1), it["target"].reshape(1, -1)
            y = m(mix, torch.tensor([it["query"]]))
            o = two_outputs(m, mix)[0]
            base = float(si_sdr(mix, tgt))
            gain = si_sdr(o, tgt.expand(2, -1).contiguous()) - base
            k_true = int(gain.argmax())
            k_hard = int(si_sdr(o, y.expand(2, -1).contiguous()).argmax())
            ys = m(mix.expand(len(grid), -1).contiguous(), grid)
            like = torch.stack([si_sdr(ys, o[k].expand(len(grid), -1).contiguous()) for k in range(2)])
            est = grid[like.argmax(dim=1)]
            k_sweep = k_hard if est[0] == est[1] else int((est - it["query"]).abs().argmin())
            query.append(float(si_sdr(y, tgt)) - base)
            oracle.append(float(gain.max()))
            hard.append(float(gain[k_hard]))
            right_hard.append(k_hard == k_true)
            right_sweep.append(k_sweep == k_true)
print(f"step {st['global_step']}, {len(query)} present items of {len(sys.argv) - 2} sets (SI-SDRi, dB, "
      f"mean / median)")
for name, v in (("query output", query), ("better token output (oracle)", oracle),
                ("token output most like the query output", hard)):
    print(f"  {name}: {np.mean(v):.2f} / {np.median(v):.2f}")
print(f"  right talker: by the query output {np.mean(right_hard):.1%}, "
      f"by the sweep {np.mean(right_sweep):.1%}")
