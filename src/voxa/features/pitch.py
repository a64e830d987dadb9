"""Pitch (F0) with voicing, by the normalised cross-correlation function, batched over frames."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from voxa.errors import ConfigError
from voxa.features.framing import ShortAudioError, num_frames
from voxa.features.spectrum import BLOCK_FRAMES, as_batch, check_rate


def nccf(waveform: torch.Tensor, sample_rate: int, max_lag: int, window: int, shift: int,
         frame_length: int) -> torch.Tensor:
    """Normalised cross-correlation ``[batch, frames, max_lag + 1]`` of ``window``-sample segments.

    Frames are aligned with the spectral features' frames (``frame_length``/``shift``, edges snipped):
    frame t is centred on ``t * shift + frame_length / 2``; the signal is zero-padded as needed.
    Frames are taken in blocks (their FFTs are 4x the segment length), so memory stays linear.

    Raises:
        ShortAudioError: fewer samples than one frame.
    """
    x, _ = as_batch(waveform)
    n = x.shape[-1]
    t = num_frames(n, frame_length, shift, True)
    if t == 0:
        raise ShortAudioError(n, frame_length)
    left = max(0, window // 2 - frame_length // 2)
    right = window + max_lag
    xp = F.pad(x, (left, right))
    segs = xp.unfold(-1, window + max_lag, shift)  # [B, >= T, W + L], no copy
    n_fft = 1 << (2 * window + max_lag).bit_length()
    lags = torch.arange(max_lag + 1, device=x.device)
    step = max(16, BLOCK_FRAMES * 512 // (n_fft * x.shape[0]))
    out = x.new_empty(x.shape[0], t, max_lag + 1)
    for t0 in range(0, t, step):
        seg = segs[:, t0:min(t, t0 + step)]
        seg = seg - seg[..., :window].mean(-1, keepdim=True)
        ref = seg[..., :window]
        xc = torch.fft.irfft(torch.fft.rfft(ref, n_fft).conj() * torch.fft.rfft(seg, n_fft), n_fft)
        xc = xc[..., : max_lag + 1]
        cs = F.pad(seg.pow(2).cumsum(-1), (1, 0))
        e_lag = cs[..., lags + window] - cs[..., lags]
        e0 = e_lag[..., :1]
        out[:, t0:t0 + seg.shape[1]] = xc / (e0 * e_lag + 1e-10).sqrt()
    return out


def pitch(waveform: torch.Tensor, sample_rate: int, *, min_f0: float = 60.0, max_f0: float = 400.0,
          frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0,
          window_ms: float | None = None, voicing_threshold: float = 0.5,
          silence_db: float = -40.0, smooth: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """F0 in Hz (0 where unvoiced) and a voicing strength in [0, 1] per frame.

    For each frame the normalised cross-correlation is searched between the lags of ``max_f0`` and
    ``min_f0``; the shortest lag whose peak is within 10 % of the best one is taken (which avoids
    halving errors), refined by parabolic interpolation. A frame is voiced when the peak reaches
    ``voicing_threshold`` and its energy is within ``silence_db`` of the loudest frame. A median
    filter of ``smooth`` frames removes isolated octave jumps.

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``.
        sample_rate: Hz.

    Returns:
        ``(f0, voicing)``, each ``[frames]`` or ``[batch, frames]``; frames align with ``mfcc``'s.

    Raises:
        ConfigError: a bad setting (e.g. ``max_f0`` above Nyquist).
        voxa.errors.AudioError: a bad signal; ``ShortAudioError`` if shorter than one frame.

    Example:
        >>> t = torch.arange(16000) / 16000
        >>> f0, v = pitch(torch.sin(2 * torch.pi * 150 * t), 16000)
        >>> round(float(f0[10:-10].median()))
        150
    """
    check_rate(sample_rate)
    if not 0 < min_f0 < max_f0 < sample_rate / 2:
        raise ConfigError(f"min_f0={min_f0} and max_f0={max_f0} must satisfy 0 < min_f0 < max_f0 < "
                          f"{sample_rate / 2:g} Hz (Nyquist at {sample_rate} Hz)")
    for name, v in (("frame_length_ms", frame_length_ms), ("frame_shift_ms", frame_shift_ms)):
        if not isinstance(v, (int, float)) or not v > 0 or round(sample_rate * v / 1000.0) < 1:
            raise ConfigError(f"{name}={v!r} must be > 0 and at least one sample long")
    if window_ms is not None and (not isinstance(window_ms, (int, float)) or not window_ms > 0):
        raise ConfigError(f"window_ms={window_ms!r} must be > 0 (or None for the default)")
    if not 0.0 <= voicing_threshold <= 1.0:
        raise ConfigError(f"voicing_threshold={voicing_threshold!r} must be in [0, 1]")
    x, squeeze = as_batch(waveform)
    min_lag = max(2, int(math.floor(sample_rate / max_f0)))
    max_lag = int(math.ceil(sample_rate / min_f0))
    window = int(round(sample_rate * (window_ms / 1000.0 if window_ms else max(0.025, 1.5 / min_f0))))
    shift = int(round(sample_rate * frame_shift_ms / 1000.0))
    flen = int(round(sample_rate * frame_length_ms / 1000.0))
    r = nccf(x, sample_rate, max_lag + 1, window, shift, flen)  # one extra lag for interpolation
    search = r[..., min_lag: max_lag + 1]
    prev = r[..., min_lag - 1: max_lag]
    nxt = r[..., min_lag + 1: max_lag + 2]
    is_peak = (search >= prev) & (search >= nxt)
    best = torch.where(is_peak, search, torch.full_like(search, -2.0)).amax(-1, keepdim=True)
    good = is_peak & (search >= 0.9 * best)
    first = torch.where(good, torch.arange(search.shape[-1], device=x.device), search.shape[-1])
    k = first.amin(-1).clamp(max=search.shape[-1] - 1)
    lag = k + min_lag
    v0 = r.gather(-1, (lag - 1).unsqueeze(-1)).squeeze(-1)
    v1 = r.gather(-1, lag.unsqueeze(-1)).squeeze(-1)
    v2 = r.gather(-1, (lag + 1).unsqueeze(-1)).squeeze(-1)
    denom = v0 - 2 * v1 + v2
    delta = torch.where(denom.abs() > 1e-8, 0.5 * (v0 - v2) / denom, torch.zeros_like(denom))
    f0 = sample_rate / (lag.to(x.dtype) + delta.clamp(-0.5, 0.5))
    voicing = v1.clamp(0.0, 1.0)
    energy = _frame_energy_db(x, flen, shift, f0.shape[-1])
    voiced = (voicing >= voicing_threshold) & (energy > energy.amax(-1, keepdim=True) + silence_db)
    f0 = torch.where(voiced, f0, torch.zeros_like(f0))
    if smooth > 1 and f0.shape[-1] >= smooth:
        f0 = _median_voiced(f0, smooth)
    return (f0[0], voicing[0]) if squeeze else (f0, voicing)


def _frame_energy_db(x: torch.Tensor, flen: int, shift: int, t: int) -> torch.Tensor:
    if t == 0:
        return x.new_zeros(x.shape[0], 0)
    frames = x.unfold(-1, flen, shift)[:, :t]
    return 10 * torch.log10(frames.pow(2).mean(-1) + 1e-12)


def _median_voiced(f0: torch.Tensor, k: int) -> torch.Tensor:
    """Median over voiced neighbours only; unvoiced frames stay 0."""
    pad = k // 2
    v = torch.where(f0 > 0, f0, torch.full_like(f0, float("nan")))
    win = F.pad(v, (pad, pad), value=float("nan")).unfold(-1, k, 1)
    med = torch.nanmedian(win, dim=-1).values
    return torch.where(f0 > 0, med, torch.zeros_like(f0))
