"""Closed-set classification systems (GMM-UBM and i-vector back-ends) on synthetic frames."""

import numpy as np
import pytest
import torch

from voxa.errors import ConfigError, VoxaError
from voxa.tasks.classify import SYSTEMS, ClassifierConfig, FrontEnd, check_system, crop, system_scores

# class names deliberately not in sorted order, so the column order is tested
_CLASSES = ("zulu", "alpha", "mike")
_MEANS = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])


def _utts(n_per_class, seed):
    g = torch.Generator().manual_seed(seed)
    feats, labels = [], []
    for _ in range(n_per_class):
        for c, name in enumerate(_CLASSES):
            feats.append(torch.randn(60, 4, generator=g) + _MEANS[c])
            labels.append(name)
    return feats, labels


def _cfg():
    return ClassifierConfig.from_dict({"gmm": {"n_components": 4, "max_iter": 3},
                                       "ivector": {"rank": 4, "n_iter": 3}})


@pytest.fixture(scope="module")
def fitted():
    train, y_train = _utts(30, seed=0)
    test, y_test = _utts(10, seed=1)
    fe = FrontEnd(_cfg()).fit(train, ivectors=True)
    return fe, train, y_train, test, y_test


def test_from_dict_rejects_an_unknown_section():
    with pytest.raises(ConfigError, match="unknown setting"):
        ClassifierConfig.from_dict({"gmm": {"n_components": 4}, "backend": {}})


@pytest.mark.parametrize("section", ["gmm", "ivector"])
def test_from_dict_rejects_an_unknown_key_in_a_section(section):
    with pytest.raises(ConfigError, match=f"unknown setting .{section}.no_such_key.; {section} takes"):
        ClassifierConfig.from_dict({section: {"no_such_key": 1}})


def test_from_dict_rejects_an_unknown_feature_key():
    with pytest.raises(ConfigError):
        ClassifierConfig.from_dict({"features": {"typ": "mfcc"}})


def test_config_round_trips_through_to_dict():
    cfg = _cfg()
    again = ClassifierConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.ivector.rank == 4 and again.gmm.n_components == 4


def test_check_system_accepts_every_known_name():
    assert [check_system(s) for s in SYSTEMS] == list(SYSTEMS)


@pytest.mark.parametrize("name", ["ivector-foo", "gmm", "", "IVECTOR-LDA"])
def test_check_system_rejects_unknown_names(name):
    with pytest.raises(ConfigError, match="unknown system"):
        check_system(name)


def test_system_scores_rejects_an_unknown_system(fitted):
    fe, train, y_train, test, _ = fitted
    with pytest.raises(ConfigError):
        system_scores("ivector-knn", fe, train, y_train, [test])


@pytest.mark.parametrize("system", ["gmm-ubm", "ivector-cosine", "ivector-lda", "ivector-wccn",
                                    "ivector-plda", "ivector-svm-linear", "ivector-svm-rbf",
                                    "ivector-logreg"])
def test_system_separates_well_separated_classes(fitted, system):
    fe, train, y_train, test, y_test = fitted
    (scores,), classes = system_scores(system, fe, train, y_train, [test])
    assert classes == sorted(_CLASSES)
    assert scores.shape == (len(test), len(_CLASSES))
    assert np.isfinite(scores).all()
    pred = [classes[i] for i in scores.argmax(1)]
    assert np.mean([p == y for p, y in zip(pred, y_test)]) >= 0.9


def test_system_scores_one_array_per_test_set(fitted):
    fe, train, y_train, test, _ = fitted
    scores, _ = system_scores("ivector-lda", fe, train, y_train, [test[:5], test[5:7], test])
    assert [s.shape for s in scores] == [(5, 3), (2, 3), (len(test), 3)]
    # scoring a test utterance does not depend on the set it is in
    np.testing.assert_allclose(scores[0], scores[2][:5], rtol=1e-6, atol=1e-6)


