"""Figures of a neural classifier beside its numbers: frame posteriors, attention, embedding maps.

- :func:`plot_frame_posteriors`: the frame DNN's per-frame class posteriors over one utterance, stacked
  (they sum to one), under its spectrogram when the waveform is given.
- :func:`frame_attention` / :func:`plot_attention`: the attentive pooling's weights, stretched to the
  input frames when the encoder subsamples time, drawn over the spectrogram (or the features).
- :func:`plot_embeddings`: utterance embeddings projected to 2-D (PCA or t-SNE), coloured by class.
- :func:`system_figures`: the figures :func:`voxa.tasks.neural.run_neural_system` writes beside
  ``results.json``.

Every plotting function writes a PNG atomically (:func:`voxa.plots.save_figure`) and returns its path.
Frames are taken as 10 ms apart (100 frames/s), the hop of every voxa feature recipe.

Example:
    >>> import torch, tempfile, os
    >>> from voxa.nn.models import build_model
    >>> model = build_model("dnn", 8, 3, hidden=8, layers=1, context=1)
    >>> out = tempfile.mkdtemp()
    >>> plot_frame_posteriors(model, torch.randn(50, 8), ["a", "b", "c"], os.path.join(out, "p.png")).name
    'p.png'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from voxa.errors import VoxaError
from voxa.utils.vectors import VectorSet

log = logging.getLogger(__name__)

__all__ = ["FRAME_RATE", "frame_attention", "plot_attention", "plot_embeddings", "plot_frame_posteriors",
           "project_2d", "system_figures"]

#: feature frames per second (10 ms hop)
FRAME_RATE = 100.0
_MAX_LINES = 8  # classes drawn by name in a posterior plot; the rest are summed into "other"
_MAX_LEGEND = 20  # classes named in an embedding map's legend


def _as_frames(feats: Any) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(feats) if not isinstance(feats, torch.Tensor) else feats).float()
    if x.ndim != 2 or x.shape[0] < 1:
        raise VoxaError(f"features must be [frames, dims], got shape {tuple(x.shape)}")
    return x


def _run(model: nn.Module, fn_name: str, feats: Any) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``model.<fn_name>(x[None], [T])`` in eval mode without gradients (the model's mode restored)."""
    x = _as_frames(feats)
    fn = getattr(model, fn_name, None)
    if fn is None:
        return None, x
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = fn(x[None].to(dev), torch.tensor([x.shape[0]], device=dev))
    finally:
        model.train(was_training)
    return (None if out is None else out[0].float().cpu()), x


def _background(ax: Any, x: torch.Tensor, waveform: Any, rate: int | None) -> None:
    """The spectrogram of ``waveform`` (or the feature matrix ``x``) as an image on seconds."""
    from voxa.plots import plt

    if waveform is not None:
        from voxa.features import spectrogram

        if not rate:
            raise VoxaError("a waveform needs its sample rate (rate=)")
        spec = spectrogram(torch.as_tensor(np.asarray(waveform)).reshape(-1).float(), int(rate)).T.numpy()
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                  extent=[0, spec.shape[1] / FRAME_RATE, 0, rate / 2000])
        ax.set_ylabel("frequency (kHz)")
    else:
        img = x.T.numpy()
        # per-dim normalisation, else the first coefficient (energy-like) swamps the colour scale
        img = (img - img.mean(1, keepdims=True)) / (img.std(1, keepdims=True) + 1e-8)
        ax.imshow(img, origin="lower", aspect="auto", cmap=plt.get_cmap("viridis"),
                  extent=[0, x.shape[0] / FRAME_RATE, 0, x.shape[1]])
        ax.set_ylabel("feature dim (normalised)")


