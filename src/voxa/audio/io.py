"""Load and save audio as float32 ``[channels, samples]`` tensors, with clear errors for bad files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from voxa.audio.resample import resample, to_mono
from voxa.errors import AudioError
from voxa.utils.atomic import atomic_path


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: rate, frames (samples per channel), channels, duration in seconds."""

    sample_rate: int
    num_frames: int
    num_channels: int
    duration: float
    format: str
    subtype: str


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")


def info(path: str | os.PathLike) -> AudioInfo:
    """Read an audio file's header without decoding it.

    Raises:
        AudioError: the file is missing, empty or not audio.
    """
    path = Path(path)
    _check_exists(path)
    try:
        i = sf.info(str(path))
    except Exception as e:  # soundfile raises several types; all mean "not readable audio"
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    return AudioInfo(int(i.samplerate), int(i.frames), int(i.channels),
                     float(i.frames) / float(i.samplerate), i.format, i.subtype)


def _wav_truncation(path: Path) -> str | None:
    """libsndfile quietly shortens a WAV whose data chunk is cut off; compare the header with the size."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                return None
            size = path.stat().st_size
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                ck = f.read(8)
                cid, clen = ck[:4], int.from_bytes(ck[4:8], "little")
                if cid == b"data":
                    if clen in (0, 0xFFFFFFFF) or head[:4] == b"RF64":
                        return None  # streamed or 64-bit sizes: nothing reliable to compare
                    if pos + 8 + clen > size:
                        return (f"truncated: header promises {clen} bytes of samples, "
                                f"file holds {size - pos - 8}")
                    return None
                pos += 8 + clen + (clen & 1)
    except OSError:
        return None
    return None


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg.replace(str(Path.cwd()) + os.sep, "")[:160]


def _read(path: Path, start: int, frames: int) -> tuple[np.ndarray, int, int]:
    """Decode ``frames`` samples from ``start`` (-1 = to the end); returns data, rate, expected count."""
    try:
        with sf.SoundFile(str(path)) as f:
            rate = int(f.samplerate)
            total = int(f.frames)
            if start > 0:
                if start >= total:
                    raise AudioError(path, f"segment starts at sample {start}, past the end ({total})")
                f.seek(start)
            want = total - start if frames < 0 else min(frames, total - start)
            data = f.read(want, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    return data, rate, want


def _finish(path: Path, data: np.ndarray, rate: int, want: int, sample_rate: int | None,
            mono: bool) -> tuple[torch.Tensor, int]:
    if data.shape[0] == 0:
        raise AudioError(path, "zero-length audio (no samples)")
    if data.shape[0] < want:
        raise AudioError(path, f"truncated: header promises {want} samples, only {data.shape[0]} read")
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf samples")
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if mono:
        wav = to_mono(wav)
    if sample_rate is not None and sample_rate != rate:
        wav = resample(wav, rate, sample_rate)
        rate = sample_rate
    return wav, rate


def load(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = False,
         expect_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """Load a WAV, FLAC or OGG file as float32 ``[channels, samples]`` in [-1, 1].

    Args:
        path: the file.
        sample_rate: resample to this rate if given.
        mono: average the channels into one.
        expect_rate: raise if the file's own rate differs (for pipelines that must not resample).

    Returns:
        ``(waveform, rate)``.

    Raises:
        AudioError: missing, empty, truncated, not audio, zero-length, NaN/Inf, or wrong rate.

    Example:
        >>> wav, sr = load("speech.flac", sample_rate=16000, mono=True)  # doctest: +SKIP
    """
    path = Path(path)
    _check_exists(path)
    problem = _wav_truncation(path)
    if problem:
        raise AudioError(path, problem)
    data, rate, want = _read(path, 0, -1)
    if expect_rate is not None and rate != expect_rate:
        raise AudioError(path, f"sample rate is {rate} Hz, expected {expect_rate} Hz")
    return _finish(path, data, rate, want, sample_rate, mono)


def load_segment(path: str | os.PathLike, start: float, duration: float | None = None,
                 sample_rate: int | None = None, mono: bool = False) -> tuple[torch.Tensor, int]:
    """Load ``duration`` seconds from ``start`` seconds without decoding the rest of the file.

    Args:
        path: the file.
        start: offset in seconds.
        duration: length in seconds; ``None`` reads to the end.
        sample_rate: resample to this rate if given.
        mono: average the channels.

    Returns:
        ``(waveform [channels, samples], rate)``.
    """
    path = Path(path)
    _check_exists(path)
    if start < 0 or (duration is not None and duration <= 0):
        raise AudioError(path, f"bad segment start={start} duration={duration}")
    try:
        rate = int(sf.info(str(path)).samplerate)
    except Exception as e:
        raise AudioError(path, f"not a readable audio file ({_short(e)})") from None
    s = int(round(start * rate))
    n = -1 if duration is None else int(round(duration * rate))
    data, rate, want = _read(path, s, n)
    return _finish(path, data, rate, want, sample_rate, mono)


def save(path: str | os.PathLike, waveform: torch.Tensor | np.ndarray, sample_rate: int,
         subtype: str | None = None) -> Path:
    """Write ``[channels, samples]`` (or ``[samples]``) float audio atomically; format from the suffix.

    Samples outside [-1, 1] are clipped for integer formats (soundfile's behaviour).
    """
    path = Path(path)
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 1:
        x = x[None]
    if not np.isfinite(x).all():
        raise AudioError(path, "refusing to write NaN or Inf samples")
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(path, f"unknown audio format {path.suffix!r} (use .wav, .flac or .ogg)")
    if subtype is None:
        subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    with atomic_path(path) as tmp:
        with sf.SoundFile(str(tmp), "w", sample_rate, x.shape[0], subtype=subtype, format=fmt) as f:
            _no_peak_chunk(f)
            f.write(x.T)
    return path


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sndfile.h; soundfile does not name it


def _no_peak_chunk(f: sf.SoundFile) -> None:
    # libsndfile stamps float WAVs with a PEAK chunk holding the wall-clock time, so the same samples
    # written a second apart differ byte for byte; without it fixed sets are reproducible to the byte.
    snd = getattr(sf, "_snd", None)
    if snd is not None and hasattr(f, "_file"):
        snd.sf_command(f._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
