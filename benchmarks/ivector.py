"""i-vector extraction throughput: voxa's batched extractor against a per-utterance textbook loop.

A diagonal UBM (default 512 components, a few EM iterations) and a total-variability matrix
(default rank 400, one EM iteration: enough for timing) are trained on the benchmark utterances:
real LibriSpeech MFCC+delta+delta-delta features (39 dims, energy VAD, per-utterance CMN via
``voxa.features.pipeline.extract``) when ``--data`` names a manifest, else synthetic frames from
a 64-component mixture at 100 frames per second. Then, on the same utterances:

(a) voxa: Baum-Welch statistics plus extraction (``TotalVariability.extract``), statistics alone
    (``baum_welch_stats``) and extraction alone (``TotalVariability.transform``), each best of
    ``--repeats``; the extraction is also split into its stages (precision build
    ``I + sum_k N_k T_k' S_k^-1 T_k`` as one GEMM, the projection ``T' S^-1 F``, and the batched
    Cholesky solve);
(b) the textbook formula in numpy, one utterance at a time on the same statistics and in the same
    float32, written as the formula reads: ``L = I + T' S^-1 N(u) T`` with ``T`` the ``[K d, R]``
    loading, then solve ``L w = T' S^-1 F`` (timed on ``--textbook-utts`` utterances, scaled);
(b') the usual per-utterance speed-up of that loop (Kenny's): ``L = I + sum_k N_k T_k' S_k^-1 T_k``
    from ``K`` matrices precomputed once, as voxa also does;
(c) sidekit, if it imports (1.4.3.2 from PyPI does not: its package import needs torchaudio).

Throughput is utterances per second and real-time factor = audio seconds / compute seconds. The
last line is the extraction-alone speedup of (a) over (b), both from the same statistics; the line
before it, over (b').

    python benchmarks/ivector.py [--data exp/bench/librispeech/manifest.jsonl] [--utts 200]
                                 [--components 512] [--rank 400] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def real_utterances(manifest: str, n: int) -> tuple[list[torch.Tensor], float, str]:
    """First ``n`` utterances of a manifest as MFCC-39 features, with their audio duration."""
    from voxa.data.loading import load_record
    from voxa.data.manifest import read_manifest
    from voxa.features.pipeline import FeatureConfig, extract

    cfg = FeatureConfig(type="mfcc", deltas=2, cmvn="utt", vad=True)
    feats, seconds = [], 0.0
    for rec in read_manifest(manifest)[:n]:
        wav, sr = load_record(rec)
        feats.append(extract(wav[0], sr, cfg).float())
        seconds += wav.shape[1] / sr
    return feats, seconds, f"LibriSpeech MFCC-39 from {manifest}"


def synthetic_utterances(n: int, d: int, seed: int) -> tuple[list[torch.Tensor], float, str]:
    """``n`` utterances of 2-15 s (100 frames/s) drawn from a 64-component mixture."""
    rng = np.random.default_rng(seed)
    k = 64
    means = rng.normal(scale=3.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    feats = []
    for T in rng.integers(200, 1501, size=n):
        lab = rng.integers(0, k, size=T)
        shift = rng.normal(scale=0.3, size=d)  # a per-utterance offset, as a speaker would add
        feats.append(torch.from_numpy(means[lab] + shift + rng.normal(size=(T, d)) * scales[lab])
                     .float())
    return feats, sum(f.shape[0] for f in feats) / 100.0, "synthetic 64-component mixture"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeats: int, device: torch.device) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return min(times), out


def stage_times(tv, stats, device: torch.device, repeats: int) -> dict[str, float]:
    """Seconds spent building precisions, projecting and solving, batch by batch (best of N)."""
    from voxa.ivector import factor

    prep = tv._prepared()
    bs = tv._batch()
    batches = [(stats.N[i:i + bs].to(device, tv.dtype), stats.F[i:i + bs].to(device, tv.dtype))
               for i in range(0, len(stats), bs)]
    out = {}
    Ls, bvec = [], []
    out["precision"], Ls = best_of(lambda: [factor.precision(prep, N) for N, _ in batches],
                                   repeats, device)
    out["projection"], bvec = best_of(lambda: [factor.projection(prep, N, F) for N, F in batches],
                                      repeats, device)
    out["solve"], _ = best_of(lambda: [factor.solve(L, b) for L, b in zip(Ls, bvec)], repeats,
                              device)
    return out


def numpy_per_utterance(tv, stats) -> tuple[float, dict[str, float], np.ndarray]:
    """The textbook extraction, one utterance at a time (float32, same precomputed matrices)."""
    T = tv.T_.numpy().astype(np.float32)  # [K, d, R]
    sig = tv.sigma_.numpy().astype(np.float32)
    o = tv.mean_.numpy().astype(np.float32)
    K, d, R = T.shape
    t0 = time.perf_counter()
    PT = T / sig[:, :, None]  # Sigma_k^-1 T_k
    TtST = T.transpose(0, 2, 1) @ PT  # [K, R, R], precomputed once as voxa does
    setup = time.perf_counter() - t0
    P = PT.reshape(K * d, R)
    N, F = (t.numpy().astype(np.float32) for t in stats)
    eye = np.eye(R, dtype=np.float32)
    ws = np.empty((len(N), R), dtype=np.float32)
    t_prec = t_proj = t_solve = 0.0
    for u in range(len(N)):
        t0 = time.perf_counter()
        L = eye + np.tensordot(N[u], TtST, axes=1)
        t1 = time.perf_counter()
        b = P.T @ (F[u] - N[u][:, None] * o).reshape(-1)
        t2 = time.perf_counter()
        ws[u] = np.linalg.solve(L, b)
        t3 = time.perf_counter()
        t_prec += t1 - t0
        t_proj += t2 - t1
        t_solve += t3 - t2
    stages = {"setup": setup, "precision": t_prec, "projection": t_proj, "solve": t_solve}
    return t_prec + t_proj + t_solve, stages, ws


def textbook_per_utterance(tv, stats, n: int) -> float:
    """Seconds per utterance of the formula as written, ``L = I + T' Sigma^-1 N T`` with ``T`` the
    ``[K d, R]`` supervector loading, one utterance at a time (no precomputed per-component
    products), timed on the first ``n`` utterances."""
    T = tv.T_.numpy().astype(np.float32)
    sig = tv.sigma_.numpy().astype(np.float32)
    o = tv.mean_.numpy().astype(np.float32)
    K, d, R = T.shape
    Tm = T.reshape(K * d, R)
    isig = (1.0 / sig).reshape(-1)
    N, F = (t.numpy().astype(np.float32) for t in stats)
    eye = np.eye(R, dtype=np.float32)
    n = min(n, len(N))
    t0 = time.perf_counter()
    for u in range(n):
        w = np.repeat(N[u], d) * isig  # diagonal of Sigma^-1 N(u), [K d]
        L = eye + Tm.T @ (Tm * w[:, None])
        b = Tm.T @ (isig * (F[u] - N[u][:, None] * o).reshape(-1))
        np.linalg.solve(L, b)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="manifest (jsonl) of real audio; else synthetic")
    ap.add_argument("--utts", type=int, default=200)
    ap.add_argument("--components", type=int, default=512)
    ap.add_argument("--rank", type=int, default=400)
    ap.add_argument("--ubm-iter", type=int, default=3)
    ap.add_argument("--tv-iter", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--textbook-utts", type=int, default=20,
                    help="utterances timed for the formula-as-written baseline (it is slow)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from voxa.gmm import GaussianMixture
    from voxa.ivector import TotalVariability, baum_welch_stats

    t0 = time.perf_counter()
    if args.data:
        utts, seconds, source = real_utterances(args.data, args.utts)
    else:
        utts, seconds, source = synthetic_utterances(args.utts, 39, args.seed)
    frames = sum(u.shape[0] for u in utts)
    print(f"{len(utts)} utterances, {frames} frames x {utts[0].shape[1]} dims, {seconds:.0f} s of "
          f"audio ({source}; loaded in {time.perf_counter() - t0:.1f} s); device {device}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")

    t0 = time.perf_counter()
    ubm = GaussianMixture(args.components, max_iter=args.ubm_iter, random_state=args.seed,
                          device=device).fit(torch.cat(utts))
    t_ubm = time.perf_counter() - t0
    utts = [u.to(device) for u in utts]
    stats = baum_welch_stats(ubm, utts)
    t0 = time.perf_counter()
    tv = TotalVariability(rank=args.rank, n_iter=args.tv_iter, progress=False, seed=args.seed)
    tv.fit(stats, ubm)
    print(f"UBM K={args.components} ({args.ubm_iter} EM it) in {t_ubm:.1f} s; TV rank "
          f"{args.rank} ({args.tv_iter} EM it) in {time.perf_counter() - t0:.1f} s")
    tv.transform(stats[:2])  # precomputes T_k' S_k^-1 T_k, which a trained extractor keeps

    U = len(utts)
    t_stats, _ = best_of(lambda: baum_welch_stats(ubm, utts), args.repeats, device)
    t_ext, ivecs = best_of(lambda: tv.transform(stats), args.repeats, device)
    t_all, _ = best_of(lambda: tv.extract(utts), args.repeats, device)
    stages = stage_times(tv, stats, device, args.repeats)
    t_np, np_stages, np_ivecs = numpy_per_utterance(tv, stats.to("cpu"))
    t_book = textbook_per_utterance(tv, stats.to("cpu"), args.textbook_utts) * U
    diff = float(np.abs(np_ivecs - ivecs.cpu().numpy()).max())
    scale = float(np.abs(np_ivecs).max())

    rows = [("voxa stats + extraction", t_all), ("voxa stats alone", t_stats),
            ("voxa extraction alone", t_ext), ("numpy per-utterance, precomputed T_k'S_k^-1T_k", t_np),
            (f"numpy per-utterance, formula as written (from {min(args.textbook_utts, U)} utts)", t_book)]
    try:
        import sidekit  # noqa: F401
        print("sidekit: importable, but not benchmarked here (its extractor needs its own "
              "StatServer/FactorAnalyser files)")
    except ImportError as e:
        # sidekit 1.4.3.2 (PyPI) imports torchaudio at package import, which the torch 2.13 CPU wheel lacks
        print(f"sidekit: not importable ({e})")
    head = f"{'method':<62}{'seconds':>9}{'utts/s':>10}{'x real-time':>13}"
    print(head)
    print("-" * len(head))
    for name, t in rows:
        print(f"{name:<62}{t:>9.3f}{U / t:>10.1f}{seconds / t:>13.1f}")
    print(f"where the time goes (s): voxa stats {t_stats:.3f} | extraction: precision build "
          f"{stages['precision']:.3f}, projection {stages['projection']:.3f}, solve "
          f"{stages['solve']:.3f}")
    print(f"                         numpy per-utterance: precision build "
          f"{np_stages['precision']:.3f}, projection {np_stages['projection']:.3f}, solve "
          f"{np_stages['solve']:.3f} (plus {np_stages['setup']:.3f} once for T_k' S_k^-1 T_k)")
    print(f"max |voxa - numpy| i-vector difference: {diff:.2e} (largest entry {scale:.2e})")
    print(f"speedup vs per-utterance with precomputed T_k'S_k^-1T_k (Kenny's trick): {t_np / t_ext:.1f}x")
    print(f"speedup vs per-utterance: {t_book / t_ext:.1f}x")


if __name__ == "__main__":
    main()
