"""Language identification: development split, shared-speaker check, table and an end-to-end run."""

import json

import numpy as np
import pytest
import soundfile as sf

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.tasks.classify import ClassifierConfig
from voxa.tasks.lid import dev_split, markdown_table, run_lid, shared_speaker_pairs

_SR = 8000
# each "language" alternates every 100 ms between two noise bands of its own
_BANDS = {"en": [(300, 600), (1500, 2000)], "es": [(800, 1200), (2500, 3200)],
          "fr": [(400, 700), (3000, 3600)]}


def _recs(counts):
    return [Record(id=f"{lang}-{i:02d}", path="x.wav", language=lang)
            for lang, n in counts.items() for i in range(n)]


def _band_noise(rng, n, lo, hi):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / _SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.abs(x).max() + 1e-9)


def _utterance(rng, lang, seconds):
    n = int(seconds * _SR)
    a, b = (_band_noise(rng, n, lo, hi) for lo, hi in _BANDS[lang])
    first = (np.arange(n) // int(0.1 * _SR)) % 2 == 0
    return (0.3 * np.where(first, a, b)).astype(np.float32)


def _corpus(root, langs, n, seed, tag):
    """``n`` utterances of 1.5-4 s per language; speaker 'shared' records both en and es."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for lang in langs:
        for i in range(n):
            spk = "shared" if lang in ("en", "es") and i % 2 == 0 else f"{lang}{i % 3}"
            path = root / f"{tag}_{lang}_{i}.wav"
            sf.write(path, _utterance(rng, lang, rng.uniform(1.5, 4.0)), _SR)
            recs.append(Record(id=f"{tag}-{lang}-{i:02d}", path=str(path), language=lang, speaker=spk))
    return recs


def _cfg():
    return ClassifierConfig.from_dict({"features": {"type": "mfcc", "deltas": 0, "vad": False},
                                       "gmm": {"n_components": 4, "max_iter": 3},
                                       "ivector": {"rank": 3, "n_iter": 2}})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("lid")
    train = _corpus(root / "wav", ["en", "es", "fr"], 10, seed=0, tag="tr")
    test = _corpus(root / "wav", ["en", "es", "fr"], 4, seed=1, tag="te")
    return root, train, test


@pytest.fixture(scope="module")
def lid_run(corpus):
    root, train, test = corpus
    exp = root / "exp"
    res = run_lid(train, test, _cfg(), exp, systems=["gmm-ubm", "ivector-lda"], durations=(1.0, None))
    return exp, res


def test_dev_split_is_stratified_per_language():
    recs = _recs({"en": 10, "es": 5, "fr": 2})
    fit, dev = dev_split(recs, 0.2, seed=0)
    dev_langs = [recs[i].language for i in dev]
    assert {lang: dev_langs.count(lang) for lang in ("en", "es", "fr")} == {"en": 2, "es": 1, "fr": 1}
    assert set(fit).isdisjoint(dev) and sorted(fit + dev) == list(range(len(recs)))
    assert fit == sorted(fit) and dev == sorted(dev)


def test_dev_split_is_deterministic_for_a_seed():
    recs = _recs({"en": 20, "es": 20})
    assert dev_split(recs, 0.3, seed=5) == dev_split(recs, 0.3, seed=5)
    assert dev_split(recs, 0.3, seed=5) != dev_split(recs, 0.3, seed=6)


def test_dev_split_with_a_one_utterance_language_is_an_error():
    with pytest.raises(VoxaError, match="'fr' has too few"):
        dev_split(_recs({"en": 5, "fr": 1}), 0.2, seed=0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_dev_split_fraction_out_of_range_is_an_error(fraction):
    with pytest.raises(ConfigError, match="dev fraction"):
        dev_split(_recs({"en": 5, "fr": 5}), fraction, seed=0)


def test_shared_speaker_pairs_finds_a_speaker_of_two_languages():
    recs = [Record(id="1", path="x", language="en", speaker="ann"),
            Record(id="2", path="x", language="es", speaker="ann"),
            Record(id="3", path="x", language="en", speaker="ann"),
            Record(id="4", path="x", language="fr", speaker="bob"),
            Record(id="5", path="x", language="de", speaker=None)]
    assert shared_speaker_pairs(recs) == [("en", "es", "ann")]


def test_shared_speaker_pairs_of_three_languages_lists_every_pair():
    recs = [Record(id=str(i), path="x", language=lang, speaker="s") for i, lang in enumerate("cab")]
    assert shared_speaker_pairs(recs) == [("a", "b", "s"), ("a", "c", "s"), ("b", "c", "s")]


def test_shared_speaker_pairs_none_when_speakers_keep_to_one_language():
    recs = [Record(id=str(i), path="x", language=lang, speaker=lang) for i, lang in enumerate("ab")]
    assert shared_speaker_pairs(recs) == []


def test_markdown_table_layout():
    table = {"gmm-ubm": {"1s": {"cavg": 0.1234, "eer": 0.05}, "full": {"cavg": 0.0, "eer": 0.01}},
             "ivector-lda": {"1s": {"cavg": 0.2, "eer": 0.1}, "full": {"cavg": 0.05, "eer": 0.025}}}
    assert markdown_table(table) == (
        "| system | Cavg 1s | EER 1s | Cavg full | EER full |\n"
        "|---|---|---|---|---|\n"
        "| gmm-ubm | 12.34 | 5.00 | 0.00 | 1.00 |\n"
        "| ivector-lda | 20.00 | 10.00 | 5.00 | 2.50 |\n")


def test_run_lid_writes_results_with_the_main_figures(lid_run):
    exp, res = lid_run
    saved = json.loads((exp / "results.json").read_text())
    assert {"cavg", "eer", "accuracy", "min_cavg"} <= set(saved)
    assert saved["system"] == "gmm-ubm" and saved["accuracy"] == res["accuracy"]
    assert saved["languages"] == ["en", "es", "fr"]
    assert saved["n_train"] + saved["n_dev"] == 30 and saved["n_test"] == 12


def test_run_lid_covers_every_system_and_condition(lid_run, png_plot):
    exp, res = lid_run
    assert set(res["systems"]) == {"gmm-ubm", "ivector-lda"}
    for entry in res["systems"].values():
        assert set(entry) == {"1s", "full"}
    md = (exp / "table.md").read_text()
    assert "Cavg 1s" in md and "EER full" in md
    assert "| gmm-ubm |" in md and "| ivector-lda |" in md
    for system in ("gmm-ubm", "ivector-lda"):
        png_plot(exp / f"confusion_{system}.png", (560, 471))
        assert np.load(exp / f"scores_{system}_1s.npy").shape == (12, 3)


def test_run_lid_identifies_the_synthetic_languages(lid_run):
    _, res = lid_run
    assert res["accuracy"] > 0.8
    for entry in res["systems"].values():
        assert entry["full"]["accuracy"] > 0.8
        assert entry["full"]["cavg"] < 0.3


def test_run_lid_reports_the_shared_speaker_confound(lid_run):
    _, res = lid_run
    pair = res["systems"]["ivector-lda"]["full"]["shared_speaker_pair_accuracy"]
    assert set(pair) == {"en-es (shared)"} and 0.0 <= pair["en-es (shared)"] <= 1.0


def test_run_lid_test_language_absent_from_training_is_an_error(corpus, tmp_path):
    _, train, test = corpus
    train = [r for r in train if r.language != "fr"]
    with pytest.raises(VoxaError, match="fr have no training"):
        run_lid(train, test, _cfg(), tmp_path, systems=["gmm-ubm"], durations=(None,))


def test_run_lid_record_without_language_is_an_error(corpus, tmp_path):
    _, train, test = corpus
    unlabelled = Record(id="nolang", path=train[0].path)
    with pytest.raises(VoxaError, match="nolang: no language label"):
        run_lid(train, [*test, unlabelled], _cfg(), tmp_path, systems=["gmm-ubm"])


def test_run_lid_unknown_system_is_an_error(corpus, tmp_path):
    _, train, test = corpus
    with pytest.raises(ConfigError, match="unknown system"):
        run_lid(train, test, _cfg(), tmp_path, systems=["ivector-nope"])


def _augmented_cfg():
    d = _cfg().to_dict()
    d["augment"] = {"copies": 2, "speed": [0.9, 1.1], "vtlp": [0.9, 1.1]}
    d["ivector"]["nap_dim"] = 2
    return ClassifierConfig.from_dict({k: d[k] for k in ("features", "gmm", "ivector", "augment")})


def test_run_lid_with_perturbed_copies_trains_on_them_and_runs_nap(corpus, tmp_path):
    _, train, test = corpus
    res = run_lid(train, test, _augmented_cfg(), tmp_path, systems=["ivector-nap"], durations=(None,))
    assert res["n_train_perturbed"] == 2 * res["n_train"]
    assert 0.0 <= res["systems"]["ivector-nap"]["full"]["cavg"] < 0.5


def test_run_lid_nap_without_perturbed_copies_is_an_error(corpus, tmp_path):
    _, train, test = corpus
    with pytest.raises(ConfigError, match="augment.copies"):
        run_lid(train, test, _cfg(), tmp_path, systems=["ivector-nap"], durations=(None,))


def _flat_model(tmp_path, dim):
    import torch

    from voxa.asr.acoustic import AcousticModel

    am = AcousticModel.init_flat(["SIL", "a", "b", "c"], dim, torch.zeros(dim), torch.ones(dim))
    am.means = am.means + torch.randn(am.means.shape, generator=torch.Generator().manual_seed(0))
    am._cache = None
    am.save(tmp_path / "final.mdl.safetensors")
    return tmp_path


def test_phonetic_features_are_log_phone_posteriors(corpus, tmp_path):
    from voxa.tasks.classify import PhoneticConfig, phonetic_features

    _, train, _ = corpus
    cfg = PhoneticConfig(model=str(_flat_model(tmp_path, 13)), features=_cfg().features)
    feats = phonetic_features(train[:3], cfg, tmp_path / "feats")
    x = feats[train[0].id]
    assert x.shape[1] == 4 and torch_allclose_rows(x)


def torch_allclose_rows(x):
    return bool((x.exp().sum(1) - 1).abs().max() < 1e-3)


def test_run_lid_on_phonetic_features(corpus, tmp_path):
    _, train, test = corpus
    d = _cfg().to_dict()
    d["phonetic"] = {"model": str(_flat_model(tmp_path, 13)),
                     "features": {"type": "mfcc", "deltas": 0, "vad": False}}
    cfg = ClassifierConfig.from_dict({k: d[k] for k in ("features", "gmm", "ivector", "phonetic")})
    res = run_lid(train, test, cfg, tmp_path / "exp", systems=["gmm-ubm"], durations=(None,))
    assert res["config"]["phonetic"]["model"].endswith(tmp_path.name)
    assert 0.0 <= res["systems"]["gmm-ubm"]["full"]["cavg"] <= 1.0


def test_phonetic_model_missing_is_an_error(corpus, tmp_path):
    _, train, test = corpus
    d = _cfg().to_dict()
    cfg = ClassifierConfig.from_dict({**{k: d[k] for k in ("features", "gmm", "ivector")},
                                      "phonetic": {"model": str(tmp_path / "nope")}})
    with pytest.raises(VoxaError, match="phonetic.model not found"):
        run_lid(train, test, cfg, tmp_path / "exp", systems=["gmm-ubm"], durations=(None,))
