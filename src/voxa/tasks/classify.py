"""Closed-set utterance classification systems shared by language ID and emotion recognition.

A *system* turns per-utterance frames into a score per class:

- ``gmm-ubm``: a UBM on the training frames, one MAP-adapted model per class, average-frame LLRs.
- ``ivector-<backend>``: UBM -> Baum-Welch statistics -> total-variability model -> i-vectors, then a
  back-end of :mod:`voxa.backends`: ``cosine`` (length norm, cosine to class means), ``lda`` (+ LDA to
  C - 1 dimensions), ``wccn`` (+ LDA + WCCN), ``nap`` (nuisance attribute projection of the directions
  in which an utterance's voice-perturbed copies differ, then LDA: needs ``augment.copies``), ``plda``
  (+ LDA, PLDA LLR against each class),
  ``svm-linear`` / ``svm-poly`` / ``svm-rbf`` (one-vs-rest SVMs), ``logreg`` (multinomial
  logistic regression), ``dnn`` (the frame DNN of :mod:`voxa.nn.models` on each i-vector as a one-frame
  utterance, trained with the ``neural`` settings: the lecture's DNN on i-vector inputs).

The front end (UBM and, when needed, the i-vector extractor) is trained once and shared by every
system of a run: :class:`FrontEnd`.

Example:
    >>> import torch
    >>> from voxa.tasks.classify import ClassifierConfig, FrontEnd, system_scores
    >>> g = torch.Generator().manual_seed(0)
    >>> feats = [torch.randn(80, 4, generator=g) + (i % 2) for i in range(40)]
    >>> labels = [str(i % 2) for i in range(40)]
    >>> cfg = ClassifierConfig.from_dict({"gmm": {"n_components": 4}, "ivector": {"rank": 3}})
    >>> fe = FrontEnd(cfg).fit(feats, ivectors=True)
    >>> scores, classes = system_scores("ivector-lda", fe, feats, labels, [feats[:4]])
    >>> scores[0].shape, classes
    ((4, 2), ['0', '1'])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from voxa.errors import ConfigError, VoxaError
from voxa.features.perturb import VoicePerturbation
from voxa.features.pipeline import FeatureConfig
from voxa.gmm.ubm import GmmUbmConfig, train_ubm

log = logging.getLogger(__name__)

IVECTOR_BACKENDS = ("cosine", "lda", "wccn", "nap", "plda", "svm-linear", "svm-poly", "svm-rbf", "logreg",
                    "dnn")
SYSTEMS = ("gmm-ubm",) + tuple(f"ivector-{b}" for b in IVECTOR_BACKENDS)


def neural_systems() -> tuple[str, ...]:
    """The neural systems' names (:data:`voxa.nn.models.MODEL_NAMES`), accepted beside :data:`SYSTEMS`."""
    from voxa.nn.models import MODEL_NAMES

    return tuple(MODEL_NAMES)


@dataclass
class IvectorConfig:
    """The i-vector extractor's settings.

    Attributes:
        rank: i-vector dimension.
        n_iter: EM iterations of the total-variability model.
        top_c: Gaussians per frame kept in the Baum-Welch statistics (``None``: all).
        svm_c: soft-margin penalty of the SVM back-ends.
        lda_dim: LDA dimension (``None``: classes - 1).
        nap_dim: directions the ``nap`` back-end removes.
        seed: seed of the random initial T.
    """

    rank: int = 400
    n_iter: int = 10
    top_c: int | None = 20
    svm_c: float = 1.0
    lda_dim: int | None = None
    nap_dim: int = 10
    seed: int = 0


def _asr_features() -> FeatureConfig:
    # the front end voxa asr train uses by default (MFCC-39, per-utterance CMN, no VAD)
    return FeatureConfig(type="mfcc", deltas=2, cmvn="utt", vad=False)


