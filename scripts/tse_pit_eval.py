"""Separation stage check: PIT SI-SDR improvement of a staged run's checkpoint on a fixed mixture set.

The model's two token outputs (voxa.tse.schedule.TOKENS) are scored against the set's two talkers (the
target and the mixture minus it: use an all-present set with talkers >= 1 m apart, so the target is one
talker), in the better of the two assignments.

    python scripts/tse_pit_eval.py models/tse/bandsplit-d1/checkpoint.pt exp/tse/testsets/D1-8k-present
"""
import sys

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
ms = MixtureSet(sys.argv[2])
gains = []
with torch.no_grad():
    for i in range(len(ms)):
        it = ms[i]
        mix = it["mix"].reshape(1, -1)
        outs = two_outputs(m, mix)[0]
        tgt = it["target"].reshape(-1)
        srcs = torch.stack([tgt, mix[0] - tgt])
        base = si_sdr(mix.expand(2, -1).contiguous(), srcs)
        a = si_sdr(outs, srcs) - base
        b = si_sdr(outs.flip(0), srcs) - base
        gains.append(float(torch.maximum(a.mean(), b.mean())))
print(f"step {st['global_step']}: PIT SI-SDRi on {len(gains)} mixtures of {sys.argv[2]}: "
      f"{sum(gains)/len(gains):.2f} dB (min {min(gains):.2f}, max {max(gains):.2f})")
