"""Mel (HTK/Kaldi and Slaney scales) and Bark filterbank matrices ``[n_fft // 2 + 1, bins]``."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from voxa.errors import ConfigError

_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(f: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Hz to mel: ``"htk"`` (= Kaldi, 1127 ln(1 + f/700)) or ``"slaney"`` (linear below 1 kHz)."""
    f = torch.as_tensor(f, dtype=torch.float64)
    if scale == "htk":
        return 1127.0 * torch.log1p(f / 700.0)
    if scale == "slaney":
        lin = f / _SLANEY_F_SP
        log = (_SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
               + torch.log(f.clamp(min=1e-10) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP)
        return torch.where(f >= _SLANEY_MIN_LOG_HZ, log, lin)
    raise ConfigError(f"mel_scale={scale!r} is not one of htk, slaney")


def mel_to_hz(m: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    m = torch.as_tensor(m, dtype=torch.float64)
    if scale == "htk":
        return 700.0 * torch.expm1(m / 1127.0)
    if scale == "slaney":
        min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
        log = _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOGSTEP * (m - min_log_mel))
        return torch.where(m >= min_log_mel, log, _SLANEY_F_SP * m)
    raise ConfigError(f"mel_scale={scale!r} is not one of htk, slaney")


def _edges(sample_rate: int, low_freq: float, high_freq: float) -> tuple[float, float]:
    nyquist = sample_rate / 2.0
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0.0 <= low_freq < high <= nyquist:
        raise ConfigError(f"low_freq={low_freq} and high_freq={high_freq} (upper edge {high:g} Hz) "
                          f"must satisfy 0 <= low_freq < upper edge <= {nyquist:g} Hz (Nyquist at "
                          f"{sample_rate} Hz)")
    return low_freq, high


def vtln_warp_freq(f: torch.Tensor, alpha: float, low: float, high: float, vtln_low: float = 100.0,
                   vtln_high: float = -500.0) -> torch.Tensor:
    """Kaldi's piecewise-linear vocal-tract-length warping of frequencies ``f`` (Hz) by ``alpha``.

    Between the cut-offs a frequency is scaled by ``1 / alpha``; below ``vtln_low`` and above
    ``vtln_high`` (``<= 0``: offset from ``high``) two linear pieces keep ``low`` and ``high`` fixed, so the
    filterbank still spans the same band. ``alpha > 1`` moves the filters down (a longer vocal tract's
    formants are lower: what a shorter speaker sounds like to filters warped this way).

    Example:
        >>> round(float(vtln_warp_freq(torch.tensor([1000.0]), 1.1, 20.0, 4000.0)), 2)
        909.09
    """
    if not 0.5 <= alpha <= 2.0:
        raise ConfigError(f"vtln_warp={alpha!r} must lie in [0.5, 2]")
    v_high = vtln_high if vtln_high > 0 else high + vtln_high
    lo_cut, hi_cut = vtln_low * max(1.0, alpha), v_high * min(1.0, alpha)
    scale = 1.0 / alpha
    left = low + (scale * lo_cut - low) / (lo_cut - low) * (f - low)
    right = high + (high - scale * hi_cut) / (high - hi_cut) * (f - high)
    return torch.where(f < lo_cut, left, torch.where(f < hi_cut, scale * f, right))


@lru_cache(maxsize=64)
def _mel_fb(num_bins: int, n_fft: int, sample_rate: int, low_freq: float, high_freq: float,
            scale: str, norm: str | None, warp: float = 1.0) -> torch.Tensor:
    low, high = _edges(sample_rate, low_freq, high_freq)
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    pts_mel = torch.linspace(float(hz_to_mel(low, scale)), float(hz_to_mel(high, scale)), num_bins + 2,
                             dtype=torch.float64)
    if warp != 1.0:
        # Kaldi warps the triangles' edges, not the FFT bins
        pts_mel = hz_to_mel(vtln_warp_freq(mel_to_hz(pts_mel, scale), warp, low, high), scale)
    left, center, right = pts_mel[:-2], pts_mel[1:-1], pts_mel[2:]
    if scale == "htk":
        # triangles in the mel domain, as Kaldi and HTK build them
        m = hz_to_mel(freqs, scale)[:, None]
        up = (m - left) / (center - left)
        down = (right - m) / (right - center)
        w = torch.where(m <= center, up, down)
        w = torch.where((m > left) & (m < right), w, torch.zeros_like(w))
        edges_hz = mel_to_hz(pts_mel, scale)
    else:
        # triangles in Hz between mel-spaced points, as librosa (Slaney's Auditory Toolbox) builds them
        edges_hz = mel_to_hz(pts_mel, scale)
        f = freqs[:, None]
        lo, ce, hi = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]
        w = torch.clamp(torch.minimum((f - lo) / (ce - lo), (hi - f) / (hi - ce)), min=0.0)
    if norm == "slaney":
        w = w * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[None, :]
    elif norm is not None:
        raise ConfigError(f"mel_norm={norm!r} is not one of None, 'slaney'")
    return w.float()