@dataclass
class PhoneticConfig:
    """Phonetic input features: every system classifies phone posteriorgrams instead of cepstra.

    Attributes:
        model: a monophone ASR system folder of ``voxa asr train`` (or its ``final.mdl.safetensors``);
            ``None``: the cepstral features as usual.
        features: the front end that model was trained on.
    """

    model: str | None = None
    features: FeatureConfig = field(default_factory=_asr_features)


@dataclass
class ClassifierConfig:
    """Features, GMM-UBM, i-vector, neural and augmentation settings of a classification run.

    ``augment`` (:class:`voxa.features.perturb.VoicePerturbation`) adds voice-perturbed copies of the
    training utterances (not of the calibration or test ones) to every system's training data;
    ``phonetic`` (:class:`PhoneticConfig`) replaces the features by phone posteriorgrams.
    """

    features: FeatureConfig = field(default_factory=FeatureConfig)
    gmm: GmmUbmConfig = field(default_factory=GmmUbmConfig)
    ivector: IvectorConfig = field(default_factory=IvectorConfig)
    neural: Any = None
    augment: VoicePerturbation = field(default_factory=VoicePerturbation)
    phonetic: PhoneticConfig = field(default_factory=PhoneticConfig)

    def __post_init__(self) -> None:
        from voxa.tasks.neural import NeuralConfig

        if self.neural is None:
            self.neural = NeuralConfig()
        elif isinstance(self.neural, dict):
            self.neural = NeuralConfig.from_dict(self.neural)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ClassifierConfig:
        """From ``{"features": ..., "gmm": ..., "ivector": ...}``; an unknown key is a ConfigError naming
        the valid ones."""
        from voxa.utils.config import from_dict

        return from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features.to_dict(), "gmm": asdict(self.gmm), "ivector": asdict(self.ivector),
                "neural": self.neural.to_dict(), "augment": asdict(self.augment),
                "phonetic": {"model": self.phonetic.model, "features": self.phonetic.features.to_dict()}}


def phonetic_features(records: Sequence[Any], cfg: PhoneticConfig, cache: str | os.PathLike
                      ) -> dict[str, torch.Tensor]:
    """``{id: [T, n_phones]}`` log phone posteriorgrams of the records under ``cfg.model``.

    Raises:
        VoxaError: the model is missing or context-dependent.
    """
    from voxa.asr.acoustic import AcousticModel
    from voxa.asr.posteriorgram import phone_posteriorgram
    from voxa.features.cache import load_features

    path = Path(cfg.model)
    if path.is_dir():
        path = path / "final.mdl.safetensors"
    if not path.is_file():
        raise VoxaError(f"{path}: phonetic.model not found (a voxa asr train system folder)")
    am = AcousticModel.load(path)
    feats = load_features(list(records), cfg.features, cache)
    log.info("phone posteriorgrams over %d phones of %s", len(am.phones), path)
    return {k: phone_posteriorgram(am, f) for k, f in feats.items()}


def check_system(name: str) -> str:
    """``name`` if it is a known system (statistical or neural), else a one-line :class:`ConfigError`."""
    if name not in SYSTEMS and name not in neural_systems():
        raise ConfigError(f"unknown system {name!r}; choose one of {', '.join(SYSTEMS + neural_systems())}")
    return name


