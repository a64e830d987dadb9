"""Shared fixtures for the TSE tests: a small bank of synthetic responses and a noise "speech" pool."""

import numpy as np
import pytest
import soundfile as sf

from voxa.data.manifest import Record
from voxa.tse.bank import RirBank, write_bank

RATE = 8000


def _rir(distance, rng):
    h = np.zeros(800, dtype=np.float32)
    h[int(distance / 343 * RATE)] = 1.0 / max(distance, 0.3)
    tail = rng.standard_normal(800) * np.exp(-np.arange(800) / 200) * 0.05
    return h + tail.astype(np.float32)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("bank")
    rows = []
    for i in range(40):
        d = 0.5 + 0.1 * i
        split = "train" if i % 4 else "test"
        rows.append(({"id": f"r{i:03d}", "group": "room0-mic0", "room_id": 0, "mic_id": 0, "split": split,
                      "room_dim": [7, 8, 3], "rt60": 0.2, "mic": [3.5, 4, 1.1], "src": [0, 0, 0],
                      "distance": d}, _rir(d, rng)))
    return RirBank(write_bank(root, {"preset": "test", "rate": RATE}, rows, shard_size=16))


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(1)
    recs = []
    for s in range(6):
        for u in range(3):
            p = root / f"s{s}_{u}.wav"
            x = rng.standard_normal(RATE * 2) * 0.1 * (1 + np.sin(np.arange(RATE * 2) / 300))
            sf.write(p, x.astype(np.float32), RATE)
            recs.append(Record(id=f"s{s}-{u}", path=str(p), speaker=f"s{s}", duration=2.0))
    return recs