def test_logreg_scores_are_log_probabilities(fitted):
    fe, train, y_train, test, _ = fitted
    (scores,), _ = system_scores("ivector-logreg", fe, train, y_train, [test])
    assert (scores <= 1e-9).all()
    np.testing.assert_allclose(np.exp(scores).sum(1), 1.0, atol=1e-6)


def test_labels_and_utterances_must_match_in_number(fitted):
    fe, train, y_train, test, _ = fitted
    with pytest.raises(VoxaError, match="labels"):
        system_scores("gmm-ubm", fe, train, y_train[:-1], [test])


def test_one_class_is_an_error(fitted):
    fe, train, _, test, _ = fitted
    with pytest.raises(VoxaError, match="two classes"):
        system_scores("gmm-ubm", fe, train, ["same"] * len(train), [test])


def test_ivector_system_needs_an_ivector_front_end(fitted):
    _, train, y_train, test, _ = fitted
    fe = FrontEnd(_cfg()).fit(train[:12], ivectors=False)
    assert fe.tv is None
    with pytest.raises(VoxaError, match="i-vector"):
        system_scores("ivector-cosine", fe, train, y_train, [test])


def test_front_end_without_training_data_is_an_error():
    with pytest.raises(VoxaError, match="no training"):
        FrontEnd(_cfg()).fit([], ivectors=False)


def test_crop_keeps_long_enough_utterances_cut_to_length():
    feats = [torch.zeros(n, 2) + i for i, n in enumerate([50, 100, 99, 250])]
    out, keep = crop(feats, 100)
    assert keep == [1, 3]
    assert [f.shape[0] for f in out] == [100, 100]
    assert out[1][0, 0] == 3  # the first frames of utterance 3


def test_crop_none_keeps_every_utterance_whole():
    feats = [torch.zeros(n, 2) for n in (5, 500)]
    out, keep = crop(feats, None)
    assert keep == [0, 1] and [f.shape[0] for f in out] == [5, 500]


def test_crop_with_no_utterance_long_enough_is_empty():
    out, keep = crop([torch.zeros(10, 2)], 11)
    assert out == [] and keep == []


def test_a_neural_system_scores_beside_the_statistical_ones(tmp_path):
    train, y_train = _utts(12, seed=0)
    test, y_test = _utts(4, seed=1)
    cfg = ClassifierConfig.from_dict({"neural": {"model": {"hidden": 32, "emb_dim": 16, "stats_dim": 64},
                                                 "trainer": {"epochs": 12, "batch_size": 8, "lr": 3e-3,
                                                             "progress": False},
                                                 "crop": None, "valid_fraction": 0.0}})
    fe = FrontEnd(cfg, tmp_path)  # no UBM: a neural system needs none
    (scores,), classes = system_scores("xvector", fe, train, y_train, [test])
    assert classes == sorted(_CLASSES) and scores.shape == (len(test), 3)
    assert np.allclose(np.exp(scores).sum(1), 1.0, atol=1e-4)  # log posteriors
    pred = [classes[i] for i in scores.argmax(1)]
    assert np.mean([p == y for p, y in zip(pred, y_test)]) >= 0.9
    assert (tmp_path / "xvector" / "model.safetensors").is_file()


def test_ivector_dnn_learns_the_classes_from_one_frame_utterances(tmp_path):
    train, y_train = _utts(30, seed=0)
    test, y_test = _utts(10, seed=1)
    cfg = ClassifierConfig.from_dict({"gmm": {"n_components": 4, "max_iter": 3},
                                      "ivector": {"rank": 4, "n_iter": 3},
                                      "neural": {"trainer": {"epochs": 15, "batch_size": 16},
                                                 "model": {"hidden": 32, "layers": 1}}})
    fe = FrontEnd(cfg, tmp_path).fit(train, ivectors=True)
    (scores,), classes = system_scores("ivector-dnn", fe, train, y_train, [test])
    pred = [classes[i] for i in scores.argmax(1)]
    assert np.mean([p == y for p, y in zip(pred, y_test)]) >= 0.9
    assert (tmp_path / "ivector-dnn").is_dir()
