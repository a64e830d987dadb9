"""Joint factor analysis on synthetic speakers with speaker and channel offsets: linear scoring
separates targets from non-targets; enrolment, scoring shapes, save/load and bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from voxa.errors import ConfigError, VoxaError
from voxa.gmm import GaussianMixture
from voxa.ivector import BaumWelchStats, JointFactorAnalysis, baum_welch_stats
from voxa.metrics.detection import eer

RV, RU = 4, 3


def _corpus(synth: SimpleNamespace, ubm: GaussianMixture, n_spk: int, n_utt: int, seed: int, V: np.ndarray,
            U: np.ndarray, Dz: float) -> tuple[BaumWelchStats, list[int]]:
    """Utterances with supervector offsets ``V y_s + U x_u + D z_s`` (all factors standard normal)."""
    rng = np.random.default_rng(seed)
    K, d = ubm.means_.shape
    spk = np.repeat(np.arange(n_spk), n_utt)
    y = rng.normal(size=(n_spk, RV))
    z = rng.normal(size=(n_spk, K, d)) * Dz * np.sqrt(ubm.covariances_.numpy())
    x = rng.normal(size=(len(spk), RU))
    off = np.einsum("kdr,ur->ukd", V, y[spk]) + np.einsum("kdr,ur->ukd", U, x) + z[spk]
    utts = synth.sample_utterances(ubm, off, rng.integers(50, 201, size=len(spk)), seed + 1)
    return baum_welch_stats(ubm, utts), spk.tolist()


@pytest.fixture(scope="module")
def setup(synth: SimpleNamespace) -> SimpleNamespace:
    ubm = synth.make_ubm(16, 5, seed=3, dtype=torch.float32)
    rng = np.random.default_rng(11)
    std = np.sqrt(ubm.covariances_.numpy())[:, :, None]
    # Speakers differ mostly through the residual D z, spread over all K d dimensions: with only
    # a rank-4 speaker subspace, inner products (linear scoring) of random speakers are too often
    # as large as a speaker's with itself. The channel spread exceeds the speaker spread.
    V = 0.2 * std * rng.normal(size=(16, 5, RV))
    U = 0.5 * std * rng.normal(size=(16, 5, RU))
    train, train_spk = _corpus(synth, ubm, 60, 6, 20, V, U, 0.5)
    jfa = JointFactorAnalysis(speaker_rank=RV, channel_rank=RU, n_iter=8, n_iter_d=3,
                              progress=False).fit(train, train_spk, ubm)
    # held-out speakers: 3 enrolment and 2 test utterances each
    ev, ev_spk = _corpus(synth, ubm, 30, 5, 40, V, U, 0.5)
    is_enrol = np.tile([True, True, True, False, False], 30)
    return SimpleNamespace(ubm=ubm, jfa=jfa, train=train, train_spk=train_spk,
                           enrol=ev[torch.from_numpy(is_enrol)],
                           enrol_spk=[s for s, e in zip(ev_spk, is_enrol) if e],
                           test=ev[torch.from_numpy(~is_enrol)],
                           test_spk=[s for s, e in zip(ev_spk, is_enrol) if not e])


def _eer(jfa: JointFactorAnalysis, s: SimpleNamespace) -> tuple[float, torch.Tensor]:
    models = jfa.enroll(s.enrol, s.enrol_spk)
    scores = jfa.score(models, s.test)
    labels = np.array(sorted(set(s.enrol_spk)))[:, None] == np.array(s.test_spk)[None, :]
    return eer(scores.double().numpy().ravel(), labels.ravel()), scores


def test_linear_scoring_separates_speakers(setup: SimpleNamespace) -> None:
    jfa = setup.jfa
    assert jfa.V_.shape == (16, 5, RV) and jfa.U_.shape == (16, 5, RU) and jfa.D_.shape == (16, 5)
    for stage in ("V", "U"):
        h = np.array(jfa.history_[stage])
        assert len(h) == 8 and (np.diff(h) >= -1e-6 * np.abs(h[1:])).all(), (stage, h)
    rate, scores = _eer(jfa, setup)
    assert scores.shape == (30, 60)
    assert rate < 0.10, rate
    # the channel factors are doing work: without U the same trials are much harder
    no_u = JointFactorAnalysis(speaker_rank=RV, channel_rank=0, n_iter=8, n_iter_d=3,
                               progress=False).fit(setup.train, setup.train_spk, setup.ubm)
    assert _eer(no_u, setup)[0] > 2 * rate


def test_enroll_per_row_and_save_load(setup: SimpleNamespace, tmp_path: Path) -> None:
    jfa = setup.jfa
    models = jfa.enroll(setup.enrol[:4])  # every row its own speaker
    assert models.shape == (4, 16, 5)
    back = JointFactorAnalysis.load(jfa.save(tmp_path / "jfa.safetensors"))
    assert back.history_ == jfa.history_
    assert torch.equal(back.score(back.enroll(setup.enrol[:4]), setup.test),
                       jfa.score(models, setup.test))
    assert jfa.channel_factors(setup.test).shape == (60, RU)


def test_bad_input(setup: SimpleNamespace, synth: SimpleNamespace) -> None:
    jfa = setup.jfa
    with pytest.raises(VoxaError, match="not fitted"):
        JointFactorAnalysis().enroll(setup.enrol)
    with pytest.raises(VoxaError, match="models must be"):
        jfa.score(torch.zeros(3, 16, 4), setup.test)
    with pytest.raises(VoxaError, match="labels"):
        jfa.enroll(setup.enrol, ["a"])
    with pytest.raises(VoxaError, match="UBM has"):
        jfa.score(torch.zeros(3, 16, 5), BaumWelchStats(setup.test.N[:, :4], setup.test.F[:, :4]))
    with pytest.raises(ConfigError, match="diagonal"):
        JointFactorAnalysis(progress=False).fit(setup.train, setup.train_spk,
                                                synth.make_ubm(16, 5, seed=3, kind="full"))
