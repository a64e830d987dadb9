"""GMM-UBM speaker identification and verification: library functions the CLI and recipes call.

Pipeline: features (stored under the experiment directory) -> UBM by EM -> MAP-adapted speaker (or
utterance) models -> average-frame log-likelihood ratios (top-C) -> metrics, table, JSON, plots.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.pipeline import FeatureConfig, compute_features
from voxa.features.store import FeatureReader
from voxa.tasks.trials import Trial, prepare_trials
from voxa.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class GmmUbmConfig:
    """The GMM-UBM system's settings.

    Attributes:
        n_components: UBM size.
        covariance_type: ``diag`` or ``full``.
        init: ``split`` (mixing up 1, 2, 4, ... K) or ``kmeans++``.
        max_iter: EM iterations at the final size.
        tol: convergence on the relative change of the average log-likelihood.
        relevance_factor: MAP relevance factor r.
        adapt: which parameters MAP adapts: letters of ``m`` (means), ``w`` (weights), ``v`` (variances).
        top_c: Gaussians per frame used in scoring (``None``: exact).
        max_ubm_frames: random subsample of the background frames used for the UBM.
        seed: initialisation and subsampling seed.
    """

    n_components: int = 256
    covariance_type: str = "diag"
    init: str = "split"
    max_iter: int = 20
    tol: float = 1e-4
    relevance_factor: float = 16.0
    adapt: str = "m"
    top_c: int | None = 5
    max_ubm_frames: int | None = 2_000_000
    seed: int = 0

    def __post_init__(self) -> None:
        if set(self.adapt) - set("mwv") or not self.adapt:
            raise ConfigError(f"adapt must be letters of 'mwv', got {self.adapt!r}")


@dataclass
class SpeakerConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    gmm: GmmUbmConfig = field(default_factory=GmmUbmConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SpeakerConfig:
        d = dict(d or {})
        unknown = set(d) - {"features", "gmm"}
        if unknown:
            raise ConfigError(f"unknown speaker setting(s): {', '.join(sorted(unknown))}")
        g = dict(d.get("gmm") or {})
        bad = set(g) - set(GmmUbmConfig.__dataclass_fields__)
        if bad:
            raise ConfigError(f"unknown gmm setting(s): {', '.join(sorted(bad))}")
        return cls(FeatureConfig.from_dict(d.get("features")), GmmUbmConfig(**g))

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "gmm": asdict(self.gmm)}


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


def _gmm_cls():
    from voxa.gmm import GaussianMixture

    return GaussianMixture


def train_ubm(frames_by_utt: dict[str, torch.Tensor], cfg: GmmUbmConfig):
    """Train the universal background model on the pooled frames (subsampled to ``max_ubm_frames``)."""
    X = torch.cat(list(frames_by_utt.values()))
    if cfg.max_ubm_frames and X.shape[0] > cfg.max_ubm_frames:
        g = torch.Generator().manual_seed(cfg.seed)
        X = X[torch.randperm(X.shape[0], generator=g)[: cfg.max_ubm_frames]]
    if X.shape[0] < 10 * cfg.n_components:
        log.warning("only %d frames for %d Gaussians", X.shape[0], cfg.n_components)
    ubm = _gmm_cls()(n_components=cfg.n_components, covariance_type=cfg.covariance_type,
                     max_iter=cfg.max_iter, tol=cfg.tol, init=cfg.init, random_state=cfg.seed)
    return ubm.fit(X)


def enroll(ubm, frames_by_utt: dict[str, torch.Tensor], groups: dict[str, list[str]],
           cfg: GmmUbmConfig) -> dict[str, Any]:
    """MAP-adapt one model per group (a speaker's utterance ids, or one utterance)."""
    models = {}
    for name, utts in tqdm(sorted(groups.items()), desc="enrol", unit="model", leave=False):
        X = torch.cat([frames_by_utt[u] for u in utts])
        models[name] = ubm.map_adapt(X, relevance_factor=cfg.relevance_factor, adapt=cfg.adapt)
    return models


def score_matrix(models: dict[str, Any], ubm, frames_by_utt: dict[str, torch.Tensor],
                 test_ids: Sequence[str], top_c: int | None) -> tuple[np.ndarray, list[str]]:
    """LLR of every test utterance against every model: ``[len(test_ids), len(models)]``."""
    from voxa.gmm.scoring import llr_many

    names = sorted(models)
    stacked = [models[n] for n in names]
    out = np.zeros((len(test_ids), len(names)))
    for i, u in enumerate(tqdm(test_ids, desc="score", unit="utt", leave=False)):
        out[i] = llr_many(stacked, ubm, frames_by_utt[u], top_c=top_c)
    return out, names


def _groups_by_speaker(records: Sequence[Record]) -> dict[str, list[str]]:
    g: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.speaker is None:
            raise VoxaError(f"{r.id}: no speaker label (needed to enrol)")
        g[r.speaker].append(r.id)
    return dict(g)


def print_table(results: dict[str, Any], title: str) -> str:
    rows = [(k, v) for k, v in results.items() if isinstance(v, (int, float))]
    width = max(len(k) for k, _ in rows) if rows else 10
    lines = [title, "-" * (width + 14)]
    for k, v in rows:
        lines.append(f"{k:<{width}}  {v:>10.4f}" if isinstance(v, float) else f"{k:<{width}}  {v:>10d}")
    text = "\n".join(lines)
    print(text)
    return text


def _write_results(exp: Path, results: dict[str, Any]) -> None:
    write_text_atomic(exp / "results.json", json.dumps(results, indent=2, sort_keys=False))


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
    t_feat = time.perf_counter() - t0
    train_ids = {r.id for r in train}
    ubm = train_ubm({k: v for k, v in feats.items() if k in train_ids}, cfg.gmm)
    ubm.save(exp / "ubm.safetensors")
    t_ubm = time.perf_counter() - t0 - t_feat
    models = enroll(ubm, feats, _groups_by_speaker(train), cfg.gmm)
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
    _write_results(exp, results)
    print_table(results, f"speaker identification ({len(names)} speakers, {len(test)} tests)")
    return results


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
    bg = {r.id for r in background}
    ubm = train_ubm({k: v for k, v in feats.items() if k in bg}, cfg.gmm)
    ubm.save(exp / "ubm.safetensors")
    spk_groups = _groups_by_speaker(enroll_set) if all(r.speaker for r in enroll_set) else {}
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
    _write_results(exp, results)
    print_table(results, f"speaker verification ({len(trials)} trials)")
    return results
