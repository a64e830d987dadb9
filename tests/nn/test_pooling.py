"""voxa.nn.pooling: shapes, statistics over valid frames, attention weights, padding invariance."""

from __future__ import annotations

import pytest
import torch

from voxa.errors import ConfigError
from voxa.nn.layers import lengths_to_mask
from voxa.nn.pooling import POOLINGS, build_pooling

LENGTHS = torch.tensor([12, 5, 1, 8])
D = 8


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), D, generator=g)
    return x + 50 * ~lengths_to_mask(LENGTHS, x.shape[1])[:, :, None], LENGTHS


@pytest.mark.parametrize("name", sorted(POOLINGS))
def test_shape_and_padding_invariance(name):
    torch.manual_seed(0)
    pool = build_pooling(name, D, hidden=6, heads=4).eval()
    x, n = _batch()
    with torch.no_grad():
        v = pool(x, n)
        assert v.shape == (4, pool.out_dim(D))
        for b in range(len(n)):
            torch.testing.assert_close(v[b], pool(x[b:b + 1, :n[b]], n[b:b + 1])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [k for k, c in POOLINGS.items() if c.attentive])
def test_attention_weights_sum_to_one_over_valid_frames_and_are_zero_on_padding(name):
    torch.manual_seed(1)
    pool = build_pooling(name, D, hidden=6, heads=2)
    x, n = _batch()
    v, w = pool(x, n, return_weights=True)
    assert w.shape == x.shape[:2]
    torch.testing.assert_close(w.sum(1), torch.ones(4))
    assert (w[~lengths_to_mask(n, x.shape[1])] == 0).all()
    assert (w[lengths_to_mask(n, x.shape[1])] > 0).all()
    torch.testing.assert_close(v, pool(x, n))
    w.sum().backward()  # differentiable (no NaN from the -inf scores of padding)
    assert all(torch.isfinite(p.grad).all() for p in pool.parameters())


def test_statistics_are_those_of_the_valid_frames():
    x, n = _batch()
    tap = build_pooling("tap", D)(x, n)
    stats = build_pooling("stats", D)(x, n)
    for b in range(4):
        frames = x[b, :n[b]]
        torch.testing.assert_close(tap[b], frames.mean(0))
        torch.testing.assert_close(stats[b, :D], frames.mean(0))
        torch.testing.assert_close(stats[b, D:], frames.std(0, unbiased=False).clamp(min=1e-5 ** 0.5),
                                   rtol=1e-4, atol=1e-4)


def test_asp_with_uniform_attention_is_statistics_pooling():
    pool = build_pooling("asp", D, hidden=3)
    torch.nn.init.zeros_(pool.score[2].weight)  # every frame scores alike
    x, n = _batch()
    torch.testing.assert_close(pool(x, n), build_pooling("stats", D)(x, n))


def test_mha_heads_attend_to_their_own_dims():
    pool = build_pooling("mha", D, heads=2)
    with torch.no_grad():
        pool.u.zero_()
        pool.u[0, 0] = 30.0  # head 0 attends to the frame where dim 0 is largest; head 1 is uniform
    x = torch.zeros(1, 4, D)
    x[0, 2, 0] = 1.0
    x[0, :, 4:] = torch.arange(4.0)[:, None]
    w = pool.weights_per_head(x, torch.tensor([4]))
    assert w[0, 2, 0] > 0.99 and torch.allclose(w[0, :, 1], torch.full((4,), 0.25))
    v = pool(x, torch.tensor([4]))
    assert v[0, 0] > 0.99 and torch.allclose(v[0, 4:], torch.full((4,), 1.5))


def test_unknown_pooling_names_the_valid_ones():
    with pytest.raises(ConfigError, match="tap, stats, sap, mha, asp"):
        build_pooling("max", D)
