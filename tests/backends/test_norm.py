"""Score normalisation: Z-, T-, S- and adaptive S-norm on synthetic impostor scores."""

from __future__ import annotations

import numpy as np
import pytest

from voxa.backends import as_norm, snorm, tnorm, znorm
from voxa.errors import ConfigError, VoxaError


def _impostors(n=400, m=300, seed=0):
    """i.i.d. impostor scores far from zero mean / unit variance."""
    rng = np.random.default_rng(seed)
    return 5.0 + 3.0 * rng.normal(size=(n, m))


def test_znorm_standardises_each_model_by_its_cohort() -> None:
    s = _impostors()
    z = znorm(s, s)  # the impostor matrix as its own cohort: exact zero mean, unit std per row
    np.testing.assert_allclose(z.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(1), 1.0, atol=1e-12)


def test_tnorm_standardises_each_test_by_its_cohort() -> None:
    s = _impostors()
    t = tnorm(s, s.T)
    np.testing.assert_allclose(t.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(t.std(0), 1.0, atol=1e-12)


def test_snorm_of_impostor_scores_has_zero_mean_unit_std_per_side() -> None:
    s = _impostors()
    ns = snorm(s, s, s.T)
    np.testing.assert_allclose(ns, 0.5 * (znorm(s, s) + tnorm(s, s.T)), atol=1e-12)
    for axis in (0, 1):
        assert np.max(np.abs(ns.mean(axis))) < 0.25
        assert np.max(np.abs(ns.std(axis) - 1.0)) < 0.15


def test_as_norm_with_full_cohort_equals_snorm() -> None:
    rng = np.random.default_rng(1)
    s, ce, ct = rng.normal(size=(5, 7)), rng.normal(size=(5, 60)), rng.normal(size=(7, 40))
    np.testing.assert_allclose(as_norm(s, ce, ct, top_n=60), snorm(s, ce, ct), atol=1e-12)
    np.testing.assert_allclose(as_norm(s, ce, ct, top_n=1000), snorm(s, ce, ct), atol=1e-12)


def test_as_norm_uses_the_top_scoring_cohort() -> None:
    rng = np.random.default_rng(2)
    s, ce, ct = rng.normal(size=(3, 4)), rng.normal(size=(3, 50)), rng.normal(size=(4, 50))
    top_e = np.sort(ce, axis=1)[:, -10:]
    top_t = np.sort(ct, axis=1)[:, -10:]
    want = 0.5 * ((s - top_e.mean(1)[:, None]) / top_e.std(1)[:, None]
                  + (s - top_t.mean(1)[None, :]) / top_t.std(1)[None, :])
    np.testing.assert_allclose(as_norm(s, ce, ct, top_n=10), want, atol=1e-12)
    assert not np.allclose(want, snorm(s, ce, ct))


def test_bad_inputs_raise_clear_errors() -> None:
    s = np.ones((2, 3))
    with pytest.raises(VoxaError, match="enroll_cohort has 3 rows"):
        znorm(s, np.random.default_rng(0).normal(size=(3, 10)))
    with pytest.raises(VoxaError, match="test_cohort has 2 rows"):
        tnorm(s, np.random.default_rng(0).normal(size=(2, 10)))
    with pytest.raises(VoxaError, match="constant cohort"):
        znorm(s, np.ones((2, 10)))
    with pytest.raises(ConfigError, match="top_n"):
        as_norm(s, np.ones((2, 10)), np.ones((3, 10)), top_n=1)
    with pytest.raises(VoxaError, match="NaN"):
        tnorm(np.full((2, 3), np.nan), np.ones((3, 4)))
