"""Features computed once per settings and kept under an experiment folder, loaded into memory by id."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from voxa.data.manifest import Record
from voxa.errors import VoxaError
from voxa.features.pipeline import FeatureConfig, compute_features
from voxa.features.store import FeatureReader


def load_features(records: Sequence[Record], cfg: FeatureConfig, outdir: str | os.PathLike
                  ) -> dict[str, torch.Tensor]:
    """Compute (or reuse) stored features for ``records`` under ``outdir/<settings key>`` and load
    them into memory by id (so that runs with other feature settings never mix).

    ``records`` may list an utterance more than once (e.g. several sets concatenated); each is
    computed once, in id order, so the same utterances always make the same store."""
    unique = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
    index = compute_features(unique, cfg, Path(outdir) / cfg.key(), progress=True)
    reader = FeatureReader(index)
    feats = {k: reader[k] for k in reader.keys()}
    empty = [k for k, v in feats.items() if v.shape[0] == 0]
    if empty:
        raise VoxaError(f"{len(empty)} utterance(s) too short for one frame of features, e.g. {empty[0]}")
    return feats
