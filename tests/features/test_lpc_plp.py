import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import torch

from voxa.features import levinson_durbin, lpc, lpc_to_cepstrum, lpcc, plp
from voxa.features.lpc import autocorrelation


def test_autocorrelation_matches_numpy():
    x = torch.randn(3, 200, dtype=torch.float64)
    r = autocorrelation(x, 10)
    ref = np.array([[np.dot(row[: 200 - k], row[k:]) for k in range(11)] for row in x.numpy()])
    assert np.allclose(r.numpy(), ref, atol=1e-8)


def test_levinson_solves_the_toeplitz_system():
    x = torch.randn(400, dtype=torch.float64)
    r = autocorrelation(x, 12)
    a, err = levinson_durbin(r, 12)
    sol = scipy.linalg.solve_toeplitz(r[:12].numpy(), -r[1:13].numpy())
    assert np.allclose(a.numpy(), sol, atol=1e-4)
    assert err.item() == pytest.approx(float(r[0] + (a.double() * r[1:13]).sum()), rel=1e-3)


def test_lpc_recovers_an_ar_process():
    rng = np.random.default_rng(0)
    true = np.array([1.0, -1.5, 0.7])
    x = scipy.signal.lfilter([1.0], true, rng.standard_normal(32000)).astype(np.float32)
    a, _ = lpc(torch.from_numpy(x), 16000, order=2, preemphasis=0.0, window="rectangular",
               frame_length_ms=500, frame_shift_ms=500)
    assert np.allclose(a.mean(0).numpy(), true[1:], atol=0.05)


def test_lpc_cepstrum_matches_log_spectrum_cepstrum():
    a = torch.tensor([[-0.9, 0.2]], dtype=torch.float64)
    c = lpc_to_cepstrum(a, 20)[0].double().numpy()
    # cepstrum of 1/A(z) by FFT of log|1/A|
    n = 4096
    spec = np.fft.fft(np.concatenate([[1.0], a[0].numpy()]), n)
    ceps = np.fft.ifft(-np.log(spec)).real
    assert np.allclose(c, ceps[1:21], atol=1e-5)


def test_lpcc_shape_and_finite_on_silence():
    x = torch.zeros(2, 8000)
    y = lpcc(x, 8000, deltas=2)
    assert y.shape == (2, 98, 39) and torch.isfinite(y).all()


@pytest.mark.parametrize("kaldi", [False, True])
def test_plp_shape_and_finite(kaldi):
    x = torch.randn(2, 16000) * (1000 if kaldi else 0.1)
    y = plp(x, 16000, kaldi_compat=kaldi, deltas=1)
    assert y.shape == (2, 98, 26) and torch.isfinite(y).all()


def test_plp_separates_vowels():
    """Two formant patterns give PLP cepstra further apart than two takes of the same pattern."""
    rng = np.random.default_rng(0)

    def vowel(f1, f2):
        src = np.zeros(16000)
        src[::100] = 1.0
        out = src
        for f in (f1, f2):
            r = np.exp(-np.pi * 80 / 16000)
            out = scipy.signal.lfilter([1], [1, -2 * r * np.cos(2 * np.pi * f / 16000), r * r], out)
        return torch.from_numpy((out + 1e-3 * rng.standard_normal(16000)).astype(np.float32))

    a1, a2, i1 = (plp(vowel(*f), 16000)[:, 1:].mean(0) for f in [(700, 1200), (700, 1200), (300, 2300)])
    assert (a1 - a2).norm() < 0.2 * (a1 - i1).norm()
