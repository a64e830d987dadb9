"""A small spoken-digit corpus voxa makes itself (espeak-ng voices) when no real data is at hand.

It is laid out like the Free Spoken Digit Dataset (``recordings/{digit}_{speaker}_{take}.wav``, 8 kHz)
so the same preparer reads it. Without espeak-ng, a crude source-filter synthesiser stands in.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from voxa.audio.io import load, save
from voxa.audio.resample import resample

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = (("en-us", "m1"), ("en-gb", "f2"), ("en-us", "m3"), ("en-gb-scotland", "f4"),
          ("en-us", "m7"), ("en-029", "f1"))


def make_digit_corpus(root: str | Path, takes: int = 10, rate: int = 8000, seed: int = 0) -> str:
    """Write a digit corpus under ``root``; returns which synthesiser made it (``espeak-ng``/``formant``)."""
    root = Path(root)
    rec = root / "recordings"
    rec.mkdir(parents=True, exist_ok=True)
    espeak = shutil.which("espeak-ng")
    rng = np.random.default_rng(seed)
    kind = "espeak-ng" if espeak else "formant"
    for s, (voice, variant) in enumerate(VOICES):
        speaker = f"{voice.replace('-', '')}{variant}"
        base_pitch = 35 + 10 * s
        for d, word in enumerate(DIGITS):
            for t in range(takes):
                out = rec / f"{d}_{speaker}_{t}.wav"
                if out.exists():
                    continue
                speed = int(rng.integers(130, 190))
                pitch = int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99))
                if espeak:
                    wav = _espeak(espeak, word, f"{voice}+{variant}", speed, pitch, rate)
                else:
                    wav = _formant_word(d, s, t, rate, rng)
                save(out, wav, rate)
    return kind


def _espeak(exe: str, text: str, voice: str, speed: int, pitch: int, rate: int) -> torch.Tensor:
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "x.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(f), text],
                       check=True, capture_output=True)
        wav, sr = load(f, mono=True)
    wav = resample(wav, sr, rate)
    return 0.9 * wav / wav.abs().max().clamp(min=1e-6)


def _formant_word(digit: int, speaker: int, take: int, rate: int, rng: np.random.Generator
                  ) -> torch.Tensor:
    """Two vowel-like segments whose formants depend on the digit and pitch on the speaker."""
    from scipy.signal import lfilter

    dur = 0.35 + 0.05 * rng.random()
    n = int(dur * rate)
    f0 = 90 + 25 * speaker + 5 * rng.standard_normal()
    t = np.arange(n) / rate
    phase = 2 * np.pi * np.cumsum(np.full(n, f0) * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / rate
    src = (np.sin(phase) > 0.95).astype(float) + 0.01 * rng.standard_normal(n)
    out = np.zeros(n)
    vtl = 0.85 + 0.07 * speaker  # vocal-tract length scales every formant: the speaker cue
    formants = [(vtl * (300 + 60 * digit), 80), (vtl * (900 + 110 * ((digit * 3) % 10)), 100),
                (vtl * 2300, 150)]
    half = n // 2
    for k, (f, bw) in enumerate(formants):
        for seg, shift in ((slice(0, half), 1.0), (slice(half, n), 1.0 + 0.1 * (digit % 3 - 1))):
            r = np.exp(-np.pi * bw / rate)
            w = 2 * np.pi * f * shift / rate
            out[seg] += lfilter([1 - r], [1, -2 * r * np.cos(w), r * r], src[seg]) / (k + 1)
    out *= np.hanning(n)
    out = 0.8 * out / max(np.abs(out).max(), 1e-9)
    return torch.from_numpy(out.astype(np.float32))
