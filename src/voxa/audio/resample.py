"""Sample-rate conversion (soxr) and channel mix-down."""

from __future__ import annotations

import numpy as np
import soxr
import torch


def resample(waveform: torch.Tensor | np.ndarray, orig_rate: int, new_rate: int,
             quality: str = "HQ") -> torch.Tensor:
    """Resample ``[channels, samples]`` (or ``[samples]``) audio with soxr.

    Args:
        waveform: float audio, ``[channels, samples]`` or ``[samples]``.
        orig_rate: its sample rate in Hz.
        new_rate: the wanted rate in Hz.
        quality: soxr quality recipe (``"HQ"``, ``"VHQ"``, ``"MQ"``, ``"LQ"``, ``"QQ"``).

    Returns:
        float32 tensor of the same rank at ``new_rate``.

    Example:
        >>> import torch
        >>> resample(torch.zeros(1, 16000), 16000, 8000).shape
        torch.Size([1, 8000])
    """
    x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else np.asarray(waveform)
    x = x.astype(np.float32, copy=False)
    if orig_rate == new_rate:
        return torch.from_numpy(np.ascontiguousarray(x))
    if x.ndim == 1:
        y = soxr.resample(x, orig_rate, new_rate, quality=quality)
    else:
        # soxr wants [samples, channels]
        y = soxr.resample(np.ascontiguousarray(x.T), orig_rate, new_rate, quality=quality).T
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """Average the channels of ``[channels, samples]`` audio into ``[1, samples]``."""
    if waveform.dim() == 1:
        return waveform.unsqueeze(0)
    return waveform.mean(dim=0, keepdim=True)
