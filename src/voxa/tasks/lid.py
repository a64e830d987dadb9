"""Spoken language identification: GMM-UBM and i-vector systems, scored as NIST LRE does.

Pipeline: features (MFCC-39 by default; SDC 7-1-3-7 + statics, the LID front end of
Torres-Carrasquillo et al. 2002, with ``features.type=sdc``) -> a front end trained once
(UBM, i-vector extractor) -> each system's per-language scores -> multi-class calibration fitted on
a held-out development part of the training data ->
detection LLRs -> Cavg (LRE 2009 / OLR, P_target 0.5), minimum Cavg, pooled EER and accuracy, for
test segments of 1 s, 3 s and full length (a duration condition holds the test utterances with at
least that much speech, cut to it).

Languages that share a speaker in the training data (Asterisk's English and Spanish are one voice)
get a confound check: the pairwise accuracy between those languages' scores on their test utterances.
If the system told voices apart rather than languages, it would be near chance there.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.cache import load_features, with_features
from voxa.tasks.classify import (
    SYSTEMS,
    ClassifierConfig,
    FrontEnd,
    check_system,
    crop,
    phonetic_features,
    system_scores,
)
from voxa.tasks.results import finish, format_table
from voxa.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

DEFAULT_SYSTEM = "ivector-svm-rbf"
DEFAULT_DURATIONS: tuple[float | None, ...] = (1.0, 3.0, None)
# feature frames per second of speech (10 ms hop): duration conditions count kept frames
FRAMES_PER_SECOND = 100
# MFCC-39 measured better than SDC 7-1-3-7 on the Asterisk prompts (Cavg 1.22 % vs 1.68 %, full length)
DEFAULT_CONFIG = {"features": {"type": "mfcc", "deltas": 2, "cmvn": "utt", "vad": True},
                  "gmm": {"n_components": 256}, "ivector": {"rank": 200, "n_iter": 10}}


def _speech(records: Sequence[Record]) -> list[Record]:
    keep = [r for r in records if not (r.extra or {}).get("nonspeech")]
    if len(keep) < len(records):
        log.info("skipping %d non-speech prompt(s)", len(records) - len(keep))
    missing = [r.id for r in keep if r.language is None]
    if missing:
        raise VoxaError(f"{missing[0]}: no language label ({len(missing)} utterance(s) without one)")
    return keep


def dev_split(records: Sequence[Record], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(fit, dev)``: a seeded ``fraction`` of every language held out for calibration."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"dev fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_lang[r.language].append(i)
    fit, dev = [], []
    for lang in sorted(by_lang):
        idx = rng.permutation(by_lang[lang]).tolist()
        n_dev = max(1, int(round(fraction * len(idx))))
        if len(idx) - n_dev < 1:
            raise VoxaError(f"language {lang!r} has too few training utterances ({len(idx)})")
        dev += idx[:n_dev]
        fit += idx[n_dev:]
    return sorted(fit), sorted(dev)


def shared_speaker_pairs(records: Sequence[Record]) -> list[tuple[str, str, str]]:
    """``(language, language, speaker)`` for every pair of languages one speaker records."""
    langs: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if r.speaker:
            langs[r.speaker].add(r.language)
    return [(a, b, spk) for spk, ls in sorted(langs.items()) for a, b in combinations(sorted(ls), 2)]


def _label(d: float | None) -> str:
    return "full" if d is None else f"{d:g}s"


def run_lid(train: Sequence[Record], test: Sequence[Record], cfg: ClassifierConfig, exp: str | os.PathLike,
            systems: Sequence[str] | None = None, durations: Sequence[float | None] = DEFAULT_DURATIONS,
            dev_fraction: float = 0.2, seed: int = 0, main: str | None = None) -> dict[str, Any]:
    """Train and evaluate language-ID systems.

    Args:
        train: training utterances with ``language`` labels (a part is held out for calibration).
        test: test utterances with ``language`` labels.
        cfg: features, UBM and i-vector settings shared by the systems.
        exp: output folder: ``results.json`` (``cavg``, ``eer``, ``accuracy`` of the main system at full
            length, and every system x duration), ``table.md``, ``confusion.png``.
        systems: names of :data:`voxa.tasks.classify.SYSTEMS` (default: the best found on the
            Asterisk prompts, ivector-svm-rbf).
        durations: test conditions in seconds of speech (``None``: full length).
        dev_fraction: share of each language's training utterances used to fit the calibration.
        seed: seed of that split.
        main: the system reported at the top level (default: the first).
    """
    from voxa.backends import MultiClassCalibration
    from voxa.metrics import confusion_matrix, lid_metrics, plot_confusion_matrix, scores_to_llr

    systems = [check_system(s) for s in (systems or [DEFAULT_SYSTEM])]
    train, test = _speech(train), _speech(test)
    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if cfg.phonetic.model is not None:
        if cfg.augment.active:
            raise ConfigError("augment.copies with phonetic.model: perturbed copies are cepstral only")
        feats_by_id = phonetic_features(list(train) + list(test), cfg.phonetic, exp / "feats")
    else:
        feats_by_id = load_features(list(train) + list(test), cfg.features, exp / "feats")
    train = with_features(train, feats_by_id, "training set")
    test = with_features(test, feats_by_id, "test set")
    fit_idx, dev_idx = dev_split(train, dev_fraction, seed)
    fit_feats = [feats_by_id[train[i].id] for i in fit_idx]
    fit_labels = [train[i].language for i in fit_idx]
    groups = None
    if cfg.augment.active:
        from voxa.features.perturb import perturbed_features

        copies = perturbed_features([train[i] for i in fit_idx], cfg.features, cfg.augment)
        groups = list(range(len(fit_idx))) + [j for j, c in enumerate(copies) for _ in c]
        fit_feats = fit_feats + [x for c in copies for x in c]
        fit_labels = fit_labels + [fit_labels[j] for j, c in enumerate(copies) for _ in c]
    dev_feats = [feats_by_id[train[i].id] for i in dev_idx]
    dev_labels = [train[i].language for i in dev_idx]
    test_feats = [feats_by_id[r.id] for r in test]
    test_labels = [r.language for r in test]
    unknown = sorted(set(test_labels) - set(fit_labels))
    if unknown:
        raise VoxaError(f"test language(s) {', '.join(unknown)} have no training utterances")
    fe = FrontEnd(cfg, exp / "nn")
    fe.groups = groups
    if any(s in SYSTEMS for s in systems):  # neural systems need no UBM
        fe.fit(fit_feats, ivectors=any(s.startswith("ivector") for s in systems))
    conditions = []
    for d in durations:
        frames = None if d is None else int(round(d * FRAMES_PER_SECOND))
        dv, dv_keep = crop(dev_feats, frames)
        te, te_keep = crop(test_feats, frames)
        if not te or len({dev_labels[i] for i in dv_keep}) < 2:
            log.warning("no test or development utterances with %s of speech: skipped", _label(d))
            continue
        conditions.append((_label(d), dv, [dev_labels[i] for i in dv_keep], te, te_keep))
    if not conditions:
        raise VoxaError("no duration condition has test utterances")
    pairs = shared_speaker_pairs(train)
    plot_name = "full" if any(c[0] == "full" for c in conditions) else conditions[-1][0]
    table: dict[str, dict[str, Any]] = {}
    for system in systems:
        sets = [c[1] for c in conditions] + [c[3] for c in conditions]
        scores, languages = system_scores(system, fe, fit_feats, fit_labels, sets)
        table[system] = {}
        for k, (name, _, dv_labels, _, te_keep) in enumerate(conditions):
            dev_s, test_s = scores[k], scores[len(conditions) + k]
            labels = [test_labels[i] for i in te_keep]
            # a per-condition calibration: short segments give less confident scores
            present = sorted(set(dv_labels))
            if present == languages:
                cal = MultiClassCalibration(classes=languages).fit(dev_s, dv_labels)
                llr = scores_to_llr(cal.transform(test_s))
            else:
                llr = scores_to_llr(test_s)
            m = lid_metrics(llr, labels, languages)
            entry = {k2: float(v) for k2, v in m.items()} | {"n_test": len(labels)}
            confound = {}
            for a, b, spk in pairs:
                ia, ib = languages.index(a), languages.index(b)
                rows = [j for j, lab in enumerate(labels) if lab in (a, b)]
                if rows:
                    pick = [a if llr[j, ia] >= llr[j, ib] else b for j in rows]
                    hits = [p == labels[j] for p, j in zip(pick, rows)]
                    confound[f"{a}-{b} ({spk})"] = float(np.mean(hits))
            if confound:
                entry["shared_speaker_pair_accuracy"] = confound
            table[system][name] = entry
            np.save(exp / f"scores_{system}_{name}.npy", llr)
            if name == plot_name:
                pred = [languages[i] for i in llr.argmax(1)]
                cm, _ = confusion_matrix(labels, pred, labels=languages)
                plot_confusion_matrix(cm, languages, exp / f"confusion_{system}.png",
                                      title=f"language ID: {system} ({name})")
    main = main or systems[0]
    if main not in table:
        raise ConfigError(f"main system {main!r} was not run")
    top = table[main].get("full") or table[main][conditions[-1][0]]
    results = {"system": main, "cavg": top["cavg"], "min_cavg": top["min_cavg"], "eer": top["eer"],
               "accuracy": top["accuracy"], "languages": sorted(set(fit_labels)),
               "n_train": len(fit_idx), "n_train_perturbed": len(fit_feats) - len(fit_idx),
               "n_dev": len(dev_idx), "n_test": len(test), "systems": table,
               "config": cfg.to_dict(), "seconds_total": round(time.perf_counter() - t0, 1)}
    md = markdown_table(table)
    write_text_atomic(exp / "table.md", md)
    summary = format_table({k: v for k, v in results.items() if k in ("cavg", "min_cavg", "eer", "accuracy")},
                           f"language ID: {main}, full length")
    return finish(exp, results, md + "\n" + summary)


def markdown_table(table: dict[str, dict[str, Any]]) -> str:
    """Cavg and EER (%) per system (rows) and duration (columns), the layout LRE papers use."""
    conds = list(next(iter(table.values())))
    head = "| system | " + " | ".join(f"Cavg {c} | EER {c}" for c in conds) + " |"
    sep = "|---|" + "---|---|" * len(conds)
    rows = [f"| {s} | " + " | ".join(f"{100 * v[c]['cavg']:.2f} | {100 * v[c]['eer']:.2f}" for c in conds)
            + " |" for s, v in table.items()]
    return "\n".join([head, sep, *rows]) + "\n"


__all__ = ["DEFAULT_SYSTEM", "SYSTEMS", "dev_split", "markdown_table", "run_lid", "shared_speaker_pairs"]
