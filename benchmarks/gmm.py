"""EM iterations of voxa's public ``GaussianMixture.fit`` against scikit-learn's ``fit``, side by
side in one run.

Both start from the same parameters (random frames as means, uniform weights, the global variance)
on the same 200,000 x 39 float64 frames: real MFCC+delta+delta-delta features (per-utterance mean
normalised) of LibriSpeech in ../shared/data when present, else a draw from a 64-component
mixture. The time of one iteration is what a user's ``fit`` call spends per iteration:
``(fit(max_iter=1 + k) - fit(max_iter=1)) / k``, for each library through its public ``fit``
(conversion of the frames, start-up and the final bookkeeping cancel out), best of --repeats.
No early stop (``tol=0``), no pruning; scikit-learn's ``reg_covar=1e-6`` (without it, it stops on
a collapsed component after an iteration or two) against voxa's variance floor of 1e-6 times the
global variance, so both run nearly the same M-step; the average log-likelihood of each library's
final model is computed by that library. voxa computes in
float32 (its default: float64 statistics and M-step) and, for comparison, float64. Also: full
covariances at K = 64, the start-up of a default ``fit`` (k-means++), and top-C scoring.
voxa's threads come from :func:`voxa.utils.threads.auto_threads`; scikit-learn's BLAS uses its
own default (all cores).

    python benchmarks/gmm.py [--quick] [--frames 200000] [--iters 2] [--repeats 2]
                             [--diag-k 256,512] [--full-k 64] [--threads N]
"""

from __future__ import annotations

import argparse
import glob
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def mfcc_frames(root: Path, n: int) -> np.ndarray | None:
    """``[n, 39]`` real MFCCs from LibriSpeech under ``root``, or None if there are none."""
    files = sorted(glob.glob(str(root / "librispeech/LibriSpeech/*/*/*/*.flac")))
    if not files:
        return None
    import soundfile as sf

    from voxa.features import mfcc

    out, total = [], 0
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        m = mfcc(torch.from_numpy(x), sr, deltas=2)
        m = m - m.mean(0)
        out.append(m.numpy().astype(np.float64))
        total += m.shape[0]
        if total >= n:
            break
    if total < n:
        return None
    return np.concatenate(out)[:n]


