"""RNN-CTC acoustic models: a (B)LSTM over frames, trained with connectionist temporal classification.

CTC (Graves et al. 2006) sums over every alignment of the label string to the frames (with a blank
label between and around the labels), so the model needs no forced alignment. :class:`CtcModel`
stacks ``subsample`` consecutive frames (cutting the frame rate, as Deep Speech and EESEN do), runs a
BLSTM and outputs per-frame log-probabilities over ``vocab`` (``vocab[0]`` is the blank). Decoding and
alignment are :mod:`voxa.asr.ctc`'s.

Example:
    >>> import torch
    >>> m = CtcModel(CtcConfig(input_dim=3, vocab=["<b>", "a", "b"], hidden=8, layers=1, subsample=2))
    >>> logp, n = m(torch.randn(2, 9, 3), torch.tensor([9, 4]))
    >>> logp.shape, n.tolist()
    (torch.Size([2, 5, 3]), [5, 2])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from voxa.errors import ConfigError, VoxaError
from voxa.nn.saving import SavedModule
from voxa.nn.sequence import InputNormalisation
from voxa.nn.specaugment import SpecAugment
from voxa.nn.trainer import TrainerConfig
from voxa.utils.serialization import register

log = logging.getLogger(__name__)


@dataclass
class CtcConfig:
    """The network.

    Attributes:
        input_dim: feature dimension.
        vocab: output symbols; ``vocab[0]`` is the CTC blank.
        hidden: LSTM units per direction.
        layers: stacked LSTM layers.
        bidirectional: BLSTM (``False``: unidirectional, for streaming).
        subsample: consecutive frames stacked into one (1: none).
        dropout: between LSTM layers and before the output layer.
    """

    input_dim: int = 39
    vocab: list[str] = field(default_factory=lambda: ["<blank>"])
    hidden: int = 256
    layers: int = 3
    bidirectional: bool = True
    subsample: int = 1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if len(self.vocab) < 2:
            raise ConfigError("a CTC model needs the blank and at least one label in vocab")
        if len(set(self.vocab)) != len(self.vocab):
            raise ConfigError("vocab has repeated symbols")
        for name in ("input_dim", "hidden", "layers", "subsample"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")


@register("voxa.asr.CtcModel")
class CtcModel(InputNormalisation, SavedModule):
    """Frame stacking, (B)LSTM, per-frame log-probabilities over the vocabulary and the blank.

    Shapes:
        ``forward(x [B, T, D], lengths [B]) -> (logp [B, T', V], lengths' [B])`` with
        ``T' = ceil(T / subsample)``; output frames past ``lengths'`` are padding, to be ignored.
    """

    config_class = CtcConfig

    def __init__(self, cfg: CtcConfig | None = None) -> None:
        super().__init__()
        from voxa.nn.layers import LSTMEncoder

        self.cfg = c = cfg or CtcConfig()
        self._init_normalisation(c.input_dim)
        self.encoder = LSTMEncoder(c.input_dim * c.subsample, c.hidden, c.layers,
                                   bidirectional=c.bidirectional,
                                   dropout=c.dropout)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(self.encoder.out_dim, len(c.vocab))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.cfg.subsample
        x = self.normalise(x)
        if k > 1:
            b, t, d = x.shape
            pad = (-t) % k
            x = F.pad(x, (0, 0, 0, pad)).reshape(b, (t + pad) // k, k * d)
            lengths = torch.div(lengths + k - 1, k, rounding_mode="floor")
        h, _ = self.encoder(x, lengths)
        return F.log_softmax(self.out(self.drop(h)).float(), dim=-1), lengths

    @torch.no_grad()
    def log_probs(self, feats: torch.Tensor) -> torch.Tensor:
        """``[T', V]`` per-frame log-probabilities of one utterance ``[T, D]``."""
        if feats.dim() != 2 or feats.shape[1] != self.cfg.input_dim:
            raise VoxaError(f"features of shape {tuple(feats.shape)} for a {self.cfg.input_dim}-dimensional "
                            f"CTC model")
        dev = self.feat_mean.device
        logp, n = self(feats[None].to(dev, torch.float32), torch.tensor([feats.shape[0]], device=dev))
        return logp[0, :int(n[0])].cpu()


def ctc_batch_loss(logp: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                   target_lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the CTC negative log-likelihood per utterance (padded targets may hold any
    value past their length). Utterances too short for their labels count zero (``zero_infinity``)."""
    y = targets.clamp_min(0)
    nll = F.ctc_loss(logp.transpose(0, 1), y, lengths, target_lengths, blank=0, reduction="sum",
                     zero_infinity=True)
    return nll / logp.shape[0]


@dataclass
class CtcTrainConfig:
    """Training of an RNN-CTC system (recipe section ``ctc``).

    Attributes:
        units: ``chars`` (letters, apostrophe and a word separator) or ``words`` (every transcript token a
            unit: TIMIT's phone transcripts, Kaldi's yes/no).
        model: :class:`CtcConfig` fields (``input_dim`` and ``vocab`` come from the data).
        trainer: the shared trainer's settings.
        valid_fraction: utterances held out for the validation loss and best-model selection.
        specaugment: masking of training batches.
        beam: prefix beam width in decoding.
        lm_weight, word_bonus: shallow fusion with the n-gram LM (weight of its log-probability, and a
            bonus per word that offsets the LM's preference for short outputs).
        lexicon: constrain beam search to the lexicon's words (``chars`` units).
    """

    units: str = "chars"
    model: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=30, batch_size=16, lr=2e-3,
                                                                         lr_patience=3, checkpoint_every=0))
    valid_fraction: float = 0.1
    specaugment: SpecAugment = field(default_factory=SpecAugment)
    beam: int = 16
    lm_weight: float = 0.5
    word_bonus: float = 1.0
    lexicon: bool = False

    def __post_init__(self) -> None:
        if self.units not in ("chars", "words"):
            raise ConfigError(f"ctc.units={self.units!r}: chars or words")
        if self.beam < 1:
            raise ConfigError(f"ctc.beam={self.beam!r} must be >= 1")


def train_ctc(feats: Mapping[str, torch.Tensor], targets: Mapping[str, Sequence[int]], vocab: list[str],
              cfg: CtcTrainConfig, exp: str | os.PathLike) -> CtcModel:
    """Train an RNN-CTC model.

    Args:
        feats: ``{utt: [T, D]}`` features.
        targets: ``{utt: label ids}`` (ids into ``vocab``, never the blank 0).
        vocab: the symbols, blank first.
        cfg: settings.
        exp: the trainer's folder (resumes from it).

    Returns:
        The best-validation model (eval mode) with ``training_summary``.
    """
    from voxa.asr.ctc import ctc_greedy
    from voxa.nn.sequence import token_error_rate, train_on_utterances

    targets = {k: v for k, v in targets.items() if k in feats and len(v)}
    if not targets:
        raise VoxaError("no training utterance with a transcript for the CTC model")
    if any(0 in v for v in targets.values()):
        raise VoxaError("CTC targets must not contain the blank (id 0)")
    dim = int(next(iter(feats.values())).shape[1])
    torch.manual_seed(cfg.trainer.seed)
    model = CtcModel(CtcConfig(**{**cfg.model, "input_dim": dim, "vocab": list(vocab)}))

    def loss(net: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        logp, n = net(b["x"], b["lengths"])
        return ctc_batch_loss(logp, n, b["y"], b["y_lengths"])

    def metrics(net: nn.Module, ids: list[str]) -> dict[str, float]:
        return token_error_rate(targets, lambda k: ctc_greedy(net.log_probs(feats[k])), ids)

    return train_on_utterances(model, loss, feats, targets, cfg.trainer, exp, cfg.valid_fraction,
                               cfg.specaugment, metrics=metrics)


__all__ = ["CtcConfig", "CtcModel", "CtcTrainConfig", "ctc_batch_loss", "train_ctc"]
