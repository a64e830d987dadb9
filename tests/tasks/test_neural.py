import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn as nn

from voxa.errors import ConfigError, VoxaError
from voxa.nn.saving import SavedModule
from voxa.tasks.neural import (
    NeuralConfig,
    embed,
    evaluate_classifier,
    predict_logposteriors,
    run_neural_system,
    stratified_split,
    train_classifier,
)
from voxa.utils.serialization import load_model, register
from voxa.utils.vectors import VectorSet


@dataclass
class StandInConfig:
    input_dim: int = 4
    num_classes: int = 2
    hidden: int = 16


@register("voxa.tests.NeuralStandIn")
class StandIn(SavedModule):
    """The voxa.nn.models contract in miniature: masked mean+std pooling, one hidden layer."""

    config_class = StandInConfig

    def __init__(self, cfg=None):
        super().__init__()
        self.cfg = cfg or StandInConfig()
        self.hidden = nn.Sequential(nn.Linear(2 * self.cfg.input_dim, self.cfg.hidden), nn.ReLU())
        self.out = nn.Linear(self.cfg.hidden, self.cfg.num_classes)

    def embed(self, x, lengths):
        mask = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]).float()[..., None]
        n = mask.sum(1).clamp_min(1)
        mean = (x * mask).sum(1) / n
        std = (((x - mean[:, None]) ** 2 * mask).sum(1) / n).clamp_min(1e-6).sqrt()
        return self.hidden(torch.cat([mean, std], -1))

    def forward(self, x, lengths, labels=None):
        return self.out(self.embed(x, lengths))

    def attention_weights(self, x, lengths):
        return None

    def frame_posteriors(self, x, lengths):
        return None


def build(name, input_dim, num_classes, **overrides):
    assert name == "standin"
    return StandIn(StandInConfig(input_dim=input_dim, num_classes=num_classes, **overrides))


def _toy(n_per_class=30, dim=6, seed=0, prefix="u"):
    """3 classes told apart by their mean vectors, lengths 20..60 frames."""
    g = torch.Generator().manual_seed(seed)
    means = 1.2 * torch.eye(3, dim)
    feats, ids, labels = {}, [], []
    for c, name in enumerate(["de", "en", "fr"]):
        for k in range(n_per_class):
            t = int(torch.randint(20, 61, (1,), generator=g))
            u = f"{prefix}{name}{k:03d}"
            feats[u] = torch.randn(t, dim, generator=g) + means[c]
            ids.append(u)
            labels.append(name)
    return feats, ids, labels


def _cfg(epochs=4, **kw):
    return NeuralConfig.from_dict({"system": "standin", "crop": [15, 40], "valid_fraction": 0.2,
                                   "trainer": {"epochs": epochs, "batch_size": 16, "lr": 1e-2,
                                               "progress": False, "amp": False, "checkpoint_every": 0},
                                   **kw})


