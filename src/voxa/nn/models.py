"""Utterance classifiers (language, speaker, emotion, ...) over frame features, all with one interface.

Every model takes ``x [B, T, input_dim]`` with ``lengths [B]`` and offers:

* ``forward(x, lengths, labels=None) -> logits [B, num_classes]`` (``labels`` only matter to an AAM
  head in training),
* ``embed(x, lengths) -> [B, E]``, the utterance vector before the classifier (x-vector style scoring),
* ``attention_weights(x, lengths) -> [B, T'] | None``, the attentive pooling's frame weights (``T'`` the
  encoder's frames; ``None`` without attention),
* ``frame_posteriors(x, lengths) -> [B, T, C] | None`` (the frame-level DNN only).

The models are :class:`~voxa.nn.saving.SavedModule` s with a dataclass config, so ``model.save(path)``
and ``voxa.load(path)`` round-trip them. :func:`build_model` builds one by a short name
(:data:`MODEL_NAMES`, for ``--system`` flags) with config overrides. Defaults are sized to train on a
CPU; the docstrings give the published sizes.

Example:
    >>> import torch
    >>> model = build_model("resnet-sap", input_dim=8, num_classes=3, width=4).eval()
    >>> x, n = torch.randn(2, 30, 8), torch.tensor([30, 17])
    >>> tuple(model(x, n).shape), tuple(model.embed(x, n).shape), tuple(model.attention_weights(x, n).shape)
    ((2, 3), (2, 128), (2, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from voxa.errors import ConfigError
from voxa.nn import layers as L
from voxa.nn.heads import HEADS, AAMSoftmaxHead, SoftmaxHead
from voxa.nn.pooling import POOLINGS, build_pooling
from voxa.nn.saving import SavedModule
from voxa.utils.config import from_dict
from voxa.utils.serialization import register

__all__ = ["MODEL_NAMES", "MODELS", "CNNClassifier", "CNNConfig", "DNNAttention", "DNNAttentionConfig",
           "FrameDNN", "FrameDNNConfig", "LSTMClassifier", "LSTMConfig", "ResTDNN", "ResTDNNConfig",
           "UtteranceClassifier", "XVector", "XVectorConfig", "build_model", "frame_mlp", "splice"]


def _choice(what: str, value: str, options: Any) -> None:
    if value not in options:
        raise ConfigError(f"unknown {what} {value!r}; choose one of: {', '.join(options)}")


def _positive(**values: int) -> None:
    for k, v in values.items():
        if v < 1:
            raise ConfigError(f"{k} must be at least 1, got {v}")


def splice(x: torch.Tensor, lengths: torch.Tensor, k: int) -> torch.Tensor:
    """Each frame stacked with its ``k`` neighbours on either side: ``[B, T, D] -> [B, T, (2k+1) D]``.

    Neighbours beyond an utterance's ends are zeros (padded frames are zeroed first, so a batch's padding
    splices as the utterance alone).

    Example:
        >>> splice(torch.arange(3.0).view(1, 3, 1), torch.tensor([2]), 1).squeeze(0).tolist()
        [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    x = x * L.lengths_to_mask(lengths, x.shape[1])[:, :, None].to(x.dtype)
    if k == 0:
        return x
    b, t, d = x.shape
    win = F.pad(x, (0, 0, k, k)).unfold(1, 2 * k + 1, 1)  # [B, T, D, 2k+1]
    return win.transpose(2, 3).reshape(b, t, (2 * k + 1) * d)


def frame_mlp(in_dim: int, hidden: int, layers: int, dropout: float) -> nn.Sequential:
    """Per-frame hidden layers (affine, ReLU, layer norm): ``[..., in_dim] -> [..., hidden]``. Nothing
    mixes frames, so padding is inert; the frame classifiers here and the DNN-HMM hybrid share it.

    Example:
        >>> import torch
        >>> frame_mlp(39, 64, 2, 0.0)(torch.randn(4, 100, 39)).shape
        torch.Size([4, 100, 64])
    """
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ReLU(), nn.LayerNorm(hidden)]
        if dropout:
            mods.append(nn.Dropout(dropout))
    return nn.Sequential(*mods)


def _head(cfg: Any, in_dim: int) -> nn.Module:
    if cfg.head == "aam":
        return AAMSoftmaxHead(in_dim, cfg.num_classes, cfg.margin, cfg.scale)
    return SoftmaxHead(in_dim, cfg.num_classes)


