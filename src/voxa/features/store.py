"""Feature storage: Kaldi ark/scp (via kaldiio) and voxa's own sharded safetensors store.

Both are written in shards; a shard is complete once its index (``.scp`` or ``.index.jsonl``) has
been renamed into place, so an interrupted run resumes at the first incomplete shard.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import kaldiio
import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from voxa.errors import ConfigError
from voxa.utils.atomic import atomic_path, write_text_atomic
from voxa.utils.jsonl import iter_jsonl


def write_kaldi_shard(items: Iterable[tuple[str, np.ndarray]], ark: Path) -> Path:
    """Write one ark and its scp (scp last, atomically); returns the scp path."""
    ark = Path(ark).resolve()
    scp = ark.with_suffix(".scp")
    with atomic_path(scp) as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{ark},{tmp_scp}") as w:
            for key, mat in items:
                w(key, np.ascontiguousarray(mat, dtype=np.float32))
    return scp


def write_voxa_shard(items: Iterable[tuple[str, np.ndarray]], path: Path) -> Path:
    """Write one safetensors shard and its ``.index.jsonl``; returns the index path."""
    path = Path(path).resolve()
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in items}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
    index = path.with_suffix(".index.jsonl")
    lines = [json.dumps({"id": k, "shard": path.name, "frames": int(v.shape[0]),
                         "dims": int(v.shape[1]) if v.ndim > 1 else 1}) for k, v in tensors.items()]
    write_text_atomic(index, "".join(line + "\n" for line in lines))
    return index


class FeatureReader:
    """Read features by utterance id from ``feats.scp`` (Kaldi) or ``index.jsonl`` (voxa store).

    Args:
        path: a ``feats.scp`` file, an ``index.jsonl`` file, or a directory holding either.

    Example:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> index = write_voxa_shard([("utt1", np.zeros((5, 13)))], Path(tmp.name) / "part0.safetensors")
        >>> feats = FeatureReader(index)        # or the directory holding feats.scp / index.jsonl
        >>> feats["utt1"].shape                 # torch.float32 [frames, dims]
        torch.Size([5, 13])
        >>> tmp.cleanup()
    """

    def __init__(self, path: str | os.PathLike) -> None:
        p = Path(path)
        if p.is_dir():
            if (p / "feats.scp").is_file():
                p = p / "feats.scp"
            elif (p / "index.jsonl").is_file():
                p = p / "index.jsonl"
            else:
                raise ConfigError(f"{p}: no feats.scp or index.jsonl (not a feature directory)")
        if not p.is_file():
            raise ConfigError(f"{p}: feature index not found")
        self.path = p
        self.kind = "kaldi" if p.suffix == ".scp" else "voxa"
        if self.kind == "kaldi":
            try:
                self._scp = kaldiio.load_scp(str(p))
            except Exception as e:
                raise ConfigError(f"{p}: unreadable scp ({e})") from None
            self._keys = list(self._scp.keys())
        else:
            self._index: dict[str, str] = {}
            for n, row in iter_jsonl(p):
                if "id" not in row or "shard" not in row:
                    raise ConfigError(f"{p}:{n}: malformed index line (needs 'id' and 'shard')")
                self._index[row["id"]] = row["shard"]
            self._keys = list(self._index)
            self._handles: dict[str, object] = {}

    def keys(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in (self._scp if self.kind == "kaldi" else self._index)

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self:
            raise KeyError(f"{key} not in {self.path}")
        if self.kind == "kaldi":
            return torch.from_numpy(np.array(self._scp[key], dtype=np.float32))
        shard = self._index[key]
        h = self._handles.get(shard)
        if h is None:
            h = safe_open(str(self.path.parent / shard), framework="pt")
            self._handles[shard] = h
        return h.get_tensor(key)

    def __iter__(self) -> Iterator[tuple[str, torch.Tensor]]:
        for k in self._keys:
            yield k, self[k]


def merge_indexes(parts: list[Path], out: Path) -> Path:
    """Concatenate shard indexes into one (``feats.scp`` or ``index.jsonl``), atomically."""
    text = "".join(Path(p).read_text(encoding="utf-8") for p in parts)
    write_text_atomic(out, text)
    return out
