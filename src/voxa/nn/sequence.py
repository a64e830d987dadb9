"""Training on sequences with sequence targets: frame labels (hybrid HMM states) or token strings (CTC,
attention models), with the shared :class:`voxa.nn.trainer.Trainer`.

:class:`SequenceDataset` holds ``(x [T, D], y)`` pairs; :func:`collate_sequences` pads them into a dict
batch (which the trainer moves to the device); :func:`fit_sequence_model` trains a model whose
``loss(batch)`` is given, with optional SpecAugment, validation on held-out utterances, best-model
selection and resume.

Example:
    >>> import torch
    >>> ds = SequenceDataset([torch.randn(50, 3)], [torch.zeros(50, dtype=torch.long)], frame_targets=True,
    ...                      chunk=20)
    >>> b = collate_sequences([ds[0]])
    >>> b["x"].shape, b["y"].shape, b["lengths"].tolist()
    (torch.Size([1, 20, 3]), torch.Size([1, 20]), [20])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from voxa.errors import VoxaError
from voxa.nn.specaugment import SpecAugment
from voxa.nn.trainer import Trainer, TrainerConfig

log = logging.getLogger(__name__)

#: label of padded frames in a frame-target batch (``F.cross_entropy``'s ignore index)
IGNORE = -100


class SequenceDataset(Dataset):
    """Utterances with targets.

    Args:
        feats: ``[T_i, D]`` features.
        targets: ``[T_i]`` frame labels (``frame_targets``) or ``[U_i]`` token ids.
        frame_targets: targets are per frame (and get cropped with the frames).
        chunk: with frame targets, train on random chunks of at most this many frames, redrawn each epoch
            (item ``i`` of epoch ``e`` always gets the same chunk); ``None``: whole utterances.
        seed: seed of the chunks.
    """

    def __init__(self, feats: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], frame_targets: bool,
                 chunk: int | None = None, seed: int = 0) -> None:
        if len(feats) != len(targets):
            raise VoxaError(f"{len(feats)} utterances but {len(targets)} targets")
        if frame_targets:
            bad = [i for i, (x, y) in enumerate(zip(feats, targets)) if x.shape[0] != y.shape[0]]
            if bad:
                raise VoxaError(f"utterance {bad[0]}: {feats[bad[0]].shape[0]} frames but "
                                f"{targets[bad[0]].shape[0]} frame labels")
        self.feats, self.targets = list(feats), [torch.as_tensor(y, dtype=torch.long) for y in targets]
        self.frame_targets, self.chunk, self.seed, self.epoch = frame_targets, chunk, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.feats[i], self.targets[i]
        if self.frame_targets and self.chunk and x.shape[0] > self.chunk:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            s = int(rng.integers(0, x.shape[0] - self.chunk + 1))
            x, y = x[s:s + self.chunk], y[s:s + self.chunk]
        return x, y


def collate_sequences(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``{"x" [B, T, D], "lengths" [B], "y" [B, U] (padded with IGNORE), "y_lengths" [B]}``."""
    if not batch:
        raise VoxaError("cannot collate an empty batch")
    xs, ys = [b[0] for b in batch], [b[1] for b in batch]
    lengths = torch.tensor([x.shape[0] for x in xs])
    y_lengths = torch.tensor([y.shape[0] for y in ys])
    x = xs[0].new_zeros(len(xs), int(lengths.max()), xs[0].shape[1])
    y = torch.full((len(ys), max(1, int(y_lengths.max()))), IGNORE, dtype=torch.long)
    for i, (a, b) in enumerate(zip(xs, ys)):
        x[i, :a.shape[0]] = a
        y[i, :b.shape[0]] = b
    return {"x": x, "lengths": lengths, "y": y, "y_lengths": y_lengths}


