"""Neural utterance classifiers (language, speaker, emotion ID): train with the shared Trainer, predict,
embed and evaluate as the statistical systems of :mod:`voxa.tasks.classify` are evaluated.

- :class:`NeuralConfig`: the architecture (a name of :data:`voxa.nn.models.MODEL_NAMES`), its overrides,
  trainer settings, crops, class balancing, waveform augmentation and the validation share.
- :func:`train_classifier`: stratified validation hold-out, resumable training, best-model selection,
  ``exp/model.safetensors`` with the class names in its header.
- :func:`predict_logposteriors`, :func:`embed`: batched by length, eval mode, no gradients.
- :func:`evaluate_classifier`: accuracy, UAR, top-5 accuracy, confusion matrix; Cavg/EER for LID.
- :func:`run_neural_system`: manifests to ``results.json``.

Example:
    >>> cfg = NeuralConfig.from_dict({"system": "xvector", "trainer": {"epochs": 2}, "crop": [100, 200]})
    >>> cfg.trainer.epochs, cfg.crop, cfg.trainer.batch_size
    (2, (100, 200), 32)
    >>> model = train_classifier(feats, train_ids, train_labels, cfg, "exp/lid-xvector")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from voxa.errors import ConfigError, VoxaError
from voxa.nn.data import (
    Augment,
    BalancedDataset,
    UtteranceDataset,
    WaveformDataset,
    collate_padded,
    length_batches,
)
from voxa.nn.trainer import Trainer, TrainerConfig
from voxa.utils.vectors import VectorSet

log = logging.getLogger(__name__)

__all__ = ["NeuralConfig", "embed", "evaluate_classifier", "predict_logposteriors", "run_neural_system",
           "stratified_split", "train_classifier"]


def _default_trainer() -> TrainerConfig:
    # CPU-sized: a few thousand steps of a small model fit in minutes on one core
    return TrainerConfig(epochs=10, batch_size=32, lr=1e-3, lr_patience=2, checkpoint_every=100,
                         loss_label="cross-entropy")


@dataclass
class NeuralConfig:
    """A neural classification system.

    Attributes:
        system: the architecture, a name of :data:`voxa.nn.models.MODEL_NAMES`.
        model: keyword overrides for :func:`voxa.nn.models.build_model`.
        trainer: :class:`voxa.nn.trainer.TrainerConfig` (CPU-friendly defaults here).
        crop: ``[min_frames, max_frames]`` random training crops (``None``: whole utterances).
        balance: draw every class equally often in training (for imbalanced labels).
        augment: waveform :class:`voxa.nn.data.Augment` settings; when active, training features are
            computed on the fly from the audio (``None``: stored features).
        valid_fraction: share of each class's training utterances held out for the validation loss,
            accuracy and best-model selection (0: validate on the training utterances).
        eval_batch_size: utterances per batch in prediction and embedding.
        top_k: the k of the top-k accuracy.
    """

    system: str = "xvector"
    model: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=_default_trainer)
    crop: tuple[int, int] | None = (100, 300)
    balance: bool = False
    augment: Augment | None = None
    valid_fraction: float = 0.1
    eval_batch_size: int = 64
    top_k: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.system, str) or not self.system:
            raise ConfigError(f"system={self.system!r} must name a model")
        if not isinstance(self.model, dict):
            raise ConfigError(f"model={self.model!r} must be a mapping of model settings")
        if self.crop is not None:
            self.crop = tuple(self.crop)  # type: ignore[assignment]
            if len(self.crop) != 2 or not 1 <= self.crop[0] <= self.crop[1]:
                raise ConfigError(f"crop={list(self.crop)!r} must be [min_frames, max_frames] with "
                                  f"1 <= min <= max")
        if not 0.0 <= float(self.valid_fraction) < 1.0:
            raise ConfigError(f"valid_fraction={self.valid_fraction!r} must be in [0, 1)")
        if self.eval_batch_size < 1 or self.top_k < 1:
            raise ConfigError("eval_batch_size and top_k must be at least 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> NeuralConfig:
        """From a mapping (a recipe's section); an unknown key is a ConfigError naming the valid ones.
        Trainer settings not given keep this system's CPU-friendly defaults, not TrainerConfig's."""
        from voxa.utils.config import from_dict

        if isinstance(d, dict) and isinstance(d.get("trainer"), dict):
            d = {**d, "trainer": {**dataclasses.asdict(_default_trainer()), **d["trainer"]}}
        return from_dict(cls, d)

    def to_dict(self) -> dict[str, Any]:
        from voxa.utils.config import to_dict

        return to_dict(self)


def stratified_split(labels: Sequence[int], fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices ``(train, valid)``: a seeded ``fraction`` of every class held out (at least one item of a
    class with two or more; a class with one item stays in training).

    Example:
        >>> stratified_split([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], 0.25)[1].__len__()
        3
    """
    if fraction <= 0:
        return list(range(len(labels))), []
    rng = np.random.default_rng(seed)
    by: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by[int(y)].append(i)
    train, valid = [], []
    for y in sorted(by):
        idx = rng.permutation(by[y]).tolist()
        n = min(len(idx) - 1, max(1, int(round(fraction * len(idx)))))
        valid += idx[:n]
        train += idx[n:]
    return sorted(train), sorted(valid)


def _encode(labels: Sequence[Any], class_names: Sequence[str] | None) -> tuple[list[int], list[str]]:
    """Class indices and names from string labels (or indices with names)."""
    if not labels:
        raise VoxaError("no training utterances")
    if all(isinstance(y, (int, np.integer)) and not isinstance(y, bool) for y in labels):
        n = int(max(labels)) + 1
        names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
        if len(names) < n or min(labels) < 0:
            raise VoxaError(f"labels run to {n - 1} but there are {len(names)} class names")
        return [int(y) for y in labels], names
    names = list(class_names) if class_names is not None else sorted({str(y) for y in labels})
    index = {c: i for i, c in enumerate(names)}
    unknown = sorted({str(y) for y in labels} - set(index))
    if unknown:
        raise VoxaError(f"label {unknown[0]!r} is not among the class names {names}")
    return [index[str(y)] for y in labels], names


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _batches(feats: Mapping[str, torch.Tensor], ids: Sequence[str], batch_size: int):
    missing = [u for u in ids if u not in feats]
    if missing:
        raise VoxaError(f"{len(missing)} utterance(s) have no features (e.g. {missing[0]})")
    for b in length_batches([int(feats[u].shape[0]) for u in ids], batch_size):
        x, lengths, _ = collate_padded([(feats[ids[i]], 0) for i in b])
        yield b, x, lengths


def _apply(model: nn.Module, feats: Mapping[str, torch.Tensor], ids: Sequence[str], batch_size: int,
           fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    was_training = model.training
    model.eval()
    dev = _device(model)
    out: list[torch.Tensor | None] = [None] * len(ids)
    try:
        with torch.no_grad():
            for b, x, lengths in _batches(feats, ids, batch_size):
                y = fn(x.to(dev), lengths.to(dev)).float().cpu()
                for j, i in enumerate(b):
                    out[i] = y[j]
    finally:
        model.train(was_training)
    if not ids:
        raise VoxaError("no utterances to score")
    return torch.stack(out)  # type: ignore[arg-type]


def predict_logposteriors(model: nn.Module, feats: Mapping[str, torch.Tensor], ids: Sequence[str],
                          batch_size: int = 64) -> torch.Tensor:
    """Class log-posteriors ``[N, C]`` of utterances ``ids`` (in that order), whole utterances batched by
    length, in eval mode without gradients.

    Example:
        >>> logp = predict_logposteriors(model, feats, ["u1", "u2"])  # doctest: +SKIP
        >>> logp.exp().sum(1)                                          # doctest: +SKIP
        tensor([1., 1.])
    """
    return _apply(model, feats, ids, batch_size, lambda x, n: F.log_softmax(model(x, n).float(), dim=-1))


def embed(model: nn.Module, feats: Mapping[str, torch.Tensor], ids: Sequence[str],
          labels: Sequence[str] | Mapping[str, dict[str, str]] | None = None, label_name: str = "label",
          batch_size: int = 64) -> VectorSet:
    """Utterance embeddings ``[N, E]`` (``model.embed``) as a :class:`voxa.utils.vectors.VectorSet`, the
    container the back-ends of :mod:`voxa.backends` score.

    Args:
        model: a trained classifier.
        feats: id to ``[T, D]`` features.
        ids: the utterances.
        labels: per-id label dicts (``{"u1": {"speaker": "s3"}}``), or one label per id stored under
            ``label_name``.
        label_name: the key of list ``labels``.
        batch_size: utterances per batch.

    Example:
        >>> vs = embed(model, feats, ids, labels=speakers, label_name="speaker")  # doctest: +SKIP
        >>> vs.X.shape, vs.label("speaker")[:2]                                   # doctest: +SKIP
        ((120, 512), ['s1', 's1'])
    """
    E = _apply(model, feats, ids, batch_size, lambda x, n: model.embed(x, n))
    if labels is None:
        lab: dict[str, dict[str, str]] = {}
    elif isinstance(labels, Mapping):
        lab = {u: dict(labels[u]) for u in ids if u in labels}
    else:
        if len(labels) != len(ids):
            raise VoxaError(f"{len(ids)} utterances but {len(labels)} labels")
        lab = {u: {label_name: str(y)} for u, y in zip(ids, labels)}
    return VectorSet(ids, E.double().numpy(), lab)


def _build(cfg: NeuralConfig, input_dim: int, n_classes: int, build: Callable | None) -> nn.Module:
    if build is None:
        try:
            from voxa.nn.models import MODEL_NAMES, build_model
        except ImportError as e:
            raise VoxaError(f"the neural models are not available ({e})") from None
        if cfg.system not in MODEL_NAMES:
            raise ConfigError(f"unknown system {cfg.system!r}; choose one of {', '.join(MODEL_NAMES)}")
        build = build_model
    return build(cfg.system, input_dim, n_classes, **cfg.model)


def train_classifier(feats: Mapping[str, torch.Tensor], train_ids: Sequence[str], train_labels: Sequence[Any],
                     cfg: NeuralConfig, exp: str | os.PathLike, state_dir: str | os.PathLike | None = None,
                     *, class_names: Sequence[str] | None = None, records: Mapping[str, Any] | None = None,
                     feature_cfg: Any = None, build: Callable[..., nn.Module] | None = None) -> nn.Module:
    """Train ``cfg.system`` on utterance features and return the best model (by validation loss).

    A stratified ``cfg.valid_fraction`` of every class is held out for the validation loss and accuracy
    logged per epoch; training resumes from ``exp/checkpoint.pt`` (or ``state_dir``'s) when one is there.
    The model is seeded by ``cfg.trainer.seed`` (torch's global generator is seeded with it).

    Args:
        feats: id to ``[T, D]`` features (all the same ``D``).
        train_ids: the training utterances.
        train_labels: their classes: names (strings) or indices into ``class_names``.
        cfg: the system.
        exp: output folder: ``checkpoint.pt``, ``best.pt``, ``train_log.csv``, ``curves.png``,
            ``model.safetensors`` (header: ``class_names``, ``system``, ``training``).
        state_dir: a second folder for the checkpoint and log (see :class:`voxa.nn.trainer.Trainer`).
        class_names: the class order (default: sorted names, or ``"0"..`` for indices).
        records: id to :class:`voxa.data.manifest.Record`, needed when ``cfg.augment`` is active (training
            features are then computed from the augmented audio with ``feature_cfg``).
        feature_cfg: the :class:`voxa.features.pipeline.FeatureConfig` of ``feats``.
        build: model factory ``(name, input_dim, num_classes, **overrides)`` (default
            :func:`voxa.nn.models.build_model`).

    Returns:
        The model in eval mode, with ``class_names`` and ``training_summary`` (epochs, steps, seconds,
        best validation loss, parameters, split sizes) attributes.

    Example:
        >>> cfg = NeuralConfig(system="xvector")
        >>> model = train_classifier(feats, ids, langs, cfg, "exp/x")  # doctest: +SKIP
    """
    if len(train_ids) != len(train_labels):
        raise VoxaError(f"{len(train_ids)} training utterances but {len(train_labels)} labels")
    y, names = _encode(list(train_labels), class_names)
    if len(set(y)) < 2:
        raise VoxaError("need at least two classes to classify")
    missing = [u for u in train_ids if u not in feats]
    if missing:
        raise VoxaError(f"{len(missing)} training utterance(s) have no features (e.g. {missing[0]})")
    dims = {int(feats[u].shape[1]) for u in train_ids}
    if len(dims) != 1:
        raise VoxaError(f"training features have different dimensions: {sorted(dims)}")
    input_dim = dims.pop()
    tc = cfg.trainer
    fit_idx, valid_idx = stratified_split(y, cfg.valid_fraction, tc.seed)
    fit_ids, fit_y = [train_ids[i] for i in fit_idx], [y[i] for i in fit_idx]
    valid_ids, valid_y = [train_ids[i] for i in valid_idx], [y[i] for i in valid_idx]
    if not valid_ids:  # nothing held out: the validation figures are training figures
        valid_ids, valid_y = fit_ids[:500], fit_y[:500]
    if len(fit_ids) < tc.batch_size:
        log.warning("batch size %d cut to the %d training utterances", tc.batch_size, len(fit_ids))
        tc = dataclasses.replace(tc, batch_size=len(fit_ids))

    if cfg.augment is not None and cfg.augment.active:
        if records is None or feature_cfg is None:
            raise ConfigError("augmentation needs the training records and feature settings (records=, "
                              "feature_cfg=)")
        lost = [u for u in fit_ids if u not in records]
        if lost:
            raise VoxaError(f"{len(lost)} training utterance(s) have no record (e.g. {lost[0]})")
        train_set: Any = WaveformDataset([records[u] for u in fit_ids], feature_cfg, fit_y,
                                         augment=cfg.augment, crop=cfg.crop, seed=tc.seed)
    else:
        train_set = UtteranceDataset(feats, fit_ids, fit_y, crop=cfg.crop, seed=tc.seed)
    if cfg.balance:
        train_set = BalancedDataset(train_set, fit_y, seed=tc.seed)

    torch.manual_seed(tc.seed)
    model = _build(cfg, input_dim, len(names), build)
    n_params = sum(p.numel() for p in model.parameters())
    valid_target = torch.tensor(valid_y)

    def loss_fn(net: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        # the Trainer moves only tensors and dicts to the device; a tuple batch travels here
        dev = _device(net)
        x, lengths, labels = (t.to(dev, non_blocking=True) for t in batch)
        return F.cross_entropy(net(x, lengths, labels).float(), labels)

    def valid_fn(net: nn.Module) -> dict[str, float]:
        logp = predict_logposteriors(net, feats, valid_ids, cfg.eval_batch_size)
        return {"loss": float(F.nll_loss(logp, valid_target)),
                "valid_accuracy": float((logp.argmax(1) == valid_target).float().mean())}

    trainer = Trainer(model, train_set, collate_padded, loss_fn, valid_fn, exp, tc, state_dir=state_dir)
    trainer.resume()
    summary = trainer.fit()
    trainer.load_best()
    model.class_names = names
    model.training_summary = {
        "epochs": summary["epochs"], "steps": summary["steps"], "best_valid_loss": summary["best_valid"],
        "seconds": round(float(summary["seconds"]), 2), "parameters": int(n_params),
        "n_fit": len(fit_ids), "n_valid": len(valid_idx)}
    if trainer.rank == 0:
        _save(model, Path(exp) / "model.safetensors", names, cfg)
    return model


def _save(model: nn.Module, path: Path, names: list[str], cfg: NeuralConfig) -> Path:
    extra = {"class_names": names, "system": cfg.system, "training": model.training_summary}
    if hasattr(model, "save"):
        return model.save(path, **extra)
    from voxa.utils.serialization import save_model

    # a plain module (a factory outside voxa.nn.models): its weights and the same header, no class tag
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return save_model(path, tensors, {"class": "voxa.nn.Weights", **extra})


def _topk(logp: torch.Tensor, y: torch.Tensor, k: int) -> float:
    k = min(k, logp.shape[1])
    return float((logp.topk(k, dim=1).indices == y[:, None]).any(1).float().mean())


def evaluate_classifier(model: nn.Module, feats: Mapping[str, torch.Tensor], test_ids: Sequence[str],
                        test_labels: Sequence[Any], class_names: Sequence[str],
                        exp: str | os.PathLike | None = None, lid: bool = False, top_k: int = 5,
                        batch_size: int = 64, title: str = "", logposteriors: torch.Tensor | None = None
                        ) -> dict[str, Any]:
    """Closed-set figures of a classifier on test utterances.

    Args:
        model: the classifier.
        feats: id to ``[T, D]`` features.
        test_ids: the test utterances.
        test_labels: their classes: names in ``class_names`` or indices.
        class_names: the model's class order.
        exp: if given, ``confusion.png`` and ``logposteriors.npy`` ``[N, C]`` are written there.
        lid: add the language-detection figures: Cavg, minimum Cavg and pooled EER of the detection
            LLRs :func:`voxa.metrics.scores_to_llr` makes of the log-posteriors (as
            :func:`voxa.tasks.lid.run_lid` scores its systems).
        top_k: the k of ``top{k}_accuracy`` (capped at the number of classes).
        batch_size: utterances per batch.
        title: the confusion matrix's title.
        logposteriors: precomputed ``[N, C]`` scores (then ``model`` and ``feats`` are not used).

    Returns:
        ``{"accuracy", "uar", "top5_accuracy", "per_class_recall", "n_test"}`` (``top{k}`` for other k),
        plus ``cavg``, ``min_cavg``, ``eer`` with ``lid``.

    Example:
        >>> import torch
        >>> logp = torch.tensor([[0.0, -1.0, -2.0], [-1.0, 0.0, -2.0], [-2.0, -1.0, 0.0]]).log_softmax(1)
        >>> r = evaluate_classifier(None, {}, ["a", "b", "c"], ["x", "x", "z"], ["x", "y", "z"],
        ...                         logposteriors=logp, top_k=2)
        >>> round(r["accuracy"], 3), r["uar"], r["top2_accuracy"]
        (0.667, 0.75, 1.0)
    """
    from voxa.metrics import confusion_matrix, per_class_recall, plot_confusion_matrix, uar

    names = [str(c) for c in class_names]
    if len(test_ids) != len(test_labels):
        raise VoxaError(f"{len(test_ids)} test utterances but {len(test_labels)} labels")
    y, _ = _encode(list(test_labels), names)
    if logposteriors is None:
        logposteriors = predict_logposteriors(model, feats, test_ids, batch_size)
    logp = torch.as_tensor(logposteriors).float()
    if logp.shape != (len(test_ids), len(names)):
        raise VoxaError(f"scores have shape {tuple(logp.shape)}, expected ({len(test_ids)}, {len(names)})")
    target = torch.tensor(y)
    pred = logp.argmax(1)
    ref_names = [names[i] for i in y]
    pred_names = [names[i] for i in pred.tolist()]
    # every class in the label set, so a prediction of a class the test set lacks counts as an error;
    # UAR leaves such classes (no recall to measure) out of its mean
    recall = per_class_recall(ref_names, pred_names, labels=names)
    out: dict[str, Any] = {
        "accuracy": float((pred == target).float().mean()),
        "uar": float(uar(ref_names, pred_names, labels=names)),
        f"top{top_k}_accuracy": _topk(logp, target, top_k),
        "per_class_recall": {str(k): float(v) for k, v in recall.items() if k in set(ref_names)},
        "n_test": len(test_ids),
    }
    if lid:
        from voxa.metrics import lid_metrics, scores_to_llr

        m = lid_metrics(scores_to_llr(logp.double().numpy()), y, None)
        out.update({"cavg": float(m["cavg"]), "min_cavg": float(m["min_cavg"]), "eer": float(m["eer"])})
    if exp is not None:
        exp = Path(exp)
        exp.mkdir(parents=True, exist_ok=True)
        cm, _ = confusion_matrix(ref_names, pred_names, labels=names)
        plot_confusion_matrix(cm, names, exp / "confusion.png", title=title or "confusion matrix")
        np.save(exp / "logposteriors.npy", logp.numpy())
    return out


def _label_of(r: Any, name: str) -> str | None:
    v = getattr(r, name, None) if name in ("speaker", "language", "emotion", "text") else None
    if v is None:
        v = (r.extra or {}).get(name)
    return None if v is None else str(v)


def run_neural_system(train_records: Sequence[Any], test_records: Sequence[Any], label_field: str,
                      feature_cfg: Any, cfg: NeuralConfig, exp: str | os.PathLike,
                      state_dir: str | os.PathLike | None = None, lid: bool | None = None,
                      build: Callable[..., nn.Module] | None = None) -> Any:
    """Features, training, evaluation: one neural system from manifests to ``exp/results.json``.

    Args:
        train_records: training utterances (:class:`voxa.data.manifest.Record`).
        test_records: test utterances.
        label_field: the record field (``language``, ``speaker``, ``emotion``) or ``extra`` key holding
            the class.
        feature_cfg: the :class:`voxa.features.pipeline.FeatureConfig`.
        cfg: the system.
        exp: output folder (features under ``feats/``, the model, logs, ``confusion.png``,
            ``results.json``).
        state_dir: a second checkpoint folder (see :func:`train_classifier`).
        lid: report Cavg/EER (default: when ``label_field`` is ``language``).
        build: the model factory (see :func:`train_classifier`).

    Returns:
        :class:`voxa.tasks.results.Results`: accuracy, UAR, top-5 accuracy (and Cavg/EER), sizes,
        classes, parameter count, training and total seconds, the settings.

    Example:
        >>> cfg = NeuralConfig(system="resnet-asp")
        >>> res = run_neural_system(train, test, "language", FeatureConfig(), cfg, "exp/n")  # doctest: +SKIP
    """
    from voxa.features.cache import load_features, with_features
    from voxa.tasks.results import finish

    t0 = time.perf_counter()
    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    for what, recs in (("training", train_records), ("test", test_records)):
        if not recs:
            raise VoxaError(f"no {what} utterances")
        bad = [r.id for r in recs if _label_of(r, label_field) is None]
        if bad:
            raise VoxaError(f"{bad[0]}: no {label_field!r} label ({len(bad)} {what} utterance(s) "
                            f"without one)")
    feats = load_features(list(train_records) + list(test_records), feature_cfg, exp / "feats")
    train = with_features(train_records, feats, "training set")
    test = with_features(test_records, feats, "test set")
    train_labels = [_label_of(r, label_field) for r in train]
    names = sorted(set(train_labels))
    unknown = sorted({_label_of(r, label_field) for r in test} - set(names))
    if unknown:
        raise VoxaError(f"test {label_field}(s) {', '.join(unknown[:5])} have no training utterances")
    model = train_classifier(feats, [r.id for r in train], train_labels, cfg, exp, state_dir,
                             class_names=names, records={r.id: r for r in train}, feature_cfg=feature_cfg,
                             build=build)
    lid = (label_field == "language") if lid is None else lid
    t1 = time.perf_counter()
    m = evaluate_classifier(model, feats, [r.id for r in test], [_label_of(r, label_field) for r in test],
                            names, exp=exp, lid=lid, top_k=cfg.top_k, batch_size=cfg.eval_batch_size,
                            title=f"{label_field} ID: {cfg.system}")
    ts = model.training_summary
    results = {"system": cfg.system, "label": label_field, **m, "classes": names,
               "n_train": ts["n_fit"], "n_valid": ts["n_valid"], "parameters": ts["parameters"],
               "epochs": ts["epochs"], "steps": ts["steps"], "best_valid_loss": ts["best_valid_loss"],
               "train_seconds": ts["seconds"], "eval_seconds": round(time.perf_counter() - t1, 2),
               "seconds_total": round(time.perf_counter() - t0, 1), "config": cfg.to_dict(),
               "features": feature_cfg.to_dict()}
    try:
        from voxa.nn import figures

        figures.system_figures(model, feats, [r.id for r in test], [_label_of(r, label_field) for r in test],
                               names, exp, batch_size=cfg.eval_batch_size)
    except Exception as e:  # the figures are a by-product: a plotting failure must not lose the results
        log.warning("system figures not written: %s", e)
    return finish(exp, results, title=f"{label_field} ID: {cfg.system}")
