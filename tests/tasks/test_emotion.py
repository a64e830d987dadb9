"""Emotion recognition: leave-one-speaker-out folds, score fusion and an end-to-end run."""

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from scipy.special import logsumexp

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.tasks.emotion import fuse, loso_folds, run_emotion

_SR = 16000
_OVERRIDES = {"gmm": {"n_components": 4, "max_iter": 3}, "ivector": {"rank": 3, "n_iter": 2}}


def _tone(rng, f0):
    """1 s of a four-harmonic tone near ``f0`` Hz plus a little noise."""
    t = np.arange(_SR) / _SR
    f = f0 * (1 + 0.02 * rng.standard_normal())
    x = sum(a * np.sin(2 * np.pi * k * f * t + rng.uniform(0, 2 * np.pi))
            for k, a in ((1, 1.0), (2, 0.5), (3, 0.3), (4, 0.2)))
    return (0.1 * x + 0.01 * rng.standard_normal(_SR)).astype(np.float32)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """3 speakers x 2 emotions x 4 utterances: 'calm' near 120 Hz, 'angry' near 240 Hz."""
    root = tmp_path_factory.mktemp("emo")
    rng = np.random.default_rng(0)
    recs = []
    for s in range(3):
        for emo, f0 in (("calm", 120.0), ("angry", 240.0)):
            for i in range(4):
                path = root / f"s{s}_{emo}_{i}.wav"
                sf.write(path, _tone(rng, f0), _SR)
                recs.append(Record(id=f"s{s}-{emo}-{i}", path=str(path), speaker=f"s{s}", emotion=emo))
    return recs


@pytest.fixture(scope="module")
def emotion_run(records, tmp_path_factory):
    exp = tmp_path_factory.mktemp("emo_exp")
    return exp, run_emotion(records, exp, systems=["s1", "s3", "fusion"], overrides=_OVERRIDES)


def _recs(speakers, per_speaker=2):
    return [Record(id=f"{s}-{i}", path="x.wav", speaker=s, emotion="e")
            for s in speakers for i in range(per_speaker)]


def test_loso_holds_out_each_speaker_once():
    recs = _recs(["b", "a", "c"], per_speaker=3)
    folds = loso_folds(recs)
    assert [s for s, _, _ in folds] == ["a", "b", "c"]
    for spk, train, test in folds:
        assert {recs[i].speaker for i in test} == {spk}
        assert spk not in {recs[i].speaker for i in train}
        assert set(train).isdisjoint(test) and sorted(train + test) == list(range(len(recs)))
    assert sorted(i for _, _, test in folds for i in test) == list(range(len(recs)))


def test_loso_with_one_speaker_is_an_error():
    with pytest.raises(VoxaError, match="at least 2 speakers"):
        loso_folds(_recs(["a"], per_speaker=4))


def test_loso_record_without_speaker_is_an_error():
    recs = _recs(["a", "b"])
    recs.append(Record(id="anon", path="x.wav", emotion="e"))
    with pytest.raises(VoxaError, match="anon: no speaker label"):
        loso_folds(recs)


def _fusion_inputs(seed=0):
    rng = np.random.default_rng(seed)
    labels = [c for _ in range(12) for c in ("x", "y", "z")]
    codes = np.array(["xyz".index(c) for c in labels])
    onehot = np.eye(3)[codes]
    scores = {"a": onehot * 2 + rng.standard_normal((36, 3)), "b": onehot + rng.standard_normal((36, 3))}
    speakers = [f"s{i % 4}" for i in range(36)]
    folds = loso_folds([Record(id=str(i), path="x", speaker=s) for i, s in enumerate(speakers)])
    return scores, labels, folds


def test_fuse_returns_log_probabilities_per_class():
    scores, labels, folds = _fusion_inputs()
    out = fuse(scores, labels, folds)
    assert out.shape == (36, 3)
    assert (out <= 1e-9).all()
    np.testing.assert_allclose(logsumexp(out, axis=1), 0.0, atol=1e-6)


def test_fuse_beats_chance_on_informative_scores():
    scores, labels, folds = _fusion_inputs()
    out = fuse(scores, labels, folds)
    pred = ["xyz"[i] for i in out.argmax(1)]
    assert np.mean([p == y for p, y in zip(pred, labels)]) > 0.7


def test_fuse_never_sees_the_held_out_labels():
    scores, labels, folds = _fusion_inputs()
    spk, _, test = folds[0]
    flipped = list(labels)
    for i in test:
        flipped[i] = {"x": "y", "y": "z", "z": "x"}[labels[i]]
    a, b = fuse(scores, labels, folds), fuse(scores, flipped, folds)
    np.testing.assert_allclose(a[test], b[test])


def test_run_emotion_writes_results_per_system(emotion_run):
    exp, res = emotion_run
    saved = json.loads((exp / "results.json").read_text())
    assert {"uar", "accuracy", "systems", "classes"} <= set(saved)
    assert saved["system"] == "fusion" and saved["uar"] == saved["systems"]["fusion"]["uar"]
    assert set(saved["systems"]) == {"s1", "s3", "fusion"}
    assert saved["classes"] == ["angry", "calm"]
    assert saved["n_speakers"] == 3 and saved["n_utterances"] == 24
    for entry in saved["systems"].values():
        assert {"uar", "accuracy", "recall", "confusion"} <= set(entry)
        assert np.sum(entry["confusion"]) == 24
    assert set(saved["config"]) == {"s1", "s3"}
    assert saved["config"]["s3"]["features"]["type"] == "prosody"
    assert saved["config"]["s1"]["gmm"]["n_components"] == 4


def test_run_emotion_writes_confusions_and_scores(emotion_run, png_plot):
    exp, _ = emotion_run
    for name in ("s1", "s3", "fusion"):
        png_plot(exp / f"confusion_{name}.png", (588, 500))
        assert np.load(exp / f"scores_{name}.npy").shape == (24, 2)


def test_run_emotion_tells_the_synthetic_emotions_apart(emotion_run):
    _, res = emotion_run
    for name in ("s1", "s3", "fusion"):
        assert res["systems"][name]["uar"] >= 0.75, name
    assert res["uar"] >= 0.9


def test_run_emotion_record_without_emotion_is_an_error(records, tmp_path):
    bad = [*records, Record(id="noemo", path=records[0].path, speaker="s0")]
    with pytest.raises(VoxaError, match="noemo: no emotion label"):
        run_emotion(bad, tmp_path, systems=["s1"], overrides=_OVERRIDES)


def test_fusion_of_one_system_is_an_error(records, tmp_path):
    with pytest.raises(ConfigError, match="fusion needs at least two"):
        run_emotion(records, tmp_path, systems=["s1", "fusion"], overrides=_OVERRIDES)


def test_unknown_system_is_an_error(records, tmp_path):
    with pytest.raises(ConfigError, match="unknown emotion system"):
        run_emotion(records, tmp_path, systems=["s9"], overrides=_OVERRIDES)


def test_unknown_override_section_is_an_error(records, tmp_path):
    with pytest.raises(ConfigError, match="unknown emotion setting"):
        run_emotion(records, tmp_path, systems=["s1"], overrides={"backend": {}})


def test_emotion_missing_from_the_training_folds_is_an_error(records, tmp_path):
    # only speaker s0 is ever 'excited': holding s0 out leaves no such training utterance
    recs = [replace(r, emotion="excited") if r.speaker == "s0" and r.emotion == "angry" else r
            for r in records]
    with pytest.raises(VoxaError, match="lack an emotion class"):
        run_emotion(recs, tmp_path, systems=["s1"], overrides=_OVERRIDES)
