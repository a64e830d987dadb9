"""DNN-HMM hybrid acoustic models: a network's HMM-state posteriors divided by the state priors.

The network (:class:`HybridModel`) maps frames to posteriors over the tied HMM states (pdfs) of a
GMM-HMM system; it is trained with cross-entropy on the states of that system's forced alignments.
Decoding divides by the priors, ``log p(x | s) ~ log P(s | x) - log P(s)`` (Bourlard and Morgan's
scaled likelihoods), and goes through the GMM-HMM's own decoding graph and decoder, so the two
systems differ only in their state scores. Two architectures: ``dnn`` (feed-forward over ``2 context
+ 1`` spliced frames, Kaldi's nnet1 recipe) and ``lstm`` (a BLSTM over the whole utterance: the
lecture's LSTM-HMM).

Example:
    >>> import torch
    >>> m = HybridModel(HybridConfig(input_dim=3, num_pdfs=4, context=1, hidden=8, layers=1)).eval()
    >>> m.set_prior(torch.tensor([10.0, 30.0, 30.0, 30.0]))
    >>> m.pseudo_log_likelihoods(torch.randn(7, 3)).shape
    torch.Size([7, 4])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
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

ARCHS = ("dnn", "lstm")


@dataclass
class HybridConfig:
    """The network.

    Attributes:
        input_dim: feature dimension (the GMM-HMM's features).
        num_pdfs: tied HMM states of the GMM-HMM system it replaces.
        arch: ``dnn`` (spliced frames, feed-forward) or ``lstm`` (BLSTM).
        context: frames spliced either side (``dnn``).
        hidden: hidden units per layer (per direction for ``lstm``).
        layers: hidden layers.
        dropout: dropout after each hidden layer.
        prior_floor: state priors are floored at this (a state the alignments never visit must not get
            an infinite scaled likelihood).
    """

    input_dim: int = 39
    num_pdfs: int = 2
    arch: str = "dnn"
    context: int = 5
    hidden: int = 512
    layers: int = 4
    dropout: float = 0.1
    prior_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"arch={self.arch!r}: choose one of {', '.join(ARCHS)}")
        for name in ("input_dim", "num_pdfs", "hidden", "layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 1")
        if self.context < 0:
            raise ConfigError(f"context={self.context!r} must be >= 0")


@register("voxa.asr.HybridModel")
class HybridModel(InputNormalisation, SavedModule):
    """Frame posteriors over HMM states, with the feature normalisation and state priors it was
    trained with (buffers, saved with the weights).

    Shapes:
        ``forward(x [B, T, D], lengths [B]) -> logits [B, T, num_pdfs]``.
    """

    config_class = HybridConfig

    def __init__(self, cfg: HybridConfig | None = None) -> None:
        super().__init__()
        from voxa.nn.layers import LSTMEncoder

        self.cfg = c = cfg or HybridConfig()
        self._init_normalisation(c.input_dim)
        self.register_buffer("log_prior", torch.full((c.num_pdfs,), -float(torch.log(torch.tensor(
            float(c.num_pdfs))))))
        if c.arch == "dnn":
            from voxa.nn.models import frame_mlp

            self.body = frame_mlp((2 * c.context + 1) * c.input_dim, c.hidden, c.layers, c.dropout)
            out = c.hidden
        else:
            self.body = LSTMEncoder(c.input_dim, c.hidden, c.layers, bidirectional=True, dropout=c.dropout)
            out = self.body.out_dim
        self.out = nn.Linear(out, c.num_pdfs)

    def set_prior(self, counts: torch.Tensor) -> None:
        """State priors from aligned-frame counts ``[num_pdfs]``."""
        p = counts.double().clamp_min(0) / counts.double().sum().clamp_min(1.0)
        self.log_prior.copy_(p.clamp_min(self.cfg.prior_floor).log().to(self.log_prior))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        from voxa.nn.models import splice

        x = self.normalise(x)
        if self.cfg.arch == "dnn":
            h = self.body(splice(x, lengths, self.cfg.context))
        else:
            h, _ = self.body(x, lengths)
        return self.out(h)

    @torch.no_grad()
    def log_posteriors(self, feats: torch.Tensor) -> torch.Tensor:
        """``[T, num_pdfs]`` log state posteriors of one utterance ``[T, D]``."""
        if feats.dim() != 2 or feats.shape[1] != self.cfg.input_dim:
            raise VoxaError(f"features of shape {tuple(feats.shape)} for a {self.cfg.input_dim}-dimensional "
                            f"hybrid model")
        dev = self.feat_mean.device
        logits = self(feats[None].to(dev, torch.float32), torch.tensor([feats.shape[0]], device=dev))[0]
        return F.log_softmax(logits.float(), dim=-1).cpu()

    def pseudo_log_likelihoods(self, feats: torch.Tensor) -> torch.Tensor:
        """``[T, num_pdfs]`` scaled likelihoods ``log P(s | x) - log P(s)``: what the decoder reads in place
        of the GMM log-likelihoods."""
        return self.log_posteriors(feats) - self.log_prior.cpu()


@dataclass
class HybridTrainConfig:
    """Training of a hybrid system (recipe section ``dnn_hmm``).

    Attributes:
        model: :class:`HybridConfig` fields (``input_dim`` and ``num_pdfs`` come from the data).
        trainer: the shared trainer's settings.
        chunk: train on random chunks of this many frames (``None``: whole utterances).
        valid_fraction: utterances held out for the validation loss and best-model selection.
        specaugment: masking of training batches.
        realign: realign the training data with the trained network and train again, this many times
            (Kaldi's hybrid recipes realign once).
        acoustic_scale: the decoder's acoustic scale for the scaled likelihoods.
        source: the GMM-HMM system whose alignments give the targets (``tri`` when it is trained, else
            ``mono``; ``auto`` picks so).
    """

    model: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=12, batch_size=16, lr=1e-3,
                                                                         lr_patience=2, checkpoint_every=0))
    chunk: int | None = 200
    valid_fraction: float = 0.1
    specaugment: SpecAugment = field(default_factory=SpecAugment)
    realign: int = 0
    acoustic_scale: float = 0.1
    source: str = "auto"

    def __post_init__(self) -> None:
        if self.source not in ("auto", "mono", "tri"):
            raise ConfigError(f"dnn_hmm.source={self.source!r}: auto, mono or tri")
        if self.realign < 0:
            raise ConfigError(f"dnn_hmm.realign={self.realign!r} must be >= 0")


def train_hybrid(feats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], num_pdfs: int,
                 cfg: HybridTrainConfig, exp: str | os.PathLike) -> HybridModel:
    """Train a hybrid network on frame targets.

    Args:
        feats: ``{utt: [T, D]}`` features.
        targets: ``{utt: [T]}`` pdf of every frame (from a forced alignment).
        num_pdfs: the HMM system's tied states.
        cfg: settings.
        exp: the trainer's folder (checkpoints, log, curves); training resumes from it.

    Returns:
        The best-validation model (eval mode), priors and normalisation set, with ``training_summary``.
    """
    from voxa.nn.sequence import IGNORE, train_on_utterances

    targets = {k: v for k, v in targets.items() if k in feats}
    if not targets:
        raise VoxaError("no aligned training utterance for the hybrid model")
    dim = int(next(iter(feats.values())).shape[1])
    torch.manual_seed(cfg.trainer.seed)
    model = HybridModel(HybridConfig(**{**cfg.model, "input_dim": dim, "num_pdfs": int(num_pdfs)}))
    model.set_prior(torch.bincount(torch.cat(list(targets.values())), minlength=num_pdfs))

    def loss(net: nn.Module, b: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = net(b["x"], b["lengths"])
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), b["y"].reshape(-1),
                               ignore_index=IGNORE)

    def frame_accuracy(net: nn.Module, ids: list[str]) -> dict[str, float]:
        hit = tot = 0
        for k in ids[:200]:
            pred = net.log_posteriors(feats[k]).argmax(1)
            hit += int((pred == targets[k]).sum())
            tot += len(pred)
        return {"frame_accuracy": hit / max(tot, 1)}

    return train_on_utterances(model, loss, feats, targets, cfg.trainer, exp, cfg.valid_fraction,
                               cfg.specaugment, frame_targets=True, chunk=cfg.chunk, metrics=frame_accuracy)


__all__ = ["ARCHS", "HybridConfig", "HybridModel", "HybridTrainConfig", "train_hybrid"]
