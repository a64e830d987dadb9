"""Small speech corpora voxa synthesises with espeak-ng, for ASR pipelines to run on without real data.

:func:`make_yesno_corpus` writes files named and sampled like Kaldi's ``waves_yesno`` (8 kHz,
``0_1_..._1.wav``, 1 = "yes", 0 = "no"), so :func:`voxa.data.corpora.yesno.prepare_yesno` reads them;
unlike the real corpus (Hebrew "ken"/"lo") the words are English. Each word is synthesised on its own
and the words are joined by random pauses, so word boundaries are not at fixed times.
:func:`make_word_corpus` writes isolated words (digits, commands) with a manifest.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxa.audio.io import load, save
from voxa.audio.resample import resample
from voxa.data.manifest import Record, write_manifest
from voxa.errors import VoxaError

__all__ = ["make_word_corpus", "make_yesno_corpus"]

_YESNO = ("no", "yes")
_NOISE_RMS = 10 ** (-55 / 20)  # faint: keeps pauses from being digital silence, far below speech
_SPEED = (140, 190)  # espeak-ng words per minute
_PITCH = (35, 65)  # espeak-ng pitch, 0..99


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise VoxaError("espeak-ng not found on PATH: install it (e.g. apt-get install espeak-ng) to "
                        "synthesise speech")
    return exe


def _speak(exe: str, text: str, voice: str, speed: int, pitch: int, rate: int) -> np.ndarray:
    """One utterance at ``rate``, leading and trailing silence cut, peak 0.9."""
    with tempfile.TemporaryDirectory() as td:
        f = Path(td) / "x.wav"
        try:
            subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(f), text],
                           check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as e:
            raise VoxaError(f"espeak-ng -v {voice} failed on {text!r}: "
                            f"{(e.stderr or e.stdout or '').strip() or f'exit {e.returncode}'}") from None
        if not f.is_file() or f.stat().st_size <= 44:
            raise VoxaError(f"espeak-ng -v {voice} wrote no audio for {text!r} (unknown voice?)")
        wav, sr = load(f, mono=True)
    x = resample(wav, sr, rate).numpy()[0].astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max(initial=0.0))
    if loud.size == 0:
        raise VoxaError(f"espeak-ng -v {voice} produced silence for {text!r}")
    margin = int(0.01 * rate)
    x = x[max(loud[0] - margin, 0):loud[-1] + margin + 1]
    return 0.9 * x / np.abs(x).max()


def _silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * rate)))


def make_yesno_corpus(out_dir: str | os.PathLike, n_files: int = 12, words_per_file: int = 8,
                      rate: int = 8000, voices: Sequence[str] = ("en", "en+f3"), seed: int = 0) -> Path:
    """Write a ``waves_yesno``-style corpus into ``out_dir/waves_yesno``.

    File ``k`` is spoken by ``voices[k % len(voices)]`` at a random speed; its words are drawn at random
    (distinct sequences per file) and separated by 0.1-0.4 s pauses, with 0.2-0.5 s of lead-in and
    tail, faint noise throughout. Existing files of the same name are overwritten.

    Args:
        out_dir: parent folder (created).
        n_files: number of files, at most ``2 ** words_per_file``.
        words_per_file: words per file (Kaldi's corpus has 8).
        rate: sample rate in Hz.
        voices: espeak-ng voices (``-v``), variants allowed (``en+f3``).
        seed: seeds words, speeds, pitches, pauses and noise.

    Returns:
        The ``waves_yesno`` folder.

    Raises:
        VoxaError: espeak-ng missing or failing, or more files asked for than word sequences exist.

    Example:
        >>> folder = make_yesno_corpus("/tmp/yesno_synth", n_files=4)  # doctest: +SKIP
        >>> sorted(p.name for p in folder.glob("*.wav"))[0]  # doctest: +SKIP
        '0_0_1_0_1_1_0_1.wav'
    """
    if n_files < 1 or words_per_file < 1 or not voices:
        raise VoxaError("make_yesno_corpus: n_files, words_per_file and voices must be non-empty")
    if n_files > 2 ** words_per_file:
        raise VoxaError(f"make_yesno_corpus: {n_files} files asked for, but only "
                        f"{2 ** words_per_file} distinct {words_per_file}-word sequences exist")
    exe = _espeak_exe()
    rng = np.random.default_rng(seed)
    folder = Path(out_dir) / "waves_yesno"
    folder.mkdir(parents=True, exist_ok=True)
    codes = rng.choice(2 ** words_per_file, size=n_files, replace=False)
    for k, code in enumerate(codes):
        bits = [(int(code) >> (words_per_file - 1 - j)) & 1 for j in range(words_per_file)]
        voice = voices[k % len(voices)]
        speed = int(rng.integers(*_SPEED))
        parts = [_silence(rng.uniform(0.2, 0.5), rate)]
        for j, b in enumerate(bits):
            if j:
                parts.append(_silence(rng.uniform(0.1, 0.4), rate))
            pitch = int(rng.integers(*_PITCH))
            parts.append(rng.uniform(0.6, 1.0) * _speak(exe, _YESNO[b], voice, speed, pitch, rate))
        parts.append(_silence(rng.uniform(0.2, 0.5), rate))
        x = np.concatenate(parts)
        x += _NOISE_RMS * rng.standard_normal(x.size)
        save(folder / ("_".join(map(str, bits)) + ".wav"), np.clip(x, -1.0, 1.0), rate)
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "", text)


def make_word_corpus(out_dir: str | os.PathLike, words: Sequence[str], n_per_word: int = 2,
                     voices: Sequence[str] = ("en", "en+f3"), rate: int = 8000,
                     seed: int = 0) -> list[Record]:
    """Write isolated words, ``n_per_word`` takes per word and voice, plus ``out_dir/manifest.jsonl``.

    Files are ``out_dir/{word}_{speaker}_{take}.wav`` (the speaker is the voice without punctuation:
    ``en+f3`` -> ``enf3``); each take has its own random speed and pitch and 0.1-0.3 s of silence with
    faint noise around the word.

    Args:
        out_dir: folder for the wavs and the manifest (created).
        words: the words (or short phrases) to say.
        n_per_word: takes per word and voice.
        voices: espeak-ng voices; the language is the voice's prefix (``en-us`` -> ``en``).
        rate: sample rate in Hz.
        seed: seeds speeds, pitches, pauses and noise.

    Returns:
        The records written, sorted by id ``{speaker}-{word}-{take:02d}``: ``text`` the word,
        ``speaker``, ``language``, ``extra`` with ``voice`` and ``take``.

    Raises:
        VoxaError: espeak-ng missing or failing, no words, or two words with the same file name.

    Example:
        >>> records = make_word_corpus("/tmp/digits", ["one", "two"], n_per_word=1)  # doctest: +SKIP
        >>> [r.text for r in records]  # doctest: +SKIP
        ['one', 'two', 'one', 'two']
    """
    if not words or n_per_word < 1 or not voices:
        raise VoxaError("make_word_corpus: words, n_per_word and voices must be non-empty")
    slugs = [_slug(w) for w in words]
    if "" in slugs or len(set(slugs)) < len(slugs):
        raise VoxaError(f"make_word_corpus: words must have distinct, non-empty alphanumeric names, got "
                        f"{list(words)}")
    exe = _espeak_exe()
    rng = np.random.default_rng(seed)
    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for voice, (word, slug), take in itertools.product(voices, zip(words, slugs), range(n_per_word)):
        speaker = _slug(voice)
        speed, pitch = int(rng.integers(*_SPEED)), int(rng.integers(*_PITCH))
        x = np.concatenate([_silence(rng.uniform(0.1, 0.3), rate),
                            _speak(exe, word, voice, speed, pitch, rate),
                            _silence(rng.uniform(0.1, 0.3), rate)])
        x += _NOISE_RMS * rng.standard_normal(x.size)
        path = save(out / f"{slug}_{speaker}_{take}.wav", np.clip(x, -1.0, 1.0), rate)
        records.append(Record(id=f"{speaker}-{slug}-{take:02d}", path=str(path), duration=x.size / rate,
                              sample_rate=rate, speaker=speaker,
                              language=re.split(r"[-+]", voice)[0], text=word,
                              extra={"voice": voice, "take": take}))
    records.sort(key=lambda r: r.id)
    write_manifest(out / "manifest.jsonl", records)
    return records
