"""Cosine scoring and per-model averaged enrolment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxa.backends import CosineScorer, cosine_scores
from voxa.errors import VoxaError


def test_cosine_scores_match_normalised_dot_products() -> None:
    rng = np.random.default_rng(0)
    e, t = rng.normal(size=(4, 6)), rng.normal(size=(7, 6))
    got = cosine_scores(e, t)
    assert got.shape == (4, 7)
    for i in range(4):
        for j in range(7):
            want = e[i] @ t[j] / (np.linalg.norm(e[i]) * np.linalg.norm(t[j]))
            assert got[i, j] == pytest.approx(want, abs=1e-12)
    np.testing.assert_allclose(cosine_scores(torch.from_numpy(e), 5.0 * t), got, atol=1e-12)


def test_scorer_averages_length_normalised_enrolments_per_model() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    ids = np.array(["b", "a", "b", "a", "a", "c"])
    scorer = CosineScorer().fit(X, ids)
    assert list(scorer.classes_) == ["a", "b", "c"]
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    np.testing.assert_allclose(scorer.models_[0], unit[[1, 3, 4]].mean(0), atol=1e-12)
    test = rng.normal(size=(5, 3))
    s = scorer.score(test)
    assert s.shape == (3, 5)
    np.testing.assert_allclose(s, cosine_scores(scorer.models_, test), atol=1e-12)
    assert np.array_equal(scorer.predict(test), scorer.classes_[s.argmax(0)])
    raw = CosineScorer(length_norm=False).fit(X, ids)
    np.testing.assert_allclose(raw.models_[0], X[[1, 3, 4]].mean(0), atol=1e-12)


def test_save_load_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(8, 4))
    scorer = CosineScorer().fit(X, [0, 0, 1, 1, 2, 2, 3, 3])
    back = CosineScorer.load(scorer.save(tmp_path / "cos.safetensors"))
    assert np.array_equal(back.score(X), scorer.score(X))
    assert back.classes_.tolist() == [0, 1, 2, 3]


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(VoxaError, match="zero vector"):
        cosine_scores(np.zeros((1, 3)), np.ones((2, 3)))
    with pytest.raises(VoxaError, match="fitted on 3"):
        cosine_scores(np.ones((1, 3)), np.ones((2, 4)))
    with pytest.raises(VoxaError, match="NaN"):
        cosine_scores(np.ones((1, 3)), np.full((2, 3), np.nan))
    with pytest.raises(VoxaError, match="expected 2 labels"):
        CosineScorer().fit(np.ones((2, 3)), [0])