def plot_frame_posteriors(model: nn.Module, feats: Any, class_names: Sequence[str], path: str | os.PathLike,
                          waveform: Any = None, rate: int | None = None, title: str = "") -> Path:
    """Per-frame class posteriors over one utterance, stacked (the DNN LID figure).

    The classes with the highest mean posterior are drawn by name (at most 8; the others are summed into
    "other"), one band each on top of the previous, so the top line is 1 and a band's thickness is that
    class's posterior at that frame.

    Args:
        model: a model with ``frame_posteriors`` (the frame DNN, :class:`voxa.nn.models.FrameDNN`).
        feats: the utterance's features ``[T, D]``.
        class_names: the model's class order.
        path: the PNG to write.
        waveform: the utterance's samples; its spectrogram is drawn above the posteriors.
        rate: the waveform's sample rate.
        title: the figure's title (default: the utterance-level decision).

    Raises:
        VoxaError: the model has no frame posteriors, or the class names do not match its outputs.

    Example:
        >>> from voxa.nn.models import build_model
        >>> plot_frame_posteriors(build_model("xvector", 8, 2), torch.randn(30, 8), ["a", "b"], "p.png")
        Traceback (most recent call last):
        ...
        voxa.errors.VoxaError: XVector has no frame-level posteriors (only the frame DNN, 'dnn', has)
    """
    from voxa.plots import plt, save_figure

    post, x = _run(model, "frame_posteriors", feats)
    if post is None:
        raise VoxaError(f"{type(model).__name__} has no frame-level posteriors (only the frame DNN, "
                        f"'dnn', has)")
    P = post.numpy()
    names = [str(c) for c in class_names]
    if P.shape[1] != len(names):
        raise VoxaError(f"the model has {P.shape[1]} classes but {len(names)} class names were given")
    mean = P.mean(0)
    keep = np.argsort(-mean, kind="stable")[:_MAX_LINES]
    bands = [P[:, i] for i in keep]
    labels = [names[i] for i in keep]
    if len(names) > len(keep):
        bands.append(P.sum(1) - np.sum(bands, axis=0))
        labels.append(f"other ({len(names) - len(keep)})")
    t = (np.arange(P.shape[0]) + 0.5) / FRAME_RATE

    rows = 2 if waveform is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(9, 3.2 * rows + 0.6), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [1.2, 1] if rows == 2 else [1]})
    axes = axes[:, 0]
    if waveform is not None:
        _background(axes[0], x, waveform, rate)
    ax = axes[-1]
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(bands))]
    if len(bands) > len(keep):
        colours[-1] = (0.7, 0.7, 0.7, 1.0)
    ax.stackplot(t, np.stack(bands), labels=labels, colors=colours, alpha=0.85, edgecolor="white", lw=0.3)
    ax.set_ylim(0, 1)
    ax.set_xlim(0, P.shape[0] / FRAME_RATE)
    ax.set_ylabel("frame posterior")
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes[0].set_title(title or f"frame posteriors (mean: {names[int(mean.argmax())]} "
                               f"{float(mean.max()):.2f})")
    return save_figure(fig, path)