def _post(cfg: Any) -> nn.Module:
    # an AAM head scores the embedding's direction, so it gets the affine output itself; a softmax head
    # gets a non-linearity between the two affine layers
    return nn.Identity() if cfg.head == "aam" else nn.Sequential(nn.ReLU(), nn.BatchNorm1d(cfg.emb_dim))


class UtteranceClassifier(SavedModule):
    """Shared interface: ``encode`` (frames) -> ``pool`` -> ``embedding`` -> ``post`` -> ``head``.

    Subclasses set ``self.pool``, ``self.embedding``, ``self.post`` and ``self.head`` and define
    ``encode(x, lengths) -> (h [B, T', D], lengths' [B])``.
    """

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The utterance embedding ``[B, E]`` (the input of the classifier layers)."""
        h, n = self.encode(x, lengths)
        return self.embedding(self.pool(h, n))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Logits ``[B, num_classes]``; ``labels [B]`` let an AAM head apply its margin in training."""
        return self.head(self.post(self.embed(x, lengths)), labels)

    def attention_weights(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """The attentive pooling's weights ``[B, T']`` over the encoder's frames (0 on padding), or
        ``None`` when the pooling has no attention."""
        if not getattr(self.pool, "attentive", False):
            return None
        h, n = self.encode(x, lengths)
        return self.pool(h, n, return_weights=True)[1]

    def frame_posteriors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Frame-level class posteriors ``[B, T, C]``; ``None`` for models without frame outputs."""
        return None


# ---------------------------------------------------------------------------------------------- frame DNN
@dataclass
class FrameDNNConfig:
    """Frame-level DNN: ``context`` frames either side are spliced, ``layers`` hidden layers of
    ``hidden`` units, a frame softmax over ``num_classes``."""

    input_dim: int = 40
    num_classes: int = 2
    context: int = 5
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, hidden=self.hidden,
                  layers=self.layers)


@register("voxa.nn.FrameDNN")
class FrameDNN(UtteranceClassifier):
    """Feed-forward DNN over spliced frames with frame-level posteriors.

    The utterance's logits are the log of its frame posteriors averaged over valid frames (posterior
    averaging), so ``softmax(logits)`` is that average and a cross-entropy on them trains the DNN
    through it. ``embed`` is the mean of the last hidden layer over valid frames.

    Example:
        >>> m = FrameDNN(FrameDNNConfig(input_dim=4, num_classes=3, context=1, hidden=8, layers=1)).eval()
        >>> x, n = torch.randn(2, 6, 4), torch.tensor([6, 3])
        >>> tuple(m.frame_posteriors(x, n).shape), torch.allclose(m(x, n).exp().sum(1), torch.ones(2))
        ((2, 6, 3), True)
    """

    config_class = FrameDNNConfig

    def __init__(self, cfg: FrameDNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or FrameDNNConfig()
        self.mlp = frame_mlp((2 * c.context + 1) * c.input_dim, c.hidden, c.layers, c.dropout)
        self.out = nn.Linear(c.hidden, c.num_classes)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(splice(x, lengths, self.cfg.context)), lengths

    def embed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h, n = self.encode(x, lengths)
        return L.masked_mean(h, L.lengths_to_mask(n, h.shape[1])[:, :, None], dim=1)

    def frame_posteriors(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h, n = self.encode(x, lengths)
        return torch.softmax(self.out(h), -1) * L.lengths_to_mask(n, h.shape[1])[:, :, None].to(h.dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        post = self.frame_posteriors(x, lengths)
        avg = post.sum(1) / lengths.clamp(min=1)[:, None].to(post.dtype)
        return avg.clamp(min=1e-10).log()

    def attention_weights(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        return None


# ------------------------------------------------------------------------------------------ DNN + attention
@dataclass
class DNNAttentionConfig:
    """Frame DNN hidden layers, self-attentive pooling to a context vector, embedding, classifier."""

    input_dim: int = 40
    num_classes: int = 2
    context: int = 5
    hidden: int = 256
    layers: int = 3
    att_hidden: int = 64
    emb_dim: int = 128
    head: str = "softmax"
    margin: float = 0.2
    scale: float = 30.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _choice("head", self.head, HEADS)
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, hidden=self.hidden,
                  layers=self.layers, att_hidden=self.att_hidden, emb_dim=self.emb_dim)


@register("voxa.nn.DNNAttention")
class DNNAttention(UtteranceClassifier):
    """Frame DNN whose hidden frames are pooled by attention (SAP) into one context vector.

    Example:
        >>> m = DNNAttention(DNNAttentionConfig(input_dim=4, num_classes=3, context=1, hidden=8,
        ...                                     layers=1, att_hidden=4, emb_dim=6)).eval()
        >>> m.attention_weights(torch.randn(2, 5, 4), torch.tensor([5, 2]))[1].tolist()[2:]
        [0.0, 0.0, 0.0]
    """

    config_class = DNNAttentionConfig

    def __init__(self, cfg: DNNAttentionConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or DNNAttentionConfig()
        self.mlp = frame_mlp((2 * c.context + 1) * c.input_dim, c.hidden, c.layers, c.dropout)
        self.pool = build_pooling("sap", c.hidden, hidden=c.att_hidden)
        self.embedding = nn.Linear(c.hidden, c.emb_dim)
        self.post = _post(c)
        self.head = _head(c, c.emb_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(splice(x, lengths, self.cfg.context)), lengths


# ---------------------------------------------------------------------------------------------- LSTM
@dataclass
class LSTMConfig:
    """(B)LSTM encoder, ``tap`` or ``sap`` pooling, embedding, classifier."""

    input_dim: int = 40
    num_classes: int = 2
    hidden: int = 128
    layers: int = 2
    bidirectional: bool = True
    pooling: str = "tap"
    att_hidden: int = 64
    emb_dim: int = 128
    head: str = "softmax"
    margin: float = 0.2
    scale: float = 30.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        _choice("pooling", self.pooling, ("tap", "sap"))
        _choice("head", self.head, HEADS)
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, hidden=self.hidden,
                  layers=self.layers, emb_dim=self.emb_dim)


@register("voxa.nn.LSTMClassifier")
class LSTMClassifier(UtteranceClassifier):
    """BLSTM over packed sequences, average (TAP) or self-attentive (SAP) pooling, classifier.

    Example:
        >>> m = LSTMClassifier(LSTMConfig(input_dim=4, num_classes=3, hidden=5, layers=1, emb_dim=6))
        >>> m.eval()(torch.randn(2, 7, 4), torch.tensor([7, 3])).shape
        torch.Size([2, 3])
    """

    config_class = LSTMConfig

    def __init__(self, cfg: LSTMConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or LSTMConfig()
        self.encoder = L.LSTMEncoder(c.input_dim, c.hidden, c.layers, c.bidirectional, c.dropout)
        d = self.encoder.out_dim
        self.pool = build_pooling(c.pooling, d, hidden=c.att_hidden)
        self.embedding = nn.Linear(self.pool.out_dim(d), c.emb_dim)
        self.post = _post(c)
        self.head = _head(c, c.emb_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, lengths)


# ---------------------------------------------------------------------------------------------- residual TDNN
@dataclass
class ResTDNNConfig:
    """Attention-based residual TDNN: a TDNN layer (context 5), one residual block per entry of
    ``dilations`` (``channels`` wide, squeeze-excitation of ``se_bottleneck`` units, 0 for none), a 1x1
    TDNN to ``pool_channels``, attentive statistics pooling, embedding, classifier. ECAPA-like published
    sizes are ``channels=512``, ``pool_channels=1536``, ``emb_dim=192``."""

    input_dim: int = 40
    num_classes: int = 2
    channels: int = 256
    dilations: tuple[int, ...] = (2, 3, 4)
    context: int = 3
    se_bottleneck: int = 64
    pool_channels: int = 512
    att_hidden: int = 128
    emb_dim: int = 128
    head: str = "softmax"
    margin: float = 0.2
    scale: float = 30.0

    def __post_init__(self) -> None:
        _choice("head", self.head, HEADS)
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, channels=self.channels,
                  pool_channels=self.pool_channels, emb_dim=self.emb_dim)
        if self.context < 1 or self.context % 2 == 0:
            raise ConfigError(f"context must be a positive odd number of frames, got {self.context}")


@register("voxa.nn.ResTDNN")
class ResTDNN(UtteranceClassifier):
    """Residual TDNN blocks with squeeze-excitation, attentive statistics pooling, embedding.

    Example:
        >>> m = ResTDNN(ResTDNNConfig(input_dim=4, num_classes=3, channels=6, dilations=(2,),
        ...                           se_bottleneck=2, pool_channels=8, att_hidden=4, emb_dim=5)).eval()
        >>> m.embed(torch.randn(2, 9, 4), torch.tensor([9, 4])).shape
        torch.Size([2, 5])
    """

    config_class = ResTDNNConfig

    def __init__(self, cfg: ResTDNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or ResTDNNConfig()
        self.first = L.TDNNLayer(c.input_dim, c.channels, context=5)
        se = c.se_bottleneck or None
        self.blocks = nn.ModuleList(L.ResTDNNBlock(c.channels, c.channels, c.context, d, se)
                                    for d in c.dilations)
        self.last = L.TDNNLayer(c.channels, c.pool_channels, context=1)
        self.pool = build_pooling("asp", c.pool_channels, hidden=c.att_hidden)
        self.embedding = nn.Sequential(nn.Linear(2 * c.pool_channels, c.emb_dim), nn.BatchNorm1d(c.emb_dim))
        self.post = _post(c)
        self.head = _head(c, c.emb_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = L.lengths_to_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        h = self.first.forward_channels(x.transpose(1, 2), mask)
        for blk in self.blocks:
            h = blk.forward_channels(h, mask)
        return self.last.forward_channels(h, mask).transpose(1, 2), lengths


# ---------------------------------------------------------------------------------------------- x-vector
@dataclass
class XVectorConfig:
    """X-vector (Snyder et al., 2018): five TDNN layers (``contexts`` / ``dilations``; ``hidden`` wide, the
    fifth ``stats_dim``), statistics pooling, two ``emb_dim`` embedding layers, classifier. The
    published sizes are ``hidden=512``, ``stats_dim=1500``, ``emb_dim=512``."""

    input_dim: int = 40
    num_classes: int = 2
    hidden: int = 256
    stats_dim: int = 768
    emb_dim: int = 128
    contexts: tuple[int, ...] = (5, 3, 3, 1, 1)
    dilations: tuple[int, ...] = (1, 2, 3, 1, 1)
    head: str = "softmax"
    margin: float = 0.2
    scale: float = 30.0

    def __post_init__(self) -> None:
        _choice("head", self.head, HEADS)
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, hidden=self.hidden,
                  stats_dim=self.stats_dim, emb_dim=self.emb_dim)
        if len(self.contexts) != len(self.dilations) or not self.contexts:
            raise ConfigError("contexts and dilations need one entry per TDNN layer")
        if any(k < 1 or k % 2 == 0 for k in self.contexts):
            raise ConfigError(f"contexts must be positive odd frame counts, got {list(self.contexts)}")


@register("voxa.nn.XVector")
class XVector(UtteranceClassifier):
    """The x-vector DNN; ``embed`` is the first embedding layer's affine output (the "x-vector").

    Example:
        >>> m = XVector(XVectorConfig(input_dim=4, num_classes=3, hidden=6, stats_dim=8, emb_dim=5)).eval()
        >>> x, n = torch.randn(2, 12, 4), torch.tensor([12, 7])
        >>> tuple(m.embed(x, n).shape), tuple(m(x, n).shape), m.attention_weights(x, n)
        ((2, 5), (2, 3), None)
    """

    config_class = XVectorConfig

    def __init__(self, cfg: XVectorConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or XVectorConfig()
        n = len(c.contexts)
        dims = [c.input_dim] + [c.hidden] * (n - 1) + [c.stats_dim]
        self.frames = nn.ModuleList(L.TDNNLayer(dims[i], dims[i + 1], c.contexts[i], c.dilations[i])
                                    for i in range(n))
        self.pool = build_pooling("stats", c.stats_dim)
        self.embedding = nn.Linear(2 * c.stats_dim, c.emb_dim)
        layers: list[nn.Module] = [nn.ReLU(), nn.BatchNorm1d(c.emb_dim), nn.Linear(c.emb_dim, c.emb_dim)]
        # an AAM head takes the second embedding's affine output; a softmax head its ReLU + BN (Kaldi)
        if c.head != "aam":
            layers += [nn.ReLU(), nn.BatchNorm1d(c.emb_dim)]
        self.post = nn.Sequential(*layers)
        self.head = _head(c, c.emb_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = L.lengths_to_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        h = x.transpose(1, 2)
        for layer in self.frames:
            h = layer.forward_channels(h, mask)
        return h.transpose(1, 2), lengths


# ---------------------------------------------------------------------------------------------- CNNs
_BACKBONES = ("vgg", "resnet18", "resnet34")
_RESNET_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


@dataclass
class CNNConfig:
    """2-D CNN over the spectrogram: ``backbone`` (``vgg``, ``resnet18``, ``resnet34``; first-stage
    channels ``width``, doubling per stage), ``pooling`` over its frames (``tap``, ``stats``, ``sap``,
    ``mha``, ``asp``; ``att_hidden`` units of attention MLP, ``heads`` for MHA), an ``emb_dim``
    embedding and a ``softmax`` or ``aam`` head. ``width=32`` with ``emb_dim=256`` is the usual thin
    ResNet-34 for speaker verification."""

    input_dim: int = 40
    num_classes: int = 2
    backbone: str = "resnet18"
    width: int = 16
    pooling: str = "tap"
    att_hidden: int = 128
    heads: int = 4
    emb_dim: int = 128
    head: str = "softmax"
    margin: float = 0.2
    scale: float = 30.0

    def __post_init__(self) -> None:
        _choice("backbone", self.backbone, _BACKBONES)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("head", self.head, HEADS)
        _positive(input_dim=self.input_dim, num_classes=self.num_classes, width=self.width,
                  heads=self.heads, emb_dim=self.emb_dim)


@register("voxa.nn.CNNClassifier")
class CNNClassifier(UtteranceClassifier):
    """VGG-like or ResNet backbone, pooling over its output frames, embedding layer, classifier.

    Example:
        >>> m = CNNClassifier(CNNConfig(input_dim=8, num_classes=3, backbone="vgg", width=2,
        ...                             pooling="stats", emb_dim=4)).eval()
        >>> m(torch.randn(2, 16, 8), torch.tensor([16, 9])).shape
        torch.Size([2, 3])
    """

    config_class = CNNConfig

    def __init__(self, cfg: CNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or CNNConfig()
        if c.backbone == "vgg":
            self.backbone = L.VGGLike(c.input_dim, channels=tuple(c.width * 2 ** i for i in range(4)))
        else:
            self.backbone = L.ResNet2d(c.input_dim, _RESNET_LAYERS[c.backbone], c.width)
        d = self.backbone.out_dim
        if c.pooling == "mha" and d % c.heads:
            raise ConfigError(f"mha pooling: the backbone's {d} output dims do not split into "
                              f"{c.heads} heads")
        self.pool = build_pooling(c.pooling, d, hidden=c.att_hidden, heads=c.heads)
        self.embedding = nn.Linear(self.pool.out_dim(d), c.emb_dim)
        self.post = _post(c)
        self.head = _head(c, c.emb_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.backbone(x, lengths)


# ---------------------------------------------------------------------------------------------- registry
#: short model names (``--system`` flags) to (class, config settings on top of its defaults)
MODELS: dict[str, tuple[type[UtteranceClassifier], dict[str, Any]]] = {
    "dnn": (FrameDNN, {}),
    "dnn-attention": (DNNAttention, {}),
    "lstm": (LSTMClassifier, {}),
    "res-tdnn": (ResTDNN, {}),
    "xvector": (XVector, {}),
    "vgg-sap": (CNNClassifier, {"backbone": "vgg", "pooling": "sap"}),
    "resnet-tap": (CNNClassifier, {"pooling": "tap"}),
    "resnet-stats": (CNNClassifier, {"pooling": "stats"}),
    "resnet-sap": (CNNClassifier, {"pooling": "sap"}),
    "resnet-mha": (CNNClassifier, {"pooling": "mha"}),
    "resnet-asp": (CNNClassifier, {"pooling": "asp"}),
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def build_model(name: str, input_dim: int, num_classes: int, **overrides: Any) -> UtteranceClassifier:
    """The model ``name`` (one of :data:`MODEL_NAMES`) for ``input_dim``-dim frames and ``num_classes``.

    Args:
        name: Short model name.
        input_dim: Feature dims of the input frames.
        num_classes: Classes of the classifier.
        **overrides: Config fields to set (``backbone="resnet34"``, ``width=32``, ``head="aam"``, ...).

    Raises:
        ConfigError: For an unknown name or config field (naming the valid ones) or a bad value.

    Example:
        >>> build_model("xvector", 20, 5, hidden=512, stats_dim=1500, emb_dim=512).cfg.stats_dim
        1500
        >>> build_model("resnet", 20, 5)
        Traceback (most recent call last):
        ...
        voxa.errors.ConfigError: unknown model 'resnet'; choose one of: dnn, dnn-attention, lstm, \
res-tdnn, xvector, vgg-sap, resnet-tap, resnet-stats, resnet-sap, resnet-mha, resnet-asp
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    cls, preset = MODELS[name]
    settings = {**preset, **overrides, "input_dim": input_dim, "num_classes": num_classes}
    try:
        cfg = from_dict(cls.config_class, settings)
    except ConfigError as e:
        raise ConfigError(f"model {name!r}: {e}") from None
    return cls(cfg)
