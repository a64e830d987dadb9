"""39-dim MFCC throughput of voxa's public ``voxa.features.mfcc`` against librosa, kaldi-native-fbank
and python_speech_features, side by side in one run on the CPU.

Two cases from the LibriSpeech audio in ../shared/data (or --data): about 10 minutes of utterances,
each computed on its own (what a corpus run does), and one long recording (--long-seconds, 600 s
by default) made by concatenating utterances. voxa runs with the thread count
:func:`voxa.utils.threads.auto_threads` picks (the cores other processes leave free), or
--threads; a 1-thread row is always timed too. ``--busy-core`` starts a process that burns one CPU
(pinned to the last core) for the whole run, as another user's job would. Peers are single-
threaded. The last line is ``speedup vs librosa: <ratio>`` for the slower of the two cases.

    python benchmarks/features.py [--data ../shared/data] [--minutes 10] [--long-seconds 600]
                                  [--threads N] [--busy-core] [--repeats 3] [--gpu]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SR = 16000


def load_audio(root: Path, minutes: float) -> list[np.ndarray]:
    files = sorted(glob.glob(str(root / "librispeech/LibriSpeech/*/*/*/*.flac")))
    if not files:
        raise SystemExit(f"no LibriSpeech FLAC under {root}")
    out, total = [], 0.0
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        assert sr == SR
        out.append(x)
        total += len(x) / sr
        if total >= minutes * 60:
            break
    return out


def long_signal(utts: list[np.ndarray], root: Path, seconds: float) -> np.ndarray:
    """One ``seconds`` long signal: the utterances end to end (more are read if needed)."""
    need = int(seconds * SR)
    parts, n = [], 0
    for x in utts:
        parts.append(x)
        n += len(x)
        if n >= need:
            return np.concatenate(parts)[:need]
    more = load_audio(root, seconds / 60.0 + 1.0)
    return long_signal(more, root, seconds) if sum(map(len, more)) >= need else np.concatenate(more)


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: caches, lazy imports, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def start_burner() -> subprocess.Popen:
    """A process spinning on the last CPU (another user's job)."""
    cpu = max(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    pin = f"os.sched_setaffinity(0, {{{cpu}}})\n" if cpu is not None else ""
    code = f"import os\n{pin}while True: pass\n"
    p = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(1.0)  # running before threads are chosen
    return p


def time_case(name: str, audio: list[np.ndarray], threads: int, repeats: int, gpu: bool
              ) -> dict[str, float]:
    from voxa.features import mfcc
    from voxa.utils.threads import cpu_snapshot, others_busy_between

    tensors = [torch.from_numpy(x) for x in audio]
    snap = cpu_snapshot()

    def run_voxa():
        for x in tensors:
            mfcc(x, SR, deltas=2)

    results: dict[str, float] = {}
    torch.set_num_threads(threads)
    results[f"voxa ({threads} thread{'s' if threads > 1 else ''})"] = best_of(run_voxa, repeats)
    if threads != 1:
        torch.set_num_threads(1)
        results["voxa (1 thread)"] = best_of(run_voxa, repeats)
    if threads != os.cpu_count() and os.cpu_count():
        torch.set_num_threads(os.cpu_count())
        results[f"voxa ({os.cpu_count()} threads, forced)"] = best_of(run_voxa, repeats)
    torch.set_num_threads(threads)

    try:
        import librosa

        def run_librosa():
            for x in audio:
                m = librosa.feature.mfcc(y=x, sr=SR, n_mfcc=13, n_fft=512, win_length=400,
                                         hop_length=160, n_mels=40, center=False)
                d1 = librosa.feature.delta(m)
                d2 = librosa.feature.delta(m, order=2)
                np.concatenate([m, d1, d2])

        results["librosa"] = best_of(run_librosa, repeats)
    except ImportError:
        print("librosa not installed (pip install -e .[bench])")

    try:
        import kaldi_native_fbank as knf

        opts = knf.MfccOptions()
        opts.frame_opts.dither = 0.0
        scaled = [x * 32768.0 for x in audio]

        def run_knf():
            for x in scaled:
                comp = knf.OnlineMfcc(opts)
                comp.accept_waveform(SR, x)
                comp.input_finished()
                m = np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])
                _kaldi_deltas(m)  # knf has no deltas: Kaldi's add-deltas via voxa on numpy input

        results["kaldi-native-fbank"] = best_of(run_knf, repeats)
    except ImportError:
        print("kaldi-native-fbank not installed (pip install -e .[bench])")

    try:
        import python_speech_features as psf

        def run_psf():
            for x in audio:
                m = psf.mfcc(x, SR, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512)
                d1 = psf.delta(m, 2)
                d2 = psf.delta(d1, 2)
                np.concatenate([m, d1, d2], axis=1)

        results["python_speech_features"] = best_of(run_psf, repeats)
    except ImportError:
        print("python_speech_features not installed (pip install -e .[bench])")

    if gpu and torch.cuda.is_available():
        gt = [t.cuda() for t in tensors]

        def run_gpu():
            for x in gt:
                mfcc(x, SR, deltas=2)
            torch.cuda.synchronize()

        results["voxa-gpu"] = best_of(run_gpu, repeats)

    main = next(iter(results))
    audio_s = sum(len(x) for x in audio) / SR
    others = others_busy_between(snap, cpu_snapshot())
    print(f"\n{name}: {len(audio)} signal(s), {audio_s / 60:.2f} min of 16 kHz speech (other "
          f"processes kept {others if others is not None else float('nan'):.2f} cores busy)")
    print(f"{'toolkit':<30}{'seconds':>10}{'x real time':>14}{'voxa speedup':>14}")
    for k, t in results.items():
        print(f"{k:<30}{t:>10.3f}{audio_s / t:>14.0f}{t / results[main]:>14.2f}")
    return {"voxa": results[main], **{k: v for k, v in results.items() if not k.startswith("voxa")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for voxa's main row (0: voxa.utils.threads.auto_threads)")
    ap.add_argument("--busy-core", action="store_true",
                    help="run a CPU-burning process on the last core while timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gpu", action="store_true", help="also time voxa on CUDA if available")
    args = ap.parse_args()
    root = Path(args.data)
    utts = load_audio(root, args.minutes)
    long = long_signal(utts, root, args.long_seconds)
    burner = start_burner() if args.busy_core else None
    try:
        from voxa.utils.threads import auto_threads, free_cores

        threads = args.threads or auto_threads()
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"voxa threads: {threads} ({'--threads' if args.threads else 'auto_threads'}; "
              f"{free_cores()} of {os.cpu_count()} CPUs free; busy core: "
              f"{'yes' if burner else 'no'}; load average {load:.2f})")
        cases = {"utterances": time_case("utterances", utts, threads, args.repeats, args.gpu),
                 "long signal": time_case(f"one {args.long_seconds:.0f} s signal", [long], threads,
                                          args.repeats, args.gpu)}
    finally:
        if burner is not None:
            burner.terminate()
            burner.wait()
    print(f"\n(one process on the CPU; voxa with {threads} torch thread(s) unless marked, peers "
          f"single-threaded; best of {args.repeats})")
    worst = {}
    for case, res in cases.items():
        for peer in ("librosa", "kaldi-native-fbank", "python_speech_features"):
            if peer in res:
                ratio = res[peer] / res["voxa"]
                worst[peer] = min(worst.get(peer, ratio), ratio)
                print(f"speedup vs {peer} ({case}): {ratio:.2f}")
    for peer in ("kaldi-native-fbank", "python_speech_features", "librosa"):
        if peer in worst:
            print(f"speedup vs {peer}: {worst[peer]:.2f}")


def _kaldi_deltas(m: np.ndarray) -> np.ndarray:
    from voxa.features import add_deltas

    return add_deltas(torch.from_numpy(m), 2).numpy()


if __name__ == "__main__":
    main()
