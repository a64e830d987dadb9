"""voxa.hmm.inference: padded batches, backward/forward agreement, exactness where paths underflow."""

from __future__ import annotations

import math

import pytest
import torch

from voxa.errors import ConfigError, VoxaError
from voxa.hmm import Topology, backward, forward, posteriors, viterbi
from voxa.hmm.inference import _log_backward, _log_forward

S = 4
torch.manual_seed(0)
LB = torch.randn(3, 30, S, dtype=torch.float64) * 2
LENGTHS = torch.tensor([30, 17, 1])
_A = torch.rand(S, S, dtype=torch.float64) + 0.1
LOG_A = (_A / _A.sum(1, keepdim=True)).log()
LOG_PI = torch.full((S,), -math.log(S), dtype=torch.float64)
LOG_FIN = torch.tensor([-1.0, -2.0, -math.inf, -0.5], dtype=torch.float64)


def _alone(fn, b, log_final=None):
    n = int(LENGTHS[b])
    return fn(LB[b:b + 1, :n], torch.tensor([n]), LOG_PI, LOG_A, log_final)


@pytest.mark.parametrize("fin", [None, LOG_FIN])
def test_padded_batch_equals_each_utterance_alone(fin):
    junk = LB.clone()
    for b, n in enumerate(LENGTHS.tolist()):
        junk[b, n:] = float("nan")  # padding may hold anything
    ll, gamma, xi = posteriors(junk, LENGTHS, LOG_PI, LOG_A, fin)
    score, paths = viterbi(junk, LENGTHS, LOG_PI, LOG_A, fin)
    for b, n in enumerate(LENGTHS.tolist()):
        ll1, g1, xi1 = _alone(posteriors, b, fin)
        s1, p1 = _alone(viterbi, b, fin)
        torch.testing.assert_close(ll[b], ll1[0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(gamma[b, :n], g1[0], rtol=1e-10, atol=1e-12)
        assert bool((gamma[b, n:] == 0).all())
        torch.testing.assert_close(xi[b], xi1[0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(score[b], s1[0])
        assert paths[b, :n].tolist() == p1[0].tolist() and bool((paths[b, n:] == -1).all())


def test_forward_equals_plain_logsumexp_recursion():
    ll, la = forward(LB, LENGTHS, LOG_PI, LOG_A)
    ref = _log_forward(LB, LOG_PI, LOG_A)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(la[b, :n], ref[b, :n], rtol=1e-12, atol=1e-10)


def test_backward_gives_the_forward_likelihood_and_plain_recursion():
    llf, _ = forward(LB, LENGTHS, LOG_PI, LOG_A, LOG_FIN)
    llb, lbeta = backward(LB, LENGTHS, LOG_PI, LOG_A, LOG_FIN)
    torch.testing.assert_close(llb, llf, rtol=1e-12, atol=1e-10)
    ref = _log_backward(LB, LENGTHS, LOG_A, LOG_FIN)
    for b, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(lbeta[b, :n], ref[b, :n], rtol=1e-12, atol=1e-10)


def test_posteriors_sum_to_one_and_xi_to_frames_minus_one():
    _, gamma, xi = posteriors(LB.float(), LENGTHS, LOG_PI, LOG_A)
    torch.testing.assert_close(gamma.sum(2)[0], torch.ones(30, dtype=torch.float64))
    torch.testing.assert_close(xi.sum((1, 2)), (LENGTHS - 1).to(torch.float64))


def test_paths_far_below_the_best_are_not_lost():
    # state 2 is reachable only through state 1, which is 1000 nats worse until frame 3, where only
    # state 2 fits: the rescaled recursion underflows and must fall back to the logsumexp one
    topo = Topology.left_to_right(3)
    lb = torch.zeros(1, 6, 3, dtype=torch.float64)
    lb[0, :, 1:] = -1000.0
    lb[0, 3:] = torch.tensor([-5000.0, -5000.0, 0.0])
    ll, la = forward(lb, torch.tensor([6]), topo.log_pi, topo.log_A)
    ref = _log_forward(lb, topo.log_pi, topo.log_A)
    torch.testing.assert_close(ll[0], torch.logsumexp(ref[0, -1], 0))
    _, gamma, _ = posteriors(lb, torch.tensor([6]), topo.log_pi, topo.log_A)
    assert gamma[0, -1].tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_viterbi_matches_brute_force_on_a_short_sequence():
    import itertools

    lb = LB[:1, :4]
    best = max(itertools.product(range(S), repeat=4),
               key=lambda p: float(LOG_PI[p[0]] + sum(LOG_A[a, b] for a, b in zip(p, p[1:]))
                                   + sum(lb[0, t, s] for t, s in enumerate(p))))
    _, paths = viterbi(lb, torch.tensor([4]), LOG_PI, LOG_A)
    assert tuple(paths[0].tolist()) == best


@pytest.mark.parametrize("args", [
    (torch.zeros(2, 5), torch.tensor([5, 5])),
    (torch.zeros(2, 5, S), torch.tensor([5, 6])),
    (torch.zeros(2, 5, S), torch.tensor([5])),
    (torch.zeros(2, 5, S + 1), torch.tensor([5, 5])),
])
def test_bad_shapes_are_one_line_voxa_errors(args):
    with pytest.raises(VoxaError) as e:
        forward(*args, LOG_PI, LOG_A)
    assert "\n" not in str(e.value)


def test_topology_validation_is_a_config_error():
    with pytest.raises(ConfigError, match="row 0"):
        Topology.from_probs([1.0, 0.0], [[0.5, 0.4], [0.0, 1.0]])
    assert Topology.left_to_right(4, skips=True).log_A.exp()[0].tolist() == pytest.approx([1 / 3] * 3 + [0])


@pytest.mark.parametrize("fin", [None, LOG_FIN])
def test_numpy_frame_loops_equal_the_torch_ones(monkeypatch, fin):
    from voxa.hmm import inference

    junk = LB.clone()
    junk[1, 17:] = float("nan")
    small = posteriors(junk, LENGTHS, LOG_PI, LOG_A, fin), viterbi(junk, LENGTHS, LOG_PI, LOG_A, fin)
    monkeypatch.setattr(inference, "_NUMPY_MAX_STATES", 0)
    monkeypatch.setattr(inference, "_BACKPOINTER_ELEMENTS", 0)
    big = posteriors(junk, LENGTHS, LOG_PI, LOG_A, fin), viterbi(junk, LENGTHS, LOG_PI, LOG_A, fin)
    for x, y in zip(small[0], big[0]):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(small[1][0], big[1][0], rtol=0, atol=0)
    assert small[1][1].tolist() == big[1][1].tolist()


@pytest.mark.parametrize("tied", [False, True])
def test_sparse_viterbi_equals_dense_on_a_phone_loop_with_extra_arcs(monkeypatch, tied):
    from voxa.hmm import inference

    g = torch.Generator().manual_seed(1)
    n_ph, per = 10, 3
    S = n_ph * per
    A = torch.zeros(S, S, dtype=torch.float64)
    for i in range(S):
        A[i, i] = 1.0
        if i % per < per - 1:
            A[i, i + 1] = 1.0
        else:
            A[i, ::per] = 1.0
    if tied:  # a uniform loop back: each exit's arcs into the phone entries all weigh the same
        A *= (torch.rand(S, 1, generator=g, dtype=torch.float64) + 0.1)
        A[torch.arange(S), torch.arange(S)] = 0.7
    else:
        A[3, 17] = A[20, 5] = A[29, 0] = 1.0  # a few arcs off the pattern
        A *= torch.rand(S, S, generator=g, dtype=torch.float64) + 0.1
    log_A = (A / A.sum(1, keepdim=True)).log()
    log_pi = torch.full((S,), -math.inf, dtype=torch.float64)
    log_pi[::per] = -math.log(n_ph)
    log_fin = torch.full((S,), -math.inf, dtype=torch.float64)
    log_fin[per - 1::per] = 0.0
    lb = torch.randn(4, 40, S, generator=g, dtype=torch.float64) * 3
    lengths = torch.tensor([40, 33, 1, 12])
    assert inference._sparse_plan(log_A) is not None
    for fin in (None, log_fin):
        sparse = viterbi(lb, lengths, log_pi, log_A, fin)
        monkeypatch.setattr(inference, "_SPARSE_VITERBI", False)
        dense = viterbi(lb, lengths, log_pi, log_A, fin)
        monkeypatch.setattr(inference, "_SPARSE_VITERBI", True)
        assert torch.equal(sparse[0], dense[0]) and torch.equal(sparse[1], dense[1])


def test_likelihood_only_pass_equals_forward_also_where_paths_underflow():
    from voxa.hmm.inference import _loglik

    topo = Topology.left_to_right(3)
    lb = torch.zeros(2, 6, 3, dtype=torch.float64)
    lb[:, :, 1:] = -1000.0
    lb[:, 3:] = torch.tensor([-5000.0, -5000.0, 0.0])
    lb[1] = torch.randn(6, 3, dtype=torch.float64)
    for args in [(lb, torch.tensor([6, 4]), topo.log_pi, topo.log_A),
                 (LB, LENGTHS, LOG_PI, LOG_A, LOG_FIN), (LB, LENGTHS, LOG_PI, LOG_A)]:
        torch.testing.assert_close(_loglik(*args), forward(*args)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_states", [1, 2, 5])
def test_numpy_viterbi_equals_torch_for_any_small_state_count(monkeypatch, n_states):
    from voxa.hmm import inference

    g = torch.Generator().manual_seed(n_states)
    lb = torch.randn(3, 25, n_states, generator=g, dtype=torch.float64)
    A = torch.rand(n_states, n_states, generator=g, dtype=torch.float64) + 0.1
    args = (lb, torch.tensor([25, 9, 1]), torch.full((n_states,), -math.log(n_states), dtype=torch.float64),
            (A / A.sum(1, keepdim=True)).log())
    small = viterbi(*args)
    monkeypatch.setattr(inference, "_NUMPY_MAX_STATES", 0)
    big = viterbi(*args)
    assert torch.equal(small[0], big[0]) and torch.equal(small[1], big[1])


def test_posteriors_equal_the_log_space_formula():
    for fin in (None, LOG_FIN):
        ll, gamma, _ = posteriors(LB, LENGTHS, LOG_PI, LOG_A, fin)
        _, la = forward(LB, LENGTHS, LOG_PI, LOG_A, fin)
        _, lbeta = backward(LB, LENGTHS, LOG_PI, LOG_A, fin)
        ref = (la + lbeta - ll[:, None, None]).exp().nan_to_num(0.0)
        torch.testing.assert_close(gamma, ref, rtol=1e-12, atol=1e-14)
