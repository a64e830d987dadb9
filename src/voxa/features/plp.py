"""Perceptual linear prediction (Hermansky 1990): critical-band filterbank, equal loudness,
cube-root compression, all-pole model, cepstra. Kaldi's variant (mel bands) with ``kaldi_compat``."""

from __future__ import annotations

from functools import lru_cache

import torch

from voxa.errors import ConfigError
from voxa.features.deltas import add_deltas, check_deltas
from voxa.features.filterbanks import (
    bark_center_freqs,
    bark_filterbank,
    default_bark_bins,
    mel_center_freqs,
    mel_filterbank,
)
from voxa.features.lpc import levinson_durbin, lpc_to_cepstrum
from voxa.features.mfcc import lifter_coeffs
from voxa.features.spectrum import as_batch, check_rate, frame_options, projected_power


def equal_loudness(freqs: torch.Tensor, kind: str = "hermansky") -> torch.Tensor:
    """Equal-loudness pre-emphasis weights at ``freqs`` Hz (Hermansky's curve or Kaldi's form of it)."""
    f = torch.as_tensor(freqs, dtype=torch.float64)
    if kind == "kaldi":
        fsq = f * f
        fsub = fsq / (fsq + 1.6e5)
        return fsub * fsub * ((fsq + 1.44e6) / (fsq + 9.61e6))
    w2 = (2 * torch.pi * f) ** 2
    return ((w2 + 56.8e6) * w2 * w2) / ((w2 + 6.3e6) ** 2 * (w2 + 0.38e9))


@lru_cache(maxsize=16)
def _idft_basis(lpc_order: int, dim: int) -> torch.Tensor:
    """Inverse DFT of a real, even power spectrum sampled at ``dim`` points: ``[dim, lpc_order+1]``."""
    i = torch.arange(lpc_order + 1, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    scale = 1.0 / (2.0 * (dim - 1))
    m = 2.0 * scale * torch.cos(torch.pi / (dim - 1) * i * j)
    m[:, 0] = scale
    m[:, -1] = scale * torch.cos(torch.pi * i[:, 0] * (dim - 1) / (dim - 1))
    return m.T.float()


def plp(waveform: torch.Tensor, sample_rate: int, *, num_ceps: int = 13, lpc_order: int = 12,
        num_bins: int | None = None, compress: float = 1.0 / 3.0, use_energy: bool = True,
        cepstral_lifter: float = 22.0, deltas: int = 0, kaldi_compat: bool = False,
        **frame_kwargs: object) -> torch.Tensor:
    """PLP cepstra: 13 static (C0 = log energy) by default.

    voxa's mode uses Hermansky's Bark filterbank (one band per Bark) and equal-loudness curve; Kaldi's
    mode (``kaldi_compat``) uses 23 mel bands and Kaldi's equal-loudness form, as ``compute-plp-feats``.

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``.
        sample_rate: Hz.
        num_ceps: cepstra including C0 (at most ``lpc_order + 1``).
        lpc_order: all-pole model order.
        num_bins: critical bands; default one per Bark (voxa) or 23 (Kaldi).
        compress: intensity-to-loudness power (cube root).
        use_energy: C0 := log frame energy, else the log prediction error.
        cepstral_lifter: sinusoidal lifter, 0 to disable.
        deltas: orders of deltas appended.
        kaldi_compat: Kaldi's defaults.

    Returns:
        ``[batch, frames, num_ceps * (deltas + 1)]`` or ``[frames, ...]``.

    Raises:
        ConfigError: a bad setting. voxa.errors.AudioError: a bad or too short signal.

    Example:
        >>> plp(torch.randn(16000), 16000).shape
        torch.Size([98, 13])
    """
    check_rate(sample_rate)
    for name, v, lo in (("lpc_order", lpc_order, 1), ("num_ceps", num_ceps, 1),
                        ("num_bins", num_bins if num_bins is not None else 2, 2)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name}={v!r} must be an integer >= {lo}")
    if num_ceps > lpc_order + 1:
        raise ConfigError(f"num_ceps={num_ceps} must be in 1..lpc_order + 1 ({lpc_order + 1})")
    if not isinstance(compress, (int, float)) or not compress > 0:
        raise ConfigError(f"compress={compress!r} must be > 0")
    if not isinstance(cepstral_lifter, (int, float)) or cepstral_lifter < 0:
        raise ConfigError(f"cepstral_lifter={cepstral_lifter!r} must be >= 0 (0: no lifter)")
    check_deltas(deltas)
    opts = frame_options(kaldi_compat, **frame_kwargs)
    n_fft = opts.lengths(sample_rate)[2]
    if kaldi_compat:
        bins = num_bins or 23
        fb = mel_filterbank(bins, n_fft, sample_rate, 20.0, 0.0)
        eql = equal_loudness(mel_center_freqs(bins, sample_rate, 20.0, 0.0), "kaldi")
    else:
        bins = num_bins or default_bark_bins(sample_rate)
        fb = bark_filterbank(bins, n_fft, sample_rate)
        eql = equal_loudness(bark_center_freqs(bins, sample_rate), "hermansky")
    x, squeeze = as_batch(waveform)
    bands, log_energy = projected_power(x, sample_rate, opts, fb.to(x.device, x.dtype))
    bands = bands * eql.to(bands.device, bands.dtype)
    bands = bands.clamp(min=0.0).pow(compress)
    # duplicate the edge bands so the inverse DFT sees a spectrum from 0 to Nyquist
    bands = torch.cat([bands[..., :1], bands, bands[..., -1:]], dim=-1)
    r = bands @ _idft_basis(lpc_order, bins + 2).to(bands.device, bands.dtype)
    a, err = levinson_durbin(r, lpc_order)
    ceps = lpc_to_cepstrum(a, num_ceps - 1)
    c0 = err.clamp(min=torch.finfo(torch.float32).tiny).log()
    out = torch.cat([c0.unsqueeze(-1), ceps], dim=-1)
    if cepstral_lifter:
        out = out * lifter_coeffs(num_ceps, float(cepstral_lifter)).to(out.device, out.dtype)
    if use_energy:
        out = torch.cat([log_energy.unsqueeze(-1), out[..., 1:]], dim=-1)
    out = add_deltas(out, deltas) if deltas else out
    return out[0] if squeeze else out
