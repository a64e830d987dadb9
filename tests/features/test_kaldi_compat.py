"""voxa's Kaldi mode against kaldi-native-fbank (the oracle), on real speech."""

import glob

import numpy as np
import pytest
import soundfile as sf
import torch

from voxa.features import fbank, mfcc

knf = pytest.importorskip("kaldi_native_fbank", reason="kaldi-native-fbank (dev extra) not installed")


def _knf(kind, x_int16_scale, sr, **mel):
    opts = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = sr
    for k, v in mel.items():
        setattr(opts.mel_opts, k, v)
    comp = knf.OnlineMfcc(opts) if kind == "mfcc" else knf.OnlineFbank(opts)
    comp.accept_waveform(sr, x_int16_scale.tolist())
    comp.input_finished()
    return np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])


def _close(ref, ours):
    assert ref.shape == ours.shape
    rng = ref.max() - ref.min()
    assert np.abs(ref - ours).max() <= 1e-3 * rng


def _real_speech(root):
    files = sorted(glob.glob(str(root / "librispeech/LibriSpeech/test-other/*/*/*.flac")))[:2]
    files += sorted(glob.glob(str(root / "fsdd/recordings/*.wav")))[:2]
    if not files:
        pytest.skip("no LibriSpeech/FSDD audio under ../shared/data")
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        yield x * 32768.0, sr


@pytest.mark.parametrize("kind", ["mfcc", "fbank"])
def test_kaldi_mode_matches_kaldi_native_fbank_on_real_speech(shared_data_dir, kind):
    func = mfcc if kind == "mfcc" else fbank
    for x, sr in _real_speech(shared_data_dir):
        ours = func(torch.from_numpy(x), sr, kaldi_compat=True).numpy()
        _close(_knf(kind, x, sr), ours)


def test_kaldi_mode_matches_with_more_bins():
    rng = np.random.default_rng(1)
    x = (np.cumsum(rng.standard_normal(16000)) * 50).astype(np.float32)
    ours = fbank(torch.from_numpy(x), 16000, kaldi_compat=True, num_mel_bins=80).numpy()
    _close(_knf("fbank", x, 16000, num_bins=80), ours)


def test_voxa_mode_differs_from_kaldi_mode_only_by_window():
    x = torch.randn(16000) * 1000
    a = mfcc(x, 16000, kaldi_compat=True)
    b = mfcc(x, 16000, num_mel_bins=23, window="povey")
    assert torch.allclose(a, b)
