"""GMM-UBM speaker identification and verification: library functions the CLI and recipes call.

The parts other tasks share live in modules named for them: the GMM-UBM system in :mod:`voxa.gmm.ubm`,
cached features in :mod:`voxa.features.cache`, results and tables in :mod:`voxa.tasks.results`.

Pipeline: features (stored under the experiment directory) -> UBM by EM -> MAP-adapted speaker (or
utterance) models -> average-frame log-likelihood ratios (top-C) -> metrics, table, JSON, plots.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxa.data.manifest import Record
from voxa.data.select import groups_by_speaker
from voxa.errors import VoxaError
from voxa.features.cache import load_features, with_features
from voxa.features.pipeline import FeatureConfig
from voxa.gmm.ubm import GmmUbmConfig, enroll, score_matrix, train_ubm
from voxa.tasks.results import finish
from voxa.tasks.trials import Trial, prepare_trials
from voxa.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class SpeakerConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    gmm: GmmUbmConfig = field(default_factory=GmmUbmConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SpeakerConfig:
        """From ``{"features": {...}, "gmm": {...}}``; an unknown key is a ConfigError naming valid ones."""
        from voxa.utils.config import from_dict

        return from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "gmm": asdict(self.gmm)}


def run_identification(train: Sequence[Record], test: Sequence[Record], cfg: SpeakerConfig,
                       exp: str | os.PathLike) -> dict[str, Any]:
    """Closed-set speaker identification: UBM on ``train``, one MAP model per training speaker,
    each test utterance assigned to the model with the highest LLR.

    Writes ``exp/results.json`` (``accuracy``, ``uar``, counts, timings), ``exp/scores.npy``,
    ``exp/confusion.png`` and the UBM; returns the results.
    """
    from voxa.metrics import accuracy, confusion_matrix, plot_confusion_matrix, unweighted_average_recall

    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    feats = load_features(list(train) + list(test), cfg.features, exp / "feats")
    train, test = with_features(train, feats, "training set"), with_features(test, feats, "test set")
    t_feat = time.perf_counter() - t0
    train_ids = {r.id for r in train}
    ubm = train_ubm({k: v for k, v in feats.items() if k in train_ids}, cfg.gmm)
    ubm.save(exp / "ubm.safetensors")
    t_ubm = time.perf_counter() - t0 - t_feat
    models = enroll(ubm, feats, groups_by_speaker(train), cfg.gmm)
    test_ids = [r.id for r in test]
    scores, names = score_matrix(models, ubm, feats, test_ids, cfg.gmm.top_c)
    truth = [r.speaker for r in test]
    pred = [names[i] for i in scores.argmax(1)]
    cm, labels = confusion_matrix(truth, pred, labels=names)
    plot_confusion_matrix(cm, labels, exp / "confusion.png", title="speaker identification")
    np.save(exp / "scores.npy", scores)
    results = {
        "accuracy": float(accuracy(truth, pred)),
        "uar": float(unweighted_average_recall(truth, pred, labels=names)),
        "n_speakers": len(names), "n_train": len(train), "n_test": len(test),
        "seconds_features": round(t_feat, 2), "seconds_ubm": round(t_ubm, 2),
        "seconds_total": round(time.perf_counter() - t0, 2),
        "config": cfg.to_dict(),
    }
    return finish(exp, results, title=f"speaker identification ({len(names)} speakers, {len(test)} tests)")


def run_verification(background: Sequence[Record], enroll_set: Sequence[Record],
                     test_set: Sequence[Record], cfg: SpeakerConfig, exp: str | os.PathLike,
                     trials: Sequence[Trial] | str | os.PathLike | None = None,
                     nontarget_ratio: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Speaker verification: UBM on ``background``; models for the trials' enrolment ids (a
    speaker of ``enroll_set``: all their utterances; else one utterance id); LLR per trial.

    Without ``trials``, all target pairs of ``test_set`` and a seeded equal-size sample of
    non-target pairs are generated (utterance models; ``enroll_set`` may then equal ``test_set``).
    Writes ``results.json`` (``eer``, ``min_dcf``, ...), ``trials``, ``scores`` and ``det.png``.
    """
    from voxa.metrics import detection_metrics, plot_det

    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    trials = prepare_trials(trials, test_set, exp, nontarget_ratio, seed)
    t0 = time.perf_counter()
    feats = load_features(list(background) + list(enroll_set) + list(test_set), cfg.features, exp / "feats")
    background = with_features(background, feats, "background set")
    enroll_set = with_features(enroll_set, feats, "enrolment set")
    test_ids = {r.id for r in test_set}
    kept = [t for t in trials if t.test in feats or t.test not in test_ids]
    if len(kept) < len(trials):
        log.warning("%d of %d trials dropped: their test utterance is shorter than one frame",
                    len(trials) - len(kept), len(trials))
        trials = kept
    bg = {r.id for r in background}
    ubm = train_ubm({k: v for k, v in feats.items() if k in bg}, cfg.gmm)
    ubm.save(exp / "ubm.safetensors")
    spk_groups = groups_by_speaker(enroll_set) if all(r.speaker for r in enroll_set) else {}
    enroll_ids = {r.id for r in enroll_set}
    groups: dict[str, list[str]] = {}
    for t in trials:
        if t.enroll in groups:
            continue
        if t.enroll in spk_groups:
            groups[t.enroll] = spk_groups[t.enroll]
        elif t.enroll in enroll_ids or t.enroll in feats:
            groups[t.enroll] = [t.enroll]
        else:
            raise VoxaError(f"trial enrolment id {t.enroll!r} is neither a speaker nor an utterance "
                            f"of the enrolment data")
    missing = sorted({t.test for t in trials} - set(feats))
    if missing:
        raise VoxaError(f"trial test id {missing[0]!r} is not an utterance of the test data")
    models = enroll(ubm, feats, groups, cfg.gmm)
    test_ids = sorted({t.test for t in trials})
    matrix, names = score_matrix(models, ubm, feats, test_ids, cfg.gmm.top_c)
    row = {u: i for i, u in enumerate(test_ids)}
    col = {n: j for j, n in enumerate(names)}
    scores = np.array([matrix[row[t.test], col[t.enroll]] for t in trials])
    labels = np.array([t.target for t in trials])
    write_text_atomic(exp / "scores", "".join(f"{t.enroll} {t.test} {s:.6f}\n"
                                              for t, s in zip(trials, scores)))
    metrics = detection_metrics(scores, labels)
    plot_det({"GMM-UBM": (scores, labels)}, exp / "det.png", title="speaker verification")
    results = {**{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()},
               "n_models": len(models), "n_test_utterances": len(test_ids),
               "seconds_total": round(time.perf_counter() - t0, 2), "config": cfg.to_dict()}
    return finish(exp, results, title=f"speaker verification ({len(trials)} trials)")


__all__ = ["GmmUbmConfig", "SpeakerConfig", "enroll", "load_features", "run_identification",
           "run_verification", "score_matrix", "train_ubm"]
