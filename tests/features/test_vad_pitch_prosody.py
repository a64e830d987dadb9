import numpy as np
import torch

from voxa.features import PROSODY_STAT_NAMES, energy_vad, mfcc, pitch, prosody_statistics
from voxa.features.vad import vad_from_log_energy


def test_vad_marks_the_loud_half():
    x = torch.cat([torch.randn(8000) * 1e-4, torch.randn(8000) * 0.3])
    v = energy_vad(x, 16000)
    assert not v[:45].any() and v[-45:].all()


def test_vad_frames_align_with_mfcc():
    x = torch.randn(12345)
    assert energy_vad(x, 16000).shape[0] == mfcc(x, 16000).shape[0]


def test_vad_context_removes_isolated_frames():
    e = torch.zeros(21)
    e[10] = 100.0
    assert not vad_from_log_energy(e, context=2, proportion=0.6).any()
    assert vad_from_log_energy(e, context=0)[10]


def _tone(f0, sr=16000, seconds=1.0):
    t = torch.arange(int(sr * seconds)) / sr
    w = 2 * np.pi * f0 * t
    return torch.sin(w) + 0.5 * torch.sin(2 * w) + 0.3 * torch.sin(3 * w)


def test_pitch_of_harmonic_tones():
    for f0 in (90.0, 180.0, 350.0):
        p, v = pitch(_tone(f0), 16000)
        mid = p[10:-10]
        assert (mid > 0).all()
        assert (mid - f0).abs().max() < 0.02 * f0


def test_pitch_of_noise_is_unvoiced():
    p, v = pitch(torch.randn(16000), 16000)
    assert (p > 0).float().mean() < 0.1


def test_pitch_follows_a_glide():
    sr = 16000
    t = torch.arange(sr) / sr
    f = 120 + 60 * t
    x = torch.sin(2 * np.pi * torch.cumsum(f, 0) / sr)
    p, _ = pitch(x, sr)
    assert p[80] > p[20] + 30


def test_pitch_batched_and_aligned():
    x = torch.stack([_tone(100.0), _tone(200.0)])
    p, v = pitch(x, 16000)
    assert p.shape == (2, mfcc(x[0], 16000).shape[0])
    assert p[1, 50] > 1.9 * p[0, 50]


def test_prosody_statistics_of_a_tone_with_a_pause():
    x = torch.cat([_tone(150.0, seconds=0.5), torch.zeros(8000), _tone(150.0, seconds=0.5)])
    s = dict(zip(PROSODY_STAT_NAMES, prosody_statistics(x, 16000).tolist()))
    assert abs(s["f0_mean"] - 150) < 3
    assert 0.5 < s["voiced_fraction"] < 0.75
    assert 0.4 < s["pause_mean_s"] < 0.6
    assert abs(s["duration_s"] - 1.5) < 0.05
