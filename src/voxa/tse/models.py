"""The distance-query extraction model (DQ/TS blocks) and the LSTM+DEG baseline (Shi, Yen, Nakadai 2024).

Shapes: waveforms ``[batch, samples]``; the STFT ``Y`` is stacked real and imaginary parts
``[batch, 2, T, F]``; embeddings inside the network are ``[batch, D, T, F]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from voxa.errors import ConfigError, VoxaError
from voxa.nn.saving import SavedModule
from voxa.tse.refine import check_refine, project
from voxa.tse.schedule import two_outputs
from voxa.utils.serialization import register


@dataclass
class StftConfig:
    """32 ms frames and a 16 ms hop at any rate, with a square-root Hann window (perfect overlap-add)."""

    rate: int = 16000
    frame_ms: float = 32.0
    hop_ms: float = 16.0

    @property
    def n_fft(self) -> int:
        return int(round(self.rate * self.frame_ms / 1000))

    @property
    def hop(self) -> int:
        return int(round(self.rate * self.hop_ms / 1000))


class Stft(nn.Module):
    def __init__(self, cfg: StftConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.n_fft).sqrt(), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, N] -> [B, 2, T, F]``."""
        spec = torch.stft(wav, self.cfg.n_fft, self.cfg.hop, window=self.window, center=True,
                          return_complex=True)  # [B, F, T]
        return torch.view_as_real(spec).permute(0, 3, 2, 1).contiguous()

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``[B, 2, T, F] -> [B, length]``."""
        c = torch.complex(spec[:, 0].float(), spec[:, 1].float()).transpose(1, 2)  # [B, F, T]
        return torch.istft(c, self.cfg.n_fft, self.cfg.hop, window=self.window, center=True, length=length)


class DistanceEmbedding(nn.Module):
    """DEG: query distance (metres) -> ``[B, D]``: Linear 32, tanh, Linear 64, tanh, Linear D."""

    def __init__(self, dim: int, hidden: tuple[int, int] = (32, 64)) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden[0]), nn.Tanh(), nn.Linear(hidden[0], hidden[1]),
                                 nn.Tanh(), nn.Linear(hidden[1], dim))

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        return self.net(distance.reshape(-1, 1).to(self.net[0].weight.dtype))


def init_forget_bias(rnn: nn.LSTM, value: float) -> None:
    """Start every forget gate at ``sigmoid(value)``.

    The distance embedding enters each sequence as one extra step; with PyTorch's zero forget bias
    (gate 0.5) its trace halves every step and the far frames never see the query, so the model settles
    on a query-blind mask (Jozefowicz et al. 2015 recommend a positive forget bias for the same reason).
    """
    if value == 0.0:
        return
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("bias_ih"):
                h = p.shape[0] // 4
                p[h:2 * h] += value


class FusionPath(nn.Module):
    """LayerNorm, one BLSTM shared across all sequences, Linear + GELU back to D, residual.

    ``axis="time"`` runs along frames within each subband (intra-subband); ``axis="freq"`` along
    subbands within each frame (intra-frame). Sequences go through the BLSTM in chunks of ``chunk``
    (memory), each chunk optionally under activation checkpointing.

    How a distance embedding enters (``query_fusion``):

    - ``"append"`` (the paper): one extra step at the end of every sequence, dropped after the BLSTM.
      Only the backward direction reads it before the frames; the forward one reads it last, when
      every output of that direction is already computed.
    - ``"ends"`` (not in the paper): one step at each end, so both directions read the query first.
    - ``"film"`` (not in the paper): every normalised step is scaled and shifted,
      ``x * (1 + g(e)) + b(e)``, with ``g`` and ``b`` starting at zero (identity), so the query reaches
      each frame directly.

    ``query_every_step`` (not in the paper) also adds the embedding to every normalised step.
    """

    def __init__(self, dim: int, hidden: int, axis: str, chunk: int = 0, checkpointing: bool = False,
                 forget_bias: float = 0.0, query_every_step: bool = False, query_fusion: str = "append"
                 ) -> None:
        super().__init__()
        if axis not in ("time", "freq"):
            raise ConfigError(f"axis must be 'time' or 'freq', got {axis!r}")
        if query_fusion not in QUERY_FUSIONS:
            raise ConfigError(f"query_fusion must be one of {', '.join(QUERY_FUSIONS)}, got {query_fusion!r}")
        self.query_fusion = query_fusion
        if query_fusion == "film":
            self.film = nn.Linear(dim, 2 * dim)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.axis = axis
        self.norm = nn.LayerNorm(dim)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        init_forget_bias(self.rnn, forget_bias)
        self.proj = nn.Linear(2 * hidden, dim)
        self.chunk = chunk
        self.checkpointing = checkpointing
        self.query_every_step = query_every_step

    def _run(self, seq: torch.Tensor, emb: torch.Tensor | None = None,
             film: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(seq)
        if emb is not None:
            x = x + emb
        if film is not None:
            gain, shift = film.chunk(2, dim=-1)
            x = x * (1 + gain) + shift
        out, _ = self.rnn(x)
        return F.gelu(self.proj(out))

    def forward(self, h: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, d, t, f = h.shape
        # sequences along time per subband: [B, F, T, D]; along frequency per frame: [B, T, F, D]
        x = h.permute(0, 3, 2, 1) if self.axis == "time" else h.permute(0, 2, 3, 1)
        n_seq, length = x.shape[1], x.shape[2]
        seq = x.reshape(b * n_seq, length, d)
        every = film = None
        first = 0
        if emb is not None:
            extra = emb[:, None, None, :].expand(b, n_seq, 1, d).reshape(b * n_seq, 1, d).to(seq.dtype)
            if self.query_fusion == "append":
                seq = torch.cat([seq, extra], dim=1)
            elif self.query_fusion == "ends":
                seq = torch.cat([extra, seq, extra], dim=1)
                first = 1
            else:
                film = self.film(extra)
            if self.query_every_step:
                every = extra
        step = self.chunk if self.chunk > 0 else seq.shape[0]
        outs = []
        for i in range(0, seq.shape[0], step):
            part = seq[i:i + step]
            add = None if every is None else every[i:i + step]
            fp = None if film is None else film[i:i + step]
            if self.checkpointing and self.training and part.requires_grad:
                outs.append(checkpoint(self._run, part, add, fp, use_reentrant=False))
            else:
                outs.append(self._run(part, add, fp))
        y = torch.cat(outs, 0)[:, first:first + length].reshape(b, n_seq, length, d)
        y = y.permute(0, 3, 2, 1) if self.axis == "time" else y.permute(0, 3, 1, 2)
        return h + y


#: how a DQ block's fusion paths take the distance embedding (see :class:`FusionPath`)
QUERY_FUSIONS = ("append", "ends", "film")


class DQBlock(nn.Module):
    """Distance Query block: intra-subband fusion with D_s, then intra-frame fusion with D_f."""

    def __init__(self, dim: int, hidden: int, chunk: int = 0, checkpointing: bool = False,
                 forget_bias: float = 0.0, query_every_step: bool = False, query_fusion: str = "append"
                 ) -> None:
        super().__init__()
        self.deg_s = DistanceEmbedding(dim)
        self.deg_f = DistanceEmbedding(dim)
        self.sub = FusionPath(dim, hidden, "time", chunk, checkpointing, forget_bias, query_every_step,
                              query_fusion)
        self.frame = FusionPath(dim, hidden, "freq", chunk, checkpointing, forget_bias, query_every_step,
                                query_fusion)

    def forward(self, h: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        h = self.sub(h, self.deg_s(distance))
        return self.frame(h, self.deg_f(distance))


class TSBlock(nn.Module):
    """Temporal-Spectral block: the same two paths without the distance embedding."""

    def __init__(self, dim: int, hidden: int, chunk: int = 0, checkpointing: bool = False,
                 forget_bias: float = 0.0) -> None:
        super().__init__()
        self.sub = FusionPath(dim, hidden, "time", chunk, checkpointing, forget_bias)
        self.frame = FusionPath(dim, hidden, "freq", chunk, checkpointing, forget_bias)

    def forward(self, h: torch.Tensor, distance: torch.Tensor | None = None) -> torch.Tensor:
        return self.frame(self.sub(h))


@dataclass
class DQTSConfig:
    """The paper's model: ``n_dq`` DQ blocks then ``n_ts`` TS blocks, embedding D, BLSTM hidden H.

    ``paper``: D = H = 64, 4 + 4 (1,252,290 parameters); variants 2DQ+6TS and 6DQ+2TS by ``n_dq``/``n_ts``.
    ``input_power`` (not in the paper; 1 = off) compresses the encoder's input, see :func:`compress`;
    ``mask`` is the paper's ``"sigmoid"`` or ``"softplus"`` (see :data:`MASKS`).
    """

    dim: int = 64
    hidden: int = 64
    n_dq: int = 4
    n_ts: int = 4
    stft: StftConfig = field(default_factory=StftConfig)
    chunk: int = 0
    checkpointing: bool = False
    normalize_input: bool = True
    forget_bias: float = 0.0
    query_every_step: bool = False
    input_power: float = 1.0
    mask: str = "sigmoid"
    query_fusion: str = "append"


#: mask activations: the paper's sigmoid, or softplus (not in the paper), which has no ceiling to saturate
#: against: when passing the mixture through is the best a model can yet do, Adam drives sigmoid logits
#: to ~30, where the mask is exactly 1.0 in float32 and no gradient flows (measured), while softplus
#: reaches 1 at a logit of 0.54 with slope 0.63. Its floor still saturates: on the same one-talker task it
#: was driven to 0 instead (logits ~-24, measured), so neither is a cure for a model without a cue
MASKS = {"sigmoid": torch.sigmoid, "softplus": F.softplus}


def mask_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in MASKS:
        raise ConfigError(f"unknown mask activation {name!r}; use one of {sorted(MASKS)}")
    return MASKS[name]


def magnitude(y: torch.Tensor, eps: float = 1e-10, keepdim: bool = False) -> torch.Tensor:
    """``|Y|`` of a stacked real/imaginary STFT ``[B, 2, T, F]``: ``[B, T, F]`` (``[B, 1, T, F]`` kept)."""
    return (y.pow(2).sum(1, keepdim=keepdim) + eps).sqrt()


def compress(y: torch.Tensor, power: float) -> torch.Tensor:
    """Power-law compress a stacked real/imaginary STFT ``[B, 2, T, F]``: ``|Y|**power``, phase kept.

    With ``power < 1`` the low-level reverberant tails that carry the distance cue (the direct-to-reverberant
    ratio) are no longer tens of dB below what the encoder sees of the direct sound.
    """
    if power == 1.0:
        return y
    return y * magnitude(y, keepdim=True).pow(power - 1.0)


def input_scale(mix: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Per-item RMS of ``mix [B, N]`` as ``[B, 1]`` (ones if not ``normalize``).

    The mixture's level varies over 5+ dB: the models divide by it before the network and multiply
    after, so the mask, not the network's gain, does the extraction.
    """
    if not normalize:
        return torch.ones_like(mix[:, :1])
    return mix.pow(2).mean(-1, keepdim=True).sqrt().clamp(min=1e-5)


