"""Frame-sequence encoders that respect padding: TDNN, residual TDNN, 2-D ResNet, VGG-like CNN, LSTM.

Every encoder takes ``x [batch, frames, dims]`` with ``lengths [batch]`` (long) and returns
``(y [batch, frames', dims'], lengths' [batch])``. Padded frames never change the outputs at valid
frames: each convolution sees zeros beyond an utterance's end, exactly as it does when the utterance is
run alone, and batch-norm statistics in training are taken over valid frames only. Padded output frames
are zero.

Example:
    >>> import torch
    >>> enc = TDNNLayer(8, 16, context=3)
    >>> y, n = enc(torch.randn(2, 10, 8), torch.tensor([10, 6]))
    >>> tuple(y.shape), n.tolist()
    ((2, 10, 16), [10, 6])
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["LSTMEncoder", "MaskedBatchNorm", "ResNet2d", "ResTDNNBlock", "TDNNLayer", "VGGLike",
           "lengths_to_mask", "masked_mean"]


def lengths_to_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``[B, frames]`` bool mask, True on the first ``lengths[b]`` frames of each row.

    Example:
        >>> lengths_to_mask(torch.tensor([3, 1]), 4).int().tolist()
        [[1, 1, 1, 0], [1, 0, 0, 0]]
    """
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only entries where ``mask`` (broadcastable to ``x``) is True."""
    m = mask.to(x.dtype)
    return (x * m).sum(dim) / m.expand_as(x).sum(dim).clamp(min=1)


def _ceil_div(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")


class MaskedBatchNorm(nn.BatchNorm1d):
    """Batch norm over ``[B, C, ...]`` whose training statistics skip padded positions.

    Plain batch norm would count the zeros of padded frames in its mean and variance, so a batch's
    padding would leak into the running statistics (and into every output while training).

    Args:
        num_features: Channels ``C``.

    Example:
        >>> bn = MaskedBatchNorm(2)
        >>> y = bn(torch.randn(3, 2, 5, 4), torch.ones(3, 1, 1, 4, dtype=torch.bool))
        >>> tuple(y.shape)
        (3, 2, 5, 4)
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input [B, C, ...], got {x.dim()}-D")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalise ``x [B, C, ...]``; ``mask`` (bool, broadcastable to ``x``, size 1 on ``C``) marks
        valid positions."""
        if mask is None or not self.training or not self.track_running_stats or bool(mask.all()):
            # no padding in the batch (equal-length crops): the fused kernel gives the same statistics
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        m = mask.to(x.dtype)
        n = m.expand(x.shape[0], 1, *x.shape[2:]).sum()
        xm = x * m
        # one pass for both moments: the masked path is the cost of training with padded batches
        mean = xm.sum(dims) / n.clamp(min=1)
        var = ((xm * x).sum(dims) / n.clamp(min=1) - mean ** 2).clamp_min(0.0)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        with torch.no_grad():
            self.num_batches_tracked += 1
            mom = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - mom).add_(mom * mean.detach())
            unbiased = var.detach() * n / (n - 1).clamp(min=1)
            self.running_var.mul_(1 - mom).add_(mom * unbiased)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale
        if self.affine:
            shift = shift + self.bias
        return x * scale.view(shape) + shift.view(shape)


class TDNNLayer(nn.Module):
    """Time-delay layer: a 1-D convolution over frames, ReLU, then batch norm.

    'Same' padding keeps the frame count, so output lengths equal input lengths; padded frames are
    zeroed before the convolution so that an utterance's last frames see the same zeros as when it is
    run alone.

    Args:
        in_dim: Input feature dims ``D``.
        out_dim: Output dims.
        context: Kernel width in frames (odd; 5 spans frames t-2..t+2 at dilation 1).
        dilation: Spacing of the kernel's taps.

    Shapes:
        ``x [B, T, in_dim]``, ``lengths [B]`` -> ``(y [B, T, out_dim], lengths [B])``.

    Example:
        >>> layer = TDNNLayer(4, 6, context=3, dilation=2)
        >>> layer(torch.randn(2, 9, 4), torch.tensor([9, 5]))[0].shape
        torch.Size([2, 9, 6])
    """

    def __init__(self, in_dim: int, out_dim: int, context: int = 5, dilation: int = 1) -> None:
        super().__init__()
        if context < 1 or context % 2 == 0:
            raise ValueError(f"TDNN context must be a positive odd number of frames, got {context}")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.conv = nn.Conv1d(in_dim, out_dim, context, dilation=dilation,
                              padding=dilation * (context - 1) // 2)
        self.bn = MaskedBatchNorm(out_dim)

    def forward_channels(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The layer on channel-first ``x [B, in_dim, T]`` with ``mask [B, 1, T]``; padded frames of the
        result are zero."""
        y = F.relu(self.conv(x * mask))
        return self.bn(y, mask) * mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        return self.forward_channels(x.transpose(1, 2), mask).transpose(1, 2), lengths


