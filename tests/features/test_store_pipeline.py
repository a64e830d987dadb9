import json

import numpy as np
import pytest
import soundfile as sf
import torch

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features import mfcc
from voxa.features.pipeline import FeatureConfig, compute_features, extract, extract_record
from voxa.features.store import FeatureReader, write_kaldi_shard, write_voxa_shard


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(5):
        p = tmp_path / "wav" / f"u{i}.wav"
        p.parent.mkdir(exist_ok=True)
        x = np.concatenate([rng.standard_normal(4000) * 1e-4, rng.standard_normal(8000) * 0.2])
        sf.write(p, x.astype(np.float32), 16000)
        recs.append(Record(id=f"u{i}", path=str(p), speaker=f"s{i % 2}"))
    return recs


@pytest.mark.parametrize("writer,index", [(write_kaldi_shard, "a.scp"),
                                          (write_voxa_shard, "a.index.jsonl")])
def test_store_roundtrip(tmp_path, writer, index):
    items = [("x", np.random.rand(7, 3).astype(np.float32)), ("y", np.random.rand(2, 3).astype(np.float32))]
    name = "a.ark" if writer is write_kaldi_shard else "a.safetensors"
    idx = writer(items, tmp_path / name)
    assert idx.name == index
    r = FeatureReader(idx)
    assert r.keys() == ["x", "y"]
    assert np.allclose(r["y"].numpy(), items[1][1])


def test_reader_rejects_a_non_feature_dir(tmp_path):
    with pytest.raises(VoxaError, match="not a feature directory"):
        FeatureReader(tmp_path)


def test_extract_mfcc39_with_vad_drops_the_quiet_start(records):
    feats = extract_record(records[0], FeatureConfig())
    full = mfcc(torch.zeros(12000), 16000)
    assert feats.shape[1] == 39
    assert 40 < feats.shape[0] < full.shape[0]


def test_extract_cmvn_zero_mean(records):
    f = extract_record(records[0], FeatureConfig(vad=False, cmvn="utt"))
    assert f.mean(0).abs().max() < 1e-4


def test_extract_sdc_dims():
    f = extract(torch.randn(16000) * 0.1, 16000, FeatureConfig(type="sdc", vad=False))
    assert f.shape[1] == 56


def test_kaldi_compat_rescales_samples():
    x = torch.randn(16000) * 0.1
    a = extract(x, 16000, FeatureConfig(deltas=0, cmvn=None, vad=False, kaldi_compat=True))
    b = mfcc(x * 32768, 16000, kaldi_compat=True)
    assert torch.allclose(a, b)


def test_bad_config_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown feature type"):
        FeatureConfig(type="mfc")
    with pytest.raises(ConfigError, match="unknown feature setting"):
        FeatureConfig.from_dict({"delta": 2})


@pytest.mark.parametrize("fmt", ["kaldi", "voxa"])
def test_compute_features_writes_index_and_lengths(tmp_path, records, fmt):
    idx = compute_features(records, FeatureConfig(), tmp_path / "f", fmt=fmt, shard_size=2,
                           progress=False)
    r = FeatureReader(idx)
    assert sorted(r.keys()) == [f"u{i}" for i in range(5)]
    lens = dict(line.split() for line in (tmp_path / "f" / "utt2num_frames").read_text().splitlines())
    assert int(lens["u3"]) == r["u3"].shape[0]


def test_compute_features_resumes(tmp_path, records, monkeypatch):
    import voxa.features.pipeline as pl

    calls = {"n": 0}
    real = pl.extract_record

    def flaky(rec, cfg):
        calls["n"] += 1
        if rec.id == "u3":
            raise KeyboardInterrupt  # killed mid-run
        return real(rec, cfg)

    monkeypatch.setattr(pl, "extract_record", flaky)
    with pytest.raises(KeyboardInterrupt):
        compute_features(records, FeatureConfig(), tmp_path / "f", shard_size=2, progress=False)
    assert (tmp_path / "f" / "feats.00000.scp").exists()
    assert not (tmp_path / "f" / "feats.00001.scp").exists()
    assert not (tmp_path / "f" / "feats.scp").exists()
    monkeypatch.setattr(pl, "extract_record", real)
    calls["n"] = 0
    counted = {"n": 0}

    def counting(rec, cfg):
        counted["n"] += 1
        return real(rec, cfg)

    monkeypatch.setattr(pl, "extract_record", counting)
    compute_features(records, FeatureConfig(), tmp_path / "f", shard_size=2, progress=False)
    assert counted["n"] == 3  # the first shard was kept
    assert len(FeatureReader(tmp_path / "f")) == 5


def test_compute_features_refuses_other_settings(tmp_path, records):
    compute_features(records[:1], FeatureConfig(), tmp_path / "f", progress=False)
    with pytest.raises(ConfigError, match="other settings"):
        compute_features(records[:1], FeatureConfig(type="plp"), tmp_path / "f", progress=False)
    assert json.loads((tmp_path / "f" / "config.json").read_text())["features"]["type"] == "mfcc"


def test_missing_audio_names_the_file(tmp_path):
    rec = Record(id="a", path=str(tmp_path / "gone.wav"))
    with pytest.raises(VoxaError, match="gone.wav: file not found"):
        extract_record(rec, FeatureConfig())


def test_baum_welch_stats_stream_from_a_feature_store(tmp_path, records):
    from voxa.features.store import FeatureReader
    from voxa.gmm import GaussianMixture
    from voxa.ivector import baum_welch_stats

    idx = compute_features(records, FeatureConfig(), tmp_path / "f")
    reader = FeatureReader(idx)
    frames = {k: reader[k] for k in reader.keys()}
    ubm = GaussianMixture(4, max_iter=2, random_state=0).fit(torch.cat(list(frames.values())))
    streamed = baum_welch_stats(ubm, reader)
    in_memory = baum_welch_stats(ubm, frames)
    assert streamed.ids == in_memory.ids == list(reader.keys())
    torch.testing.assert_close(streamed.F, in_memory.F)