class FrontEnd:
    """The UBM and (optionally) the i-vector extractor, trained once per run."""

    def __init__(self, cfg: ClassifierConfig, exp: str | os.PathLike | None = None) -> None:
        self.cfg = cfg
        self.ubm = None
        self.tv = None
        self.exp = exp  # where neural systems keep their checkpoints and curves
        self.trained: dict[str, Any] = {}
        # per training utterance, the clean utterance it was perturbed from (the ``nap`` back-end's groups)
        self.groups: list[Any] | None = None

    def fit(self, train_feats: Sequence[torch.Tensor], ivectors: bool) -> FrontEnd:
        """Train the UBM on the pooled frames and, with ``ivectors``, the total-variability model."""
        from voxa.ivector import TotalVariability, baum_welch_stats

        if not train_feats:
            raise VoxaError("no training utterances")
        self.ubm = train_ubm({str(i): f for i, f in enumerate(train_feats)}, self.cfg.gmm)
        if ivectors:
            c = self.cfg.ivector
            stats = baum_welch_stats(self.ubm, list(train_feats), top_c=c.top_c)
            self.tv = TotalVariability(rank=c.rank, n_iter=c.n_iter, seed=c.seed, progress=False)
            self.tv.fit(stats, self.ubm)
        return self

    def ivectors(self, feats: Sequence[torch.Tensor]) -> np.ndarray:
        """``[len(feats), rank]`` i-vectors (float64 numpy, for the back-ends)."""
        from voxa.ivector import baum_welch_stats

        if self.tv is None:
            raise VoxaError("the front end was fitted without an i-vector extractor")
        stats = baum_welch_stats(self.ubm, list(feats), top_c=self.cfg.ivector.top_c)
        w = self.tv.transform(stats)
        return (w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)).astype(np.float64)


def _gmm_ubm_scores(fe: FrontEnd, train_feats: Sequence[torch.Tensor], labels: Sequence[str],
                    classes: list[str], test_sets: Sequence[Sequence[torch.Tensor]]) -> list[np.ndarray]:
    from voxa.gmm.scoring import llr_many

    g = fe.cfg.gmm
    models = []
    for c in tqdm(classes, desc="class models", unit="class", leave=False):
        X = torch.cat([f for f, y in zip(train_feats, labels) if y == c])
        models.append(fe.ubm.map_adapt(X, relevance_factor=g.relevance_factor, adapt=g.adapt))
    out = []
    for feats in test_sets:
        s = np.zeros((len(feats), len(classes)))
        for i, f in enumerate(tqdm(feats, desc="score", unit="utt", leave=False)):
            s[i] = np.asarray(llr_many(models, fe.ubm, f, top_c=g.top_c))
        out.append(s)
    return out


def _ivector_scores(backend: str, fe: FrontEnd, train_feats: Sequence[torch.Tensor], labels: Sequence[str],
                    classes: list[str], test_sets: Sequence[Sequence[torch.Tensor]]) -> list[np.ndarray]:
    from voxa.backends import LDA, NAP, PLDA, WCCN, CosineScorer, LengthNorm, LogisticBackend, SVMBackend

    c = fe.cfg.ivector
    y = np.asarray(labels)
    X = fe.ivectors(train_feats)
    tests = [fe.ivectors(f) for f in test_sets]
    # every back-end starts from whitened, length-normalised i-vectors (Garcia-Romero 2011)
    steps: list[Any] = [LengthNorm(whiten=True)]
    if backend == "nap":
        if fe.groups is None or len(fe.groups) != len(labels):
            raise ConfigError("ivector-nap needs voice-perturbed copies of the training utterances "
                              "(set augment.copies >= 1)")
        steps.append(NAP(n_components=c.nap_dim))
    if backend in ("lda", "wccn", "plda", "nap"):
        steps.append(LDA(n_components=c.lda_dim or len(classes) - 1))
    if backend == "wccn":
        steps.append(WCCN())
    for step in steps:
        X = step.fit(X, fe.groups if isinstance(step, NAP) else y).transform(X)
        tests = [step.transform(t) for t in tests]
    if backend == "dnn":
        def seqs(A: np.ndarray) -> list[torch.Tensor]:
            return [torch.from_numpy(a[None].astype(np.float32)) for a in A]

        return _neural_scores("dnn", fe, seqs(X), labels, classes, [seqs(t) for t in tests],
                              name="ivector-dnn", crop=None, model={"context": 0})
    if backend in ("cosine", "lda", "wccn", "nap"):
        model = CosineScorer().fit(X, y)
        order = [list(model.classes_).index(k) for k in classes]
        return [model.decision_function(t)[:, order] for t in tests]
    if backend == "plda":
        plda = PLDA().fit(X, y)
        means = np.stack([X[y == k].mean(0) for k in classes])
        counts = np.array([int((y == k).sum()) for k in classes])
        return [plda.score(means, t, n_enroll=counts).T for t in tests]
    if backend.startswith("svm-"):
        model = SVMBackend(kernel=backend[4:], C=c.svm_c, class_weight="balanced").fit(X, y)
    else:
        model = LogisticBackend().fit(X, y)
    order = [list(model.classes_).index(k) for k in classes]
    if backend == "logreg":
        return [model.predict_log_proba(t)[:, order] for t in tests]
    return [model.decision_function(t)[:, order] for t in tests]


