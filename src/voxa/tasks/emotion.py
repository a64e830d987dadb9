"""Speaker-independent emotion recognition: leave-one-speaker-out evaluation of GMM-UBM, i-vector and
prosodic systems and their score fusion.

The three systems of the field's classic set-up (after Kockmann, Burget & Cernocky, Interspeech 2009):

- ``s1``: GMM-UBM on MFCC-39 (one MAP-adapted model per emotion, average-frame LLR);
- ``s2``: i-vectors on MFCC-39 with an LDA (Fisher discriminant) back-end, cosine to class means;
- ``s3``: GMM-UBM on long-term prosodic features (pitch, energy and voicing statistics over 0.5 s
  windows, :func:`voxa.features.prosody.prosody_windows`);
- ``fusion``: linear score fusion (a weight per system and an offset per class, multinomial logistic
  regression with flat class priors, :class:`voxa.backends.MultiClassFusion`), trained for each
  held-out speaker on the other speakers' held-out scores (no score of the test speaker, and no
  model trained on them, enters their fusion weights).

Any :data:`voxa.tasks.classify.SYSTEMS` name also works as a system on MFCC-39.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.cache import load_features
from voxa.tasks.classify import SYSTEMS, ClassifierConfig, FrontEnd, neural_systems, system_scores
from voxa.tasks.results import finish, format_table

log = logging.getLogger(__name__)

_MFCC = {"type": "mfcc", "deltas": 2, "cmvn": "utt", "vad": True}
# the settings each named system runs with; a run's overrides are merged over them
SYSTEM_SPECS: dict[str, dict[str, Any]] = {
    "s1": {"system": "gmm-ubm", "features": _MFCC, "gmm": {"n_components": 64, "adapt": "mwv"}},
    "s2": {"system": "ivector-lda", "features": _MFCC, "gmm": {"n_components": 64},
           "ivector": {"rank": 100, "n_iter": 10}},
    "s3": {"system": "gmm-ubm", "features": {"type": "prosody", "deltas": 0, "cmvn": None, "vad": False},
           "gmm": {"n_components": 16, "adapt": "mwv"}},
}
FUSION = "fusion"
DEFAULT_SYSTEM = FUSION  # the best found on EmoDB (73.3 % UAR, leave-one-speaker-out)


def _spec(name: str, overrides: dict[str, Any] | None) -> tuple[str, ClassifierConfig]:
    base = copy.deepcopy(SYSTEM_SPECS.get(name, {"system": name, "features": _MFCC}))
    system = base.pop("system")
    if system not in SYSTEMS and system not in neural_systems():
        raise ConfigError(f"unknown emotion system {name!r}; choose s1, s2, s3, fusion or one of "
                          f"{', '.join(SYSTEMS + neural_systems())}")
    for key, val in (overrides or {}).items():
        if key not in ("features", "gmm", "ivector", "neural"):
            raise ConfigError(f"unknown emotion setting {key!r}")
        base[key] = {**base.get(key, {}), **(val or {})}
    return system, ClassifierConfig.from_dict(base)


def loso_folds(records: Sequence[Record]) -> list[tuple[str, list[int], list[int]]]:
    """``(speaker, train indices, test indices)`` for each speaker held out in turn."""
    speakers = sorted({r.speaker for r in records if r.speaker is not None})
    if any(r.speaker is None for r in records):
        bad = next(r for r in records if r.speaker is None)
        raise VoxaError(f"{bad.id}: no speaker label (needed for leave-one-speaker-out folds)")
    if len(speakers) < 2:
        raise VoxaError(f"leave-one-speaker-out needs at least 2 speakers, got {len(speakers)}")
    return [(s, [i for i, r in enumerate(records) if r.speaker != s],
             [i for i, r in enumerate(records) if r.speaker == s]) for s in speakers]


def fuse(scores: dict[str, np.ndarray], labels: Sequence[str], folds: list[tuple[str, list[int], list[int]]]
         ) -> np.ndarray:
    """Out-of-fold linear fusion (one weight per system, one offset per class): for each held-out
    speaker, fitted on the other speakers' held-out scores."""
    from voxa.backends import MultiClassFusion

    names = sorted(scores)
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    out = np.zeros((len(y), len(classes)))
    for _, tr, te in folds:
        model = MultiClassFusion().fit([scores[k][tr] for k in names], y[tr])
        out[te] = model.predict_log_proba([scores[k][te] for k in names])
    return out


def speaker_normalise(feats: Sequence[Any], speakers: Sequence[str]) -> list[Any]:
    """Each utterance's frames standardised by its speaker's mean and deviation over all their frames.

    Needs no labels, only the speaker's recordings, so it applies to a held-out speaker too; it takes
    out the speaker's own pitch range, loudness and timbre, which a speaker-independent emotion model
    would otherwise confuse with arousal.
    """
    from voxa.features.cmvn import GlobalCMVN

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        groups.setdefault(s, []).append(i)
    out = list(feats)
    for idx in groups.values():
        stats = GlobalCMVN(norm_vars=True).fit(feats[i] for i in idx)
        for i in idx:
            out[i] = stats.transform(feats[i])
    return out


