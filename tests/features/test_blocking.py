"""Frames are computed in blocks (so time and memory are linear in length): a long signal's
features must equal those of one block-free pass, and those of a short piece cut from it."""

import glob
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import voxa.features.spectrum as spectrum
from voxa.features import energy_vad, fbank, lpcc, mfcc, plp, spectrogram
from voxa.features.pitch import nccf


def _long_signal(root: Path, seconds: float = 60.0) -> torch.Tensor:
    """LibriSpeech utterances end to end (real speech, silences and all), else seeded noise."""
    files = sorted(glob.glob(str(root / "librispeech/LibriSpeech/test-other/*/*/*.flac")))
    parts, total = [], 0
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        if sr != 16000:
            continue
        parts.append(x)
        total += len(x)
        if total >= seconds * 16000:
            break
    if total < seconds * 16000:
        rng = np.random.default_rng(0)
        t = np.arange(int(seconds * 16000)) / 16000
        parts = [(0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)]
    return torch.from_numpy(np.concatenate(parts)[: int(seconds * 16000)])


@pytest.fixture(scope="module")
def long_signal():
    root = Path(os.environ.get("VOXA_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
    return _long_signal(root)


def _one_pass(monkeypatch, fn):
    with monkeypatch.context() as m:
        m.setattr(spectrum, "BLOCK_FRAMES", 10**9)
        return fn()


CASES = {
    "mfcc39": lambda x: mfcc(x, 16000, deltas=2),
    "mfcc kaldi, no snip": lambda x: mfcc(x * 32768, 16000, kaldi_compat=True, snip_edges=False),
    "fbank + energy": lambda x: fbank(x, 16000, use_energy=True, raw_energy=False),
    "spectrogram": lambda x: spectrogram(x, 16000),
    "plp": lambda x: plp(x, 16000),
    "lpcc": lambda x: lpcc(x, 16000),
    "mfcc batch of 2, dither": lambda x: mfcc(torch.stack([x, x.flip(0)]), 16000, dither=1e-4),
}


@pytest.mark.parametrize("name", list(CASES))
def test_long_signal_blocked_equals_one_block_free_pass(monkeypatch, long_signal, name):
    fn = CASES[name]
    blocked = fn(long_signal)
    assert blocked.shape[-2] > 10 * spectrum.BLOCK_FRAMES  # many blocks were taken
    whole = _one_pass(monkeypatch, lambda: fn(long_signal))
    scale = float(whole.abs().max())
    torch.testing.assert_close(blocked, whole, rtol=1e-5, atol=1e-5 * scale)


def test_piece_of_a_long_signal_matches_the_long_signals_frames(long_signal):
    """Static features of a piece straddling a block boundary, computed in one short pass, equal
    the long signal's frames there."""
    shift, length = 160, 400
    t0 = 3 * spectrum.BLOCK_FRAMES - 7  # crosses the boundary of the third block
    n = 20
    long = mfcc(long_signal, 16000)
    piece = long_signal[t0 * shift: t0 * shift + length + (n - 1) * shift]
    short = mfcc(piece, 16000)
    assert short.shape[0] == n
    torch.testing.assert_close(long[t0:t0 + n], short, rtol=1e-5, atol=1e-4)


def test_vad_and_pitch_are_blocked_too(monkeypatch, long_signal):
    x = long_signal[: 20 * 16000]
    v = energy_vad(x, 16000)
    assert torch.equal(v, _one_pass(monkeypatch, lambda: energy_vad(x, 16000)))
    r = nccf(x, 16000, 270, 400, 160, 400)
    torch.testing.assert_close(r, _one_pass(monkeypatch, lambda: nccf(x, 16000, 270, 400, 160, 400)))