class GlobalLayerNorm(nn.GroupNorm):
    """gLN: normalise over channels, time and frequency together, per item, with per-channel gain."""

    def __init__(self, dim: int) -> None:
        super().__init__(1, dim)


def query_batches(distance: torch.Tensor, batch: int | None) -> tuple[torch.Tensor, ...]:
    """Query distances ``[Q]`` in chunks of at most ``batch`` (None: one chunk).

    Raises:
        VoxaError: no distance, or ``batch`` below 1.
    """
    if not distance.numel():
        raise VoxaError("extract: no query distance given")
    if batch is not None and batch < 1:
        raise VoxaError(f"extract: batch must be at least 1, got {batch}")
    return distance.reshape(-1).split(batch or distance.numel())


@register("voxa.tse.TseModel", "TseModel")
class TseModel(SavedModule):
    """Base of the distance-query extraction models: ``(mixture [B, N], query distance [B]) -> [B, N]``.

    Loading through this class restores whichever model a file holds; files of older voxa (tag
    ``TseModel`` with the short model name in ``model``) load too.
    """

    config_class: type

    def header(self) -> dict:
        name = next(k for k, (klass, _) in MODELS.items() if isinstance(self, klass))
        return {**super().header(), "model": name}

    @torch.no_grad()
    def extract(self, mix: torch.Tensor, distance: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """What extraction returns for one mixture ``[N]`` queried at distances ``[Q]``: ``[Q, N]``.

        The forward pass, or with ``refine="project"`` in the model's settings (a model trained separation
        first) that output re-synthesised from the model's two separated talkers, separated once for all
        the queries (:func:`voxa.tse.refine.project`, weights fitted per 4 s block). ``batch`` bounds the
        queries run through the model at once (memory on long recordings); None runs them all together.
        """
        mix, distance = mix.reshape(1, -1), distance.reshape(-1)
        chunks = query_batches(distance, batch)
        out = torch.cat([self(mix.expand(len(d), -1).contiguous(), d) for d in chunks])
        if getattr(self.cfg, "refine", "none") == "project":
            sep = two_outputs(self, mix).expand(len(distance), -1, -1)
            out = project(sep, out, block=4 * self.cfg.stft.rate)
        return out

    @classmethod
    def resolve(cls, header: dict, path: object) -> type[SavedModule]:
        if header.get("class") in ("TseModel", "voxa.tse.TseModel"):
            if header.get("model") not in MODELS:
                raise VoxaError(f"{path}: unknown TSE model {header.get('model')!r}")
            return MODELS[header["model"]][0]
        return super().resolve(header, path)


@register("voxa.tse.DQTSModel")
class DQTSModel(TseModel):
    """Distance-based target speech extraction: ``(mixture [B, N], query distance [B]) -> [B, N]``."""

    def __init__(self, cfg: DQTSConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DQTSConfig()
        c = self.cfg
        self.stft = Stft(c.stft)
        self.encoder = nn.Conv2d(2, c.dim, 3, padding=1)
        self.gln = GlobalLayerNorm(c.dim)
        self.dq = nn.ModuleList(DQBlock(c.dim, c.hidden, c.chunk, c.checkpointing, c.forget_bias,
                                        c.query_every_step, c.query_fusion) for _ in range(c.n_dq))
        self.ts = nn.ModuleList(TSBlock(c.dim, c.hidden, c.chunk, c.checkpointing, c.forget_bias)
                                for _ in range(c.n_ts))
        self.decoder = nn.Conv2d(c.dim, 2, 3, padding=1)
        self.mask = mask_activation(c.mask)

    def forward(self, mix: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        n = mix.shape[-1]
        scale = input_scale(mix, self.cfg.normalize_input)
        y = self.stft(mix / scale)
        # the network may see a compressed spectrum (``input_power``, not in the paper); the mask always
        # multiplies the mixture's own STFT
        h = self.gln(self.encoder(compress(y, self.cfg.input_power)))
        for blk in self.dq:
            h = blk(h, distance)
        for blk in self.ts:
            h = blk(h)
        mask = self.mask(self.decoder(h))
        return self.stft.inverse(mask * y, n) * scale


def band_edges(n_freq: int, n_bands: int) -> list[int]:
    """Bin edges ``[0, ..., n_freq]`` of ``n_bands`` bands whose widths grow geometrically (narrow bands at
    low frequencies, where speech harmonics are dense; at least one bin each).

    Example:
        >>> band_edges(129, 14)
        [0, 2, 4, 6, 9, 13, 17, 23, 30, 39, 50, 64, 81, 103, 129]
    """
    if not 1 <= n_bands <= n_freq:
        raise ConfigError(f"n_bands must be in 1..{n_freq} (the STFT's bins), got {n_bands}")
    import numpy as np

    # geometric widths from an offset of n_freq / 20 bins: a few bins wide at the bottom (one bin each
    # there would spend bands on frequencies below the voice's fundamental)
    off = max(1.0, n_freq / 20)
    raw = np.geomspace(off, n_freq + off, n_bands + 1) - off
    edges = [0]
    for k, e in enumerate(raw[1:], 1):
        # at least one bin each, and room left for the bands still to come
        edges.append(int(min(max(round(e), edges[-1] + 1), n_freq - (n_bands - k))))
    edges[-1] = n_freq
    return edges


@dataclass
class BandSplitConfig:
    """The efficient CPU model (a documented departure from the paper): the STFT's bins are grouped into
    ``n_bands`` bands, each projected by its own linear layer (real/imaginary parts, optionally with the
    log-magnitude) to an embedding of size D; the paper's DQ and TS blocks then run over frames and bands
    instead of frames and bins (about 14 sequences per frame instead of 129), and a per-band MLP
    decodes a complex mask with no ceiling (``mask="linear"``).

    ``query_fusion`` chooses how the distance embedding enters each BLSTM (see :class:`FusionPath`).
    ``refine`` is an extraction option only (training and the forward pass ignore it): ``project``
    re-synthesises the query output from the model's two separated outputs (:mod:`voxa.tse.refine`;
    meaningful for a model trained separation first).
    """

    dim: int = 32
    hidden: int = 32
    n_dq: int = 2
    n_ts: int = 2
    n_bands: int = 14
    log_magnitude: bool = True
    query_fusion: str = "ends"
    forget_bias: float = 0.0
    mask: str = "linear"
    normalize_input: bool = True
    refine: str = "none"
    stft: StftConfig = field(default_factory=StftConfig)


#: mask activations of the band-split model's complex mask: ``linear`` has neither ceiling nor floor
BAND_MASKS = ("linear", "tanh")


class BandSplit(nn.Module):
    """``[B, C, T, F]`` bins to ``[B, D, T, K]`` band embeddings, one linear map per band, all in one
    batched product (bands padded to the widest with zero weights)."""

    def __init__(self, edges: list[int], channels: int, dim: int) -> None:
        super().__init__()
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        self.width = max(widths)
        n_freq, k = edges[-1], len(widths)
        # bin index of every (band, slot); padding slots point at an extra all-zero bin n_freq
        index = torch.full((k, self.width), n_freq, dtype=torch.long)
        for j, (a, w) in enumerate(zip(edges[:-1], widths)):
            index[j, :w] = torch.arange(a, a + w)
        self.register_buffer("index", index, persistent=False)
        self.norm = nn.LayerNorm(channels * self.width)
        fan_in = channels * self.width
        self.weight = nn.Parameter(torch.randn(k, fan_in, dim) / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(k, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        padded = F.pad(x, (0, 1))  # the zero bin
        bands = padded[..., self.index]  # [B, C, T, K, W]
        bands = bands.permute(0, 2, 3, 1, 4).reshape(b, t, self.index.shape[0], c * self.width)
        h = torch.einsum("btkc,kcd->btkd", self.norm(bands), self.weight) + self.bias
        return h.permute(0, 3, 1, 2)  # [B, D, T, K]


class BandMerge(nn.Module):
    """``[B, D, T, K]`` band embeddings to a ``[B, 2, T, F]`` complex mask: per band, Linear + tanh to 2D,
    then a linear map to the band's bins (real and imaginary)."""

    def __init__(self, edges: list[int], dim: int, hidden: int) -> None:
        super().__init__()
        widths = [b - a for a, b in zip(edges[:-1], edges[1:])]
        k, self.width = len(widths), max(widths)
        self.norm = nn.LayerNorm(dim)
        self.w1 = nn.Parameter(torch.randn(k, dim, hidden) / math.sqrt(dim))
        self.b1 = nn.Parameter(torch.zeros(k, hidden))
        self.w2 = nn.Parameter(torch.randn(k, hidden, 2 * self.width) * 0.01 / math.sqrt(hidden))
        # the mask starts near 0.5 (real), the level a query-blind model would settle on anyway
        b2 = torch.zeros(k, 2, self.width)
        b2[:, 0] = 0.5
        self.b2 = nn.Parameter(b2.reshape(k, 2 * self.width))
        # each bin's (band, slot) in the flattened [K * W] layout
        where = torch.cat([j * self.width + torch.arange(w) for j, w in enumerate(widths)])
        self.register_buffer("where", where, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, d, t, k = h.shape
        x = self.norm(h.permute(0, 2, 3, 1))  # [B, T, K, D]
        x = torch.tanh(torch.einsum("btkd,kdh->btkh", x, self.w1) + self.b1)
        m = torch.einsum("btkh,khc->btkc", x, self.w2) + self.b2  # [B, T, K, 2W]
        m = m.reshape(b, t, k, 2, self.width).permute(0, 3, 1, 2, 4).reshape(b, 2, t, k * self.width)
        return m[..., self.where]  # [B, 2, T, F]


@dataclass
class LstmDegConfig:
    """Table II's baseline: 4 BLSTM layers over the magnitude spectrogram concatenated with the DEG."""

    hidden: int = 256
    layers: int = 4
    emb: int = 64
    stft: StftConfig = field(default_factory=StftConfig)
    normalize_input: bool = True
    mask: str = "sigmoid"


@register("voxa.tse.LstmDegModel")
class LstmDegModel(TseModel):
    """Table II's baseline: ``(mixture [B, N], query distance [B]) -> [B, N]``."""

    def __init__(self, cfg: LstmDegConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or LstmDegConfig()
        c = self.cfg
        self.stft = Stft(c.stft)
        n_freq = c.stft.n_fft // 2 + 1
        self.deg = DistanceEmbedding(c.emb)
        self.rnn = nn.LSTM(n_freq + c.emb, c.hidden, num_layers=c.layers, batch_first=True,
                           bidirectional=True)
        self.out = nn.Linear(2 * c.hidden, n_freq)
        self.mask = mask_activation(c.mask)

    def forward(self, mix: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        n = mix.shape[-1]
        scale = input_scale(mix, self.cfg.normalize_input)
        y = self.stft(mix / scale)  # [B, 2, T, F]
        mag = magnitude(y, eps=1e-8)  # [B, T, F]
        emb = self.deg(distance)[:, None, :].expand(-1, mag.shape[1], -1)
        h, _ = self.rnn(torch.cat([torch.log1p(mag), emb], -1))
        mask = self.mask(self.out(h))  # [B, T, F]
        return self.stft.inverse(mask[:, None] * y, n) * scale


@register("voxa.tse.BandSplitModel")
class BandSplitModel(TseModel):
    """Band-split DQ/TS: ``(mixture [B, N], query distance [B]) -> [B, N]`` (see :class:`BandSplitConfig`).

    Example:
        >>> import torch
        >>> m = BandSplitModel(BandSplitConfig(dim=8, hidden=8, n_dq=1, n_ts=1, stft=StftConfig(rate=8000)))
        >>> m(torch.randn(2, 4000), torch.tensor([1.0, 2.5])).shape
        torch.Size([2, 4000])
    """

    def __init__(self, cfg: BandSplitConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or BandSplitConfig()
        c = self.cfg
        if c.mask not in BAND_MASKS:
            raise ConfigError(f"mask must be one of {', '.join(BAND_MASKS)}, got {c.mask!r}")
        check_refine(c.refine)
        self.stft = Stft(c.stft)
        edges = band_edges(c.stft.n_fft // 2 + 1, c.n_bands)
        self.split = BandSplit(edges, 3 if c.log_magnitude else 2, c.dim)
        self.dq = nn.ModuleList(DQBlock(c.dim, c.hidden, forget_bias=c.forget_bias,
                                        query_fusion=c.query_fusion) for _ in range(c.n_dq))
        self.ts = nn.ModuleList(TSBlock(c.dim, c.hidden, forget_bias=c.forget_bias) for _ in range(c.n_ts))
        self.merge = BandMerge(edges, c.dim, 2 * c.dim)

    def forward(self, mix: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
        n = mix.shape[-1]
        scale = input_scale(mix, self.cfg.normalize_input)
        y = self.stft(mix / scale)  # [B, 2, T, F]
        x = torch.cat([y, torch.log1p(magnitude(y, keepdim=True))], 1) if self.cfg.log_magnitude else y
        h = self.split(x)
        for blk in self.dq:
            h = blk(h, distance)
        for blk in self.ts:
            h = blk(h)
        m = self.merge(h)
        if self.cfg.mask == "tanh":
            m = torch.tanh(m)
        # complex mask: (m_r + i m_i)(y_r + i y_i)
        est = torch.stack([m[:, 0] * y[:, 0] - m[:, 1] * y[:, 1], m[:, 0] * y[:, 1] + m[:, 1] * y[:, 0]], 1)
        return self.stft.inverse(est, n) * scale


MODELS = {"dqts": (DQTSModel, DQTSConfig), "lstm_deg": (LstmDegModel, LstmDegConfig),
          "bandsplit": (BandSplitModel, BandSplitConfig)}
DQTSModel.config_class = DQTSConfig
LstmDegModel.config_class = LstmDegConfig
BandSplitModel.config_class = BandSplitConfig


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

