from collections import Counter

import numpy as np
import pytest
import torch

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.pipeline import FeatureConfig
from voxa.nn.data import (
    Augment,
    BalancedDataset,
    ClassBalancedSampler,
    LengthBucketSampler,
    UtteranceDataset,
    WaveformDataset,
    class_balanced_weights,
    collate_padded,
    length_batches,
    padding_fraction,
)


def _feats(n=20, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(5, 200, (n,), generator=g).tolist()
    return {f"u{i:02d}": torch.randn(t, dim, generator=g) for i, t in enumerate(lengths)}


def test_crops_are_deterministic_per_seed_and_epoch_and_within_bounds():
    feats = _feats()
    ids = sorted(feats)
    ds = UtteranceDataset(feats, ids, [0] * len(ids), crop=(20, 50), seed=7)

    def epoch(e, d=ds):
        d.set_epoch(e)
        return [d[i][0] for i in range(len(d))]

    a, b, c = epoch(1), epoch(1), epoch(2)
    other = UtteranceDataset(feats, ids, [0] * len(ids), crop=(20, 50), seed=8)
    d = epoch(1, other)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, y) for x, y in zip(a, c))
    assert any(not torch.equal(x, y) for x, y in zip(a, d))
    for u, x in zip(ids, a + c):
        full = feats[u]
        if full.shape[0] < 20:
            assert torch.equal(x, full)  # too short to crop: whole
        else:
            assert 20 <= x.shape[0] <= min(50, full.shape[0])
    # a crop is a contiguous piece of its utterance
    x, u = a[0], feats[ids[0]]
    starts = [s for s in range(u.shape[0] - x.shape[0] + 1) if torch.equal(u[s:s + x.shape[0]], x)]
    assert starts


def test_bad_crop_and_mismatched_labels_raise_one_line_errors():
    feats = _feats(2)
    with pytest.raises(ConfigError):
        UtteranceDataset(feats, sorted(feats), [0, 1], crop=(50, 10))
    with pytest.raises(VoxaError):
        UtteranceDataset(feats, sorted(feats), [0])
    with pytest.raises(VoxaError, match="no features"):
        UtteranceDataset(feats, ["nope"], [0])


def test_collate_pads_with_zeros_and_reports_lengths():
    items = [(torch.full((3, 2), 1.0), 2), (torch.full((5, 2), 2.0), 0), (torch.full((1, 2), 3.0), 1)]
    x, lengths, labels = collate_padded(items)
    assert x.shape == (3, 5, 2) and lengths.dtype == torch.long and labels.dtype == torch.long
    assert lengths.tolist() == [3, 5, 1] and labels.tolist() == [2, 0, 1]
    for i, (item, _) in enumerate(items):
        n = item.shape[0]
        assert torch.equal(x[i, :n], item) and not x[i, n:].any()


def test_length_buckets_cut_padding_and_cover_every_item_once():
    lengths = [len(v) for v in _feats(64).values()]
    s = LengthBucketSampler(lengths, 8, shuffle=True, seed=0)
    s.set_epoch(0)
    e0 = s.batches()
    s.set_epoch(1)
    e1 = s.batches()
    assert sorted(i for b in e0 for i in b) == list(range(64)) and e0 != e1
    s.set_epoch(0)
    assert s.batches() == e0 and len(s) == 8
    rng = np.random.default_rng(0)
    random = np.array_split(rng.permutation(64), 8)
    assert padding_fraction(e0, lengths) < 0.5 * padding_fraction([b.tolist() for b in random], lengths)
    inference = length_batches(lengths, 10)
    assert [len(b) for b in inference] == [10] * 6 + [4]
    flat = [lengths[i] for b in inference for i in b]
    assert flat == sorted(flat)


def test_balanced_sampler_draws_classes_equally_from_10_to_1_imbalance():
    labels = [0] * 500 + [1] * 50
    w = class_balanced_weights(labels)
    assert float(w[:500].sum()) == pytest.approx(float(w[500:].sum()))
    s = ClassBalancedSampler(labels, num_samples=4000, seed=3)
    drawn = Counter(labels[i] for i in s.order())
    assert abs(drawn[0] / 4000 - 0.5) < 0.05
    assert s.order(2) == s.order(2) and s.order(2) != s.order(3)
    feats = {str(i): torch.zeros(2, 1) for i in range(len(labels))}
    ds = BalancedDataset(UtteranceDataset(feats, [str(i) for i in range(len(labels))], labels), labels)
    ds.set_epoch(4)
    share = np.mean([ds[i][1] for i in range(len(ds))])
    assert len(ds) == 550 and 0.4 < share < 0.6


