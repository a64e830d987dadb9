"""Log mel filterbank energies and MFCCs, batched in torch, with a Kaldi-compatible mode."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from voxa.errors import ConfigError
from voxa.features.deltas import add_deltas, check_deltas
from voxa.features.filterbanks import mel_filterbank
from voxa.features.spectrum import FLT_EPS, as_batch, check_rate, frame_options, projected_power


@lru_cache(maxsize=16)
def dct_matrix(num_ceps: int, num_bins: int) -> torch.Tensor:
    """Orthonormal DCT-II as ``[num_bins, num_ceps]`` (Kaldi's and scipy's ``norm="ortho"``)."""
    n = torch.arange(num_bins, dtype=torch.float64)
    k = torch.arange(num_ceps, dtype=torch.float64)
    m = torch.cos(math.pi / num_bins * (n[:, None] + 0.5) * k[None, :]) * math.sqrt(2.0 / num_bins)
    m[:, 0] = math.sqrt(1.0 / num_bins)
    return m.float()


@lru_cache(maxsize=16)
def lifter_coeffs(num_ceps: int, lifter: float) -> torch.Tensor:
    """HTK/Kaldi sinusoidal lifter ``1 + L/2 sin(pi n / L)``."""
    n = torch.arange(num_ceps, dtype=torch.float64)
    return (1.0 + 0.5 * lifter * torch.sin(math.pi * n / lifter)).float()


@lru_cache(maxsize=16)
def _cepstral_matrix(num_ceps: int, num_bins: int, lifter: float, drop_c0: bool) -> torch.Tensor:
    """DCT with the lifter folded in (one GEMM instead of a GEMM and a pass over the cepstra)."""
    m = dct_matrix(num_ceps, num_bins).clone()
    if lifter:
        m *= lifter_coeffs(num_ceps, lifter)
    if drop_c0:  # C0 is overwritten by the log energy: spare its column nothing but a zero
        m[:, 0] = 0.0
    return m


def _check_bins(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be an integer >= 1")
    return value


def _mel_energies(waveform, sample_rate, kaldi_compat, num_mel_bins, low_freq, high_freq, mel_scale,
                  mel_norm, use_power, raw_energy, frame_kwargs):
    check_rate(sample_rate)
    warp = float(frame_kwargs.pop("vtln_warp", 1.0))
    opts = frame_options(kaldi_compat, **frame_kwargs)
    n_fft = opts.lengths(sample_rate)[2]
    fb = mel_filterbank(num_mel_bins, n_fft, sample_rate, low_freq, high_freq, mel_scale, mel_norm,
                        vtln_warp=warp)
    x, squeeze = as_batch(waveform)
    fb = fb.to(x.device, x.dtype)
    mel, log_energy = projected_power(x, sample_rate, opts, fb, power=use_power,
                                      raw_energy=raw_energy)
    return mel, log_energy, squeeze


def fbank(waveform: torch.Tensor, sample_rate: int, *, num_mel_bins: int | None = None,
          low_freq: float = 20.0, high_freq: float = 0.0, mel_scale: str = "htk",
          mel_norm: str | None = None, use_log: bool = True, use_energy: bool = False,
          use_power: bool = True, raw_energy: bool = True, deltas: int = 0,
          kaldi_compat: bool = False, **frame_kwargs: object) -> torch.Tensor:
    """Log mel filterbank energies.

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``; in Kaldi mode on the 16-bit integer scale.
        sample_rate: Hz.
        num_mel_bins: triangles; default 40 (voxa) or 23 (Kaldi).
        low_freq, high_freq: filterbank edges in Hz (``high_freq <= 0``: offset from Nyquist).
        mel_scale: ``"htk"`` or ``"slaney"``; mel_norm: ``None`` or ``"slaney"``.
        use_log: log of the energies (floored at float32 epsilon, as Kaldi does).
        use_energy: prepend the frame's log energy as an extra first column.
        use_power: power (True) or magnitude spectrum.
        raw_energy: energy before pre-emphasis and window.
        deltas: append this many orders of deltas.
        kaldi_compat: Kaldi's defaults (Povey window, 23 bins).
        **frame_kwargs: any :class:`FrameOptions` field (``frame_length_ms``, ``window``, ``dither``...),
            and ``vtln_warp`` (the filterbank's vocal-tract-length warp factor, 1: none).

    Returns:
        ``[batch, frames, dims]`` (or ``[frames, dims]`` for 1-D input), float32.

    Raises:
        ConfigError: a bad setting (named, with its valid range).
        voxa.errors.AudioError: a bad signal; ``ShortAudioError`` if shorter than one frame.

    Example:
        >>> fbank(torch.randn(16000), 16000).shape
        torch.Size([98, 40])
    """
    bins = _check_bins("num_mel_bins", (23 if kaldi_compat else 40) if num_mel_bins is None else num_mel_bins)
    check_deltas(deltas)
    mel, log_energy, squeeze = _mel_energies(waveform, sample_rate, kaldi_compat, bins, low_freq,
                                             high_freq, mel_scale, mel_norm, use_power, raw_energy,
                                             frame_kwargs)
    if use_log:
        mel = mel.clamp_(min=FLT_EPS).log_()
    if use_energy:
        mel = torch.cat([log_energy.unsqueeze(-1), mel], dim=-1)
    out = add_deltas(mel, deltas) if deltas else mel
    return out[0] if squeeze else out


def mfcc(waveform: torch.Tensor, sample_rate: int, *, num_ceps: int = 13, deltas: int = 0,
         num_mel_bins: int | None = None, low_freq: float = 20.0, high_freq: float = 0.0,
         mel_scale: str = "htk", mel_norm: str | None = None, use_energy: bool = True,
         raw_energy: bool = True, cepstral_lifter: float = 22.0, energy_floor: float = 0.0,
         kaldi_compat: bool = False, **frame_kwargs: object) -> torch.Tensor:
    """Mel-frequency cepstral coefficients: 13 static (C0 replaced by log energy), 39 with ``deltas=2``.

    Pipeline: framing, DC removal, energy, pre-emphasis, window, power spectrum, mel filterbank,
    log, orthonormal DCT-II, sinusoidal liftering, C0 := log energy.

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``; in Kaldi mode on the 16-bit integer scale.
        sample_rate: Hz.
        num_ceps: cepstra kept, including C0.
        deltas: 0, 1 or 2 orders of regression deltas appended.
        num_mel_bins: default 40 (voxa) or 23 (Kaldi).
        use_energy: replace C0 with the frame's log energy.
        cepstral_lifter: ``L`` of the lifter; 0 disables it.
        energy_floor: floor on the energy (linear), 0 for none.
        kaldi_compat: Kaldi's ``compute-mfcc-feats`` defaults (matches kaldi-native-fbank).
        **frame_kwargs: any :class:`FrameOptions` field, and ``vtln_warp`` (filterbank warp factor, 1: none).

    Returns:
        ``[batch, frames, num_ceps * (deltas + 1)]`` or ``[frames, ...]`` for 1-D input.

    Raises:
        ConfigError: a bad setting, e.g. ``num_ceps`` above ``num_mel_bins``.
        voxa.errors.AudioError: a bad signal; ``ShortAudioError`` if shorter than one frame.

    Example:
        >>> mfcc(torch.randn(16000), 16000, deltas=2).shape
        torch.Size([98, 39])
    """
    bins = _check_bins("num_mel_bins", (23 if kaldi_compat else 40) if num_mel_bins is None else num_mel_bins)
    _check_bins("num_ceps", num_ceps)
    if num_ceps > bins:
        raise ConfigError(f"num_ceps={num_ceps} must be in 1..num_mel_bins ({bins})")
    if not isinstance(cepstral_lifter, (int, float)) or cepstral_lifter < 0:
        raise ConfigError(f"cepstral_lifter={cepstral_lifter!r} must be >= 0 (0: no lifter)")
    if not isinstance(energy_floor, (int, float)) or energy_floor < 0:
        raise ConfigError(f"energy_floor={energy_floor!r} must be >= 0 (0: no floor)")
    check_deltas(deltas)
    mel, log_energy, squeeze = _mel_energies(waveform, sample_rate, kaldi_compat, bins, low_freq,
                                             high_freq, mel_scale, mel_norm, True, raw_energy,
                                             frame_kwargs)
    logmel = mel.clamp_(min=FLT_EPS).log_()
    dct = _cepstral_matrix(num_ceps, bins, float(cepstral_lifter), bool(use_energy))
    ceps = logmel @ dct.to(logmel.device, logmel.dtype)
    if use_energy:
        if energy_floor > 0:
            log_energy = log_energy.clamp(min=math.log(energy_floor))
        ceps[..., 0] = log_energy
    out = add_deltas(ceps, deltas) if deltas else ceps
    return out[0] if squeeze else out
