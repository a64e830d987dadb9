import math

import numpy as np
import pytest
import torch

from voxa.errors import AudioError, ConfigError
from voxa.features import fbank, frame_signal, get_window, mel_filterbank, mfcc, num_frames, spectrogram
from voxa.features.framing import preemphasize_frames
from voxa.features.mfcc import dct_matrix


def test_num_frames_snip_edges():
    assert num_frames(16000, 400, 160) == 98
    assert num_frames(399, 400, 160) == 0
    assert num_frames(torch.tensor([16000, 400]), 400, 160).tolist() == [98, 1]


def test_num_frames_without_snip_edges_matches_frames():
    x = torch.arange(1000.0).unsqueeze(0)
    f = frame_signal(x, 400, 160, snip_edges=False)
    assert f.shape[1] == num_frames(1000, 400, 160, snip_edges=False) == 6
    # reflection at the start: sample -1 is sample 0, sample -2 is sample 1
    assert f[0, 0, 119].item() == 0.0 and f[0, 0, 118].item() == 1.0


def test_frames_are_strided_copies_of_the_signal():
    x = torch.arange(20.0).unsqueeze(0)
    f = frame_signal(x, 5, 3)
    assert f.shape == (1, 6, 5)
    assert torch.equal(f[0, 2], torch.arange(6.0, 11.0))


def test_preemphasis_matches_kaldi_definition():
    f = torch.tensor([[1.0, 2.0, 4.0]])
    assert torch.allclose(preemphasize_frames(f, 0.97), torch.tensor([[0.03, 1.03, 2.06]]))


@pytest.mark.parametrize("name", ["hamming", "hann", "povey", "rectangular", "blackman"])
def test_windows_are_symmetric(name):
    w = get_window(name, 400)
    assert torch.allclose(w, w.flip(0), atol=1e-6)
    assert w.max() <= 1.0 + 1e-6


def test_hamming_matches_numpy():
    assert np.allclose(get_window("hamming", 400).numpy(), np.hamming(400), atol=1e-6)


def test_unknown_window():
    with pytest.raises(ConfigError, match="window='kaiser' is not one of hamming"):
        get_window("kaiser", 10)


def test_slaney_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(40, 512, 16000, 0.0, 8000.0, scale="slaney", norm="slaney").T.numpy()
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=40, fmin=0.0, fmax=8000.0)
    assert np.abs(ours - ref).max() < 1e-6


def test_htk_filterbank_peaks_at_centres():
    fb = mel_filterbank(23, 512, 16000)
    assert fb.shape == (257, 23)
    assert fb.max() <= 1.0 and fb.min() >= 0.0
    assert (fb.sum(0) > 0).all()  # no empty triangle
    assert fb[-1].sum() == 0  # Nyquist bin outside every triangle (Kaldi)


def test_dct_is_orthonormal():
    d = dct_matrix(23, 23)
    assert torch.allclose(d.T @ d, torch.eye(23), atol=1e-5)


def test_mfcc_shapes_and_dtype():
    x = torch.randn(3, 8000)
    assert mfcc(x, 8000).shape == (3, 98, 13)
    assert mfcc(x, 8000, deltas=2).shape == (3, 98, 39)
    assert mfcc(x[0], 8000).dtype == torch.float32


def test_mfcc_c0_is_log_energy():
    x = torch.randn(16000)
    c = mfcc(x, 16000)
    frame = x[:400] - x[:400].mean()
    assert c[0, 0].item() == pytest.approx(math.log(float(frame.pow(2).sum())), rel=1e-4)


def test_batched_equals_single():
    x = torch.randn(2, 12000)
    both = mfcc(x, 16000, deltas=2)
    assert torch.allclose(both[1], mfcc(x[1], 16000, deltas=2), atol=1e-4)


def test_dither_is_seeded():
    x = torch.zeros(4000)
    a = fbank(x, 8000, dither=1e-3, seed=3)
    b = fbank(x, 8000, dither=1e-3, seed=3)
    c = fbank(x, 8000, dither=1e-3, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_fbank_tone_energy_in_the_right_band():
    t = torch.arange(16000) / 16000
    fb = fbank(torch.sin(2 * torch.pi * 1000 * t), 16000, num_mel_bins=40)
    centres = mel_filterbank(40, 512, 16000).argmax(0) * 16000 / 512
    best = fb.mean(0).argmax().item()
    assert abs(centres[best].item() - 1000) < 150


def test_spectrogram_shape():
    assert spectrogram(torch.randn(16000), 16000).shape == (98, 257)


def test_frame_option_typo_is_an_error():
    with pytest.raises(ConfigError, match="unknown frame option.*frame_lenght_ms"):
        mfcc(torch.randn(8000), 8000, frame_lenght_ms=20)


def test_short_input_is_an_audio_error_not_an_empty_matrix():
    with pytest.raises(AudioError, match=r"shorter than one frame \(100 samples < 400\)"):
        mfcc(torch.randn(100), 16000, deltas=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_gpu_matches_cpu():
    x = torch.randn(2, 16000)
    assert torch.allclose(mfcc(x.cuda(), 16000, deltas=2).cpu(), mfcc(x, 16000, deltas=2), atol=1e-3)
