"""Detection metrics against scikit-learn's ROC and closed-form expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from voxa.errors import VoxaError
from voxa.metrics import (
    act_dcf,
    bayes_threshold,
    cllr,
    det_curve,
    detection_metrics,
    eer,
    eer_threshold,
    min_cllr,
    min_dcf,
    plot_det,
)


def _gaussian_trials(seed=0, n_tar=300, n_non=1700, mu=2.0):
    rng = np.random.default_rng(seed)
    scores = np.concatenate([rng.normal(mu, 1.0, n_tar), rng.normal(0.0, 1.0, n_non)])
    labels = np.concatenate([np.ones(n_tar, bool), np.zeros(n_non, bool)])
    perm = rng.permutation(scores.size)
    return scores[perm], labels[perm]


def _sklearn_min_dcf(scores, labels, p, c_miss, c_fa):
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    cost = c_miss * p * (1 - tpr) + c_fa * (1 - p) * fpr
    return cost.min() / min(c_miss * p, c_fa * (1 - p))


def test_det_curve_equals_sklearn_roc_reversed():
    scores, labels = _gaussian_trials()
    p_miss, p_fa, thr = det_curve(scores, labels)
    fpr, tpr, sk_thr = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(p_fa[::-1], fpr, atol=1e-12)
    np.testing.assert_allclose(p_miss[::-1], 1 - tpr, atol=1e-12)
    np.testing.assert_array_equal(thr[:-1][::-1], sk_thr[1:])


@pytest.mark.parametrize("p,c_miss,c_fa", [(0.01, 1, 1), (0.05, 1, 1), (0.5, 1, 1), (0.01, 10, 1)])
def test_min_dcf_matches_sklearn_roc(p, c_miss, c_fa):
    scores, labels = _gaussian_trials(seed=1)
    ours = min_dcf(scores, labels, p_target=p, c_miss=c_miss, c_fa=c_fa)
    assert ours == pytest.approx(_sklearn_min_dcf(scores, labels, p, c_miss, c_fa), abs=1e-6)


def test_min_dcf_unnormalised_is_scaled_by_trivial_cost():
    scores, labels = _gaussian_trials(seed=2)
    raw = min_dcf(scores, labels, p_target=0.05, normalize=False)
    assert raw == pytest.approx(0.05 * min_dcf(scores, labels, p_target=0.05), rel=1e-12)


def test_eer_matches_sklearn_crossing_within_one_step():
    scores, labels = _gaussian_trials(seed=3)
    fpr, tpr, _ = roc_curve(labels, scores)
    reference = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    step = 1.0 / min(labels.sum(), (~labels).sum())
    assert abs(eer(scores, labels) - reference) <= step
    # well separated Gaussians (d' = 2): EER = Phi(-1) ~ 0.159
    assert 0.12 < eer(scores, labels) < 0.20


def test_eer_lies_between_the_bracketing_operating_points():
    scores, labels = _gaussian_trials(seed=4)
    p_miss, p_fa, _ = det_curve(scores, labels)
    e = eer(scores, labels)
    i = np.argmax(p_miss >= p_fa)
    assert min(p_miss[i - 1], p_fa[i]) - 1e-12 <= e <= max(p_miss[i], p_fa[i - 1]) + 1e-12


def test_eer_threshold_gives_balanced_error_rates():
    scores, labels = _gaussian_trials(seed=5, n_tar=2000, n_non=2000)
    thr = eer_threshold(scores, labels)
    p_miss = np.mean(scores[labels] < thr)
    p_fa = np.mean(scores[~labels] >= thr)
    assert abs(p_miss - p_fa) <= 2.0 / 2000


def test_perfect_separation_gives_zero_eer_and_min_dcf():
    scores = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 5.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert eer(scores, labels) == 0.0
    assert min_dcf(scores, labels, p_target=0.01) == 0.0
    assert min_dcf(scores, labels, p_target=0.05) == 0.0
    assert min_cllr(scores, labels) == 0.0


def test_reversed_scores_give_eer_one():
    scores = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 5.0])
    labels = np.array([1, 1, 1, 0, 0, 0])
    assert eer(scores, labels) == 1.0


def test_all_tied_scores_are_one_operating_point():
    labels = np.array([1, 0, 1, 0, 0, 0])
    p_miss, p_fa, thr = det_curve(np.zeros(6), labels)
    np.testing.assert_array_equal(p_miss, [0.0, 1.0])
    np.testing.assert_array_equal(p_fa, [1.0, 0.0])
    assert eer(np.zeros(6), labels) == 0.5
    assert min_dcf(np.zeros(6), labels) == 1.0


def test_ties_make_results_independent_of_trial_order():
    scores, labels = _gaussian_trials(seed=6)
    scores = np.round(scores * 2) / 2  # heavy ties, targets and non-targets share values
    # within a tied group, a stable sort keeps either all targets or all non-targets first
    rev = np.argsort(~labels, kind="stable")
    fwd = np.argsort(labels, kind="stable")
    for order in (rev, fwd):
        assert eer(scores[order], labels[order]) == pytest.approx(eer(scores, labels), abs=1e-12)
        assert min_dcf(scores[order], labels[order]) == pytest.approx(
            _sklearn_min_dcf(scores, labels, 0.01, 1, 1), abs=1e-9)
    assert len(det_curve(scores, labels)[2]) == np.unique(scores).size + 1


def test_cllr_of_calibrated_gaussian_llrs_is_below_one():
    mu = 1.5
    rng = np.random.default_rng(7)
    x_tar, x_non = rng.normal(mu, 1.0, 2000), rng.normal(-mu, 1.0, 2000)
    # exact LLR of N(mu, 1) against N(-mu, 1)
    llr = 2 * mu * np.concatenate([x_tar, x_non])
    labels = np.concatenate([np.ones(2000), np.zeros(2000)])
    c = cllr(llr, labels)
    assert 0.0 < c < 1.0
    assert min_cllr(llr, labels) <= c + 1e-12
    # calibrated: nothing to gain from recalibration (up to finite-sample noise)
    assert c - min_cllr(llr, labels) < 0.02


def test_cllr_of_zero_scores_is_exactly_one():
    assert cllr(np.zeros(7), [1, 0, 0, 1, 0, 0, 0]) == pytest.approx(1.0, abs=1e-15)


def test_cllr_penalises_miscalibration():
    scores, labels = _gaussian_trials(seed=8)
    llr = 2 * scores - 2  # LLR of N(2, 1) vs N(0, 1)
    assert cllr(10 * llr, labels) > cllr(llr, labels)
    assert min_cllr(10 * llr, labels) == pytest.approx(min_cllr(llr, labels), abs=1e-12)


@pytest.mark.parametrize("p", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("scale,shift", [(1.0, 0.0), (3.0, 2.0), (0.2, -4.0)])
def test_act_dcf_is_at_least_min_dcf(p, scale, shift):
    scores, labels = _gaussian_trials(seed=9)
    llr = scale * (2 * scores - 2) + shift
    assert act_dcf(llr, labels, p_target=p) >= min_dcf(llr, labels, p_target=p) - 1e-12


def test_act_dcf_uses_the_bayes_threshold():
    scores, labels = _gaussian_trials(seed=10)
    p, c_miss, c_fa = 0.05, 2.0, 1.0
    thr = bayes_threshold(p, c_miss, c_fa)
    assert thr == pytest.approx(-np.log(p * c_miss / ((1 - p) * c_fa)))
    cost = c_miss * p * np.mean(scores[labels] < thr) + c_fa * (1 - p) * np.mean(
        scores[~labels] >= thr)
    assert act_dcf(scores, labels, p, c_miss, c_fa, normalize=False) == pytest.approx(cost)


def test_detection_metrics_keys_and_consistency():
    scores, labels = _gaussian_trials(seed=11)
    m = detection_metrics(scores, labels)
    for key in ("eer", "min_dcf", "min_dcf_0.01", "min_dcf_0.05", "act_dcf_0.01", "act_dcf_0.05",
                "cllr", "n_target", "n_nontarget"):
        assert key in m
    assert m["eer"] == eer(scores, labels)
    assert m["min_dcf"] == m["min_dcf_0.01"] == min_dcf(scores, labels, 0.01)
    assert m["min_dcf_0.05"] == min_dcf(scores, labels, 0.05)
    assert m["act_dcf_0.05"] == act_dcf(scores, labels, 0.05)
    assert m["cllr"] == cllr(scores, labels)
    assert (m["n_target"], m["n_nontarget"]) == (300, 1700)


def test_lists_and_tensors_give_the_same_result():
    scores, labels = _gaussian_trials(seed=12, n_tar=50, n_non=150)
    ref = detection_metrics(scores, labels)
    assert detection_metrics(scores.tolist(), labels.astype(int).tolist()) == ref
    got = detection_metrics(torch.from_numpy(scores), torch.from_numpy(labels))
    assert got == ref


@pytest.mark.parametrize("scores,labels,match", [
    ([0.1, 0.2, 0.3], [0, 0, 0], "no target"),
    ([0.1, 0.2, 0.3], [True, True, True], "no non-target"),
    ([0.1, 0.2, 0.3], [0, 1], "shape"),
    ([0.1, float("nan"), 0.3], [0, 1, 0], "NaN or infinite"),
    ([0.1, float("inf"), 0.3], [0, 1, 0], "NaN or infinite"),
    ([0.1, 0.2, 0.3], [0, 2, 1], "0/1"),
    ([], [], "no target"),
])
def test_bad_trials_raise_voxa_error(scores, labels, match):
    with pytest.raises(VoxaError, match=match):
        eer(scores, labels)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1])
def test_bad_prior_raises_voxa_error(p):
    with pytest.raises(VoxaError, match="p_target"):
        min_dcf([0.1, 0.9], [0, 1], p_target=p)


def test_plot_det_writes_png(tmp_path, png_plot):
    a = _gaussian_trials(seed=13, n_tar=100, n_non=400)
    b = _gaussian_trials(seed=14, n_tar=100, n_non=400, mu=3.0)
    out = plot_det({"weak": a, "strong": b}, tmp_path / "det.png", title="two systems")
    png_plot(out, (644, 655))


def test_plot_det_accepts_a_single_pair_with_perfect_separation(tmp_path, png_plot):
    path = tmp_path / "sub" / "det.png"
    plot_det(([-1.0, -2.0, 1.0, 2.0], [0, 0, 1, 1]), path)
    png_plot(path, (644, 655), colored=50)  # the curve lies on the edges: only the legend is coloured