def mel_filterbank(num_bins: int, n_fft: int, sample_rate: int, low_freq: float = 20.0,
                   high_freq: float = 0.0, scale: str = "htk", norm: str | None = None,
                   device: torch.device | str = "cpu", vtln_warp: float = 1.0) -> torch.Tensor:
    """Triangular mel filterbank as a ``[n_fft // 2 + 1, num_bins]`` float32 matrix.

    Args:
        num_bins: number of triangles.
        n_fft: FFT size.
        sample_rate: Hz.
        low_freq: lower edge of the first triangle, Hz.
        high_freq: upper edge of the last triangle, Hz; ``<= 0`` means Nyquist plus this (Kaldi).
        scale: ``"htk"`` (triangles in mel, Kaldi's) or ``"slaney"`` (triangles in Hz, librosa's).
        norm: ``None`` (peak 1) or ``"slaney"`` (equal area).
        vtln_warp: vocal-tract-length warp factor of the triangles' edges (:func:`vtln_warp_freq`);
            1 is none. Random factors in about [0.9, 1.1] per utterance are VTLP augmentation.

    Example:
        >>> mel_filterbank(23, 512, 16000).shape
        torch.Size([257, 23])
    """
    fb = _mel_fb(int(num_bins), int(n_fft), int(sample_rate), float(low_freq), float(high_freq),
                 scale, norm, float(vtln_warp))
    return fb.to(device)


def mel_center_freqs(num_bins: int, sample_rate: int, low_freq: float = 20.0,
                     high_freq: float = 0.0, scale: str = "htk") -> torch.Tensor:
    """Centre frequencies in Hz of :func:`mel_filterbank`'s triangles, float64 ``[num_bins]``."""
    low, high = _edges(sample_rate, low_freq, high_freq)
    pts = torch.linspace(float(hz_to_mel(low, scale)), float(hz_to_mel(high, scale)), num_bins + 2,
                         dtype=torch.float64)
    return mel_to_hz(pts[1:-1], scale)


def hz_to_bark(f: torch.Tensor) -> torch.Tensor:
    """Hz to Bark with Hermansky/Schroeder's ``6 asinh(f / 600)``."""
    return 6.0 * torch.asinh(torch.as_tensor(f, dtype=torch.float64) / 600.0)


def bark_to_hz(z: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hz_to_bark`."""
    return 600.0 * torch.sinh(torch.as_tensor(z, dtype=torch.float64) / 6.0)


@lru_cache(maxsize=32)
def _bark_fb(num_bins: int, n_fft: int, sample_rate: int) -> torch.Tensor:
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    nyq_bark = float(hz_to_bark(sample_rate / 2.0))
    centers = torch.linspace(0.0, nyq_bark, num_bins, dtype=torch.float64)
    z = hz_to_bark(freqs)[:, None] - centers[None, :]
    # Hermansky's critical-band masking curve: +25 dB/Bark below, -10 dB/Bark above, flat 1 Bark top
    lof = z - 0.5
    hif = z + 0.5
    w = torch.pow(10.0, torch.clamp(torch.minimum(hif, -2.5 * lof), max=0.0))
    return w.float()


def bark_filterbank(num_bins: int, n_fft: int, sample_rate: int,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """Critical-band (Bark) filterbank for PLP, ``[n_fft // 2 + 1, num_bins]``, centres 0..Nyquist."""
    return _bark_fb(int(num_bins), int(n_fft), int(sample_rate)).to(device)


def bark_center_freqs(num_bins: int, sample_rate: int) -> torch.Tensor:
    """Centre frequencies in Hz of :func:`bark_filterbank`'s bands."""
    return bark_to_hz(torch.linspace(0.0, float(hz_to_bark(sample_rate / 2.0)), num_bins,
                                     dtype=torch.float64))


def default_bark_bins(sample_rate: int) -> int:
    """One band per Bark up to Nyquist, plus one (rastamat's choice): 18 at 8 kHz, 22 at 16 kHz."""
    return int(math.ceil(float(hz_to_bark(sample_rate / 2.0)))) + 1