class SqueezeExcitation(nn.Module):
    """Channel gates from the utterance's mean over valid frames (channel-first ``[B, C, T]``)."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, bottleneck)
        self.fc2 = nn.Linear(bottleneck, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = masked_mean(x, mask, dim=2)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))[:, :, None]


class ResTDNNBlock(nn.Module):
    """Two TDNN layers with a residual connection and an optional squeeze-excitation gate.

    Args:
        in_dim: Input dims.
        out_dim: Output dims (a 1x1 projection carries the residual when they differ from ``in_dim``).
        context: Kernel width of both layers.
        dilation: Dilation of both layers.
        se_bottleneck: Hidden size of the squeeze-excitation gate applied before the sum; ``None``
            for no gate.

    Shapes:
        ``x [B, T, in_dim]``, ``lengths [B]`` -> ``(y [B, T, out_dim], lengths [B])``.

    Example:
        >>> blk = ResTDNNBlock(6, 6, context=3, dilation=2, se_bottleneck=4)
        >>> blk(torch.randn(2, 7, 6), torch.tensor([7, 3]))[0].shape
        torch.Size([2, 7, 6])
    """

    def __init__(self, in_dim: int, out_dim: int, context: int = 3, dilation: int = 1,
                 se_bottleneck: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.tdnn1 = TDNNLayer(in_dim, out_dim, context, dilation)
        self.tdnn2 = TDNNLayer(out_dim, out_dim, context, dilation)
        self.se = SqueezeExcitation(out_dim, se_bottleneck) if se_bottleneck else None
        self.proj = nn.Conv1d(in_dim, out_dim, 1) if in_dim != out_dim else None

    def forward_channels(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The block on channel-first ``x [B, in_dim, T]`` with ``mask [B, 1, T]``."""
        y = self.tdnn2.forward_channels(self.tdnn1.forward_channels(x, mask), mask)
        if self.se is not None:
            y = self.se(y, mask)
        res = self.proj(x) if self.proj is not None else x
        return (y + res) * mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1])[:, None, :].to(x.dtype)
        return self.forward_channels(x.transpose(1, 2), mask).transpose(1, 2), lengths


class _BasicBlock(nn.Module):
    """ResNet BasicBlock on ``[B, C, F, T]`` that re-zeros padded frames before each convolution."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.stride_t = stride[1]
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = MaskedBatchNorm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = MaskedBatchNorm(cout)
        self.short = None
        if stride != (1, 1) or cin != cout:
            self.short = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.short_bn = MaskedBatchNorm(cout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x is already zero on padded frames
        out_len = _ceil_div(lengths, self.stride_t)
        t_out = -(-x.shape[-1] // self.stride_t)
        mask = lengths_to_mask(out_len, t_out)[:, None, None, :].to(x.dtype)
        y = F.relu(self.bn1(self.conv1(x), mask)) * mask
        y = self.bn2(self.conv2(y), mask)
        res = x if self.short is None else self.short_bn(self.short(x), mask)
        return F.relu(y + res) * mask, out_len


def _as_image(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[B, T, F]`` as a one-channel image ``[B, 1, F, T]`` with padded frames zeroed."""
    mask = lengths_to_mask(lengths, x.shape[1])[:, :, None].to(x.dtype)
    return (x * mask).transpose(1, 2)[:, None]