class InputNormalisation:
    """Mixin of the sequence models: a global feature mean and standard deviation (buffers ``feat_mean``
    and ``feat_std``, saved with the weights), set from the training frames and applied to every input.
    """

    def _init_normalisation(self, dim: int) -> None:
        self.register_buffer("feat_mean", torch.zeros(dim))
        self.register_buffer("feat_std", torch.ones(dim))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Global feature mean and standard deviation ``[D]`` (from the training frames)."""
        self.feat_mean.copy_(torch.as_tensor(mean).to(self.feat_mean))
        self.feat_std.copy_(torch.as_tensor(std).clamp_min(1e-5).to(self.feat_std))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.feat_mean) / self.feat_std


def split_valid(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(fit, valid)``: a seeded ``fraction`` of ``n`` utterances held out (at least one when
    ``fraction > 0`` and ``n > 1``)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    k = int(round(fraction * n))
    if fraction > 0 and n > 1:
        k = min(max(1, k), n - 1)
    return sorted(order[k:]), sorted(order[:k])


def fit_sequence_model(model: nn.Module, loss: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                       train: SequenceDataset, valid: SequenceDataset | None, cfg: TrainerConfig,
                       exp: str | os.PathLike, specaugment: SpecAugment | None = None,
                       valid_metrics: Callable[[nn.Module], dict[str, float]] | None = None
                       ) -> dict[str, Any]:
    """Train ``model`` with ``loss(model, batch)``; returns the trainer's summary and leaves the
    best-validation weights in ``model`` (eval mode).

    Args:
        model: the network.
        loss: scalar loss of a :func:`collate_sequences` batch already on the model's device; it gets the
            (possibly DDP-wrapped) network, so it must go through its ``forward``.
        train, valid: the datasets (``valid`` ``None``: the training loss is the validation figure).
        cfg: trainer settings (resumes from ``exp/checkpoint.pt`` when present).
        exp: checkpoints, ``train_log.csv`` and curves.
        specaugment: masking applied to training batches only.
        valid_metrics: extra figures for the log, e.g. a greedy error rate.
    """
    import dataclasses

    if len(train) < cfg.batch_size:
        log.warning("batch size %d cut to the %d training utterances", cfg.batch_size, len(train))
        cfg = dataclasses.replace(cfg, batch_size=max(1, len(train)))
    gen = torch.Generator().manual_seed(cfg.seed)
    aug = specaugment if specaugment is not None and specaugment.active else None

    def train_loss(net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if aug is not None:
            batch = {**batch, "x": aug(batch["x"], batch["lengths"], gen)}
        return loss(net, batch)

    def valid_fn(net: nn.Module) -> dict[str, float]:
        data = valid if valid is not None and len(valid) else train
        dev = next(net.parameters()).device
        total, n = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(data), cfg.batch_size):
                items = [data[i] for i in range(s, min(len(data), s + cfg.batch_size))]
                b = {k: v.to(dev) for k, v in collate_sequences(items).items()}
                total += float(loss(net, b)) * len(items)
                n += len(items)
        out = {"loss": total / max(n, 1)}
        if valid_metrics is not None:
            out.update(valid_metrics(net))
        return out

    trainer = Trainer(model, train, collate_sequences, train_loss, valid_fn, exp, cfg)
    trainer.resume()
    summary = trainer.fit()
    trainer.load_best()
    return summary


def train_on_utterances(model: nn.Module, loss: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                        feats: Mapping[str, torch.Tensor], targets: Mapping[str, Any], cfg: TrainerConfig,
                        exp: str | os.PathLike, valid_fraction: float = 0.1,
                        specaugment: SpecAugment | None = None, frame_targets: bool = False,
                        chunk: int | None = None,
                        metrics: Callable[[nn.Module, list[str]], dict[str, float]] | None = None
                        ) -> nn.Module:
    """Hold out ``valid_fraction`` of the utterances, train ``model`` on the rest with
    :func:`fit_sequence_model` (normalisation set from every training frame), and record
    ``model.training_summary`` (epochs, steps, best validation loss, seconds, parameters, utterances).

    Args:
        model: a network with :class:`InputNormalisation`.
        loss: as for :func:`fit_sequence_model`.
        feats: ``{utt: [T, D]}``.
        targets: ``{utt: frame labels [T] or token ids}``; the utterances trained on are those in both.
        cfg, exp, specaugment: as for :func:`fit_sequence_model`.
        valid_fraction: share held out for validation and best-model selection.
        frame_targets, chunk: as for :class:`SequenceDataset`.
        metrics: extra validation figures ``(model, held-out ids) -> {name: value}``.
    """
    import time

    ids = sorted(k for k in targets if k in feats and len(targets[k]))
    if not ids:
        raise VoxaError("no training utterance with targets")
    x_all = torch.cat([feats[k] for k in ids]).double()
    if hasattr(model, "set_normalisation"):
        model.set_normalisation(x_all.mean(0).float(), x_all.std(0).float())
    fit, valid = split_valid(len(ids), valid_fraction, cfg.seed)

    def dataset(idx: Sequence[int], crop: int | None) -> SequenceDataset:
        return SequenceDataset([feats[ids[i]] for i in idx], [torch.as_tensor(targets[ids[i]]) for i in idx],
                               frame_targets=frame_targets, chunk=crop, seed=cfg.seed)

    held_out = [ids[i] for i in valid]
    extra = (lambda net: metrics(net, held_out)) if metrics is not None and held_out else None
    t0 = time.perf_counter()
    summary = fit_sequence_model(model, loss, dataset(fit, chunk), dataset(valid, None), cfg, exp,
                                 specaugment=specaugment, valid_metrics=extra)
    model.training_summary = {"epochs": summary["epochs"], "steps": summary["steps"],
                              "best_valid_loss": summary["best_valid"],
                              "seconds": round(time.perf_counter() - t0, 1),
                              "parameters": sum(p.numel() for p in model.parameters()),
                              "utterances": len(ids), "frames": int(x_all.shape[0])}
    return model


def token_error_rate(targets: Mapping[str, Sequence[int]], decode: Callable[[str], Sequence[int]],
                     ids: Sequence[str], limit: int = 200) -> dict[str, float]:
    """``{"token_error_rate": ...}`` of ``decode(utt)`` against ``targets`` on up to ``limit`` of ``ids``."""
    from voxa.metrics.asr import wer

    ids = list(ids)[:limit]
    refs = [[str(t) for t in targets[k]] for k in ids]
    hyps = [[str(t) for t in decode(k)] for k in ids]
    return {"token_error_rate": wer(refs, hyps).wer}


__all__ = ["IGNORE", "InputNormalisation", "SequenceDataset", "collate_sequences", "fit_sequence_model",
           "split_valid", "token_error_rate", "train_on_utterances"]
