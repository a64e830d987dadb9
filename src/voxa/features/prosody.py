"""Prosodic contours (pitch, energy, voicing) and their utterance-level statistics."""

from __future__ import annotations

import torch

from voxa.features.pitch import pitch
from voxa.features.spectrum import as_batch, frame_log_energy, frame_options

PROSODY_STAT_NAMES = (
    "f0_mean", "f0_std", "f0_min", "f0_max", "f0_range", "f0_median", "f0_slope",
    "energy_mean", "energy_std", "energy_max", "energy_range", "energy_slope",
    "voiced_fraction", "voiced_segments_per_s", "voiced_segment_mean_s", "pause_mean_s", "duration_s",
)


def prosody_contours(waveform: torch.Tensor, sample_rate: int, **pitch_kwargs: object
                     ) -> dict[str, torch.Tensor]:
    """Per-frame ``f0`` (Hz, 0 unvoiced), ``voicing`` and ``log_energy`` for a ``[samples]`` waveform."""
    x, _ = as_batch(waveform)
    f0, voicing = pitch(x[0], sample_rate, **pitch_kwargs)
    log_energy = frame_log_energy(x, sample_rate, frame_options(False))
    t = min(f0.shape[-1], log_energy.shape[-1])
    return {"f0": f0[:t], "voicing": voicing[:t], "log_energy": log_energy[0, :t]}


