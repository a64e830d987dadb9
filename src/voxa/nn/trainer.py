"""The shared trainer: Adam, gradient clipping, plateau LR schedule, DDP under ``torchrun``, mixed
precision on GPU, atomic and exactly resumable checkpoints, best-model selection, tqdm, CSV log, PNG curves.

Exact resume: the order of items in epoch e is a permutation seeded by ``(seed, e)``, datasets draw item i
of epoch e from ``(seed, e, i)``, and a checkpoint records the epoch, the step inside it, the optimizer,
scheduler, scaler and RNG states; a resumed run skips the steps already taken and continues with the
same batches it would have seen.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from voxa.errors import ConfigError, VoxaError
from voxa.nn.averaging import SNAPSHOT_DIR, save_snapshot
from voxa.utils.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class TrainerConfig:
    """Training settings: Adam, gradient-norm clipping, the learning rate cut by ``lr_factor`` after
    ``lr_patience`` epochs without a better validation loss; ``loss_label`` names the loss on the curves;
    ``keep_snapshots`` keeps the weights of that many latest epochs in ``exp/snapshots`` for checkpoint
    averaging (:mod:`voxa.nn.averaging`). Each task's recipe sets its own (``recipes/tse/paper.yaml``)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    grad_clip: float = 5.0
    lr_factor: float = 0.5
    lr_patience: int = 3
    steps_per_epoch: int | None = None
    checkpoint_every: int = 200
    num_workers: int = 0
    amp: bool = True
    seed: int = 0
    max_seconds: float | None = None
    progress: bool = True
    loss_label: str = "loss"
    keep_snapshots: int = 0


