"""voxa.hmm against hmmlearn, side by side in one run on the same data and the same parameters.

Parts: forward (``score``), Viterbi (``decode``) and one Baum-Welch iteration (``fit`` with
``n_iter=1`` from the given parameters, ``init_params=""``), through each library's public API, for
(a) 3 ergodic states, diagonal Gaussians, and (b) a 120-state phone loop (40 phones x 3 left-to-right
states; a phone's last state may go to any phone's first state), on 50 utterances x 300 frames x 39
dims (float64; a draw from the 3-state model plus noise). voxa runs at its default float32
emissions (float64 recursions); hmmlearn in float64 (its only kind). Seconds are the best of
--repeats after a warm-up; the last line is the geometric mean of the six speedups.

    OMP_NUM_THREADS=1 python benchmarks/hmm.py [--repeats 3] [--utts 50] [--frames 300]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
import torch


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: thread pools, caches, first-call imports
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def phone_loop(n_phones: int = 40, per: int = 3) -> tuple[np.ndarray, np.ndarray]:
    S = n_phones * per
    A = np.zeros((S, S))
    for p in range(n_phones):
        for k in range(per):
            i = p * per + k
            A[i, i] = 0.6
            if k < per - 1:
                A[i, i + 1] = 0.4
            else:
                A[i, ::per] = 0.4 / n_phones  # to the first state of every phone
    pi = np.zeros(S)
    pi[::per] = 1.0 / n_phones
    return pi, A / A.sum(1, keepdims=True)


def run_setup(name, pi, A, mu, topo, X, lengths, repeats) -> list[float]:
    """Print the three rows of one setup; returns their speedups."""
    from hmmlearn import hmm as hl

    from voxa.hmm import GaussianHMM

    ratios = []
    S = A.shape[0]
    var = np.tile(X.var(0), (S, 1))

    def make_hl():
        m = hl.GaussianHMM(S, covariance_type="diag", n_iter=1, init_params="", tol=-np.inf)
        m.startprob_, m.transmat_, m.means_, m.covars_ = pi, A, mu, var
        return m

    def make_vx():
        m = GaussianHMM(S, covariance_type="diag", n_iter=1, init_params="", tol=-np.inf, topology=topo)
        m.startprob_, m.transmat_, m.means_, m.covars_ = pi, A, mu, var
        return m

    h, v = make_hl(), make_vx()
    ll_h, ll_v = h.score(X, lengths), v.score(X, lengths)
    dec_h, dec_v = h.decode(X, lengths)[0], v.decode(X, lengths)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = [
            ("score", lambda: h.score(X, lengths), lambda: v.score(X, lengths), ll_h, ll_v),
            ("decode", lambda: h.decode(X, lengths), lambda: v.decode(X, lengths), dec_h, dec_v),
            ("BW iter", lambda: make_hl().fit(X, lengths), lambda: make_vx().fit(X, lengths),
             ll_h, make_vx().fit(X, lengths).history_[0]),
        ]
        for part, f_h, f_v, ref, got in parts:
            t_h, t_v = timed(f_h, repeats), timed(f_v, repeats)
            ratios.append(t_h / t_v)
            print(f"{name:<20}{part:<12}{t_h:>12.4f}{t_v:>10.4f}{t_h / t_v:>8.1f}x"
                  f"{abs(got - ref) / abs(ref):>13.1e}")
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--utts", type=int, default=50)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--dims", type=int, default=39)
    args = ap.parse_args()
    from voxa.hmm import Topology

    rng = np.random.default_rng(0)
    D, lengths = args.dims, [args.frames] * args.utts
    N = sum(lengths)
    centres = rng.normal(scale=2.0, size=(3, D))
    X = centres[np.repeat(rng.integers(0, 3, N // 20 + 1), 20)[:N]] + rng.normal(size=(N, D))
    print(f"{args.utts} utterances x {args.frames} frames x {D} dims; torch threads: "
          f"{torch.get_num_threads()}; best of {args.repeats}")

    setups = []
    A3 = np.full((3, 3), 0.1) + np.eye(3) * 0.7
    setups.append(("(a) 3 states", np.full(3, 1 / 3), A3, centres, None))
    pi, A = phone_loop()
    S = A.shape[0]
    means = centres[np.arange(S) % 3] + rng.normal(scale=0.5, size=(S, D))
    with np.errstate(divide="ignore"):
        topo = Topology(np.log(pi), np.log(A))
    setups.append(("(b) 120-state loop", pi, A, means, topo))

    head = f"{'setup':<20}{'part':<12}{'hmmlearn s':>12}{'voxa s':>10}{'speedup':>9}{'rel diff LL':>13}"
    print(head)
    print("-" * len(head))
    ratios = []
    for setup in setups:
        ratios += run_setup(*setup, X, lengths, args.repeats)
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"speedup vs hmmlearn: {gm:.1f}")


if __name__ == "__main__":
    main()
