import numpy as np
import pytest
import soundfile as sf
import torch

from voxa.audio import info, load, load_segment, resample, save, to_mono
from voxa.errors import AudioError, VoxaError


@pytest.fixture
def stereo_wav(tmp_path):
    x = (np.random.default_rng(0).standard_normal((16000, 2)) * 0.1).astype(np.float32)
    p = tmp_path / "s.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    return p, x


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg"])
def test_save_load_roundtrip_formats(tmp_path, suffix):
    x = 0.5 * torch.sin(torch.arange(8000) / 8000 * 2 * torch.pi * 440).unsqueeze(0)
    p = save(tmp_path / f"a{suffix}", x, 8000)
    y, sr = load(p)
    assert sr == 8000 and y.shape == (1, 8000) and y.dtype == torch.float32
    tol = 0.05 if suffix == ".ogg" else 1e-3
    assert (y - x).abs().max() < tol


def test_load_is_channels_first(stereo_wav):
    p, x = stereo_wav
    y, sr = load(p)
    assert y.shape == (2, 16000)
    assert np.allclose(y.numpy(), x.T)


def test_mono_mixdown(stereo_wav):
    p, x = stereo_wav
    y, _ = load(p, mono=True)
    assert y.shape == (1, 16000) and np.allclose(y[0].numpy(), x.mean(1), atol=1e-6)
    assert torch.equal(to_mono(torch.ones(3, 5)), torch.ones(1, 5))


def test_load_resamples(stereo_wav):
    p, _ = stereo_wav
    y, sr = load(p, sample_rate=8000)
    assert sr == 8000 and y.shape == (2, 8000)


def test_segment_reads_only_the_segment(stereo_wav):
    p, x = stereo_wav
    y, sr = load_segment(p, start=0.25, duration=0.5)
    assert y.shape == (2, 8000)
    assert np.allclose(y.numpy(), x[4000:12000].T)


def test_info_reads_header(stereo_wav):
    p, _ = stereo_wav
    i = info(p)
    assert (i.sample_rate, i.num_frames, i.num_channels) == (16000, 16000, 2)
    assert i.duration == pytest.approx(1.0)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: file not found"):
        load(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    p = tmp_path / "e.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load(p)


def test_not_audio(tmp_path):
    p = tmp_path / "t.wav"
    p.write_text("this is not a wav file at all")
    with pytest.raises(AudioError, match="not a readable audio file"):
        load(p)


def test_truncated_file(tmp_path):
    p = tmp_path / "tr.wav"
    sf.write(p, np.zeros(16000, dtype=np.float32) + 0.1, 16000, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated|not a readable"):
        load(p)


def test_zero_length(tmp_path):
    p = tmp_path / "z.wav"
    sf.write(p, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="zero-length"):
        load(p)


def test_nan_samples(tmp_path):
    p = tmp_path / "n.wav"
    x = np.zeros(100, dtype=np.float32)
    x[10] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        load(p)


def test_wrong_rate(stereo_wav):
    p, _ = stereo_wav
    with pytest.raises(AudioError, match="16000 Hz, expected 8000 Hz"):
        load(p, expect_rate=8000)


def test_audio_error_is_a_voxa_error():
    assert issubclass(AudioError, VoxaError)


def test_save_is_atomic_on_failure(tmp_path):
    with pytest.raises(AudioError):
        save(tmp_path / "bad.wav", torch.tensor([[float("nan")]]), 8000)
    assert list(tmp_path.iterdir()) == []


def test_resample_keeps_a_tone():
    t = torch.arange(16000) / 16000
    x = torch.sin(2 * torch.pi * 1000 * t)
    y = resample(x, 16000, 8000)
    spec = torch.fft.rfft(y[1000:7000]).abs()
    peak_hz = spec.argmax().item() * 8000 / 6000
    assert y.shape == (8000,) and abs(peak_hz - 1000) < 5


def test_float_wav_carries_no_clock_stamp(tmp_path):
    # libsndfile's PEAK chunk holds the time of writing, which would make rewrites differ byte for byte
    x = torch.linspace(-0.5, 0.5, 800)
    raw = save(tmp_path / "f.wav", x, 8000, subtype="FLOAT").read_bytes()
    assert b"PEAK" not in raw
    assert torch.equal(load(tmp_path / "f.wav")[0][0], x)