def _as_frames(y: torch.Tensor) -> torch.Tensor:
    """``[B, C, F', T']`` as the frame sequence ``[B, T', C*F']``."""
    b, c, f, t = y.shape
    return y.reshape(b, c * f, t).transpose(1, 2)


class ResNet2d(nn.Module):
    """2-D ResNet (BasicBlock) over the spectrogram seen as a one-channel image.

    ``layers=(2, 2, 2, 2)`` is ResNet-18, ``(3, 4, 6, 3)`` ResNet-34; ``width`` is the first stage's
    channels (a thin ResNet for speech: 16 or 32; stages double it). Each stage's first block strides
    by ``freq_strides[i]`` along frequency and ``time_strides[i]`` along time.

    Args:
        in_freq: Feature dims ``F`` of the input (the image height).
        layers: Blocks per stage.
        width: Channels of the stem and first stage.
        freq_strides: Frequency stride of each stage.
        time_strides: Time stride of each stage; their product is ``time_stride``.

    Shapes:
        ``x [B, T, F]``, ``lengths [B]`` -> ``(y [B, T', C*F'], ceil(lengths / time_stride))`` with
        ``T' = ceil(T / time_stride)``; ``out_dim = C*F'``.

    Example:
        >>> net = ResNet2d(8, layers=(1, 1, 1, 1), width=4)
        >>> y, n = net(torch.randn(2, 20, 8), torch.tensor([20, 13]))
        >>> tuple(y.shape), n.tolist(), net.out_dim
        ((2, 3, 32), [3, 2], 32)
    """

    def __init__(self, in_freq: int, layers: tuple[int, ...] = (2, 2, 2, 2), width: int = 16,
                 freq_strides: tuple[int, ...] = (1, 2, 2, 2), time_strides: tuple[int, ...] = (1, 2, 2, 2)
                 ) -> None:
        super().__init__()
        if not len(layers) == len(freq_strides) == len(time_strides):
            raise ValueError("layers, freq_strides and time_strides need one entry per stage")
        self.stem = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.stem_bn = MaskedBatchNorm(width)
        blocks, cin, f = [], width, in_freq
        for i, (n, sf, st) in enumerate(zip(layers, freq_strides, time_strides)):
            cout = width * 2 ** i
            for j in range(n):
                blocks.append(_BasicBlock(cin, cout, (sf, st) if j == 0 else (1, 1)))
                cin = cout
            f = -(-f // sf)
        self.blocks = nn.ModuleList(blocks)
        self.time_stride = 1
        for st in time_strides:
            self.time_stride *= st
        self.out_channels, self.out_freq = cin, f
        self.out_dim = cin * f

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = _as_image(x, lengths)
        mask = lengths_to_mask(lengths, x.shape[1])[:, None, None, :].to(x.dtype)
        y = F.relu(self.stem_bn(self.stem(img), mask)) * mask
        for blk in self.blocks:
            y, lengths = blk(y, lengths)
        return _as_frames(y), lengths


class VGGLike(nn.Module):
    """VGG-style CNN: blocks of 3x3 conv + batch norm + ReLU, each block ending in a max-pool.

    Args:
        in_freq: Feature dims ``F`` of the input.
        channels: Output channels of each block.
        convs_per_block: Convolutions in each block.
        freq_pools: Max-pool size (= stride) along frequency after each block.
        time_pools: Max-pool size along time after each block; their product is ``time_stride``.

    Shapes:
        ``x [B, T, F]``, ``lengths [B]`` -> ``(y [B, T', C*F'], ceil(lengths / time_stride))``.

    Example:
        >>> net = VGGLike(8, channels=(4, 8))
        >>> y, n = net(torch.randn(2, 11, 8), torch.tensor([11, 5]))
        >>> tuple(y.shape), n.tolist()
        ((2, 3, 16), [3, 2])
    """

    def __init__(self, in_freq: int, channels: tuple[int, ...] = (32, 64, 128, 256),
                 convs_per_block: int = 2, freq_pools: tuple[int, ...] | None = None,
                 time_pools: tuple[int, ...] | None = None) -> None:
        super().__init__()
        freq_pools = tuple(freq_pools) if freq_pools is not None else (2,) * len(channels)
        time_pools = tuple(time_pools) if time_pools is not None else (2, 2) + (1,) * (len(channels) - 2)
        if not len(channels) == len(freq_pools) == len(time_pools):
            raise ValueError("channels, freq_pools and time_pools need one entry per block")
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self.pools = list(zip(freq_pools, time_pools))
        cin, f = 1, in_freq
        for c, pf in zip(channels, freq_pools):
            self.convs.append(nn.ModuleList(nn.Conv2d(cin if k == 0 else c, c, 3, padding=1, bias=False)
                                            for k in range(convs_per_block)))
            self.bns.append(nn.ModuleList(MaskedBatchNorm(c) for _ in range(convs_per_block)))
            cin, f = c, -(-f // pf)
        self.time_stride = 1
        for pt in time_pools:
            self.time_stride *= pt
        self.out_dim = cin * f

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = _as_image(x, lengths)
        for convs, bns, (pf, pt) in zip(self.convs, self.bns, self.pools):
            mask = lengths_to_mask(lengths, y.shape[-1])[:, None, None, :].to(y.dtype)
            for conv, bn in zip(convs, bns):
                y = F.relu(bn(conv(y), mask)) * mask
            # after ReLU the zeros on padded frames never win a max, so a window straddling an utterance's
            # end pools as the partial window of the utterance alone (ceil_mode)
            y = F.max_pool2d(y, (pf, pt), ceil_mode=True)
            lengths = _ceil_div(lengths, pt)
        return _as_frames(y), lengths


class LSTMEncoder(nn.Module):
    """(B)LSTM whose recurrence never runs into padding.

    Each direction of each layer runs over the padded batch with torch's fused LSTM kernel; the
    backward direction reads every utterance reversed within its own length, so its state starts at
    that utterance's last frame. (Packed sequences give the same outputs but were 10x slower on CPU
    for a batch of mixed lengths.) Parameters are those of one ``nn.LSTM`` (``self.lstm``).

    Args:
        in_dim: Input dims.
        hidden: Hidden units per direction.
        layers: Stacked LSTM layers.
        bidirectional: Run a backward LSTM too (its state starts at each utterance's own last frame).
        dropout: Dropout between stacked layers.

    Shapes:
        ``x [B, T, in_dim]``, ``lengths [B]`` -> ``(y [B, T, hidden * (2 if bidirectional else 1)],
        lengths)``; padded frames of ``y`` are zero.

    Example:
        >>> enc = LSTMEncoder(4, 5, layers=1, bidirectional=True)
        >>> enc(torch.randn(2, 6, 4), torch.tensor([6, 2]))[0].shape
        torch.Size([2, 6, 10])
    """

    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 2, bidirectional: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if layers > 1 else 0.0)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def _run(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        lstm = self.lstm
        names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
        if lstm.bias:
            names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
        weights = [getattr(lstm, n) for n in names]
        h0 = x.new_zeros(1, x.shape[0], lstm.hidden_size)
        out = torch._VF.lstm(x, (h0, h0), weights, lstm.bias, 1, 0.0, self.training, False, True)
        return out[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        n = lengths.to(x.device).clamp(min=1)
        steps = torch.arange(t, device=x.device)
        mask = (steps[None, :] < n[:, None])                                     # [B, T]
        # reversal of every utterance within its own length; padded frames stay where they are
        rev = torch.where(mask, n[:, None] - 1 - steps[None, :], steps[None, :])  # [B, T]
        h = x * mask[:, :, None].to(x.dtype)
        for layer in range(self.lstm.num_layers):
            if layer > 0 and self.lstm.dropout > 0:
                h = F.dropout(h, self.lstm.dropout, self.training)
            outs = [self._run(h, layer, "")]
            if self.lstm.bidirectional:
                idx = rev[:, :, None].expand(-1, -1, h.shape[2])
                back = self._run(torch.gather(h, 1, idx), layer, "_reverse")
                outs.append(torch.gather(back, 1, rev[:, :, None].expand(-1, -1, back.shape[2])))
            h = torch.cat(outs, dim=2) * mask[:, :, None].to(x.dtype)
        return h, lengths