def _wav(tmp_path, name, seconds=0.5, rate=8000, seed=0):
    from voxa.audio.io import save

    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) \
        + 0.01 * rng.standard_normal(t.size)
    path = tmp_path / f"{name}.wav"
    save(path, torch.from_numpy(x.astype(np.float32))[None], rate)
    return str(path)


def _bank(tmp_path, rate=8000):
    from voxa.tse.bank import write_bank

    rng = np.random.default_rng(0)

    def rows():
        for k in range(3):
            h = np.zeros(800, dtype=np.float32)
            h[10] = 1.0
            h[11:] = 0.3 * rng.standard_normal(789) * np.exp(-np.arange(789) / 150.0)
            yield {"id": f"r{k}", "group": "g0", "split": "train"}, h

    return str(write_bank(tmp_path / "bank", {"rate": rate}, rows()))


def test_augment_changes_the_waveform_is_seeded_and_keeps_the_label(tmp_path):
    rate = 8000
    recs = [Record(id=f"a{i}", path=_wav(tmp_path, f"a{i}", seed=i)) for i in range(2)]
    aug = Augment(speed=(0.9, 1.1), gain_db=(-6.0, 6.0), rir_bank=_bank(tmp_path, rate), snr_db=(5.0, 15.0))
    clean = torch.from_numpy(np.sin(np.arange(4000) / 5.0).astype(np.float32))
    y1 = aug(clean, rate, np.random.default_rng(1))
    y2 = aug(clean, rate, np.random.default_rng(1))
    y3 = aug(clean, rate, np.random.default_rng(2))
    assert torch.equal(y1, y2) and y1.shape[0] in (3636, 4444, 3637, 4445)
    assert y1.shape != y3.shape or not torch.equal(y1, y3)
    cfg = FeatureConfig(type="fbank", deltas=0, vad=False, options={"num_mel_bins": 10})
    plain = WaveformDataset(recs, cfg, [1, 2])
    ds = WaveformDataset(recs, cfg, [1, 2], augment=aug, seed=5)
    ds.set_epoch(0)
    (x0, lab0), (xp, labp) = ds[0], plain[0]
    assert lab0 == labp == 1 and x0.shape[1] == xp.shape[1] == 10
    assert x0.shape != xp.shape or not torch.allclose(x0, xp)
    assert torch.equal(ds[0][0], x0)  # same (seed, epoch, item): same features
    ds.set_epoch(1)
    assert ds[0][1] == 1 and (ds[0][0].shape != x0.shape or not torch.equal(ds[0][0], x0))


def test_augment_refuses_bad_settings():
    with pytest.raises(ConfigError):
        Augment(speed=(3.0,))
    with pytest.raises(ConfigError):
        Augment(gain_db=(6.0, -6.0))
    with pytest.raises(ConfigError):
        Augment(noise="somewhere")
    assert not Augment().active and Augment(snr_db=(0, 10)).active


def test_noise_is_added_at_the_drawn_snr_from_white_noise_or_recordings(tmp_path):
    (tmp_path / "noise").mkdir()
    _wav(tmp_path / "noise", "hum", seconds=0.2)  # shorter than the speech: looped
    x = torch.from_numpy(np.sin(np.arange(4000) / 3.0).astype(np.float32))
    for noise in (None, str(tmp_path / "noise")):
        y = Augment(noise=noise, snr_db=(10.0, 10.0))(x, 8000, np.random.default_rng(0))
        z = y - x
        snr = 10 * np.log10(float(x.pow(2).mean()) / float(z.pow(2).mean()))
        assert y.shape == x.shape and snr == pytest.approx(10.0, abs=0.01)
    with pytest.raises(VoxaError, match="not found"):
        Augment(noise=str(tmp_path / "none"), snr_db=(0, 1))(x, 8000, np.random.default_rng(0))
