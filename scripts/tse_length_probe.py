"""Does a TSE model trained on short mixtures lose on longer ones? Scores, on the present items of fixed
mixture sets, the SI-SDR improvement of the whole output and of its first and second halves (each half
scored on its own, from the one whole-length forward pass).

A model that keeps its selection over the whole mixture scores the halves alike; one trained on 1 s and
tested on 2 s mixtures that loses the talker after its training length scores the second half lower.

    python scripts/tse_length_probe.py MODEL.safetensors exp/tse/testsets/D1-8k-s{0..4}
"""
import sys

import numpy as np
import torch

from voxa.metrics.separation import si_sdr
from voxa.tasks.tse import extract, load_tse_model
from voxa.tse.data import MixtureSet

torch.set_num_threads(1)
model, _ = load_tse_model(sys.argv[1])
rows = []
for root in sys.argv[2:]:
    ms = MixtureSet(root)
    for i in range(len(ms)):
        it = ms[i]
        if not it["present"]:
            continue
        mix, tgt = it["mix"], it["target"]
        est = extract(model, mix, ms.rate, it["query"])
        n = mix.numel()
        row = []
        for a, b in ((0, n), (0, n // 2), (n // 2, n)):
            row.append(float(si_sdr(est[a:b], tgt[a:b]) - si_sdr(mix[a:b], tgt[a:b])))
        rows.append(row)
a = np.array(rows)
for name, k in (("whole", 0), ("first half", 1), ("second half", 2)):
    print(f"{name:12s} SI-SDRi mean {a[:, k].mean():6.2f} dB, median {np.median(a[:, k]):6.2f} dB")
print(f"{len(a)} present items")