def frame_attention(model: nn.Module, feats: Any) -> np.ndarray | None:
    """The attention weights over the input frames ``[T]`` of one utterance (``None`` without attention).

    A model whose encoder subsamples time by ``s`` (``T' = ceil(T / s)`` frames) has each weight spread
    evenly over the ``s`` input frames its encoder frame covers, so the result still sums to 1.

    Example:
        >>> from voxa.nn.models import build_model
        >>> w = frame_attention(build_model("resnet-sap", 8, 2, width=2), torch.randn(30, 8))
        >>> w.shape, round(float(w.sum()), 4)
        ((30,), 1.0)
    """
    w, x = _run(model, "attention_weights", feats)
    if w is None:
        return None
    t, t_enc = x.shape[0], w.shape[0]
    if t_enc == t:
        return w.numpy().astype(np.float64)
    stride = getattr(getattr(model, "backbone", None), "time_stride", None) or -(-t // t_enc)
    owner = np.minimum(np.arange(t) // int(stride), t_enc - 1)
    cover = np.bincount(owner, minlength=t_enc).astype(np.float64)
    return w.numpy().astype(np.float64)[owner] / np.maximum(cover[owner], 1)


def plot_attention(model: nn.Module, feats: Any, path: str | os.PathLike, waveform: Any = None,
                   rate: int | None = None, title: str = "") -> Path:
    """The attentive pooling's weights over one utterance, drawn over its spectrogram.

    Args:
        model: a model whose ``attention_weights`` are not ``None`` (``dnn-attention``, ``res-tdnn``,
            ``lstm`` with SAP, the CNNs with ``sap``/``mha``/``asp`` pooling).
        feats: the utterance's features ``[T, D]``.
        path: the PNG to write.
        waveform: the utterance's samples; without it the (per-dim normalised) features are the
            background.
        rate: the waveform's sample rate.
        title: the figure's title.

    Raises:
        VoxaError: the model has no attention.

    Example:
        >>> from voxa.nn.models import build_model
        >>> plot_attention(build_model("resnet-tap", 8, 2, width=2), torch.randn(30, 8), "a.png")
        Traceback (most recent call last):
        ...
        voxa.errors.VoxaError: CNNClassifier (tap pooling) has no attention weights to plot
    """
    from voxa.plots import plt, save_figure

    w = frame_attention(model, feats)
    x = _as_frames(feats)
    if w is None:
        pooling = getattr(getattr(model, "cfg", None), "pooling", None)
        what = f"{type(model).__name__}" + (f" ({pooling} pooling)" if pooling else "")
        raise VoxaError(f"{what} has no attention weights to plot")
    fig, ax = plt.subplots(figsize=(9, 4))
    _background(ax, x, waveform, rate)
    t = np.arange(len(w) + 1) / FRAME_RATE
    over = ax.twinx()
    # weights per input frame: T' encoder frames become steps s frames wide
    over.stairs(w, t, color="#00e5ff", lw=1.6, fill=False, label="attention")
    over.stairs(w, t, color="#00e5ff", alpha=0.25, fill=True)
    over.set_ylim(0, float(w.max()) * 1.15 if w.max() > 0 else 1.0)
    over.set_ylabel("attention weight per frame")
    ax.set_xlim(0, x.shape[0] / FRAME_RATE)
    ax.set_xlabel("time (s)")
    stride = getattr(getattr(model, "backbone", None), "time_stride", 1)
    ax.set_title(title or f"attention over {x.shape[0]} frames" +
                 (f" (encoder stride {stride})" if stride > 1 else ""))
    return save_figure(fig, path)


def project_2d(X: Any, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str, str]:
    """``X [N, E]`` projected to ``[N, 2]`` with the two axes' labels.

    PCA is the SVD of the centred vectors (the axes say the variance share they explain); t-SNE is
    scikit-learn's, PCA-initialised and seeded, with the perplexity cut below ``N``.

    Example:
        >>> Y, xl, yl = project_2d(np.random.default_rng(0).normal(size=(10, 5)))
        >>> Y.shape, xl.startswith("PC 1")
        ((10, 2), True)
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise VoxaError(f"need at least two vectors [N, E] to project, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise VoxaError("the vectors hold non-finite values")
    if method == "pca":
        Xc = X - X.mean(0)
        _, s, vt = np.linalg.svd(Xc, full_matrices=False)
        Y = Xc @ vt[:2].T
        if Y.shape[1] < 2:  # one-dim vectors: a flat second axis
            Y = np.concatenate([Y, np.zeros((len(Y), 1))], 1)
        var = s ** 2 / max(float((s ** 2).sum()), 1e-300)
        var = np.concatenate([var, np.zeros(2)])
        return Y, f"PC 1 ({100 * var[0]:.0f}%)", f"PC 2 ({100 * var[1]:.0f}%)"
    if method == "tsne":
        from sklearn.manifold import TSNE

        n = X.shape[0]
        if n < 4:
            raise VoxaError(f"t-SNE needs at least 4 vectors, got {n}")
        perplexity = float(min(30.0, (n - 1) / 3))
        Y = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
        return Y, "t-SNE 1", "t-SNE 2"
    raise VoxaError(f"unknown projection {method!r}; choose pca or tsne")


def plot_embeddings(vectors: VectorSet | tuple[Any, Sequence[Any]], path: str | os.PathLike,
                    method: str = "pca", title: str = "", label: str | None = None) -> Path:
    """Utterance embeddings projected to 2-D, one colour per class, with a legend.

    Args:
        vectors: a :class:`voxa.utils.vectors.VectorSet` (coloured by its ``label`` labels) or
            ``(X [N, E], labels [N])``.
        path: the PNG to write.
        method: ``pca`` (numpy SVD) or ``tsne`` (scikit-learn).
        title: the figure's title.
        label: the VectorSet's label to colour by (default: its first label name).

    Raises:
        VoxaError: fewer than two vectors (four for t-SNE), mismatched labels or an unknown method.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(20, 4))
        >>> plot_embeddings((X, ["a", "b"] * 10), "emb.png").name  # doctest: +SKIP
        'emb.png'
    """
    from voxa.plots import plt, save_figure

    if isinstance(vectors, VectorSet):
        if label is None:
            label = next((k for lab in vectors.labels.values() for k in lab), None)
        X = vectors.X
        ys = vectors.label(label) if label is not None else [None] * len(vectors)
    else:
        X, ys = vectors
        ys = list(ys)
    X = np.asarray(X)
    if len(ys) != len(X):
        raise VoxaError(f"{len(X)} vectors but {len(ys)} labels")
    ys = ["?" if y is None else str(y) for y in ys]
    Y, xlabel, ylabel = project_2d(X, method)
    classes = sorted(set(ys))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7, 6))
    ya = np.asarray(ys)
    for i, c in enumerate(classes):
        sel = ya == c
        ax.scatter(Y[sel, 0], Y[sel, 1], s=14, alpha=0.8, color=cmap(i % cmap.N),
                   label=c if i < _MAX_LEGEND else None, edgecolors="none")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    extra = f" (+{len(classes) - _MAX_LEGEND} classes not named)" if len(classes) > _MAX_LEGEND else ""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title=(label or "class") + extra, title_fontsize=8)
    ax.set_title(title or f"{len(X)} embeddings, {method.upper() if method == 'pca' else 't-SNE'}")
    return save_figure(fig, path)


def system_figures(model: nn.Module, feats: Mapping[str, torch.Tensor], test_ids: Sequence[str],
                   test_labels: Sequence[Any], class_names: Sequence[str], exp: str | os.PathLike,
                   max_points: int = 1000, batch_size: int = 64) -> dict[str, Path]:
    """The figures of a trained system over its test set, in ``exp``.

    ``embeddings_pca.png`` always (at most ``max_points`` test utterances, evenly spread over the list,
    so a large test set costs one bounded extra pass); ``attention.png`` for a model with attention and
    ``frame_posteriors.png`` for the frame DNN, both on the first test utterance.

    Args:
        model: the trained classifier.
        feats: id to ``[T, D]`` features.
        test_ids: the test utterances.
        test_labels: their classes: names, or indices into ``class_names``.
        class_names: the model's class order.
        exp: the output folder.
        max_points: most utterances in the embedding map.
        batch_size: utterances per batch when embedding.

    Returns:
        Figure name (``embeddings_pca``, ``attention``, ``frame_posteriors``) to the path written.

    Example:
        >>> paths = system_figures(model, feats, test_ids, test_labels, names, "exp/lid-x")  # doctest: +SKIP
        >>> sorted(paths)                                                                    # doctest: +SKIP
        ['attention', 'embeddings_pca']
    """
    from voxa.tasks.neural import embed

    if not test_ids:
        raise VoxaError("no test utterances to draw")
    if len(test_ids) != len(test_labels):
        raise VoxaError(f"{len(test_ids)} test utterances but {len(test_labels)} labels")
    names = [str(c) for c in class_names]

    def name_of(y: Any) -> str:
        if isinstance(y, (int, np.integer)) and not isinstance(y, bool) and 0 <= int(y) < len(names):
            return names[int(y)]
        return str(y)

    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    pick = np.unique(np.linspace(0, len(test_ids) - 1, min(len(test_ids), max_points)).round().astype(int))
    ids = [test_ids[i] for i in pick]
    vs = embed(model, feats, ids, labels=[name_of(test_labels[i]) for i in pick], label_name="class",
               batch_size=batch_size)
    out = {"embeddings_pca": plot_embeddings(vs, exp / "embeddings_pca.png", "pca",
                                             title=f"test embeddings ({len(ids)} utterances), PCA")}
    first, label = test_ids[0], name_of(test_labels[0])
    x = feats[first]
    if frame_attention(model, x) is not None:
        out["attention"] = plot_attention(model, x, exp / "attention.png",
                                          title=f"attention: {first} ({label})")
    if _run(model, "frame_posteriors", x)[0] is not None:
        out["frame_posteriors"] = plot_frame_posteriors(model, x, names, exp / "frame_posteriors.png",
                                                        title=f"frame posteriors: {first} ({label})")
    return out