def _slope(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    if y.numel() < 2:
        return y.new_tensor(0.0)
    tc = t - t.mean()
    return (tc * (y - y.mean())).sum() / tc.pow(2).sum().clamp(min=1e-12)


def _runs(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lengths of the runs of True and of False in a 1-D bool tensor."""
    if mask.numel() == 0:
        return mask.new_zeros(0, dtype=torch.long), mask.new_zeros(0, dtype=torch.long)
    change = torch.nonzero(mask[1:] != mask[:-1]).flatten() + 1
    bounds = torch.cat([change.new_tensor([0]), change, change.new_tensor([mask.numel()])])
    lengths = bounds[1:] - bounds[:-1]
    values = mask[bounds[:-1]]
    return lengths[values], lengths[~values]


def prosody_statistics(waveform: torch.Tensor, sample_rate: int, frame_shift_ms: float = 10.0,
                       **pitch_kwargs: object) -> torch.Tensor:
    """Long-term prosodic features of one utterance, ``[len(PROSODY_STAT_NAMES)]``.

    Pitch statistics are on voiced frames (log-F0 slope in octaves per second, others in Hz),
    energy statistics on all frames (log energy), duration statistics from the voicing runs
    (interior pauses only).

    Example:
        >>> t = torch.arange(16000) / 16000
        >>> s = prosody_statistics(torch.sin(2 * torch.pi * 120 * t), 16000)
        >>> s.shape[0] == len(PROSODY_STAT_NAMES)
        True
    """
    c = prosody_contours(waveform, sample_rate, frame_shift_ms=frame_shift_ms, **pitch_kwargs)
    f0, e = c["f0"].double(), c["log_energy"].double()
    hop = frame_shift_ms / 1000.0
    t = torch.arange(f0.numel(), dtype=torch.float64) * hop
    voiced = f0 > 0
    fv = f0[voiced]
    z = fv.new_tensor(0.0)
    if fv.numel():
        f_stats = [fv.mean(), fv.std(unbiased=False), fv.min(), fv.max(), fv.max() - fv.min(),
                   fv.median(), _slope(torch.log2(fv), t[voiced])]
    else:
        f_stats = [z] * 7
    e_stats = [e.mean(), e.std(unbiased=False), e.max(), e.max() - e.min(), _slope(e, t)] \
        if e.numel() else [z] * 5
    on, off = _runs(voiced)
    # pauses at the very start and end are recording margins, not prosody
    if voiced.numel() and not voiced[0] and off.numel():
        off = off[1:]
    if voiced.numel() and not voiced[-1] and off.numel():
        off = off[:-1]
    dur = f0.numel() * hop
    d_stats = [voiced.double().mean() if voiced.numel() else z,
               z + on.numel() / max(dur, 1e-9),
               on.double().mean() * hop if on.numel() else z,
               off.double().mean() * hop if off.numel() else z,
               z + dur]
    return torch.stack([torch.as_tensor(v, dtype=torch.float64) for v in f_stats + e_stats + d_stats]
                       ).float()


PROSODY_WINDOW_NAMES = (
    "logf0_mean", "logf0_std", "logf0_range", "logf0_slope",
    "energy_mean", "energy_std", "energy_range", "energy_slope", "voiced_fraction",
)


def _masked_slope(y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Least-squares slope per row of ``y [n, W]`` over the entries where ``m [n, W]`` is 1."""
    t = torch.arange(y.shape[-1], dtype=y.dtype, device=y.device).expand_as(y)
    cnt = m.sum(-1).clamp(min=1)
    tm = (t * m).sum(-1) / cnt
    ym = (y * m).sum(-1) / cnt
    tc = (t - tm[:, None]) * m
    den = (tc * tc).sum(-1)
    slope = (tc * (y - ym[:, None])).sum(-1) / den.clamp(min=1e-12)
    return torch.where(den > 0, slope, torch.zeros_like(den))


def prosody_windows(waveform: torch.Tensor, sample_rate: int, window_s: float = 0.5, hop_s: float = 0.1,
                    frame_shift_ms: float = 10.0, **pitch_kwargs: object) -> torch.Tensor:
    """Long-term prosodic features over sliding windows, ``[windows, len(PROSODY_WINDOW_NAMES)]``.

    Each window of ``window_s`` seconds (every ``hop_s``) summarises the pitch and energy contours:
    log2-F0 mean, standard deviation, range and slope over its voiced frames (zeros when it has none),
    log-energy mean, standard deviation, range and slope, and the voiced fraction (a duration cue).
    Slopes are per second. An utterance shorter than one window gives one window over all of it.
    Computed for all windows at once (no loop over windows or frames).

    Example:
        >>> t = torch.arange(32000) / 16000
        >>> prosody_windows(torch.sin(2 * torch.pi * 150 * t), 16000).shape
        torch.Size([15, 9])
    """
    c = prosody_contours(waveform, sample_rate, frame_shift_ms=frame_shift_ms, **pitch_kwargs)
    f0, e = c["f0"].double(), c["log_energy"].double()
    n = f0.numel()
    if n == 0:
        return torch.zeros(0, len(PROSODY_WINDOW_NAMES))
    hop = frame_shift_ms / 1000.0
    w = max(1, min(n, int(round(window_s / hop))))
    step = max(1, int(round(hop_s / hop)))
    voiced = (f0 > 0).double()
    lf = torch.log2(f0.clamp(min=1.0)) * voiced
    lf_w, v_w, e_w = (x.unfold(0, w, step) for x in (lf, voiced, e))  # [windows, w]
    cnt = v_w.sum(-1)
    has = cnt > 0
    mean = lf_w.sum(-1) / cnt.clamp(min=1)
    var = ((lf_w - mean[:, None]) ** 2 * v_w).sum(-1) / cnt.clamp(min=1)
    big = torch.finfo(lf_w.dtype).max
    hi = torch.where(v_w > 0, lf_w, torch.full_like(lf_w, -big)).amax(-1)
    lo = torch.where(v_w > 0, lf_w, torch.full_like(lf_w, big)).amin(-1)
    rng = torch.where(has, hi - lo, torch.zeros_like(hi))
    ones = torch.ones_like(e_w)
    feats = [mean, var.sqrt(), rng, _masked_slope(lf_w, v_w) / hop,
             e_w.mean(-1), e_w.std(-1, unbiased=False), e_w.amax(-1) - e_w.amin(-1),
             _masked_slope(e_w, ones) / hop, v_w.mean(-1)]
    return torch.stack(feats, -1).float()
