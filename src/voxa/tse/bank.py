"""Impulse-response banks on disk: one ``bank.json``, one ``rirs.jsonl`` row per response, and
safetensors shards of the responses themselves.

A bank is written in shards; a shard counts once its rows are in ``rirs.jsonl``, so an interrupted
build resumes where it stopped. Every row carries the response's geometry::

    {"id": "r000123", "group": "room0007-mic00", "room_id": 7, "mic_id": 0, "split": "train",
     "room_dim": [7, 8, 3], "rt60": 0.2, "mic": [3.5, 4, 1.1], "src": [1.2, 2.0, 1.6],
     "distance": 2.43, "shard": "rirs-00001.safetensors", "length": 3200}

``group`` names the room-and-microphone setting: mixtures take all their responses from one group.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from voxa.errors import VoxaError
from voxa.utils.atomic import atomic_path, write_text_atomic
from voxa.utils.jsonl import read_jsonl

SPLITS = ("train", "valid", "test")


class BankWriter:
    """Append responses to a bank in shards; resumable.

    Example:
        >>> w = BankWriter("bank", {"preset": "D1", "rate": 16000})   # doctest: +SKIP
        >>> w.write_shard(0, rows, arrays)                            # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, meta: dict[str, Any]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / "bank.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if {k: v for k, v in old.items() if k != "complete"} != {k: v for k, v in meta.items()
                                                                       if k != "complete"}:
                raise VoxaError(f"{self.root}: holds a bank made with other settings; use a new directory")
        else:
            write_text_atomic(meta_path, json.dumps({**meta, "complete": False}, indent=2))
        self.meta = meta

    def done_shards(self) -> set[str]:
        return {p.name[: -len(".rows.jsonl")] for p in self.root.glob("rirs-*.rows.jsonl")}

    def write_shard(self, index: int, rows: Sequence[dict[str, Any]], rirs: Sequence[np.ndarray]) -> None:
        """Write one shard (responses first, its rows last: the rows mark it complete)."""
        name = f"rirs-{index:05d}"
        tensors = {}
        out_rows = []
        for row, h in zip(rows, rirs):
            h = np.ascontiguousarray(h, dtype=np.float32)
            tensors[row["id"]] = h
            out_rows.append({**row, "shard": f"{name}.safetensors", "length": int(h.shape[-1])})
        with atomic_path(self.root / f"{name}.safetensors") as tmp:
            save_file(tensors, str(tmp))
        write_text_atomic(self.root / f"{name}.rows.jsonl",
                          "".join(json.dumps(r) + "\n" for r in out_rows))

    def finish(self) -> Path:
        """Merge the shards' rows into ``rirs.jsonl`` and mark the bank complete."""
        parts = sorted(self.root.glob("rirs-*.rows.jsonl"))
        write_text_atomic(self.root / "rirs.jsonl", "".join(p.read_text() for p in parts))
        write_text_atomic(self.root / "bank.json", json.dumps({**self.meta, "complete": True}, indent=2))
        return self.root


class RirBank:
    """Read a bank: rows, splits, groups, responses by id (lazily, memory-mapped).

    Args:
        root: the bank directory.
        rate: if given and different from the bank's, responses are resampled on load.
    """

    def __init__(self, root: str | os.PathLike, rate: int | None = None) -> None:
        self.root = Path(root)
        meta = self.root / "bank.json"
        rows = self.root / "rirs.jsonl"
        if not meta.is_file() or not rows.is_file():
            raise VoxaError(f"{self.root}: not an impulse-response bank (no bank.json / rirs.jsonl)")
        self.meta = json.loads(meta.read_text())
        if not self.meta.get("complete", False):
            raise VoxaError(f"{self.root}: bank is incomplete (its build was interrupted; run it again)")
        self.rows: list[dict[str, Any]] = read_jsonl(rows)
        self.by_id = {r["id"]: r for r in self.rows}
        self.bank_rate = int(self.meta["rate"])
        self.rate = rate or self.bank_rate
        self._handles: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def split(self, name: str) -> list[dict[str, Any]]:
        if name not in SPLITS:
            raise VoxaError(f"unknown split {name!r}; one of {', '.join(SPLITS)}")
        return [r for r in self.rows if r["split"] == name]

    def groups(self, split: str) -> dict[str, list[dict[str, Any]]]:
        """Rows of ``split`` by room-and-microphone group (only groups with two or more rows)."""
        g: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self.split(split):
            g[r["group"]].append(r)
        return {k: v for k, v in sorted(g.items()) if len(v) >= 2}

    def load(self, rir_id: str) -> torch.Tensor:
        """One response as float32 ``[samples]`` at ``self.rate``."""
        row = self.by_id[rir_id]
        shard = row["shard"]
        h = self._handles.get(shard)
        if h is None:
            h = safe_open(str(self.root / shard), framework="pt")
            self._handles[shard] = h
        x = h.get_tensor(rir_id)
        if self.rate != self.bank_rate:
            from voxa.audio.resample import resample

            x = resample(x, self.bank_rate, self.rate)
        return x

    def __getstate__(self) -> dict[str, Any]:
        # safetensors handles do not survive pickling into DataLoader workers: reopen there
        d = dict(self.__dict__)
        d["_handles"] = {}
        return d


def write_bank(root: str | os.PathLike, meta: dict[str, Any],
               rows_and_rirs: Iterable[tuple[dict[str, Any], np.ndarray]], shard_size: int = 500) -> Path:
    """Write a whole bank from an iterable of ``(row, response)`` (for small banks and real ones)."""
    w = BankWriter(root, meta)
    rows, rirs, k = [], [], 0
    for row, h in rows_and_rirs:
        rows.append(row)
        rirs.append(h)
        if len(rows) == shard_size:
            w.write_shard(k, rows, rirs)
            rows, rirs, k = [], [], k + 1
    if rows:
        w.write_shard(k, rows, rirs)
    return w.finish()
