"""Write a staged TSE run's checkpoint as a model file that ``voxa tse evaluate`` and ``ship`` read.

    python scripts/tse_export.py models/tse/bandsplit-d1/checkpoint.pt exp/tse/bandsplit-d1/step.safetensors
    python scripts/tse_export.py exp/tse/lstm-deg-d1/checkpoint.pt exp/tse/lstm-deg-d1/step.safetensors \
        lstm-deg-cpu

The optional third argument names the run's preset (default ``cpu``).
"""
import sys

import torch

from voxa.tasks.tse import build_model, preset, save_tse_model
from voxa.utils.config import to_dict

st = torch.load(sys.argv[1], weights_only=True)
name = sys.argv[3] if len(sys.argv) > 3 else "cpu"
p = preset(name)
m = build_model(p)
m.load_state_dict(st["model"])
card = {"preset": name, "step": int(st.get("global_step", 0)), "extra": st.get("extra", {})}
print(save_tse_model(sys.argv[2], m.eval(), p.mixing, card, to_dict(p)), "step", card["step"])
