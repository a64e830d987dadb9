"""Verification trials in Kaldi's format (``enroll-id test-id target|nontarget``): read, write, generate."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxa.data.manifest import Record
from voxa.errors import ManifestError
from voxa.utils.atomic import write_text_atomic


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    target: bool


def read_trials(path: str | os.PathLike) -> list[Trial]:
    """Read a Kaldi trials file; raises ManifestError naming the file and line on a bad line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: trials file not found")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
            raise ManifestError(f"{path}:{n}: expected 'enroll-id test-id target|nontarget'")
        out.append(Trial(parts[0], parts[1], parts[2] == "target"))
    if not out:
        raise ManifestError(f"{path}: no trials")
    return out


def write_trials(path: str | os.PathLike, trials: Sequence[Trial]) -> Path:
    text = "".join(f"{t.enroll} {t.test} {'target' if t.target else 'nontarget'}\n" for t in trials)
    write_text_atomic(path, text)
    return Path(path)


def make_trials(records: Sequence[Record], nontarget_ratio: float = 1.0, seed: int = 0) -> list[Trial]:
    """Every same-speaker pair of utterances (each unordered pair once, the smaller id enrols) and a
    seeded sample of different-speaker pairs, ``nontarget_ratio`` times as many.

    Raises:
        ManifestError: records without speakers, or no same-speaker pair.
    """
    recs = sorted(records, key=lambda r: r.id)
    if any(r.speaker is None for r in recs):
        raise ManifestError("trials need a speaker for every utterance")
    ids = np.array([r.id for r in recs])
    spk = np.array([r.speaker for r in recs])
    i, j = np.triu_indices(len(recs), k=1)
    same = spk[i] == spk[j]
    targets = [Trial(ids[a], ids[b], True) for a, b in zip(i[same], j[same])]
    if not targets:
        raise ManifestError("no two utterances share a speaker: no target trials")
    ni, nj = i[~same], j[~same]
    n_non = min(len(ni), int(round(nontarget_ratio * len(targets))))
    pick = np.sort(np.random.default_rng(seed).choice(len(ni), size=n_non, replace=False))
    nontargets = [Trial(ids[a], ids[b], False) for a, b in zip(ni[pick], nj[pick])]
    return targets + nontargets


def prepare_trials(trials: Sequence[Trial] | str | os.PathLike | None, test_set: Sequence[Record],
                   exp: Path, nontarget_ratio: float = 1.0, seed: int = 0) -> list[Trial]:
    """The trials of a verification run: given, read from a Kaldi file, or generated from
    ``test_set`` (:func:`make_trials`); written to ``exp/trials`` either way."""
    if trials is None:
        trials = make_trials(test_set, nontarget_ratio, seed)
    elif not isinstance(trials, (list, tuple)):
        trials = read_trials(trials)
    write_trials(Path(exp) / "trials", trials)
    return list(trials)
