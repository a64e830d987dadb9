"""Separation first: a training schedule in stages, each with its own task, validation and hand-over.

A model that cannot yet pull two talkers apart cannot learn which of them a query means (measured:
``../shared/notes/tse-cpu-measurements.md``), so a run may go through

1. ``pit``: utterance-level permutation-invariant separation of the two talkers. Two fixed tokens
   (:data:`TOKENS`, outside any real distance) stand in for the query and pick the two outputs; the loss
   is the better of the two assignments.
2. ``order``: the same outputs, ordered by distance: the first token's output is the nearer talker. No
   permutation, so the network must learn the distance cue on features that already separate.
3. ``query``: the paper's task (SDR loss on present queries, inactive SDR on absent ones) with real
   distances, at a presence ratio and with ``queries_per_mixture`` queries of each mixture in one batch
   (2: each talker queried, so a model that ignores the query cannot fit both). ``aux_pit`` adds the
   ``pit`` loss of the same mixtures (token outputs), weighted, so that the query task does not trade
   away the separation the first stage learned (measured: the query stages' SI-SDR improvement fell from
   3.8 dB at the end of ``pit`` to 0-1 dB while query use rose).

Each stage validates on its own task and hands over when its figure reaches ``until`` (SI-SDR
improvement in dB for ``pit``/``order``, query use in dB for ``query``) or after ``max_steps`` steps;
the last stage ends the run. The hand-overs are kept in the trainer's checkpoint (so a resumed run
continues in the right stage), in the training log and in the model card.

Example:
    >>> s = StageConfig(task="pit", max_steps=100, until=2.0)
    >>> s.figure
    'si_sdri'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from voxa.errors import ConfigError
from voxa.metrics.separation import sdr, si_sdr
from voxa.tse.losses import tse_loss

#: query values that stand for "first output" and "second output" in the pit and order stages
TOKENS = (-1.0, -2.0)
TASKS = ("pit", "order", "query")


@dataclass
class StageConfig:
    """One stage of a schedule.

    Attributes:
        task: ``pit``, ``order`` or ``query``.
        max_steps: hand over after this many training steps in the stage.
        until: hand over as soon as the stage's validation figure reaches this (``None``: only
            ``max_steps``).
        presence: share of present queries (``query``).
        queries_per_mixture: queries of one mixture in a batch (``query``; 2 = each talker).
        min_talker_gap: the talkers' minimum distance difference in this stage's mixtures (``None``: the
            mixing settings').
        name: a label for logs and the card (default: the task).
        aux_pit: weight of an added ``pit`` loss on the batch's distinct mixtures (``query``; 0: none).
        lr: the learning rate at the start of the stage (``None``: the rate the last stage ended with).
        lr_patience: epochs without a better validation loss before the rate is cut, in this stage
            (``None``: the trainer's ``lr_patience``, not an earlier stage's).
        seconds: the mixture length of this stage's training and validation items (``None``: the
            mixing settings'); e.g. a last stage on the test length after cheaper short mixtures.
    """

    task: str = "query"
    max_steps: int = 1000
    until: float | None = None
    presence: float = 0.9
    queries_per_mixture: int = 1
    min_talker_gap: float | None = None
    name: str = ""
    aux_pit: float = 0.0
    lr: float | None = None
    lr_patience: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"stage task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.max_steps < 1:
            raise ConfigError(f"stage max_steps must be >= 1, got {self.max_steps}")
        if not 0.0 <= self.presence <= 1.0:
            raise ConfigError(f"stage presence must be in [0, 1], got {self.presence}")
        if self.aux_pit < 0 or (self.aux_pit and self.task != "query"):
            raise ConfigError(f"stage aux_pit must be >= 0 and only on a query stage, got {self.aux_pit}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"stage lr must be > 0, got {self.lr}")
        if self.lr_patience is not None and self.lr_patience < 0:
            raise ConfigError(f"stage lr_patience must be >= 0, got {self.lr_patience}")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"stage seconds must be > 0, got {self.seconds}")
        self.name = self.name or self.task

    @property
    def figure(self) -> str:
        """The validation figure ``until`` is compared with."""
        return "query_use" if self.task == "query" else "si_sdri"


def _active(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-item SDR loss (the paper's active loss, capped at -30 dB): ``[B, N] -> [B]``."""
    present = torch.ones(est.shape[0], dtype=torch.bool, device=est.device)
    return tse_loss(est, ref, ref, present, reduction="none")


def two_outputs(net: torch.nn.Module, mix: torch.Tensor) -> torch.Tensor:
    """Both token outputs of ``mix [B, N]`` in one forward pass: ``[B, 2, N]``."""
    b = mix.shape[0]
    q = torch.tensor(TOKENS, device=mix.device).repeat_interleave(b)
    out = net(mix.repeat(2, 1), q)
    return out.reshape(2, b, -1).transpose(0, 1)


def by_distance(sources: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """Sources ``[B, 2, N]`` reordered nearer first, by ``distances [B, 2]``."""
    order = distances.argsort(dim=1)
    return torch.gather(sources, 1, order[:, :, None].expand_as(sources))


def _assignments(outs: torch.Tensor, sources: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item mean SDR loss of the direct and the swapped assignment of two outputs: ``[B]`` each."""
    direct = (_active(outs[:, 0], sources[:, 0]) + _active(outs[:, 1], sources[:, 1])) / 2
    swapped = (_active(outs[:, 0], sources[:, 1]) + _active(outs[:, 1], sources[:, 0])) / 2
    return direct, swapped


def pit_loss(outs: torch.Tensor, sources: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Utterance-level PIT over two outputs: the better assignment's mean SDR loss."""
    loss = torch.minimum(*_assignments(outs, sources))
    return loss.mean() if reduction == "mean" else loss


def order_loss(outs: torch.Tensor, ordered: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Outputs against sources ordered nearer first: the mean SDR loss, no permutation."""
    loss = (_active(outs[:, 0], ordered[:, 0]) + _active(outs[:, 1], ordered[:, 1])) / 2
    return loss.mean() if reduction == "mean" else loss


def stage_loss(stage: StageConfig, net: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The training loss of one batch in ``stage``."""
    if stage.task == "query":
        loss = tse_loss(net(batch["mix"], batch["query"]), batch["target"], batch["mix"], batch["present"])
        if stage.aux_pit:
            # consecutive groups of queries_per_mixture items share one mixture: separate each once
            k = stage.queries_per_mixture
            loss = loss + stage.aux_pit * pit_loss(two_outputs(net, batch["mix"][::k]), batch["sources"][::k])
        return loss
    outs = two_outputs(net, batch["mix"])
    if stage.task == "pit":
        return pit_loss(outs, batch["sources"])
    return order_loss(outs, by_distance(batch["sources"], batch["distances"]))


@torch.no_grad()
def validate_separation(stage: StageConfig, net: torch.nn.Module, items: list[dict[str, Any]],
                        batch_size: int) -> dict[str, float]:
    """``pit``/``order`` validation: the stage's loss and the outputs' SI-SDR improvement (dB) over the
    mixture, for the best assignment (``pit``) or the distance order (``order``)."""
    from voxa.tse.data import collate

    dev = next(net.parameters()).device
    losses, gains = [], []
    for i in range(0, len(items), batch_size):
        b = collate(items[i:i + batch_size])
        mix, src = b["mix"].to(dev), b["sources"].to(dev)
        outs = two_outputs(net, mix)
        if stage.task == "pit":
            d, s = _assignments(outs, src)
            loss = torch.minimum(d, s)
            ref = torch.where((d <= s)[:, None, None], src, src.flip(1))
        else:
            ref = by_distance(src, b["distances"].to(dev))
            loss = order_loss(outs, ref, reduction="none")
        m = mix[:, None].expand_as(ref)
        gain = si_sdr(outs, ref) - si_sdr(m.contiguous(), ref)
        losses += loss.tolist()
        gains += gain.mean(1).tolist()
    return {"loss": float(np.mean(losses)), "si_sdri": float(np.mean(gains))}


@torch.no_grad()
def validate_query(net: torch.nn.Module, items: list[dict[str, Any]], batch_size: int) -> dict[str, float]:
    """``query`` validation on pairs of items (one mixture, queried at each of its two talkers): the
    paper's loss, the query use (SDR of the output for the right query minus for the other talker's,
    against the same target; 0 for a model that ignores the query) and the SI-SDR improvement."""
    from voxa.tse.data import collate

    if len(items) % 2 or batch_size % 2:
        raise ConfigError("query validation needs pairs of items and an even batch size")
    dev = next(net.parameters()).device
    losses, uses, gains = [], [], []
    for i in range(0, len(items), batch_size):
        b = collate(items[i:i + batch_size])
        mix, tgt = b["mix"].to(dev), b["target"].to(dev)
        out = net(mix, b["query"].to(dev))
        losses += tse_loss(out, tgt, mix, b["present"].to(dev), reduction="none").tolist()
        other = out.reshape(-1, 2, out.shape[-1]).flip(1).reshape_as(out)  # the pair's other output
        right = sdr(out, tgt)
        uses += (right - sdr(other, tgt)).tolist()
        gains += (si_sdr(out, tgt) - si_sdr(mix, tgt)).tolist()
    return {"loss": float(np.mean(losses)), "query_use": float(np.mean(uses)),
            "si_sdri": float(np.mean(gains))}


def handover(stages: list[StageConfig], extra: dict[str, Any], history: list[dict[str, Any]],
             global_step: int, epoch: int) -> bool:
    """Decide, at the start of ``epoch``, whether the current stage hands over; updates ``extra``
    (``stage``, ``stage_start``, ``handovers``) in place and returns whether the schedule is finished.

    Deterministic in the checkpointed state, so a resumed run makes the same decisions. A recipe edited
    between runs (a stage's ``max_steps`` cut, stages appended) takes effect at the next epoch's check:
    a run resumed from a mid-epoch checkpoint finishes that epoch in the stage it was in."""
    extra.setdefault("stage", 0)
    extra.setdefault("stage_start", 0)
    extra.setdefault("handovers", [])
    if extra.get("checked_epoch") == epoch:
        return extra["stage"] >= len(stages)
    extra["checked_epoch"] = epoch
    i = extra["stage"]
    if i >= len(stages):
        return True
    st = stages[i]
    steps = global_step - extra["stage_start"]
    last = next((h for h in reversed(history) if h.get("stage") == i), None)
    value = None if last is None else last.get(st.figure)
    reason = None
    if steps >= st.max_steps:
        reason = f"step budget ({st.max_steps})"
    elif st.until is not None and value is not None and value >= st.until:
        reason = f"{st.figure} {value:.2f} >= {st.until}"
    if reason is None:
        return False
    extra["handovers"].append({"stage": i, "name": st.name, "steps": steps, "at_step": global_step,
                               "reason": reason, st.figure: value})
    extra["stage"] = i + 1
    extra["stage_start"] = global_step
    return extra["stage"] >= len(stages)

