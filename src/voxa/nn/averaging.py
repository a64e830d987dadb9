"""Checkpoint averaging: the mean of a model's weights over its last training snapshots.

The weights a noisy late-training optimiser visits scatter around a better point than any one of them;
their mean usually scores a little above the last one (icefall's ``--avg``, ESPnet's averaged model).
The trainer keeps the newest ``keep_snapshots`` epochs' weights as safetensors files
(``exp/snapshots/step-00001200.safetensors``); :func:`average_weights` averages any such files or trainer
checkpoints.

Example:
    >>> import torch
    >>> a = {"w": torch.zeros(2), "n": torch.tensor(3)}
    >>> b = {"w": torch.ones(2), "n": torch.tensor(5)}
    >>> average_state_dicts([a, b])["w"].tolist(), int(average_state_dicts([a, b])["n"])
    ([0.5, 0.5], 5)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from voxa.errors import VoxaError
from voxa.utils.atomic import atomic_path

SNAPSHOT_DIR = "snapshots"
_SNAPSHOT = re.compile(r"step-(\d+)\.safetensors$")


def average_state_dicts(state_dicts: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point entries (accumulated in float64, returned in each entry's
    own dtype); integer entries (counters such as ``num_batches_tracked``) are taken from the last.

    Raises:
        VoxaError: no state dicts, or ones with different keys or shapes.
    """
    acc: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    n = 0
    for sd in state_dicts:
        if n and (sd.keys() != last.keys() or any(sd[k].shape != last[k].shape for k in sd)):
            raise VoxaError("cannot average weights of different models (their keys or shapes differ)")
        for k, v in sd.items():
            if v.is_floating_point():
                acc[k] = acc[k] + v.double() if k in acc else v.double().clone()
        last, n = sd, n + 1
    if not n:
        raise VoxaError("no weights to average")
    return {k: (acc[k] / n).to(v.dtype) if k in acc else v.clone() for k, v in last.items()}


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A model's weights and what is known of its training (``step``, ``cpu_hours``, and for a checkpoint
    ``epochs``, ``train_seconds`` and the trainer's ``extra`` state) from a snapshot (``.safetensors``)
    or a trainer checkpoint (``.pt``, read with ``weights_only``: tensors and plain values, no code)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise VoxaError(f"{path}: file not found")
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}
            info: dict[str, Any] = {"step": int(meta["step"])} if "step" in meta else {}
            if "cpu_hours" in meta:
                info["cpu_hours"] = float(meta["cpu_hours"])
            return sd, info
        st = torch.load(path, map_location="cpu", weights_only=True)
        info = {"step": int(st.get("global_step", 0)),
                "cpu_hours": float(f"{float(st.get('cpu_seconds', 0.0)) / 3600:.4g}"),
                "epochs": int(st.get("epoch", 0)), "train_seconds": round(float(st.get("seconds", 0.0)), 1),
                "extra": json.loads(st.get("extra", "{}"))}
        return st["model"], info
    except Exception as e:  # torch.load and safetensors raise many kinds; all mean one thing here
        raise VoxaError(f"{path}: unreadable weights ({str(e).splitlines()[0][:120]})") from None


def average_weights(paths: Sequence[str | os.PathLike]
                    ) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """The mean weights of several snapshots or checkpoints of one model, and what
    :func:`read_weights` knows of each (in the order given)."""
    infos: list[dict[str, Any]] = []

    def gen():
        for p in paths:
            sd, info = read_weights(p)
            infos.append(info)
            yield sd

    return average_state_dicts(gen()), infos


def save_snapshot(folder: str | os.PathLike, model: torch.nn.Module, step: int, keep: int,
                  cpu_hours: float | None = None) -> Path:
    """Write ``model``'s weights as ``folder/step-<step>.safetensors`` (atomically, with the step and the
    run's CPU-hours so far in its metadata) and delete all but the newest ``keep`` snapshots."""
    from safetensors.torch import save_file

    folder = Path(folder)
    path = folder / f"step-{step:08d}.safetensors"
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        meta = {"step": str(step)}
        if cpu_hours is not None:
            meta["cpu_hours"] = f"{cpu_hours:.4g}"
        save_file(sd, str(tmp), metadata=meta)
    for old in snapshot_paths(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def newest_snapshots(run: str | os.PathLike, n: int) -> list[Path]:
    """The newest ``n`` snapshots of a run folder (``run/snapshots``), oldest first.

    Raises:
        VoxaError: ``run`` is not a folder, or it holds fewer than ``n`` snapshots.
    """
    run = Path(run)
    if not run.is_dir():
        raise VoxaError(f"{run}: not a run folder (averaging takes the folder whose snapshots/ to average)")
    paths = snapshot_paths(run / SNAPSHOT_DIR, last=n)
    if len(paths) < n:
        raise VoxaError(f"{run / SNAPSHOT_DIR}: {len(paths)} snapshots, fewer than {n} "
                        f"(set trainer.keep_snapshots)")
    return paths


def snapshot_paths(folder: str | os.PathLike, last: int | None = None) -> list[Path]:
    """The snapshots in ``folder``, oldest first (the newest ``last`` of them when given)."""
    folder = Path(folder)
    found = sorted((int(m.group(1)), p) for p in folder.glob("step-*.safetensors")
                   if (m := _SNAPSHOT.search(p.name)))
    paths = [p for _, p in found]
    return paths[-last:] if last else paths
