"""39-dim MFCC throughput: voxa against librosa, kaldi-native-fbank and python_speech_features.

Takes 10 minutes of the LibriSpeech audio in ../shared/data (or --data), times each toolkit side by
side in one run on the CPU in a single process, and prints seconds and voxa's speed ratio to each.

    python benchmarks/features.py [--data ../shared/data] [--minutes 10] [--threads 1] [--gpu]
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def load_audio(root: Path, minutes: float) -> list[np.ndarray]:
    files = sorted(glob.glob(str(root / "librispeech/LibriSpeech/*/*/*/*.flac")))
    if not files:
        raise SystemExit(f"no LibriSpeech FLAC under {root}")
    out, total = [], 0.0
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        assert sr == 16000
        out.append(x)
        total += len(x) / sr
        if total >= minutes * 60:
            break
    print(f"{len(out)} utterances, {total / 60:.2f} min of 16 kHz speech")
    return out


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up: caches, lazy imports, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads for voxa's main row (0: torch's default, all cores); "
                         "a 1-thread row is always timed too")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gpu", action="store_true", help="also time voxa on CUDA if available")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    audio = load_audio(Path(args.data), args.minutes)
    sr = 16000

    from voxa.features import mfcc

    tensors = [torch.from_numpy(x) for x in audio]

    def run_voxa():
        for x in tensors:
            mfcc(x, sr, deltas=2)

    results: dict[str, float] = {}
    results["voxa"] = best_of(run_voxa, args.repeats)
    torch.set_num_threads(1)
    results["voxa (1 thread)"] = best_of(run_voxa, args.repeats)
    torch.set_num_threads(threads)

    try:
        import librosa

        def run_librosa():
            for x in audio:
                m = librosa.feature.mfcc(y=x, sr=sr, n_mfcc=13, n_fft=512, win_length=400,
                                         hop_length=160, n_mels=40, center=False)
                d1 = librosa.feature.delta(m)
                d2 = librosa.feature.delta(m, order=2)
                np.concatenate([m, d1, d2])

        results["librosa"] = best_of(run_librosa, args.repeats)
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
                comp.accept_waveform(sr, x)
                comp.input_finished()
                m = np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])
                # deltas as Kaldi's add-deltas would (knf has none): voxa's regression on numpy input
                _kaldi_deltas(m)

        results["kaldi-native-fbank"] = best_of(run_knf, args.repeats)
    except ImportError:
        print("kaldi-native-fbank not installed (pip install -e .[bench])")

    try:
        import python_speech_features as psf

        def run_psf():
            for x in audio:
                m = psf.mfcc(x, sr, winlen=0.025, winstep=0.01, numcep=13, nfilt=26, nfft=512)
                d1 = psf.delta(m, 2)
                d2 = psf.delta(d1, 2)
                np.concatenate([m, d1, d2], axis=1)

        results["python_speech_features"] = best_of(run_psf, args.repeats)
    except ImportError:
        print("python_speech_features not installed (pip install -e .[bench])")

    if args.gpu and torch.cuda.is_available():
        gt = [t.cuda() for t in tensors]

        def run_gpu():
            for x in gt:
                mfcc(x, sr, deltas=2)
            torch.cuda.synchronize()

        results["voxa-gpu"] = best_of(run_gpu, args.repeats)

    audio_s = sum(len(x) for x in audio) / sr
    print(f"\n{'toolkit':<24}{'seconds':>10}{'x real time':>14}{'voxa speedup':>14}")
    for name, t in results.items():
        print(f"{name:<24}{t:>10.3f}{audio_s / t:>14.0f}{t / results['voxa']:>14.2f}")
    print(f"(one process on the CPU; voxa with {threads} torch thread(s) unless marked, peers are "
          f"single-threaded; best of {args.repeats})")
    for peer in ("kaldi-native-fbank", "python_speech_features"):
        if peer in results:
            print(f"speedup vs {peer}: {results[peer] / results['voxa']:.2f}")
    if "librosa" in results:
        print(f"speedup vs librosa: {results['librosa'] / results['voxa']:.2f}")


def _kaldi_deltas(m: np.ndarray) -> np.ndarray:
    from voxa.features import add_deltas

    return add_deltas(torch.from_numpy(m), 2).numpy()


if __name__ == "__main__":
    main()
