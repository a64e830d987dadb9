"""Training Listen, Attend and Spell (:class:`voxa.nn.las.ListenAttendSpell`) as a recogniser.

Teacher forcing with scheduled sampling and label smoothing (the model's settings), SpecAugment, the
shared trainer (resume, best-model selection on held-out utterances, curves), and the decoding
settings of the recipe section ``las``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from voxa.errors import ConfigError, VoxaError
from voxa.nn.specaugment import SpecAugment
from voxa.nn.trainer import TrainerConfig

log = logging.getLogger(__name__)


@dataclass
class LasTrainConfig:
    """Training and decoding of a LAS system (recipe section ``las``).

    Attributes:
        units: ``chars`` or ``words`` (see :mod:`voxa.asr.units`).
        model: :class:`voxa.nn.las.LASConfig` fields (``input_dim`` and ``vocab_size`` come from the data).
        trainer: the shared trainer's settings.
        valid_fraction: utterances held out for the validation loss and best-model selection.
        specaugment: masking of training batches.
        beam: beam width in decoding.
        length_norm: exponent of the length normalisation of beam scores (0: none).
        lm_weight: weight of the n-gram LM's log-probability in shallow fusion (a character LM for
            ``chars`` units).
    """

    units: str = "chars"
    model: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=40, batch_size=16, lr=1e-3,
                                                                         lr_patience=3, checkpoint_every=0))
    valid_fraction: float = 0.1
    specaugment: SpecAugment = field(default_factory=SpecAugment)
    beam: int = 8
    length_norm: float = 1.0
    lm_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.units not in ("chars", "words"):
            raise ConfigError(f"las.units={self.units!r}: chars or words")
        if self.beam < 1:
            raise ConfigError(f"las.beam={self.beam!r} must be >= 1")


def train_las(feats: Mapping[str, torch.Tensor], targets: Mapping[str, Sequence[int]], vocab: list[str],
              cfg: LasTrainConfig, exp: str | os.PathLike) -> Any:
    """Train a LAS model on ``{utt: unit ids}`` (ids into ``vocab``, whose first entries are the model's
    special symbols :data:`voxa.nn.las.SPECIALS`).

    Returns:
        The best-validation :class:`voxa.nn.las.ListenAttendSpell` (eval mode) with ``training_summary``.
    """
    from voxa.nn.las import LASConfig, ListenAttendSpell, las_loss
    from voxa.nn.sequence import token_error_rate, train_on_utterances

    targets = {k: v for k, v in targets.items() if k in feats and len(v)}
    if not targets:
        raise VoxaError("no training utterance with a transcript for the LAS model")
    dim = int(next(iter(feats.values())).shape[1])
    model_cfg = LASConfig(**{**cfg.model, "input_dim": dim, "vocab_size": len(vocab), "vocab": list(vocab)})
    torch.manual_seed(cfg.trainer.seed)
    model = ListenAttendSpell(model_cfg)

    def loss(net: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        y = b["y"].clamp_min(0)
        logits = net(b["x"], b["lengths"], y, b["y_lengths"])
        return las_loss(logits, y, b["y_lengths"], model_cfg)

    def metrics(net: nn.Module, ids: list[str]) -> dict[str, float]:
        def decode(k: str) -> list[int]:
            return net.greedy(feats[k][None], torch.tensor([feats[k].shape[0]]))[0]

        return token_error_rate(targets, decode, ids, limit=100)

    return train_on_utterances(model, loss, feats, targets, cfg.trainer, exp, cfg.valid_fraction,
                               cfg.specaugment, metrics=metrics)


__all__ = ["LasTrainConfig", "train_las"]