def test_train_classifier_learns_a_separable_toy_task_and_saves_class_names(tmp_path):
    feats, ids, labels = _toy()
    model = train_classifier(feats, ids, labels, _cfg(), tmp_path / "exp", build=build)
    test_feats, test_ids, test_labels = _toy(10, seed=1, prefix="t")
    r = evaluate_classifier(model, test_feats, test_ids, test_labels, model.class_names, exp=tmp_path / "ev",
                            lid=True)
    assert model.class_names == ["de", "en", "fr"] and not model.training
    assert r["accuracy"] >= 0.9 and r["uar"] >= 0.9 and r["top5_accuracy"] == 1.0
    assert {"cavg", "min_cavg", "eer"} <= set(r) and r["eer"] < 0.2
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 0
    s = model.training_summary
    assert s["n_valid"] == 18 and s["n_fit"] == 72 and s["steps"] == 4 * (72 // 16)
    _, header = load_model(tmp_path / "exp" / "model.safetensors")
    assert header["class_names"] == ["de", "en", "fr"] and header["system"] == "standin"
    assert (tmp_path / "exp" / "train_log.csv").exists() and (tmp_path / "exp" / "best.pt").exists()


def test_train_classifier_resumes_to_the_same_model(tmp_path):
    feats, ids, labels = _toy(12)
    straight = train_classifier(feats, ids, labels, _cfg(epochs=3), tmp_path / "a", build=build)
    train_classifier(feats, ids, labels, _cfg(epochs=1), tmp_path / "b", build=build)
    resumed = train_classifier(feats, ids, labels, _cfg(epochs=3), tmp_path / "b", build=build)
    assert resumed.training_summary["steps"] == straight.training_summary["steps"]
    log = (tmp_path / "b" / "train_log.csv").read_text().splitlines()
    assert len(log) == 1 + 3
    for k, v in straight.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_balanced_training_and_bad_inputs(tmp_path):
    feats, ids, labels = _toy(8)
    keep = [i for i, y in enumerate(labels) if y != "fr" or i % 8 < 2]  # 8:8:2
    model = train_classifier(feats, [ids[i] for i in keep], [labels[i] for i in keep],
                             _cfg(epochs=1, balance=True), tmp_path / "bal", build=build)
    assert model.training_summary["steps"] >= 1
    with pytest.raises(VoxaError, match="two classes"):
        train_classifier(feats, ids[:5], ["de"] * 5, _cfg(), tmp_path / "x", build=build)
    with pytest.raises(VoxaError, match="no features"):
        train_classifier(feats, ["nope", ids[0]], ["de", "en"], _cfg(), tmp_path / "x", build=build)
    with pytest.raises(ConfigError):
        NeuralConfig.from_dict({"valid_fraction": 1.5})
    with pytest.raises(ConfigError, match="unknown setting"):
        NeuralConfig.from_dict({"trainer": {"epoch": 3}})


def test_stratified_split_holds_out_every_class():
    y = [0] * 10 + [1] * 5 + [2]
    tr, va = stratified_split(y, 0.2, seed=0)
    assert sorted(tr + va) == list(range(16))
    assert sorted(y[i] for i in va) == [0, 0, 1] and 15 in tr


def test_evaluate_matches_hand_made_logits():
    names = [f"s{i}" for i in range(7)]
    # true class ranks: 1st, 2nd, 6th, 1st, 5th, 7th
    truth = [0, 1, 2, 3, 4, 5]
    ranks = [0, 1, 5, 0, 4, 6]
    logits = torch.zeros(6, 7)
    for i, (t, r) in enumerate(zip(truth, ranks)):
        others = [c for c in range(7) if c != t]
        order = others[:r] + [t] + others[r:]
        logits[i, order] = torch.arange(7, 0, -1).float()
    logp = logits.log_softmax(1)
    r = evaluate_classifier(None, {}, [f"u{i}" for i in range(6)], [names[t] for t in truth], names,
                            logposteriors=logp)
    assert r["accuracy"] == pytest.approx(2 / 6)
    assert r["top5_accuracy"] == pytest.approx(4 / 6)
    # six reference classes, one utterance each: UAR is the accuracy; s6 has no reference, left out
    assert r["uar"] == pytest.approx(2 / 6) and set(r["per_class_recall"]) == set(names[:6])
    assert r["n_test"] == 6
    with pytest.raises(VoxaError, match="not among"):
        evaluate_classifier(None, {}, ["a"], ["zz"], names, logposteriors=logp[:1])


def test_predict_and_embed_follow_the_ids(tmp_path):
    feats, ids, labels = _toy(4)
    torch.manual_seed(0)
    model = build("standin", 6, 3)
    order = ids[::-1]
    logp = predict_logposteriors(model, feats, order, batch_size=5)
    one = [predict_logposteriors(model, feats, [u])[0] for u in order[:3]]
    assert logp.shape == (12, 3) and torch.allclose(logp.exp().sum(1), torch.ones(12))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(one, logp[:3]))
    vs = embed(model, feats, order, labels=labels[::-1], label_name="language")
    assert isinstance(vs, VectorSet) and vs.ids == order and vs.X.shape == (12, 16)
    assert vs.label("language") == labels[::-1]
    vs.save(tmp_path / "e.safetensors")
    assert VectorSet.load(tmp_path / "e.safetensors").label("language")[0] == labels[-1]


def test_run_neural_system_writes_results(tmp_path):
    from voxa.audio.io import save
    from voxa.data.manifest import Record
    from voxa.features.pipeline import FeatureConfig

    rate = 8000
    rng = np.random.default_rng(0)
    recs = []
    for lang, f0 in [("aa", 300.0), ("bb", 900.0), ("cc", 2000.0)]:
        for k in range(8):
            t = np.arange(int(rate * rng.uniform(0.3, 0.5))) / rate
            x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * k) * t) + 0.02 * rng.standard_normal(t.size)
            path = tmp_path / f"{lang}{k}.wav"
            save(path, torch.from_numpy(x.astype(np.float32))[None], rate)
            recs.append(Record(id=f"{lang}{k}", path=str(path), language=lang))
    train = [r for i, r in enumerate(recs) if i % 8 < 6]
    test = [r for i, r in enumerate(recs) if i % 8 >= 6]
    fcfg = FeatureConfig(type="fbank", deltas=0, vad=False, cmvn=None, options={"num_mel_bins": 12})
    cfg = _cfg(epochs=6, crop=None, augment={"gain_db": [-3, 3], "speed": [0.9, 1.1]})
    cfg.trainer.batch_size = 4
    res = run_neural_system(train, test, "language", fcfg, cfg, tmp_path / "exp", build=build)
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["accuracy"] == res["accuracy"] and saved["classes"] == ["aa", "bb", "cc"]
    assert saved["parameters"] == sum(p.numel() for p in build("standin", 12, 3).parameters())
    assert saved["train_seconds"] > 0 and math.isfinite(saved["cavg"]) and saved["n_test"] == 6
    assert saved["config"]["augment"]["speed"] == [0.9, 1.1]
    assert "accuracy" in res.table
    with pytest.raises(VoxaError, match="no 'emotion' label"):
        run_neural_system(train, test, "emotion", fcfg, cfg, tmp_path / "exp2", build=build)


def test_a_real_model_trains_saves_and_loads_with_its_class_names(tmp_path):
    pytest.importorskip("voxa.nn.models")
    import voxa

    feats, ids, labels = _toy(12)
    cfg = _cfg(epochs=2)
    cfg.system = "xvector"
    model = train_classifier(feats, ids, labels, cfg, tmp_path / "x")
    loaded = voxa.load(tmp_path / "x" / "model.safetensors")
    assert loaded.voxa_header["class_names"] == ["de", "en", "fr"]
    a = predict_logposteriors(model, feats, ids[:4])
    assert torch.allclose(a, predict_logposteriors(loaded, feats, ids[:4]), atol=1e-5)
    with pytest.raises(ConfigError, match="unknown system"):
        cfg.system = "nope"
        train_classifier(feats, ids, labels, cfg, tmp_path / "y")
