"""Separation metrics against reference implementations (numpy formulas, fast_bss_eval, pesq)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from voxa.errors import VoxaError
from voxa.metrics.separation import (
    bss_sdr,
    inactive_sdr,
    output_attenuation_db,
    pesq_batch,
    pesq_score,
    sdr,
    sdr_improvement,
    si_sdr,
)


def _np_sdr(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.sum(ref**2, -1) / np.sum((ref - est) ** 2, -1))


def _np_si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    # transcription of Le Roux et al. 2019, eq. (1)-(3) with zero-mean signals
    est = est - est.mean()
    ref = ref - ref.mean()
    alpha = np.dot(est, ref) / np.dot(ref, ref)
    e_target = alpha * ref
    e_res = est - e_target
    return 10 * np.log10(np.sum(e_target**2) / np.sum(e_res**2))


def _speech_like(rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Voiced-speech stand-in: a pitch-gliding pulse train through two formant resonators with a
    syllable-rate envelope and short pauses, at about -20 dB RMS."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = np.cumsum(f0 / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    x = pulses
    for fc, bw in ((500.0, 80.0), (1500.0, 120.0)):
        r = np.exp(-np.pi * bw / rate)
        x = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / rate), r * r], x)
    env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.5
    x = x * env + 1e-4 * rng.standard_normal(n)
    return (0.1 * x / np.sqrt(np.mean(x**2))).astype(np.float32)


def test_sdr_matches_numpy_formula_batched() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((2, 3, 4000))
    est = ref + 0.3 * rng.standard_normal((2, 3, 4000))
    got = sdr(torch.tensor(est, dtype=torch.float32), torch.tensor(ref, dtype=torch.float32))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.numpy(), _np_sdr(est.astype(np.float32).astype(np.float64),
                                                    ref.astype(np.float32).astype(np.float64)), atol=1e-9)
    # numpy in, numpy out; per item equals batched
    got_np = sdr(est, ref)
    assert isinstance(got_np, np.ndarray)
    assert float(sdr(est[1, 2], ref[1, 2])) == pytest.approx(got_np[1, 2], abs=1e-12)


def test_si_sdr_matches_le_roux_and_is_scale_invariant() -> None:
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((3, 8000)) + 0.2
    est = 0.7 * ref + 0.5 * rng.standard_normal((3, 8000))
    got = si_sdr(est, ref)
    np.testing.assert_allclose(got, [_np_si_sdr(est[i], ref[i]) for i in range(3)], atol=1e-9)
    np.testing.assert_allclose(si_sdr(3.0 * est, ref), got, atol=1e-9)
    # plain SDR is not scale invariant: that's why the paper trains with it
    assert not np.allclose(sdr(3.0 * est, ref), sdr(est, ref))


@pytest.mark.parametrize("kind", ["noise", "filtered"])
def test_bss_sdr_matches_fast_bss_eval(kind: str) -> None:
    fbe = pytest.importorskip("fast_bss_eval")
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((2, 8000))
    if kind == "noise":
        est = ref + rng.standard_normal((2, 8000))
    else:
        h = rng.standard_normal(40) * np.exp(-np.arange(40) / 8)
        est = lfilter(h, [1.0], ref, axis=-1) + 0.2 * rng.standard_normal((2, 8000))
    got = bss_sdr(torch.tensor(est), torch.tensor(ref), filter_length=512)
    want = fbe.sdr(ref[:, None, :], est[:, None, :], filter_length=512)[:, 0]
    np.testing.assert_allclose(got.numpy(), want, atol=1e-2)
    # the filter is forgiven: BSS SDR is well above plain SDR for a filtered estimate
    if kind == "filtered":
        assert np.all(got.numpy() > sdr(est, ref) + 10)


def test_bss_sdr_batched_on_two_threads_with_a_silent_reference() -> None:
    # MKL's batched LU solve fails on 2 threads for n > ~150 (pytorch#142815); CI runs 2 threads
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((3, 4000))
    ref[1] = 0.0
    est = ref + 0.5 * rng.standard_normal((3, 4000))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = bss_sdr(torch.tensor(est), torch.tensor(ref), filter_length=512).numpy()
    finally:
        torch.set_num_threads(threads)
    alone = bss_sdr(torch.tensor(est[2]), torch.tensor(ref[2]), filter_length=512).numpy()
    assert np.isfinite(got[[0, 2]]).all()
    np.testing.assert_allclose(got[2], alone, atol=1e-6)


def test_bss_sdr_float32_and_zero_mean_option() -> None:
    fbe = pytest.importorskip("fast_bss_eval")
    rng = np.random.default_rng(4)
    ref = rng.standard_normal(6000).astype(np.float32) + 1.0
    est = ref + 0.5 * rng.standard_normal(6000).astype(np.float32)
    got = bss_sdr(torch.from_numpy(est), torch.from_numpy(ref), filter_length=256, zero_mean=True)
    want = fbe.sdr(ref[None].astype(np.float64), est[None].astype(np.float64), filter_length=256,
                   zero_mean=True)[0]
    assert float(got) == pytest.approx(float(want), abs=1e-2)


def test_sdr_improvement_of_mixture_is_zero() -> None:
    rng = np.random.default_rng(5)
    ref = rng.standard_normal((2, 4000))
    mix = ref + rng.standard_normal((2, 4000))
    for metric in ("sdr", "si_sdr"):
        np.testing.assert_allclose(sdr_improvement(mix, ref, mix, metric=metric), 0.0, atol=1e-12)
    est = ref + 0.1 * (mix - ref)
    np.testing.assert_allclose(sdr_improvement(est, ref, mix), 20.0, atol=1e-9)
    with pytest.raises(VoxaError, match="metric"):
        sdr_improvement(est, ref, mix, metric="pesq")


def test_inactive_sdr_and_attenuation() -> None:
    mix = torch.full((2, 64000), 0.1)  # 4 s at 16 kHz, -20 dB RMS
    silent = inactive_sdr(torch.zeros(2, 64000), mix)
    np.testing.assert_allclose(silent.numpy(), 10 * np.log10(0.01 * 640), atol=1e-9)
    passthrough = inactive_sdr(mix, mix)
    np.testing.assert_allclose(passthrough.numpy(), 10 * np.log10(1.01 * 640), atol=1e-9)
    assert np.all(passthrough.numpy() > silent.numpy())  # lower is better
    att = output_attenuation_db(0.1 * mix, mix)
    np.testing.assert_allclose(att.numpy(), 20.0, atol=1e-9)
    assert np.all(np.isfinite(output_attenuation_db(torch.zeros(2, 64000), mix).numpy()))


def test_bad_shapes_and_empty_signals() -> None:
    with pytest.raises(VoxaError, match="shape"):
        sdr(torch.zeros(2, 100), torch.zeros(2, 101))
    with pytest.raises(VoxaError, match="empty"):
        si_sdr(np.zeros((2, 0)), np.zeros((2, 0)))
    with pytest.raises(VoxaError, match="scalar"):
        bss_sdr(np.float64(1.0), np.float64(1.0))
    with pytest.raises(VoxaError, match="filter_length"):
        bss_sdr(np.ones(100), np.ones(100), filter_length=512)
    with pytest.raises(VoxaError, match="shape"):
        inactive_sdr(np.zeros(10), np.zeros(11))


def test_pesq_matches_package_wb_and_nb() -> None:
    pesq = pytest.importorskip("pesq")
    rng = np.random.default_rng(6)
    for rate, mode in ((16000, "wb"), (8000, "nb")):
        ref = _speech_like(rate)
        deg = (ref + 0.02 * rng.standard_normal(ref.shape)).astype(np.float32)
        got = pesq_score(deg, ref, rate)
        assert got == pytest.approx(pesq.pesq(rate, ref, deg, mode), abs=1e-6)
        assert 1.0 < got < 4.0
        assert pesq_score(ref, ref, rate) > 4.0
    ref16 = _speech_like(16000)
    batch = pesq_batch(np.stack([ref16, ref16]), np.stack([ref16, ref16]), 16000)
    assert batch.shape == (2,) and np.all(batch > 4.0)


def test_pesq_resamples_other_rates_and_nan_on_silence() -> None:
    pytest.importorskip("pesq")
    ref = _speech_like(24000, seconds=2.0)
    assert pesq_score(ref, ref, 24000) > 4.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = pesq_score(np.zeros(32000, np.float32), np.zeros(32000, np.float32), 16000)
    assert np.isnan(score)
    assert any("no utterance" in str(w.message) for w in caught)
    with pytest.raises(VoxaError, match="1-D"):
        pesq_score(np.zeros((2, 16000)), np.zeros((2, 16000)), 16000)
