"""Energy-based voice activity detection (Kaldi's ``compute-vad``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from voxa.features.spectrum import as_batch, check_rate, frame_log_energy, frame_options

_INT16_LOG = 2.0 * math.log(32768.0)


def vad_from_log_energy(log_energy: torch.Tensor, threshold: float = 5.5, mean_scale: float = 0.5,
                        context: int = 2, proportion: float = 0.6) -> torch.Tensor:
    """Speech/non-speech decision per frame from log energies on the 16-bit sample scale.

    A frame is loud when its log energy exceeds ``threshold + mean_scale * mean(log_energy)``;
    it is speech when at least ``proportion`` of the frames within ``context`` of it are loud.

    Args:
        log_energy: ``[..., frames]``.

    Returns:
        bool ``[..., frames]``.
    """
    thr = threshold + mean_scale * log_energy.mean(dim=-1, keepdim=True)
    loud = (log_energy > thr).float()
    if context <= 0:
        return loud > 0.5
    shape = loud.shape
    x = loud.reshape(-1, 1, shape[-1])
    ones = torch.ones(1, 1, 2 * context + 1, device=x.device)
    count = F.conv1d(F.pad(x, (context, context)), ones)
    # frames near the edges have fewer neighbours: divide by how many there really are
    n = F.conv1d(F.pad(torch.ones_like(x), (context, context)), ones)
    return (count / n >= proportion).reshape(shape)


def energy_vad(waveform: torch.Tensor, sample_rate: int, threshold: float = 5.5,
               mean_scale: float = 0.5, context: int = 2, proportion: float = 0.6,
               kaldi_compat: bool = False, **frame_kwargs: object) -> torch.Tensor:
    """Frame-level speech decisions for a waveform, on the same frames as the spectral features.

    Args:
        waveform: ``[samples]`` or ``[batch, samples]``; in [-1, 1] (voxa) or on the 16-bit scale
            (``kaldi_compat``). Kaldi's threshold is defined on the 16-bit scale, so voxa rescales.

    Returns:
        bool ``[frames]`` or ``[batch, frames]``.

    Raises:
        ConfigError: a bad setting. voxa.errors.AudioError: a bad or too short signal.

    Example:
        >>> x = torch.cat([torch.zeros(8000), 0.3 * torch.randn(8000)])
        >>> v = energy_vad(x, 16000); bool(v[:40].any()), bool(v[-40:].all())
        (False, True)
    """
    check_rate(sample_rate)
    x, squeeze = as_batch(waveform)
    opts = frame_options(kaldi_compat, **frame_kwargs)
    log_energy = frame_log_energy(x, sample_rate, opts)
    if not kaldi_compat:
        log_energy = log_energy + _INT16_LOG
    out = vad_from_log_energy(log_energy, threshold, mean_scale, context, proportion)
    return out[0] if squeeze else out
