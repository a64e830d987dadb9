import numpy as np
import pytest
import torch

from voxa.errors import ConfigError
from voxa.features import GlobalCMVN, add_deltas, cmvn, delta, sdc


def _kaldi_delta_reference(x, window=2):
    """Direct transcription of the regression formula with edge replication."""
    t = x.shape[0]
    norm = 2 * sum(n * n for n in range(1, window + 1))
    out = np.zeros_like(x)
    for i in range(t):
        for n in range(1, window + 1):
            out[i] += n * (x[min(i + n, t - 1)] - x[max(i - n, 0)])
    return out / norm


def test_delta_matches_regression_formula():
    x = np.random.default_rng(0).standard_normal((30, 4)).astype(np.float32)
    ours = delta(torch.from_numpy(x)).numpy()
    assert np.allclose(ours, _kaldi_delta_reference(x), atol=1e-5)


def test_delta_delta_is_regression_of_padded_deltas_inside():
    x = torch.randn(40, 3)
    d2 = add_deltas(x, 2)[:, 6:]
    # away from the edges the second order equals the delta of the delta
    twice = delta(delta(x))
    assert torch.allclose(d2[5:-5], twice[5:-5], atol=1e-5)


def test_delta_of_a_ramp_is_its_slope():
    x = torch.arange(50.0).unsqueeze(1) * 0.5
    d = add_deltas(x, 2)
    assert torch.allclose(d[5:-5, 1], torch.full((40,), 0.5))
    assert torch.allclose(d[5:-5, 2], torch.zeros(40), atol=1e-5)


def test_deltas_batched_shape():
    assert add_deltas(torch.randn(2, 7, 13), 2).shape == (2, 7, 39)
    assert add_deltas(torch.randn(2, 1, 13), 2).shape == (2, 1, 39)


def test_utterance_cmvn():
    x = torch.randn(500, 13) * 3 + 7
    y = cmvn(x, norm_vars=True)
    assert y.mean(0).abs().max() < 1e-4 and (y.std(0, unbiased=False) - 1).abs().max() < 1e-3


def test_sliding_cmvn_matches_loop():
    x = torch.randn(50, 2, dtype=torch.float64).cumsum(0)
    y = cmvn(x, window=10)
    for t in [0, 3, 25, 49]:
        s = min(max(t - 5, 0), 40)
        assert torch.allclose(y[t], x[t] - x[s:s + 10].mean(0))


def test_global_cmvn_streams_and_saves(tmp_path):
    chunks = [torch.randn(100, 5) * 2 + 3 for _ in range(4)]
    g = GlobalCMVN().fit(chunks)
    allx = torch.cat(chunks)
    assert np.allclose(g.mean_, allx.mean(0).numpy(), atol=1e-5)
    g.save(tmp_path / "cmvn.safetensors")
    h = GlobalCMVN.load(tmp_path / "cmvn.safetensors")
    assert torch.allclose(h.transform(allx), g.transform(allx))
    assert g.kaldi_stats().shape == (2, 6)


def test_sdc_7_1_3_7():
    c = torch.randn(60, 13)
    s = sdc(c)
    assert s.shape == (60, 49)
    t, i = 20, 2
    expect = c[t + i * 3 + 1, :7] - c[t + i * 3 - 1, :7]
    assert torch.allclose(s[t, i * 7:(i + 1) * 7], expect)
    assert sdc(c, include_static=True).shape == (60, 56)


def test_sdc_needs_enough_cepstra():
    with pytest.raises(ConfigError, match=r"sdc N=7 must be at most the number of cepstra \(5\)"):
        sdc(torch.randn(10, 5))


def test_sdc_kaldi_mode_is_half_the_difference_inside():
    c = torch.randn(60, 7)
    ours = sdc(c)
    kaldi = sdc(c, kaldi_compat=True)
    assert torch.allclose(kaldi[5:30], ours[5:30] / 2, atol=1e-6)
    # past the end Kaldi repeats the last frame's delta
    assert torch.allclose(kaldi[59, 7:14], delta(c[:, :7], window=1)[59])
