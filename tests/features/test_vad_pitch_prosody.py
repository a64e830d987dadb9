import numpy as np
import torch

from voxa.features import PROSODY_STAT_NAMES, energy_vad, mfcc, pitch, prosody_statistics
from voxa.features.pipeline import FeatureConfig, extract
from voxa.features.prosody import PROSODY_WINDOW_NAMES, prosody_windows
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


def test_prosody_windows_of_a_tone():
    w = prosody_windows(_tone(150.0, seconds=2.0), 16000)
    assert w.shape == (15, len(PROSODY_WINDOW_NAMES)) == (15, 9)
    cols = dict(zip(PROSODY_WINDOW_NAMES, w.T))
    assert (cols["logf0_mean"] - np.log2(150.0)).abs().max() < 0.1
    assert (cols["voiced_fraction"] > 0.95).all()
    assert (cols["logf0_std"] < 0.05).all() and (cols["logf0_slope"].abs() < 0.1).all()


def test_prosody_windows_of_silence_are_unvoiced():
    w = prosody_windows(torch.zeros(16000), 16000)
    cols = dict(zip(PROSODY_WINDOW_NAMES, w.T))
    assert w.shape[0] > 0 and torch.isfinite(w).all()
    assert (cols["voiced_fraction"] == 0).all()
    for name in ("logf0_mean", "logf0_std", "logf0_range", "logf0_slope"):
        assert (cols[name] == 0).all(), name


def test_prosody_windows_slopes_are_per_second():
    sr = 16000
    t = torch.arange(2 * sr) / sr
    f = 120 * 2 ** (t / 2)  # half an octave per second
    glide = torch.sin(2 * np.pi * torch.cumsum(f, 0) / sr)
    cols = dict(zip(PROSODY_WINDOW_NAMES, prosody_windows(glide, sr).T))
    assert (cols["logf0_slope"] - 0.5).abs().max() < 0.05
    assert (cols["logf0_mean"][1:] > cols["logf0_mean"][:-1]).all()
    ramp = torch.linspace(0.05, 1.0, 2 * sr) * torch.sin(2 * np.pi * 150 * t)
    assert (dict(zip(PROSODY_WINDOW_NAMES, prosody_windows(ramp, sr).T))["energy_slope"] > 0).all()


def test_prosody_windows_of_a_short_utterance_is_one_window():
    assert prosody_windows(_tone(150.0, seconds=0.2), 16000).shape == (1, 9)


def test_prosody_windows_voiced_fraction_follows_a_pause():
    x = torch.cat([_tone(150.0, seconds=1.0), torch.zeros(16000)])
    vf = prosody_windows(x, 16000)[:, PROSODY_WINDOW_NAMES.index("voiced_fraction")]
    assert vf[0] > 0.95 and vf[-1] == 0
    assert (vf[1:] <= vf[:-1] + 1e-6).all()  # falls as the windows slide into the silence


def test_pipeline_prosody_type_has_nine_columns():
    x = _tone(150.0, seconds=1.5)
    feats = extract(x, 16000, FeatureConfig(type="prosody", deltas=0, cmvn=None, vad=False))
    assert feats.shape[1] == 9 and feats.shape[0] > 1
    assert abs(feats[:, 0].mean().item() - np.log2(150.0)) < 0.1
    with_deltas = extract(x, 16000, FeatureConfig(type="prosody", deltas=1, cmvn=None, vad=False))
    assert with_deltas.shape == (feats.shape[0], 18)
