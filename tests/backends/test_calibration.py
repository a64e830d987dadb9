"""Linear (binary) and multi-class logistic calibration on scores of known calibration."""

from __future__ import annotations

import numpy as np
import pytest

from voxa.backends import LinearCalibration, MultiClassCalibration
from voxa.errors import ConfigError, VoxaError
from voxa.metrics import cllr, min_cllr


def _miscalibrated(seed=0, n_tar=1000, n_non=3000):
    """Scores whose true LLR is 3 s (N(+-1.5, 1) classes), distorted to 0.5 s + 4."""
    rng = np.random.default_rng(seed)
    s = np.concatenate([rng.normal(1.5, 1.0, n_tar), rng.normal(-1.5, 1.0, n_non)])
    t = np.arange(s.size) < n_tar
    return 0.5 * s + 4.0, t


def test_calibrated_cllr_reaches_min_cllr() -> None:
    raw, t = _miscalibrated()
    cal = LinearCalibration().fit(raw, t)
    llr = cal.transform(raw)
    assert cllr(raw, t) > 1.0  # badly calibrated before
    assert cllr(llr, t) - min_cllr(raw, t) < 0.02
    held, th = _miscalibrated(seed=1)
    assert cllr(cal.transform(held), th) - min_cllr(held, th) < 0.03


def test_prior_weighting_recovers_the_likelihood_ratio_despite_unbalanced_trials() -> None:
    raw, t = _miscalibrated(n_tar=1000, n_non=9000)
    cal = LinearCalibration(p_target=0.5).fit(raw, t)
    # true map: llr = 3 s = 6 raw - 24 (unweighted logistic regression would shift b by
    # log(1000 / 9000) ~ -2.2)
    assert cal.scale_ == pytest.approx(6.0, rel=0.06)
    assert cal.offset_ == pytest.approx(-24.0, abs=1.2)
    shifted = LinearCalibration(p_target=0.1).fit(raw, t)
    assert abs(shifted.offset_ - cal.offset_) < 1.5  # the LLR, not the posterior, is fitted


def test_transform_keeps_shape_and_round_trips(tmp_path) -> None:
    raw, t = _miscalibrated()
    cal = LinearCalibration().fit(raw.reshape(-1, 1), t.astype(int))
    m = raw[:12].reshape(3, 4)
    np.testing.assert_allclose(cal.transform(m), cal.scale_ * m + cal.offset_)
    back = LinearCalibration.load(cal.save(tmp_path / "cal.safetensors"))
    assert (back.scale_, back.offset_, back.p_target) == (cal.scale_, cal.offset_, cal.p_target)


def _lid_loglik(seed=0, n_per=1000):
    """True per-class log-likelihoods of 4 Gaussian classes in 2-D (up to a shared constant)."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    y = np.repeat(np.arange(4), n_per)
    x = means[y] + rng.normal(size=(y.size, 2))
    return -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1), y


def test_multiclass_calibration_undoes_scale_and_offsets(tmp_path) -> None:
    ll, y = _lid_loglik()
    offsets = np.array([1.0, -2.0, 0.5, 3.0])
    raw = 0.4 * ll + offsets
    names = ["en", "fr", "de", "zh"]
    cal = MultiClassCalibration(classes=names).fit(raw, np.array(names)[y])
    assert cal.scale_ == pytest.approx(2.5, rel=0.06)
    want = -offsets * 2.5
    np.testing.assert_allclose(cal.offsets_, want - want.mean(), atol=0.25)
    out = cal.transform(raw)
    # calibrated vectors differ from the true log-likelihoods by a per-row constant only
    diff = out - ll
    assert np.max(np.abs(diff - diff.mean(1, keepdims=True))) < 0.5
    back = MultiClassCalibration.load(cal.save(tmp_path / "mcal.safetensors"))
    assert np.array_equal(back.transform(raw), out) and back.classes_.tolist() == names
    np.testing.assert_allclose(np.exp(back.predict_log_proba(raw)).sum(1), 1.0, atol=1e-12)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="p_target"):
        LinearCalibration(p_target=1.0)
    with pytest.raises(VoxaError, match="both target and non-target"):
        LinearCalibration().fit([0.1, 0.2], [1, 1])
    with pytest.raises(VoxaError, match="NaN"):
        LinearCalibration().fit([0.1, np.nan], [0, 1])
    with pytest.raises(VoxaError, match="not fitted"):
        LinearCalibration().transform([1.0])
    with pytest.raises(VoxaError, match="not one of the 2 score columns"):
        MultiClassCalibration().fit(np.zeros((3, 2)), [0, 1, 2])
    with pytest.raises(VoxaError, match="has no trials"):
        MultiClassCalibration().fit(np.zeros((3, 3)), [0, 1, 1])
    with pytest.raises(ConfigError, match="duplicates"):
        MultiClassCalibration(classes=["a", "a"])


def test_fusion_weights_the_informative_system_and_round_trips(tmp_path):
    from voxa.backends import MultiClassFusion

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    good = 2.0 * np.eye(3)[y] + rng.normal(size=(120, 3))
    noise = rng.normal(size=(120, 3))
    f = MultiClassFusion().fit([good, noise], y)
    assert f.weights_[0] > 3 * abs(f.weights_[1])
    assert np.mean(f.transform([good, noise]).argmax(1) == y) > 0.8
    g = MultiClassFusion.load(f.save(tmp_path / "f.safetensors"))
    np.testing.assert_allclose(g.transform([good, noise]), f.transform([good, noise]))
