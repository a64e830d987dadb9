"""Cavg, minimum Cavg, LLR conversion and the LID summary against hand-worked and loop references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.metrics import cavg, eer, lid_metrics, min_cavg, scores_to_llr

# 3 languages, 2 trials each; at threshold 0:
#   P_miss = (1/2, 0, 1/2); P_fa(0, 2) = P_fa(1, 0) = P_fa(2, 1) = 1/2 (the last one from a
#   score exactly at the threshold), every other P_fa = 0
#   Cavg = 1/3 [(0.25 + 0.25 * 0.5) + (0 + 0.25 * 0.5) + (0.25 + 0.25 * 0.5)] = 0.875 / 3
HAND_SCORES = np.array([
    [1.0, -1.0, -2.0],
    [-0.5, 0.5, -1.0],
    [-1.0, 2.0, 0.0],
    [-3.0, 1.0, -1.0],
    [0.2, -1.0, -0.1],
    [-1.0, -1.0, 3.0],
])
HAND_LABELS = np.array([0, 0, 1, 1, 2, 2])


def _loop_cavg(s, y, p=0.5, c_miss=1.0, c_fa=1.0, thr=0.0):
    """Cavg straight from its definition."""
    L = s.shape[1]
    total = 0.0
    for t in range(L):
        p_miss = np.mean(s[y == t, t] < thr)
        fa = sum(np.mean(s[y == n, t] >= thr) for n in range(L) if n != t)
        total += c_miss * p * p_miss + c_fa * (1 - p) / (L - 1) * fa
    return total / L


def _random_trials(seed=0):
    """4 languages with unequal numbers of trials."""
    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=300, p=[0.1, 0.2, 0.3, 0.4])
    s = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y] - 0.7
    return s, y


def test_cavg_hand_worked_example() -> None:
    assert cavg(HAND_SCORES, HAND_LABELS) == pytest.approx(0.875 / 3, abs=1e-15)
    names = np.array(["en", "fr", "zh"])[HAND_LABELS]
    assert cavg(HAND_SCORES, names, languages=["en", "fr", "zh"]) == pytest.approx(0.875 / 3)
    # columns in another order: the same trials, so the same cost
    perm = [2, 0, 1]
    assert cavg(HAND_SCORES[:, perm], names, languages=["zh", "en", "fr"]) == pytest.approx(0.875 / 3)
    assert cavg(torch.from_numpy(HAND_SCORES), torch.from_numpy(HAND_LABELS)) == pytest.approx(0.875 / 3)


def test_cavg_matches_definition_with_unequal_trial_counts_and_costs() -> None:
    s, y = _random_trials()
    for p, cm, cf, thr in [(0.5, 1.0, 1.0, 0.0), (0.3, 2.0, 1.0, 0.4), (0.8, 1.0, 5.0, -0.2)]:
        assert cavg(s, y, p_target=p, c_miss=cm, c_fa=cf, threshold=thr) == pytest.approx(
            _loop_cavg(s, y, p, cm, cf, thr), abs=1e-12)


def test_min_cavg_is_the_minimum_over_global_thresholds() -> None:
    s, y = _random_trials(seed=1)
    candidates = np.concatenate([np.unique(s), [np.inf]])
    want = min(_loop_cavg(s, y, 0.5, 1.0, 1.0, thr) for thr in candidates)
    got = min_cavg(s, y)
    assert got == pytest.approx(want, abs=1e-12)
    assert got < cavg(s, y)  # these scores are offset by -0.7, so threshold 0 is not optimal
    assert min_cavg(s + 10.0, y) == pytest.approx(got, abs=1e-12)  # insensitive to a shift
    assert min_cavg(HAND_SCORES, HAND_LABELS) <= cavg(HAND_SCORES, HAND_LABELS)


def test_scores_to_llr_against_a_direct_formula() -> None:
    rng = np.random.default_rng(2)
    ll = rng.normal(size=(10, 4)) * 20.0  # large values exercise the logsumexp
    got = scores_to_llr(ll)
    for t in range(4):
        others = np.delete(ll, t, axis=1)
        m = others.max(1)
        want = ll[:, t] - (m + np.log(np.mean(np.exp(others - m[:, None]), axis=1)))
        np.testing.assert_allclose(got[:, t], want, atol=1e-10)
    # two languages: each LLR is the plain log-likelihood difference
    two = rng.normal(size=(5, 2))
    np.testing.assert_allclose(scores_to_llr(two)[:, 0], two[:, 0] - two[:, 1], atol=1e-12)


def test_lid_metrics_summary() -> None:
    s, y = _random_trials(seed=3)
    m = lid_metrics(s, y)
    assert set(m) == {"cavg", "min_cavg", "eer", "accuracy"}
    assert m["cavg"] == pytest.approx(cavg(s, y)) and m["min_cavg"] == pytest.approx(min_cavg(s, y))
    target = np.eye(4, dtype=bool)[y]
    assert m["eer"] == pytest.approx(eer(s.ravel(), target.ravel()))
    assert m["accuracy"] == pytest.approx(np.mean(s.argmax(1) == y))
    hand = lid_metrics(HAND_SCORES, HAND_LABELS)
    assert hand["accuracy"] == pytest.approx(4 / 6)  # rows 1 and 4 pick the wrong column


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(VoxaError, match="no trials"):
        cavg(HAND_SCORES[:4], HAND_LABELS[:4])
    with pytest.raises(VoxaError, match="pass languages"):
        cavg(HAND_SCORES, np.array(["a", "a", "b", "b", "c", "c"]))
    with pytest.raises(VoxaError, match="'xx' is not one of"):
        cavg(HAND_SCORES, ["en"] * 5 + ["xx"], languages=["en", "fr", "zh"])
    with pytest.raises(VoxaError, match="column indices in"):
        cavg(HAND_SCORES, HAND_LABELS + 1)
    with pytest.raises(VoxaError, match="2 language columns"):
        cavg(HAND_SCORES[:, :1], np.zeros(6, int))
    with pytest.raises(VoxaError, match="6 trials but labels has 5"):
        min_cavg(HAND_SCORES, HAND_LABELS[:5])
    with pytest.raises(VoxaError, match="p_target"):
        cavg(HAND_SCORES, HAND_LABELS, p_target=0.0)
    bad = HAND_SCORES.copy()
    bad[0, 0] = np.nan
    with pytest.raises(VoxaError, match="NaN"):
        lid_metrics(bad, HAND_LABELS)
