"""Perturbed copies of training utterances' features: speaker-variability augmentation.

A corpus with one voice per class (Asterisk's prompts: one speaker per language) lets a classifier
learn the voice instead of the class. Each copy of an utterance is given another "voice": a speed
factor (resampling moves pitch and formants together, as Kaldi's 3-way speed perturbation), a
vocal-tract-length warp of the mel filterbank (VTLP, Jaitly and Hinton 2013: formants without pitch),
and optionally reverberation from a voxa impulse-response bank. The copies keep their utterance's
label, so UBMs, total-variability models and the LDA/WCCN back-ends see the class vary across voices.

Example:
    >>> import torch
    >>> from voxa.data.manifest import Record
    >>> vp = VoicePerturbation(copies=2, speed=(0.9, 1.1), vtlp=(0.9, 1.1))
    >>> vp.draws(3)[0]  # (speed, warp) of utterance 0's copies
    [(0.9, 1.0...), (1.1, 0.9...)]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from voxa.errors import ConfigError, VoxaError

log = logging.getLogger(__name__)


@dataclass
class VoicePerturbation:
    """Settings of the perturbed copies.

    Attributes:
        copies: perturbed copies per training utterance (0: none; the clean one is always kept).
        speed: speed factors; each copy draws one uniformly (empty: none).
        vtlp: ``(lo, hi)`` range of the filterbank warp factor, drawn uniformly per copy (``None``:
            none). Applies to the mel-filterbank features (MFCC, SDC, fbank).
        rir_bank: a voxa impulse-response bank folder to reverberate the copies with (``None``: none).
        rir_prob: chance a copy is reverberated.
        seed: seed of the draws; copy ``k`` of utterance ``i`` always gets the same perturbation.
    """

    copies: int = 0
    speed: tuple[float, ...] = (0.9, 1.1)
    vtlp: tuple[float, float] | None = (0.88, 1.12)
    rir_bank: str | None = None
    rir_prob: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.copies, bool) or not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"augment.copies={self.copies!r} must be an integer >= 0")
        self.speed = tuple(float(s) for s in self.speed)
        if any(not 0.5 <= s <= 2.0 for s in self.speed):
            raise ConfigError(f"augment.speed={self.speed} must lie in [0.5, 2]")
        if self.vtlp is not None:
            if len(self.vtlp) != 2 or not 0.5 <= float(self.vtlp[0]) <= float(self.vtlp[1]) <= 2.0:
                raise ConfigError(f"augment.vtlp={self.vtlp!r} must be [lo, hi] within [0.5, 2]")
            self.vtlp = (float(self.vtlp[0]), float(self.vtlp[1]))
        if not 0.0 <= float(self.rir_prob) <= 1.0:
            raise ConfigError(f"augment.rir_prob={self.rir_prob!r} must be in [0, 1]")

    @property
    def active(self) -> bool:
        return self.copies > 0

    def draws(self, n: int) -> list[list[tuple[float, float]]]:
        """``(speed, warp)`` of every copy of ``n`` utterances: copies cycle through the speed factors
        (so two copies with ``(0.9, 1.1)`` get one of each) and draw the warp."""
        rng = np.random.default_rng(self.seed)
        out = []
        for i in range(n):
            row = []
            for k in range(self.copies):
                s = self.speed[(i + k) % len(self.speed)] if self.speed else 1.0
                # two decimals: the warped filterbanks are cached per factor
                w = round(float(rng.uniform(*self.vtlp)), 2) if self.vtlp is not None else 1.0
                row.append((s, w))
            out.append(row)
        return out


def perturbed_features(records: Sequence, feature_cfg, vp: VoicePerturbation,
                       progress: bool = True) -> list[list[torch.Tensor]]:
    """Features ``[T', D]`` of ``vp.copies`` perturbed copies of every record (a list per record).

    Args:
        records: :class:`voxa.data.manifest.Record` s.
        feature_cfg: their :class:`voxa.features.pipeline.FeatureConfig`.
        vp: the perturbation.
        progress: show a tqdm bar.

    Raises:
        VoxaError: a record's audio cannot be read or gives no frames (the message names the file).
    """
    from voxa.data.loading import load_record
    from voxa.features.pipeline import extract
    from voxa.nn.data import Augment

    if not vp.active:
        return [[] for _ in records]
    if vp.vtlp is not None and feature_cfg.type not in ("mfcc", "sdc", "fbank"):
        raise ConfigError(f"augment.vtlp warps a mel filterbank; features.type={feature_cfg.type!r} has "
                          f"none (set augment.vtlp: null)")
    reverb = Augment(rir_bank=vp.rir_bank, rir_prob=vp.rir_prob) if vp.rir_bank else None
    draws = vp.draws(len(records))
    out = []
    for i, r in enumerate(tqdm(records, desc="perturbed copies", disable=not progress, leave=False)):
        wav, rate = load_record(r, feature_cfg.sample_rate)
        wav = wav[0]
        copies = []
        for k, (speed, warp) in enumerate(draws[i]):
            x = wav
            if speed != 1.0:
                from voxa.audio.resample import resample

                x = resample(x, rate, int(round(rate / speed)))
            if reverb is not None:
                x = reverb(x, rate, np.random.default_rng((vp.seed, i, k)))
            cfg = feature_cfg
            if warp != 1.0:
                cfg = replace(feature_cfg, options={**feature_cfg.options, "vtln_warp": warp})
            try:
                copies.append(extract(x, rate, cfg))
            except VoxaError as e:
                raise VoxaError(f"{r.path}: {e}") from None
        out.append(copies)
    log.info("%d perturbed copies of %d utterances", sum(len(c) for c in out), len(records))
    return out


__all__ = ["VoicePerturbation", "perturbed_features"]
