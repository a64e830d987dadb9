"""Cutting waveforms into overlapping frames, pre-emphasis and dither, batched in torch."""

from __future__ import annotations

import torch

from voxa.errors import AudioError


class ShortAudioError(AudioError):
    """A signal shorter than one analysis frame, so without any features.

    The single-signal feature functions raise it; the batch path
    (:func:`voxa.features.pipeline.compute_features`) catches it and skips the utterance, as
    Kaldi's ``compute-mfcc-feats`` does.
    """

    def __init__(self, num_samples: int, min_samples: int, path: object = "waveform") -> None:
        self.num_samples, self.min_samples = int(num_samples), int(min_samples)
        super().__init__(path, f"shorter than one frame ({self.num_samples} samples < "
                               f"{self.min_samples})")


def min_samples(frame_length: int, frame_shift: int, snip_edges: bool = True) -> int:
    """The fewest samples that give one frame.

    Example:
        >>> min_samples(400, 160), min_samples(400, 160, snip_edges=False)
        (400, 80)
    """
    return frame_length if snip_edges else frame_shift - frame_shift // 2


def num_frames(num_samples: int | torch.Tensor, frame_length: int, frame_shift: int,
               snip_edges: bool = True) -> int | torch.Tensor:
    """Number of frames Kaldi's framing gives for ``num_samples`` samples.

    With ``snip_edges`` only whole frames inside the signal count; without it, frames are centred on
    multiples of the shift (plus half a shift) and the signal is reflected at the edges.
    Works on ints and on integer tensors of lengths.
    """
    if snip_edges:
        if isinstance(num_samples, torch.Tensor):
            n = torch.div(num_samples - frame_length, frame_shift, rounding_mode="floor") + 1
            return n.clamp(min=0)
        return 0 if num_samples < frame_length else 1 + (num_samples - frame_length) // frame_shift
    if isinstance(num_samples, torch.Tensor):
        return torch.div(num_samples + frame_shift // 2, frame_shift, rounding_mode="floor")
    return (num_samples + frame_shift // 2) // frame_shift


def frame_signal(waveform: torch.Tensor, frame_length: int, frame_shift: int,
                 snip_edges: bool = True) -> torch.Tensor:
    """Cut ``[batch, samples]`` into ``[batch, frames, frame_length]``.

    With ``snip_edges`` the result is a strided view (no copy).

    Raises:
        AudioError: not ``[batch, samples]``.
        ShortAudioError: fewer samples than one frame.

    Example:
        >>> frame_signal(torch.arange(10.).unsqueeze(0), 4, 2).shape
        torch.Size([1, 4, 4])
    """
    if waveform.dim() != 2:
        raise AudioError("waveform", f"expected [batch, samples], got shape {tuple(waveform.shape)}")
    n = waveform.shape[-1]
    t = num_frames(n, frame_length, frame_shift, snip_edges)
    if t == 0:
        raise ShortAudioError(n, min_samples(frame_length, frame_shift, snip_edges))
    if snip_edges:
        return waveform.unfold(-1, frame_length, frame_shift)
    # Kaldi's reflection: index -1 -> 0, -2 -> 1, ...; n -> n-1, n+1 -> n-2, ...
    start = torch.arange(t, device=waveform.device) * frame_shift + frame_shift // 2 - frame_length // 2
    idx = start[:, None] + torch.arange(frame_length, device=waveform.device)[None, :]
    idx = torch.where(idx < 0, -idx - 1, idx)
    idx = torch.where(idx >= n, 2 * n - 1 - idx, idx).clamp(0, n - 1)
    return waveform[:, idx]


def add_dither(waveform: torch.Tensor, dither: float, seed: int | None = 0) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``dither``; seeded so that runs are reproducible."""
    if dither == 0.0:
        return waveform
    g = torch.Generator(device=waveform.device)
    g.manual_seed(0 if seed is None else seed)
    noise = torch.randn(waveform.shape, generator=g, device=waveform.device, dtype=waveform.dtype)
    return waveform + dither * noise


def preemphasize_frames(frames: torch.Tensor, coeff: float) -> torch.Tensor:
    """Kaldi's per-frame pre-emphasis: ``x[i] -= c * x[i-1]``, and ``x[0] -= c * x[0]``."""
    if coeff == 0.0:
        return frames
    prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    return frames - coeff * prev


def preemphasize(waveform: torch.Tensor, coeff: float = 0.97) -> torch.Tensor:
    """Whole-signal pre-emphasis ``y[n] = x[n] - c x[n-1]`` (first sample kept)."""
    if coeff == 0.0:
        return waveform
    return torch.cat([waveform[..., :1], waveform[..., 1:] - coeff * waveform[..., :-1]], dim=-1)
