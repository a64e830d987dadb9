"""Speaker verification with i-vectors: cosine, LDA + WCCN + cosine and PLDA back-ends on one trial list.

The UBM and the total-variability model are trained on the background set, whose speakers also train
the back-ends (length normalisation, LDA, WCCN, PLDA). Trials are utterance against utterance, generated
as :func:`voxa.tasks.speaker.run_verification` generates them (same seed, same list), so the figures sit
beside the GMM-UBM system's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.cache import load_features, with_features
from voxa.tasks.classify import ClassifierConfig, FrontEnd
from voxa.tasks.results import finish, format_table
from voxa.tasks.trials import Trial, prepare_trials
from voxa.utils.atomic import write_text_atomic

VERIFICATION_BACKENDS = ("cosine", "lda-wccn-cosine", "plda", "lda-plda")
# joint factor analysis with linear scoring is scored beside the i-vector back-ends
SYSTEMS = VERIFICATION_BACKENDS + ("jfa",)


def backend_scores(backend: str, bg: np.ndarray, bg_spk: Sequence[str], enroll: np.ndarray, test: np.ndarray,
                   lda_dim: int | None = None) -> np.ndarray:
    """``[len(enroll), len(test)]`` verification scores of one back-end trained on background vectors.

    Args:
        backend: ``cosine``, ``lda-wccn-cosine``, ``plda`` (two-covariance on length-normalised
            vectors) or ``lda-plda``.
        bg: ``[n, R]`` background i-vectors; ``bg_spk`` their speakers.
        enroll: ``[N, R]`` enrolment vectors; ``test``: ``[M, R]`` test vectors.
        lda_dim: LDA dimension (default ``min(150, speakers - 1, R)``).
    """
    from voxa.backends import LDA, PLDA, WCCN, LengthNorm, cosine_scores

    if backend not in VERIFICATION_BACKENDS:
        raise ConfigError(f"unknown back-end {backend!r}; one of {', '.join(VERIFICATION_BACKENDS)}")
    y = np.asarray(bg_spk)
    n_spk = len(set(bg_spk))
    dim = lda_dim or min(150, n_spk - 1, bg.shape[1])
    steps: list[Any] = [LengthNorm(whiten=True)]
    if backend.startswith("lda"):
        steps.append(LDA(n_components=dim))
    if "wccn" in backend:
        steps.append(WCCN())
    X, E, T = bg, enroll, test
    for step in steps:
        X = step.fit(X, y).transform(X)
        E, T = step.transform(E), step.transform(T)
    if backend.endswith("cosine"):
        return cosine_scores(E, T)
    # PLDA on length-normalised (again, after LDA) vectors, the Garcia-Romero recipe
    ln = LengthNorm(whiten=False).fit(X)
    X, E, T = ln.transform(X), ln.transform(E), ln.transform(T)
    return PLDA().fit(X, y).score(E, T)


def segment(feats: Sequence[Any], speakers: Sequence[str], frames: int) -> tuple[list[Any], list[str]]:
    """Each utterance cut into consecutive pieces of ``frames`` frames (a shorter rest is dropped
    unless it is the whole utterance), with its speaker label repeated."""
    out_f, out_s = [], []
    for f, sp in zip(feats, speakers):
        n = max(1, f.shape[0] // frames)
        for k in range(n):
            out_f.append(f[k * frames:(k + 1) * frames] if f.shape[0] >= frames else f)
            out_s.append(sp)
    return out_f, out_s


def jfa_scores(fe: FrontEnd, bg_feats: Sequence[Any], bg_spk: Sequence[str], utts: Sequence[Any],
               cfg: ClassifierConfig, speaker_rank: int = 100, channel_rank: int = 50) -> np.ndarray:
    """``[len(utts), len(utts)]`` JFA linear scores (each utterance enrolled as a model, every
    utterance tested), with V, U and D trained on the background speakers."""
    from voxa.ivector import JointFactorAnalysis, baum_welch_stats

    top_c = cfg.ivector.top_c
    bg_stats = baum_welch_stats(fe.ubm, list(bg_feats), top_c=top_c)
    n_spk = len(set(bg_spk))
    jfa = JointFactorAnalysis(speaker_rank=min(speaker_rank, n_spk - 1), channel_rank=channel_rank,
                              n_iter=cfg.ivector.n_iter, seed=cfg.ivector.seed, progress=False)
    jfa.fit(bg_stats, list(bg_spk), fe.ubm)
    stats = baum_welch_stats(fe.ubm, list(utts), top_c=top_c)
    models = jfa.enroll(stats)
    out = jfa.score(models, stats)
    return (out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)).astype(np.float64)


def run_ivector_verification(background: Sequence[Record], test_set: Sequence[Record],
                             cfg: ClassifierConfig, exp: str | os.PathLike,
                             trials: Sequence[Trial] | str | os.PathLike | None = None,
                             nontarget_ratio: float = 1.0, seed: int = 0,
                             backends: Sequence[str] = VERIFICATION_BACKENDS,
                             segment_frames: int | None = 300, embedder: str | None = None) -> dict[str, Any]:
    """i-vector speaker verification; writes ``results.json`` (``eer``/``min_dcf`` of the first
    back-end at the top, every back-end under ``backends``), ``scores_<backend>`` and ``det.png``.

    LDA, WCCN, PLDA and JFA learn from the spread of a speaker's recordings; when the background has
    speakers with a single utterance (LibriSpeech's train-clean-100 here), every background
    utterance is also cut into pieces of ``segment_frames`` feature frames (``None``: never), so
    each speaker has several -- within-session variability only, which the results record.

    ``embedder`` names a neural system (``xvector``, ``resnet-sap``, ...; settings in ``cfg.neural``):
    it is trained to classify the background speakers (random crops of their utterances), and its
    embeddings (``model.embed``, the x-vector) replace the i-vectors before the same back-ends.
    """
    from voxa.metrics import detection_metrics, plot_det

    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    trials = prepare_trials(trials, test_set, exp, nontarget_ratio, seed)
    t0 = time.perf_counter()
    feats = load_features(list(background) + list(test_set), cfg.features, exp / "feats")
    background = with_features(background, feats, "background set")
    bg_recs = [r for r in background if r.speaker is not None]
    if len({r.speaker for r in bg_recs}) < 2:
        raise VoxaError("the background set needs speaker labels of at least two speakers")
    if embedder is None:
        fe = FrontEnd(cfg).fit([feats[r.id] for r in background], ivectors=True)
        fe.tv.save(exp / "tv.safetensors")
        vectors = fe.ivectors
    else:
        import dataclasses

        from voxa.tasks.neural import embed, train_classifier

        if "jfa" in backends:
            raise ConfigError("jfa scores GMM supervectors; it does not apply to neural embeddings")
        ncfg = dataclasses.replace(cfg.neural, system=embedder)
        model = train_classifier(feats, [r.id for r in bg_recs], [r.speaker for r in bg_recs], ncfg,
                                 exp / "nn")

        def vectors(fl: Sequence[Any]) -> np.ndarray:
            tmp = {str(i): f for i, f in enumerate(fl)}
            return embed(model, tmp, list(tmp), batch_size=ncfg.eval_batch_size).X.astype(np.float64)
    bg_feats = [feats[r.id] for r in bg_recs]
    bg_spk = [r.speaker for r in bg_recs]
    counts: dict[str, int] = {}
    for sp in bg_spk:
        counts[sp] = counts.get(sp, 0) + 1
    segmented = bool(segment_frames) and min(counts.values()) < 2
    if segmented:
        bg_feats, bg_spk = segment(bg_feats, bg_spk, int(segment_frames))
    bg = vectors(bg_feats)
    ids = sorted({t.enroll for t in trials} | {t.test for t in trials})
    missing = [u for u in ids if u not in feats]
    if missing:
        raise VoxaError(f"trial id {missing[0]!r} is not an utterance of the test data")
    iv = vectors([feats[u] for u in ids])
    row = {u: i for i, u in enumerate(ids)}
    labels = np.array([t.target for t in trials])
    per_backend, curves = {}, {}
    unknown = [b for b in backends if b not in SYSTEMS]
    if unknown:
        raise ConfigError(f"unknown verification system {unknown[0]!r}; one of {', '.join(SYSTEMS)}")
    for b in backends:
        if b == "jfa":
            m = jfa_scores(fe, bg_feats, bg_spk,
                           [feats[u] for u in ids], cfg)
        else:
            m = backend_scores(b, bg, bg_spk, iv, iv, cfg.ivector.lda_dim)
        scores = np.array([m[row[t.enroll], row[t.test]] for t in trials])
        write_text_atomic(exp / f"scores_{b}", "".join(f"{t.enroll} {t.test} {s:.6f}\n"
                                                       for t, s in zip(trials, scores)))
        per_backend[b] = {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                          for k, v in detection_metrics(scores, labels).items()}
        kind = "i-vector" if embedder is None else embedder
        curves["JFA" if b == "jfa" else f"{kind} {b}"] = (scores, labels)
    plot_det(curves, exp / "det.png", title=f"speaker verification, {embedder or 'i-vectors'}")
    first = per_backend[backends[0]]
    prefix = "ivector" if embedder is None else embedder
    name = backends[0] if backends[0] == "jfa" else f"{prefix}-{backends[0]}"
    results = {"system": name, "eer": first["eer"], "min_dcf": first.get("min_dcf"),
               "backends": per_backend, "n_trials": len(trials), "n_background": len(background),
               "background_segmented": segmented, "n_background_vectors": len(bg_feats),
               "config": cfg.to_dict(), "seconds_total": round(time.perf_counter() - t0, 1)}
    return finish(exp, results, format_table({f"{b} eer": v["eer"] for b, v in per_backend.items()},
                                             f"speaker verification, {embedder or 'i-vectors'} "
                                             f"({len(trials)} trials)"))