class EpochSampler(Sampler[int]):
    """A permutation of ``range(n)`` seeded by ``(seed, epoch)``, starting at ``start`` (for resume).

    With ``group > 1`` whole blocks of ``group`` consecutive indices are permuted and kept together (and
    given whole to one rank), so items meant to share a batch (e.g. one mixture under several queries)
    do, as long as the batch size is a multiple of ``group``.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1, group: int = 1) -> None:
        self.n, self.seed, self.rank, self.world, self.group = n, seed, rank, world, max(1, group)
        self.epoch, self.start = 0, 0

    def set(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        if self.group == 1:
            return torch.randperm(self.n, generator=g)[self.rank::self.world].tolist()
        blocks = torch.randperm(self.n // self.group, generator=g)[self.rank::self.world]
        return (blocks[:, None] * self.group + torch.arange(self.group)).reshape(-1).tolist()

    def __iter__(self):
        return iter(self.order()[self.start:])

    def __len__(self) -> int:
        return max(0, len(self.order()) - self.start)


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Train ``model`` with ``loss_fn(model, batch) -> scalar``; validate with ``valid_fn(model) -> float``
    (lower is better).

    Args:
        model: the network.
        train_set: a dataset with optional ``set_epoch(e)``.
        collate: batch builder.
        loss_fn: training loss of one batch.
        valid_fn: validation loss of the whole model (run on rank 0, shared with the others).
        exp: experiment directory: ``checkpoint.pt``, ``best.pt``, ``train_log.csv``, ``curves.png``.
        cfg: settings.
        on_epoch: called with ``(epoch, trainer)`` before each epoch (e.g. to change the presence ratio,
            or to hand over to the next stage of a schedule); it may call :meth:`request_stop`.
        state_dir: a second folder that receives a copy of every checkpoint and the log (small enough to
            commit), and that :meth:`resume` reads when it holds a later checkpoint than ``exp``.

    ``valid_fn`` may return a float or a dict with ``"loss"`` and other figures, which go into the
    log's row. ``extra`` is a JSON-ready dict saved in every checkpoint (a schedule's own state).
    """

    def __init__(self, model: nn.Module, train_set: Dataset, collate: Callable, loss_fn: Callable,
                 valid_fn: Callable[[nn.Module], float], exp: str | os.PathLike, cfg: TrainerConfig,
                 on_epoch: Callable[[int, Trainer], None] | None = None,
                 state_dir: str | os.PathLike | None = None) -> None:
        self.cfg = cfg
        self.exp = Path(exp)
        self.exp.mkdir(parents=True, exist_ok=True)
        self.state_dir = Path(state_dir) if state_dir else None
        self.extra: dict[str, Any] = {}
        self.cpu_seconds = 0.0
        self._stop = False
        self.rank, self.world = _dist()
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
            else torch.device("cpu")
        self.model = model.to(self.device)
        self.net: nn.Module = self.model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.train_set, self.collate, self.loss_fn, self.valid_fn = train_set, collate, loss_fn, valid_fn
        self.on_epoch = on_epoch
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.sched = self._scheduler()
        self.use_amp = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.sampler = EpochSampler(len(train_set), cfg.seed, self.rank, self.world)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best = math.inf
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0

    def _scheduler(self, patience: int | None = None) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt, factor=self.cfg.lr_factor,
            patience=self.cfg.lr_patience if patience is None else patience)

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                "sched": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "best": self.best, "history": json.dumps(self.history), "seconds": self.seconds,
                "cpu_seconds": self.cpu_seconds, "extra": json.dumps(self.extra),
                "rng_cpu": torch.get_rng_state(), "config": json.dumps(asdict(self.cfg))}

    def save(self, name: str = "checkpoint.pt") -> Path | None:
        if self.rank != 0:
            return None
        path = self.exp / name
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buf.getvalue())
        if self.state_dir is not None and name == "checkpoint.pt":
            self.state_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.state_dir / name) as tmp:
                tmp.write_bytes(buf.getvalue())
        return path

    def resume(self, path: str | os.PathLike | None = None) -> bool:
        """Load ``checkpoint.pt`` (or ``path``) if present; returns whether it did.

        Without ``path``, the later of ``exp/checkpoint.pt`` and ``state_dir/checkpoint.pt`` (by step) is
        read, so a run continues from committed state on a fresh machine."""
        if path is None:
            cands = [p for p in (self.exp / "checkpoint.pt",
                                 self.state_dir / "checkpoint.pt" if self.state_dir else None)
                     if p is not None and p.exists()]
            if not cands:
                return False
            loaded = [(self._read(p), p) for p in cands]
            st, path = max(loaded, key=lambda sp: int(sp[0]["global_step"]))
        else:
            path = Path(path)
            if not path.exists():
                return False
            st = self._read(path)
        self._load_state(st)
        log.info("resumed from %s at epoch %d step %d", path, self.epoch, self.step_in_epoch)
        return True

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as e:
            raise VoxaError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0][:120]})") from None

    def _load_state(self, st: dict[str, Any]) -> None:
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        self.scaler.load_state_dict(st["scaler"])
        self.epoch, self.step_in_epoch = int(st["epoch"]), int(st["step_in_epoch"])
        self.global_step, self.best = int(st["global_step"]), float(st["best"])
        self.history = json.loads(st["history"])
        self.seconds = float(st["seconds"])
        self.cpu_seconds = float(st.get("cpu_seconds", 0.0))
        self.extra = json.loads(st.get("extra", "{}"))
        torch.set_rng_state(st["rng_cpu"].cpu())

    def request_stop(self) -> None:
        """End :meth:`fit` before the next epoch (e.g. a schedule's last stage is done)."""
        self._stop = True

    def new_stage(self, lr: float | None = None, patience: int | None = None) -> None:
        """Start a new curriculum stage: validation losses from here on are not comparable with the ones
        before (another task), so forget the best loss and the plateau count; the learning rate stays
        unless ``lr`` is given, and the plateau patience is ``cfg.lr_patience`` unless ``patience`` is
        (the scheduler's state, patience included, is checkpointed, so a resumed stage keeps it)."""
        self.best = math.inf
        if lr is not None:
            for group in self.opt.param_groups:
                group["lr"] = lr
        self.sched = self._scheduler(patience)  # a fresh plateau record; it reads the rate from opt

    # ---- training ----------------------------------------------------------------------------
    def _group(self) -> int:
        group = int(getattr(self.train_set, "group_size", 1))
        if group > 1 and self.cfg.batch_size % group:
            raise ConfigError(f"batch size {self.cfg.batch_size} is not a multiple of the dataset's group "
                              f"size {group}")
        return group

    def _loader(self) -> DataLoader:
        # a schedule may change how many items share a mixture between epochs
        group = self._group()
        self.sampler.group = max(1, group)
        self.sampler.set(self.epoch, self.step_in_epoch * self.cfg.batch_size)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        return DataLoader(self.train_set, batch_size=self.cfg.batch_size, sampler=self.sampler,
                          collate_fn=self.collate, num_workers=self.cfg.num_workers, drop_last=True)

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        return batch

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (or ``max_seconds``, or a stop request), on the torch threads the cores
        other processes leave free (:func:`voxa.utils.threads.numeric_threads`)."""
        from voxa.utils.threads import numeric_threads

        with numeric_threads():
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        t_start = time.perf_counter() - self.seconds
        # CPU time of every rank: the run's cost on the machines, not one process's share of it
        c_base, c_start = self.cpu_seconds, time.process_time()
        stop = False
        while self.epoch < cfg.epochs and not stop:
            if self.on_epoch:
                self.on_epoch(self.epoch, self)
            if self._stop:
                break
            self.model.train()
            total = len(self.train_set) // (cfg.batch_size * self.world)
            if cfg.steps_per_epoch:
                total = min(total, cfg.steps_per_epoch)
            losses = []
            bar = tqdm(total=total, initial=self.step_in_epoch, desc=f"epoch {self.epoch}",
                       disable=not cfg.progress or self.rank != 0, leave=False)
            for batch in self._loader():
                if self.step_in_epoch >= total:
                    break
                batch = self._to_device(batch)
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    loss = self.loss_fn(self.net, batch)
                if not torch.isfinite(loss):
                    raise VoxaError(f"non-finite training loss at epoch {self.epoch} "
                                    f"step {self.step_in_epoch}")
                self.opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.opt)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.scaler.step(self.opt)
                self.scaler.update()
                losses.append(float(loss.detach()))
                self.step_in_epoch += 1
                self.global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.2f}")
                self.seconds = time.perf_counter() - t_start
                # between epoch ends the ranks are taken to be alike; each epoch end makes it exact
                self.cpu_seconds = c_base + (time.process_time() - c_start) * self.world
                if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                    self.save()
                if cfg.max_seconds and self._agree(self.seconds > cfg.max_seconds):
                    stop = True
                    break
            bar.close()
            if stop and self.step_in_epoch < total:
                self.save()
                break
            valid, figures = self._validate()
            self.cpu_seconds = c_base + self._sum_over_ranks(time.process_time() - c_start)
            self.sched.step(valid)
            row = {"epoch": self.epoch, "step": self.global_step, "train_loss": self._mean_over_ranks(losses),
                   "valid_loss": valid, "lr": self.opt.param_groups[0]["lr"],
                   "seconds": round(self.seconds, 1), "cpu_hours": round(self.cpu_seconds / 3600, 4),
                   **figures}
            self.history.append(row)
            if valid < self.best:
                self.best = valid
                self._save_best()
            self.epoch += 1
            self.step_in_epoch = 0
            self.save()
            if cfg.keep_snapshots and self.rank == 0:
                save_snapshot(self.exp / SNAPSHOT_DIR, self.model, self.global_step, cfg.keep_snapshots,
                              self.cpu_seconds / 3600)
            self._write_log()
            if self.rank == 0:
                log.info("epoch %d: train %.3f valid %.3f lr %.2e", row["epoch"], row["train_loss"], valid,
                         row["lr"])
        if self.world > 1:
            # rank 0 may still be writing best.pt and the log: nobody reads them before it is done
            torch.distributed.barrier()
        return {"epochs": self.epoch, "steps": self.global_step, "best_valid": self.best,
                "seconds": self.seconds, "history": self.history}

    def load_best(self) -> nn.Module:
        """Put the best-validation weights (``best.pt``, when one was saved) into the model; eval mode."""
        best = self.exp / "best.pt"
        if best.exists():
            st = torch.load(best, map_location=self.device, weights_only=True)
            self.model.load_state_dict(st["model"])
        return self.model.eval()

    def _agree(self, flag: bool) -> bool:
        """``flag`` on any rank (a stop every rank takes at the same step, so none waits in a
        gradient all-reduce the others have left)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def _sum_over_ranks(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t.item())

    def _mean_over_ranks(self, losses: list[float]) -> float:
        """The epoch's mean training loss over every rank's batches."""
        if self.world == 1:
            return _mean(losses)
        t = torch.tensor([sum(losses), float(len(losses))], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return float(t[0] / t[1]) if t[1] > 0 else float("nan")

    def _validate(self) -> tuple[float, dict[str, Any]]:
        value = torch.tensor(0.0)
        figures: dict[str, Any] = {}
        if self.rank == 0:
            self.model.eval()
            with torch.no_grad():
                out = self.valid_fn(self.model)
            self.model.train()
            if isinstance(out, dict):
                figures = {k: v for k, v in out.items() if k != "loss"}
                out = out["loss"]
            value = torch.tensor(float(out))
        if self.world > 1:
            import torch.distributed as dist

            value = value.to(self.device)
            dist.broadcast(value, 0)
            # every rank keeps the same history: a schedule's hand-over reads its figures on each rank
            box = [figures]
            dist.broadcast_object_list(box, 0)
            figures = box[0]
        return float(value), figures

    def _save_best(self) -> None:
        if self.rank == 0:
            buf = io.BytesIO()
            torch.save({"model": self.model.state_dict(), "epoch": self.epoch, "valid": self.best}, buf)
            with atomic_path(self.exp / "best.pt") as tmp:
                tmp.write_bytes(buf.getvalue())

    def _write_log(self) -> None:
        if self.rank != 0 or not self.history:
            return
        s = io.StringIO()
        names = list(dict.fromkeys(k for row in self.history for k in row))
        w = csv.DictWriter(s, fieldnames=names)
        w.writeheader()
        w.writerows(self.history)
        for folder in (self.exp, self.state_dir):
            if folder is not None:
                write_text_atomic(folder / "train_log.csv", s.getvalue())
        plot_curves(self.history, self.exp / "curves.png", self.cfg.loss_label)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def plot_curves(history: list[dict[str, float]], path: Path, ylabel: str = "loss") -> Path:
    from voxa.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    ep = [h["epoch"] for h in history]
    ax.plot(ep, [h["train_loss"] for h in history], label="train")
    ax.plot(ep, [h["valid_loss"] for h in history], label="valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)