def run_emotion(records: Sequence[Record], exp: str | os.PathLike, systems: Sequence[str] | None = None,
                overrides: dict[str, Any] | None = None, main: str | None = None,
                speaker_norm: bool = True) -> dict[str, Any]:
    """Leave-one-speaker-out emotion recognition.

    Args:
        records: utterances with ``emotion`` and ``speaker`` labels.
        exp: output folder: ``results.json`` (``uar``, ``accuracy`` of the main system and every
            system's figures), ``scores_<system>.npy``, ``confusion_<system>.png``.
        systems: names (``s1``, ``s2``, ``s3``, ``fusion`` or a classify system on MFCC-39); default
            all of s1, s2, s3 and their fusion. ``fusion`` needs at least two other systems.
        overrides: ``{"features": {...}, "gmm": {...}, "ivector": {...}}`` merged over every system's
            settings.
        main: the system whose figures are the top-level ``uar``/``accuracy`` (default: fusion when
            run, else the first).
        speaker_norm: standardise every speaker's features over all their utterances
            (:func:`speaker_normalise`) before training and testing.
    """
    from voxa.metrics import (
        accuracy,
        confusion_matrix,
        per_class_recall,
        plot_confusion_matrix,
        unweighted_average_recall,
    )

    records = list(records)
    missing = [r.id for r in records if r.emotion is None]
    if missing:
        raise VoxaError(f"{missing[0]}: no emotion label ({len(missing)} utterance(s) without one)")
    systems = list(systems or ["s1", "s2", "s3", FUSION])
    base = [s for s in systems if s != FUSION]
    if FUSION in systems and len(base) < 2:
        raise ConfigError("fusion needs at least two other systems")
    specs = {s: _spec(s, overrides) for s in base}
    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    labels = [r.emotion for r in records]
    classes = sorted(set(labels))
    folds = loso_folds(records)
    t0 = time.perf_counter()
    scores: dict[str, np.ndarray] = {}
    feats_cache: dict[str, list] = {}
    for name, (_, cfg) in specs.items():
        key = cfg.features.key()
        if key not in feats_cache:
            by_id = load_features(records, cfg.features, exp / "feats")
            short = [r.id for r in records if r.id not in by_id]
            if short:
                # the folds and every system's score rows are laid out over one utterance list
                raise VoxaError(f"{len(short)} utterance(s) shorter than one analysis frame "
                                f"(e.g. {short[0]}): remove them from the data for emotion recognition")
            feats = [by_id[r.id] for r in records]
            if speaker_norm:
                feats = speaker_normalise(feats, [r.speaker for r in records])
            feats_cache[key] = feats
        scores[name] = np.zeros((len(records), len(classes)))
    for spk, tr, te in folds:
        # systems with the same features and models share one front end per fold
        front_ends: dict[str, FrontEnd] = {}
        for name, (system, cfg) in specs.items():
            log.info("%s: held-out speaker %s", name, spk)
            feats = feats_cache[cfg.features.key()]
            train_feats = [feats[i] for i in tr]
            ivec = system.startswith("ivector")
            key = json.dumps([cfg.to_dict() if ivec else {**cfg.to_dict(), "ivector": None}, ivec],
                             sort_keys=True)
            if system in neural_systems():
                # a neural system needs no UBM; its checkpoints and curves go beside the results
                front_ends[key] = FrontEnd(cfg, Path(exp) / "nn" / f"held-out-{spk}")
            elif key not in front_ends:
                front_ends[key] = FrontEnd(cfg).fit(train_feats, ivectors=ivec)
            (sc,), cls = system_scores(system, front_ends[key], train_feats, [labels[i] for i in tr],
                                       [[feats[i] for i in te]])
            if cls != classes:
                raise VoxaError(f"held-out speaker {spk}: training folds lack an emotion class")
            scores[name][te] = sc
    if FUSION in systems:
        scores[FUSION] = fuse({k: scores[k] for k in base}, labels, folds)
    per_system = {}
    for name, s in scores.items():
        pred = [classes[i] for i in s.argmax(1)]
        cm, _ = confusion_matrix(labels, pred, labels=classes)
        safe = name.replace("/", "_")
        plot_confusion_matrix(cm, classes, exp / f"confusion_{safe}.png", title=f"emotion: {name} (LOSO)")
        np.save(exp / f"scores_{safe}.npy", s)
        per_system[name] = {"uar": float(unweighted_average_recall(labels, pred, labels=classes)),
                            "accuracy": float(accuracy(labels, pred)),
                            "recall": {k: float(v)
                                       for k, v in per_class_recall(labels, pred, classes).items()},
                            "confusion": cm.tolist()}
    main = main or (FUSION if FUSION in scores else systems[0])
    if main not in per_system:
        raise ConfigError(f"main system {main!r} was not run")
    results = {"system": main, "uar": per_system[main]["uar"], "accuracy": per_system[main]["accuracy"],
               "classes": classes, "folds": "loso", "n_speakers": len(folds), "n_utterances": len(records),
               "speaker_norm": speaker_norm, "systems": per_system,
               "config": {k: {"system": v[0], **v[1].to_dict()} for k, v in specs.items()},
               "seconds_total": round(time.perf_counter() - t0, 1)}
    return finish(exp, results, format_table(
        {f"{k} uar": v["uar"] for k, v in per_system.items()}
        | {f"{k} accuracy": v["accuracy"] for k, v in per_system.items()},
        f"emotion recognition, leave-one-speaker-out ({len(folds)} speakers, {len(records)} utts)"))
