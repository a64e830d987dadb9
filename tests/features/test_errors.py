"""The feature code's error contract: a bad setting is a ConfigError naming the setting, its value
and the valid range in one line; a bad signal is an AudioError; nothing ends in a bare ValueError,
a traceback or a silent empty matrix."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from voxa.data.manifest import Record
from voxa.errors import AudioError, ConfigError
from voxa.features import (
    add_deltas,
    energy_vad,
    fbank,
    get_window,
    lpc,
    lpcc,
    mel_filterbank,
    mfcc,
    pitch,
    plp,
    sdc,
    spectrogram,
)
from voxa.features.pipeline import FeatureConfig, compute_features, extract
from voxa.features.prosody import prosody_windows
from voxa.features.spectrum import FrameOptions
from voxa.features.store import FeatureReader

X = torch.randn(16000) * 0.1


@pytest.mark.parametrize("call,match", [
    (lambda: mfcc(X, 16000, num_ceps=50), r"num_ceps=50 must be in 1\.\.num_mel_bins \(40\)"),
    (lambda: mfcc(X, 16000, num_ceps=0), r"num_ceps=0 must be an integer >= 1"),
    (lambda: mfcc(X, 16000, deltas=5), r"deltas=5 must be an integer in 0\.\.3"),
    (lambda: mfcc(X, 16000, cepstral_lifter=-1), r"cepstral_lifter=-1 must be >= 0"),
    (lambda: mfcc(X, 16000, high_freq=9000), r"high_freq=9000.*<= 8000 Hz"),
    (lambda: mfcc(X, 16000, mel_scale="bark"), r"mel_scale='bark' is not one of htk, slaney"),
    (lambda: mfcc(X, 16000, window="kaiser"), r"window='kaiser' is not one of"),
    (lambda: mfcc(X, 16000, frame_length_ms=0), r"frame_length_ms=0 must be .*> 0"),
    (lambda: mfcc(X, 16000, frame_lenght_ms=20), r"unknown frame option\(s\): frame_lenght_ms"),
    (lambda: mfcc(X, 16000, n_fft=256), r"n_fft=256 must be >= the frame length \(400"),
    (lambda: mfcc(X, 0), r"sample_rate=0 must be a positive whole number"),
    (lambda: fbank(X, 16000, num_mel_bins=0), r"num_mel_bins=0 must be an integer >= 1"),
    (lambda: fbank(X, 16000, mel_norm="l2"), r"mel_norm='l2' is not one of None, 'slaney'"),
    (lambda: plp(X, 16000, num_ceps=20), r"num_ceps=20 must be in 1\.\.lpc_order \+ 1 \(13\)"),
    (lambda: lpcc(X, 16000, order=0), r"order=0 must be an integer >= 1"),
    (lambda: lpc(X, 16000, order=-2), r"order=-2 must be an integer >= 1"),
    (lambda: pitch(X, 16000, max_f0=9000), r"max_f0=9000 must satisfy .* < 8000 Hz"),
    (lambda: sdc(torch.randn(10, 5)), r"sdc N=7 must be at most the number of cepstra \(5\)"),
    (lambda: add_deltas(torch.randn(10, 3), 2, 0), r"delta window=0 must be an integer in 1\.\.100"),
    (lambda: get_window("hamming", 0), r"window length=0 must be >= 1"),
    (lambda: mel_filterbank(23, 512, 16000, low_freq=9000), r"low_freq=9000"),
    (lambda: FrameOptions(preemphasis=1.5), r"preemphasis=1\.5 must be in \[0, 1\]"),
    (lambda: FrameOptions(dither=-1.0), r"dither=-1\.0 must be >= 0"),
])
def test_bad_settings_are_config_errors_on_one_line(call, match):
    with pytest.raises(ConfigError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("call,match", [
    (lambda: mfcc(torch.randn(2, 3, 16000), 16000), r"expected \[samples\] or \[batch, samples\]"),
    (lambda: mfcc(torch.ones(16000, dtype=torch.complex64), 16000), r"must be real numbers"),
    (lambda: mfcc(torch.full((16000,), float("nan")), 16000), r"NaN or infinite"),
    (lambda: mfcc("not audio", 16000), r"not an array of samples"),
    (lambda: extract(torch.randn(2, 16000), 16000, FeatureConfig()), r"one mono waveform"),
])
def test_bad_signals_are_audio_errors(call, match):
    with pytest.raises(AudioError, match=match):
        call()


@pytest.mark.parametrize("call,n,m", [
    (lambda x: mfcc(x, 16000), 399, 400),
    (lambda x: fbank(x, 16000), 100, 400),
    (lambda x: spectrogram(x, 16000), 0, 400),
    (lambda x: plp(x, 16000), 200, 400),
    (lambda x: lpcc(x, 16000), 200, 400),
    (lambda x: energy_vad(x, 16000), 300, 400),
    (lambda x: pitch(x, 16000)[0], 300, 400),
    (lambda x: prosody_windows(x, 16000), 300, 400),
    (lambda x: mfcc(x, 16000, snip_edges=False), 79, 80),
])
def test_signal_shorter_than_one_frame_raises(call, n, m):
    with pytest.raises(AudioError, match=rf"shorter than one frame \({n} samples < {m}\)"):
        call(torch.randn(n))


def test_exactly_one_frame_is_enough():
    assert mfcc(torch.randn(400), 16000, deltas=2).shape == (1, 39)


@pytest.mark.parametrize("kwargs,match", [
    ({"options": {"num_ceps": 50}}, r"num_ceps=50 must be in 1\.\.num_mel_bins \(40\)"),
    ({"options": {"frame_lenght_ms": 20}}, r"unknown frame option\(s\): frame_lenght_ms"),
    ({"type": "plp", "options": {"num_ceps": 20}}, r"num_ceps=20"),
    ({"type": "prosody", "options": {"bogus": 1}}, r"prosody option\(s\) \['bogus'\]"),
    ({"deltas": 4}, r"deltas=4 must be an integer in 0\.\.3"),
    ({"vad": "yes"}, r"vad='yes' must be true or false"),
    ({"sample_rate": -8000}, r"sample_rate=-8000 must be a positive integer"),
    ({"sdc": (7, 1, 3)}, r"sdc=\[7, 1, 3\] must be four integers"),
    ({"type": "sdc", "sdc": (7, 0, 3, 7)}, r"sdc=\[7, 0, 3, 7\] must be four integers N, d, P, k, each >= 1"),
])
def test_feature_config_checks_its_settings_when_made(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FeatureConfig(**kwargs)
    with pytest.raises(ConfigError, match=match):
        FeatureConfig.from_dict(kwargs)


def test_cli_num_ceps_50_is_a_one_line_error_not_a_traceback(tmp_path, capsys):
    from voxa.cli.main import main

    wav = tmp_path / "a.wav"
    sf.write(wav, (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32), 16000)
    (tmp_path / "manifest.jsonl").write_text(f'{{"id": "a", "path": "{wav}"}}\n')
    rc = main(["features", "compute", str(tmp_path / "manifest.jsonl"), str(tmp_path / "out"),
               "--num-ceps", "50"])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.strip() == "voxa: error: num_ceps=50 must be in 1..num_mel_bins (40)"


def _records(tmp_path, lengths):
    rng = np.random.default_rng(0)
    recs = []
    for i, n in enumerate(lengths):
        p = tmp_path / "wav" / f"u{i}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, (rng.standard_normal(n) * 0.2).astype(np.float32), 16000)
        recs.append(Record(id=f"u{i}", path=str(p)))
    return recs


@pytest.mark.parametrize("fmt", ["kaldi", "voxa"])
def test_batch_path_skips_short_utterances_with_a_warning_and_a_count(tmp_path, caplog, fmt):
    recs = _records(tmp_path, [8000, 120, 8000, 399, 8000])
    cfg = FeatureConfig(vad=False)
    with caplog.at_level(logging.WARNING, logger="voxa.features.pipeline"):
        idx = compute_features(recs, cfg, tmp_path / "f", fmt=fmt, shard_size=2, progress=False)
    assert idx.summary.skipped_ids == ["u1", "u3"]
    assert idx.summary.skipped == 2 and idx.summary.written == 3 and idx.summary.utterances == 5
    assert "u1: skipped, shorter than one frame (120 samples < 400)" in caplog.text
    assert "2 of 5 utterance(s) skipped" in caplog.text
    reader = FeatureReader(idx)
    assert reader.keys() == ["u0", "u2", "u4"]
    assert all(reader[k].shape[0] > 0 for k in reader.keys())  # never an empty matrix
    assert (tmp_path / "f" / "skipped").read_text().split() == ["u1", "120", "u3", "399"]
    lens = (tmp_path / "f" / "utt2num_frames").read_text().split()[::2]
    assert lens == ["u0", "u2", "u4"]
    # a rerun resumes from the complete shards and reports the same skips
    again = compute_features(recs, cfg, tmp_path / "f", fmt=fmt, shard_size=2, progress=False)
    assert again.summary.skipped_ids == ["u1", "u3"]


def test_batch_path_errors_when_every_utterance_is_too_short(tmp_path):
    recs = _records(tmp_path, [100, 300])
    with pytest.raises(AudioError, match=r"all 2 utterance\(s\) are shorter than one analysis frame"):
        compute_features(recs, FeatureConfig(), tmp_path / "f", progress=False)


def test_single_record_short_error_names_the_file(tmp_path):
    from voxa.features.pipeline import extract_record

    rec = _records(tmp_path, [200])[0]
    with pytest.raises(AudioError, match=r"u0\.wav: shorter than one frame \(200 samples < 400\)"):
        extract_record(rec, FeatureConfig())
