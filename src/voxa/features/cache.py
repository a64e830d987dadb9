"""Features computed once per settings and kept under an experiment folder, loaded into memory by id."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from voxa.data.manifest import Record
from voxa.errors import VoxaError
from voxa.features.pipeline import FeatureConfig, compute_features
from voxa.features.store import FeatureReader

log = logging.getLogger(__name__)


def load_features(records: Sequence[Record], cfg: FeatureConfig, outdir: str | os.PathLike
                  ) -> dict[str, torch.Tensor]:
    """Compute (or reuse) stored features for ``records`` under ``outdir/<settings key>`` and load
    them into memory by id (so that runs with other feature settings never mix).

    ``records`` may list an utterance more than once (e.g. several sets concatenated); each is
    computed once, in id order, so the same utterances always make the same store. Utterances shorter
    than one analysis frame have no features (Kaldi skips them too, with a logged warning); drop them
    from a set with :func:`with_features`."""
    unique = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
    index = compute_features(unique, cfg, Path(outdir) / cfg.key(), progress=True)
    reader = FeatureReader(index)
    feats = {k: reader[k] for k in reader.keys()}
    empty = [k for k, v in feats.items() if v.shape[0] == 0]
    if empty:
        raise VoxaError(f"{len(empty)} utterance(s) with no frames left (e.g. {empty[0]}): check the VAD "
                        f"or feature settings")
    return feats


def with_features(records: Sequence[Record], feats: dict[str, torch.Tensor], what: str = "set"
                  ) -> list[Record]:
    """The records that have features (those shorter than one frame were skipped), with a warning
    naming how many were dropped.

    Raises:
        VoxaError: If none is left.
    """
    kept = [r for r in records if r.id in feats]
    if len(kept) < len(records):
        dropped = [r.id for r in records if r.id not in feats]
        if not kept:
            raise VoxaError(f"every utterance of the {what} is shorter than one analysis frame "
                            f"(e.g. {dropped[0]})")
        log.warning("%s: %d of %d utterance(s) skipped as shorter than one frame (e.g. %s)", what,
                    len(dropped), len(records), dropped[0])
    return kept
