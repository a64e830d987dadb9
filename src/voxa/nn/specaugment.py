"""SpecAugment-style masking of feature sequences (Park et al. 2019, without time warping).

Each training utterance gets ``freq_masks`` bands of up to ``freq_width`` feature dimensions and
``time_masks`` spans of up to ``time_width`` frames (at most ``time_ratio`` of its own length) set to
zero, drawn independently per utterance. Padding is never masked "into" an utterance: time masks are
drawn inside each utterance's own length. With per-utterance mean-normalised features, zero is the
mean, which is what the paper fills with.

Example:
    >>> import torch
    >>> sa = SpecAugment(freq_masks=1, freq_width=3, time_masks=1, time_width=5)
    >>> x = torch.ones(2, 20, 8)
    >>> y = sa(x, torch.tensor([20, 10]), torch.Generator().manual_seed(0))
    >>> bool((y == 0).any()), y.shape
    (True, torch.Size([2, 20, 8]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from voxa.errors import ConfigError


@dataclass
class SpecAugment:
    """Masking settings; all zero (the default) switches masking off.

    Attributes:
        freq_masks: frequency (feature-dimension) masks per utterance.
        freq_width: the widest frequency mask, in dimensions (each drawn uniformly in ``0..width``).
        time_masks: time masks per utterance.
        time_width: the longest time mask, in frames.
        time_ratio: a time mask covers at most this share of its utterance.
    """

    freq_masks: int = 0
    freq_width: int = 0
    time_masks: int = 0
    time_width: int = 0
    time_ratio: float = 0.2

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"specaugment.{name}={v!r} must be an integer >= 0")
        if not 0.0 < float(self.time_ratio) <= 1.0:
            raise ConfigError(f"specaugment.time_ratio={self.time_ratio!r} must be in (0, 1]")

    @property
    def active(self) -> bool:
        return (self.freq_masks > 0 and self.freq_width > 0) or (self.time_masks > 0 and self.time_width > 0)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Masked copy of ``x [B, T, D]`` (``lengths [B]`` valid frames each)."""
        if not self.active:
            return x
        b, t, d = x.shape
        keep = torch.ones(b, t, d, dtype=torch.bool)
        dims = torch.arange(d)
        frames = torch.arange(t)
        n = lengths.cpu().float()
        for _ in range(self.freq_masks):
            w = torch.randint(0, self.freq_width + 1, (b,), generator=generator)
            f0 = (torch.rand(b, generator=generator) * (d - w + 1).clamp_min(1)).long()
            band = (dims[None, :] >= f0[:, None]) & (dims[None, :] < (f0 + w)[:, None])   # [B, D]
            keep &= ~band[:, None, :]
        for _ in range(self.time_masks):
            cap = torch.minimum(torch.full((b,), float(self.time_width)), (n * self.time_ratio).floor())
            w = (torch.rand(b, generator=generator) * (cap + 1)).floor()
            t0 = (torch.rand(b, generator=generator) * (n - w + 1).clamp_min(1)).floor()
            span = (frames[None, :] >= t0[:, None]) & (frames[None, :] < (t0 + w)[:, None])  # [B, T]
            keep &= ~span[:, :, None]
        return x * keep.to(x.device, x.dtype)


__all__ = ["SpecAugment"]
