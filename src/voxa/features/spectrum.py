"""The shared front of every spectral feature: framing, dither, DC removal, energy, pre-emphasis,
window and power spectrum, with voxa's defaults or Kaldi's (``kaldi_compat=True``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from voxa.features.framing import add_dither, frame_signal
from voxa.features.windows import get_window

FLT_EPS = float(torch.finfo(torch.float32).eps)


@dataclass(frozen=True)
class FrameOptions:
    """How waveforms become windowed frames.

    voxa's defaults differ from Kaldi's only in the window (Hamming rather than Povey); dither is off
    in both so that features are reproducible (a seed makes dithered features reproducible too).
    """

    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    window: str = "hamming"
    preemphasis: float = 0.97
    remove_dc: bool = True
    dither: float = 0.0
    seed: int = 0
    snip_edges: bool = True
    round_to_power_of_two: bool = True
    n_fft: int | None = None

    def lengths(self, sample_rate: int) -> tuple[int, int, int]:
        """Frame length, shift and FFT size in samples."""
        length = int(round(sample_rate * self.frame_length_ms / 1000.0))
        shift = int(round(sample_rate * self.frame_shift_ms / 1000.0))
        if length <= 0 or shift <= 0:
            raise ValueError(f"frame length {length} and shift {shift} samples must be positive")
        if self.n_fft is not None:
            if self.n_fft < length:
                raise ValueError(f"n_fft={self.n_fft} is shorter than the frame ({length} samples)")
            n_fft = self.n_fft
        elif self.round_to_power_of_two:
            n_fft = 1 << (length - 1).bit_length()
        else:
            n_fft = length
        return length, shift, n_fft


KALDI_FRAME_OPTIONS = FrameOptions(window="povey")
_FRAME_FIELDS = {f.name for f in fields(FrameOptions)}


def frame_options(kaldi_compat: bool = False, **overrides: object) -> FrameOptions:
    """Voxa's or Kaldi's frame options with ``overrides`` (``None`` values are ignored)."""
    base = KALDI_FRAME_OPTIONS if kaldi_compat else FrameOptions()
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - _FRAME_FIELDS
    if unknown:
        raise TypeError(f"unknown frame option(s): {', '.join(sorted(unknown))}")
    return replace(base, **given)


def as_batch(waveform: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``[samples]`` -> ``[1, samples]``; returns whether a batch dimension was added."""
    if not isinstance(waveform, torch.Tensor):
        waveform = torch.as_tensor(waveform)
    if not waveform.is_floating_point():
        waveform = waveform.float()
    if waveform.dim() == 1:
        return waveform.unsqueeze(0), True
    if waveform.dim() != 2:
        raise ValueError(f"expected [samples] or [batch, samples], got {tuple(waveform.shape)}")
    return waveform, False


def windowed_frames(waveform: torch.Tensor, sample_rate: int, opts: FrameOptions,
                    raw_energy: bool = True) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Frames ready for the FFT, with their log energy.

    Args:
        waveform: ``[batch, samples]``.
        sample_rate: Hz.
        opts: framing options.
        raw_energy: energy before pre-emphasis and window (Kaldi's default) or after.

    Returns:
        ``(frames [batch, T, n_fft], log_energy [batch, T], n_fft)``: windowed frames already
        zero-padded to the FFT size.
    """
    length, shift, n_fft = opts.lengths(sample_rate)
    x = add_dither(waveform, opts.dither, opts.seed)
    frames = frame_signal(x, length, shift, opts.snip_edges)
    if opts.remove_dc:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if raw_energy:
        log_energy = (frames * frames).sum(-1).clamp(min=FLT_EPS).log()
    # Pre-emphasis folded into the windowing: y[0] = w[0] (1 - c) x[0], y[i] = w[i] (x[i] - c x[i-1]);
    # measured faster than shifting a copy of the frames, and padding here spares rfft its own copy.
    w = get_window(opts.window, length, frames.device, frames.dtype)
    c = opts.preemphasis
    y = frames * w
    if c != 0.0:
        y[..., 1:] -= (c * w[1:]) * frames[..., :-1]
        y[..., 0] *= 1.0 - c
    buf = F.pad(y, (0, n_fft - length)) if n_fft > length else y
    if not raw_energy:
        win = buf[..., :length]
        log_energy = (win * win).sum(-1).clamp(min=FLT_EPS).log()
    return buf, log_energy, n_fft


def power_spectrum(frames: torch.Tensor, n_fft: int, power: bool = True) -> torch.Tensor:
    """``|FFT|^2`` (or ``|FFT|``) of ``[..., length]`` frames zero-padded to ``n_fft``.

    Returns:
        ``[..., n_fft // 2 + 1]``.
    """
    if frames.numel() == 0:
        return frames.new_zeros(*frames.shape[:-1], n_fft // 2 + 1)
    spec = torch.fft.rfft(frames, n=n_fft)
    p = spec.real.square() + spec.imag.square()
    return p if power else p.sqrt()


def spectrogram(waveform: torch.Tensor, sample_rate: int, log: bool = True,
                kaldi_compat: bool = False, **frame_kwargs: object) -> torch.Tensor:
    """(Log) power spectrogram ``[batch, frames, n_fft//2+1]`` (or ``[frames, bins]`` for 1-D input).

    Example:
        >>> spectrogram(torch.randn(16000), 16000).shape
        torch.Size([98, 257])
    """
    x, squeeze = as_batch(waveform)
    opts = frame_options(kaldi_compat, **frame_kwargs)
    frames, _, n_fft = windowed_frames(x, sample_rate, opts)
    p = power_spectrum(frames, n_fft)
    if log:
        p = p.clamp(min=FLT_EPS).log()
    return p[0] if squeeze else p


def db(x: torch.Tensor) -> torch.Tensor:
    """Power to decibels."""
    return 10.0 * torch.log10(x.clamp(min=1e-10))


def ms_to_samples(ms: float, sample_rate: int) -> int:
    return int(round(sample_rate * ms / 1000.0))


__all__ = ["FrameOptions", "KALDI_FRAME_OPTIONS", "frame_options", "windowed_frames", "power_spectrum",
           "spectrogram", "as_batch", "FLT_EPS", "db", "ms_to_samples"]