def system_scores(system: str, fe: FrontEnd, train_feats: Sequence[torch.Tensor], labels: Sequence[str],
                  test_sets: Sequence[Sequence[torch.Tensor]]) -> tuple[list[np.ndarray], list[str]]:
    """Scores ``[n_test, n_classes]`` of each test set under ``system``, and the class order.

    Args:
        system: one of :data:`SYSTEMS`.
        fe: a fitted :class:`FrontEnd` (with i-vectors for the ``ivector-*`` systems).
        train_feats: training utterances' frames ``[T_u, d]``.
        labels: their classes.
        test_sets: lists of test utterances' frames.
    """
    check_system(system)
    if len(train_feats) != len(labels):
        raise VoxaError(f"{len(train_feats)} training utterances but {len(labels)} labels")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise VoxaError("need at least two classes to classify")
    if system == "gmm-ubm":
        return _gmm_ubm_scores(fe, train_feats, labels, classes, test_sets), classes
    if system in neural_systems():
        return _neural_scores(system, fe, train_feats, labels, classes, test_sets), classes
    return _ivector_scores(system[len("ivector-"):], fe, train_feats, labels, classes, test_sets), classes


def _neural_scores(system: str, fe: FrontEnd, train_feats: Sequence[torch.Tensor], labels: Sequence[str],
                   classes: list[str], test_sets: Sequence[Sequence[torch.Tensor]], name: str | None = None,
                   **overrides: Any) -> list[np.ndarray]:
    """Log posteriors ``[n, classes]`` of a neural classifier trained on the frames (the shared trainer;
    its checkpoints, log and curves go to ``fe.exp/<name>``); ``overrides`` replace fields of the
    ``neural`` settings (``crop``; ``model`` is merged)."""
    import dataclasses
    import tempfile

    from voxa.tasks.neural import predict_logposteriors, train_classifier

    if "model" in overrides:
        overrides["model"] = {**fe.cfg.neural.model, **overrides["model"]}
    cfg = dataclasses.replace(fe.cfg.neural, system=system, **overrides)
    name = name or system
    exp = Path(fe.exp) / name if getattr(fe, "exp", None) else Path(tempfile.mkdtemp(prefix="voxa-nn-"))
    feats = {f"train{i}": f for i, f in enumerate(train_feats)}
    model = train_classifier(feats, list(feats), list(labels), cfg, exp, class_names=classes)
    order = [list(model.class_names).index(c) for c in classes]
    fe.trained[name] = model
    out = []
    for k, ts in enumerate(test_sets):
        tf = {f"t{k}_{i}": f for i, f in enumerate(ts)}
        lp = predict_logposteriors(model, tf, list(tf), batch_size=cfg.eval_batch_size)
        out.append(lp[:, order].double().numpy() if len(tf) else np.zeros((0, len(classes))))
    return out


def crop(feats: Sequence[torch.Tensor], frames: int | None) -> tuple[list[torch.Tensor], list[int]]:
    """The first ``frames`` frames of every utterance that has that many (``None``: all, whole).

    Returns the cropped utterances and their indices, so test conditions of 1 s, 3 s, ... hold only
    utterances at least that long (the convention of the NIST LRE duration conditions).
    """
    if frames is None:
        return list(feats), list(range(len(feats)))
    keep = [i for i, f in enumerate(feats) if f.shape[0] >= frames]
    return [feats[i][:frames] for i in keep], keep