def synthetic_frames(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """A 64-component mixture with correlated dimensions (so no diag model is exact)."""
    k = 64
    means = rng.normal(scale=3.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    lab = rng.integers(0, k, size=n)
    return means[lab] + (rng.normal(size=(n, d)) * scales[lab]) @ mix


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def per_iteration(make, X, iters: int, repeats: int) -> tuple[float, object]:
    """Seconds per EM iteration of ``make(max_iter).fit(X)``, and the longer run's model."""
    make(1).fit(X)  # warm-up: a library's first fit pays for its thread pools and caches
    t1, _ = timed(lambda: make(1).fit(X), repeats)
    tk, model = timed(lambda: make(1 + iters).fit(X), repeats)
    return max(tk - t1, 1e-9) / iters, model


def sklearn_fit(X, w0, mu0, cov0, kind, iters, repeats):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SkGMM

    K = w0.shape[0]
    prec = 1.0 / cov0 if kind == "diag" else np.linalg.inv(cov0)

    def make(n):
        return SkGMM(K, covariance_type=kind, weights_init=w0, means_init=mu0, precisions_init=prec,
                     max_iter=n, tol=0.0, reg_covar=1e-6, n_init=1, random_state=0,
                     init_params="random_from_data")  # the *_init arrays win; no k-means run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t, sk = per_iteration(make, X, iters, repeats)
    return t, float(sk.score(X))


def voxa_fit(X, w0, mu0, cov0, kind, dtype, iters, repeats):
    from voxa.gmm import GaussianMixture

    K = w0.shape[0]

    def make(n):
        return GaussianMixture(K, covariance_type=kind, means_init=mu0, weights_init=w0,
                               covariances_init=cov0, max_iter=n, tol=0.0, dtype=dtype,
                               var_floor=1e-6, prune=None)

    t, gm = per_iteration(make, X, iters, repeats)
    return t, gm.score(X)


def start_params(X, K, kind, rng):
    w0 = np.full(K, 1.0 / K)
    mu0 = X[rng.choice(X.shape[0], K, replace=False)].copy()
    if kind == "diag":
        cov0 = np.tile(X.var(0), (K, 1))
    else:
        cov0 = np.tile(np.cov(X.T, bias=True), (K, 1, 1))
    return w0, mu0, cov0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared"
                                          / "data"))
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--iters", type=int, default=2, help="iterations timed beyond the first")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="voxa's torch threads (0: auto)")
    ap.add_argument("--diag-k", default="256,512", help="diagonal mixture sizes (the first is "
                    "the one of the last line)")
    ap.add_argument("--full-k", type=int, default=64, help="full-covariance size (0: none)")
    ap.add_argument("--quick", action="store_true", help="20,000 frames, K = 64 and 128")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.frames
    diag_ks = (64, 128) if args.quick else tuple(int(k) for k in args.diag_k.split(","))
    full_k = 16 if args.quick else args.full_k
    rng = np.random.default_rng(0)

    X = mfcc_frames(Path(args.data), n)
    source = "LibriSpeech MFCC+D+DD"
    if X is None:
        X, source = synthetic_frames(n, 39, rng), "synthetic 64-component mixture"

    from voxa.utils.threads import auto_threads, cpu_snapshot, others_busy_between

    if args.threads:
        os.environ["VOXA_NUM_THREADS"] = str(args.threads)  # fit's own choice, made explicit
    threads = auto_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{X.shape[0]} x {X.shape[1]} float64 frames ({source}); voxa fit uses {threads} torch "
          f"thread(s) ({'--threads' if args.threads else 'auto_threads'}), {os.cpu_count()} CPUs, "
          f"load average {load:.2f}")
    head = (f"{'model':<18}{'sklearn s/it':>13}{'voxa s/it':>11}{'speedup':>9}"
            f"{'sklearn LL':>13}{'voxa LL':>13}{'rel diff':>10}")
    print(head)
    print("-" * len(head))
    target = float("nan")
    configs = [("diag", k) for k in diag_ks] + ([("full", full_k)] if full_k else [])
    for kind, K in configs:
        w0, mu0, cov0 = start_params(X, K, kind, rng)
        snap = cpu_snapshot()
        t_sk, ll_sk = sklearn_fit(X, w0, mu0, cov0, kind, args.iters, args.repeats)
        for dtype in (torch.float32, torch.float64):
            t_vx, ll_vx = voxa_fit(X, w0, mu0, cov0, kind, dtype, args.iters, args.repeats)
            ratio = t_sk / t_vx
            rel = abs(ll_vx - ll_sk) / abs(ll_sk)
            name = f"{kind} K={K} {str(dtype)[6:]}"
            print(f"{name:<18}{t_sk:>13.3f}{t_vx:>11.3f}{ratio:>8.1f}x{ll_sk:>13.5f}"
                  f"{ll_vx:>13.5f}{rel:>10.1e}")
            if kind == "diag" and K == diag_ks[0] and dtype == torch.float32:
                target = ratio
        others = others_busy_between(snap, cpu_snapshot())
        print(f"{'':<18}(other processes kept {others if others is not None else float('nan'):.2f} "
              f"cores busy meanwhile)")

    from voxa.gmm import GaussianMixture, llr_many

    K = diag_ks[0]
    t_init, ubm = timed(lambda: GaussianMixture(K, max_iter=0, random_state=0).fit(X), 1)
    print(f"default start-up (k-means++ on {min(max(40 * K, 20_000), 200_000)} frames, global "
          f"statistics), K={K}: {t_init:.2f} s")
    ubm = GaussianMixture(K, max_iter=2, random_state=0).fit(X)
    speakers = [ubm.map_adapt(X[i * 2000:(i + 1) * 2000]) for i in range(10)]
    utt = torch.from_numpy(X[:30_000]).float()
    for c in (None, 5):
        t, _ = timed(lambda c=c: llr_many(speakers, ubm, utt, top_c=c), args.repeats)
        label = "exact" if c is None else f"top-{c}"
        print(f"scoring {label:<6} K={K}, 10 speakers: {utt.shape[0] / t:,.0f} frames/s "
              f"({10 * utt.shape[0] / t:,.0f} frame-models/s)")
    print(f"speedup vs scikit-learn: {target:.1f}")


if __name__ == "__main__":
    main()
