"""voxa.nn.layers: output shapes and lengths, and padded frames never change the outputs."""

from __future__ import annotations

import pytest
import torch

from voxa.nn.layers import (
    LSTMEncoder,
    MaskedBatchNorm,
    ResNet2d,
    ResTDNNBlock,
    TDNNLayer,
    VGGLike,
    lengths_to_mask,
)

LENGTHS = torch.tensor([23, 9, 16, 1])


def _batch(dim=8, lengths=LENGTHS, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), int(lengths.max()), dim, generator=g)
    # garbage in the padding: it must not matter
    return x + 100 * ~lengths_to_mask(lengths, x.shape[1])[:, :, None], lengths


def _warm(layer, dim=8):
    """A few training passes so batch norm's running statistics are not the identity."""
    layer.train()
    with torch.no_grad():
        for s in range(3):
            layer(*_batch(dim, seed=s + 10))
    return layer.eval()


LAYERS = {
    "tdnn": lambda: TDNNLayer(8, 6, context=5, dilation=2),
    "tdnn-1x1": lambda: TDNNLayer(8, 6, context=1),
    "res-tdnn": lambda: ResTDNNBlock(8, 8, context=3, dilation=3, se_bottleneck=4),
    "res-tdnn-proj": lambda: ResTDNNBlock(8, 6, context=3, dilation=1),
    "resnet18": lambda: ResNet2d(8, (2, 2, 2, 2), width=4),
    "resnet34": lambda: ResNet2d(8, (3, 4, 6, 3), width=2),
    "vgg": lambda: VGGLike(8, channels=(3, 4, 5)),
    "lstm": lambda: LSTMEncoder(8, 5, layers=2, bidirectional=True),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_padding_does_not_change_outputs(name):
    torch.manual_seed(0)
    layer = _warm(LAYERS[name]())
    x, n = _batch()
    with torch.no_grad():
        y, out_n = layer(x, n)
        for b in range(len(n)):
            alone, alone_n = layer(x[b:b + 1, :n[b]], n[b:b + 1])
            assert alone_n.item() == out_n[b].item()
            assert alone.shape[1] == alone_n.item()
            torch.testing.assert_close(y[b, :out_n[b]], alone[0], rtol=1e-5, atol=1e-5)
            assert (y[b, out_n[b]:] == 0).all()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_training_outputs_ignore_padding_too(name):
    """Masked batch norm: in training, the batch's statistics skip padded frames."""
    torch.manual_seed(0)
    layer = LAYERS[name]().train()
    x, n = _batch()
    y1, _ = layer(x, n)
    x2 = torch.cat([x, torch.full((len(n), 7, 8), 55.0)], dim=1)
    y2, n2 = layer(x2, n)
    m = lengths_to_mask(n2, y1.shape[1])[:, :, None]
    torch.testing.assert_close(y1 * m, y2[:, :y1.shape[1]] * m, rtol=1e-5, atol=1e-5)


def test_shapes_and_lengths():
    x, n = _batch()
    y, m = TDNNLayer(8, 6)(x, n)
    assert y.shape == (4, 23, 6) and m.tolist() == n.tolist()
    net = ResNet2d(8, (2, 2, 2, 2), width=4)
    y, m = net(x, n)
    assert net.time_stride == 8 and net.out_dim == 32 * 1
    assert y.shape == (4, 3, 32) and m.tolist() == [3, 2, 2, 1]
    net = ResNet2d(40, (1, 1, 1, 1), width=2, time_strides=(1, 1, 2, 1))
    y, m = net(torch.randn(2, 11, 40), torch.tensor([11, 4]))
    assert y.shape == (2, 6, 16 * 5) and net.out_dim == 80 and m.tolist() == [6, 2]
    net = VGGLike(8, channels=(3, 4, 5))
    y, m = net(x, n)
    assert net.time_stride == 4 and y.shape == (4, 6, 5 * 1) and m.tolist() == [6, 3, 4, 1]
    y, m = LSTMEncoder(8, 5, layers=1, bidirectional=False)(x, n)
    assert y.shape == (4, 23, 5)


def test_masked_batch_norm_statistics_are_those_of_valid_frames():
    bn = MaskedBatchNorm(2, momentum=1.0).train()
    x = torch.randn(3, 2, 10)
    n = torch.tensor([10, 4, 7])
    mask = lengths_to_mask(n, 10)[:, None, :]
    bn(x, mask)
    valid = x.transpose(1, 2)[lengths_to_mask(n, 10)]  # [frames, 2]
    torch.testing.assert_close(bn.running_mean, valid.mean(0))
    torch.testing.assert_close(bn.running_var, valid.var(0))


def test_tdnn_rejects_an_even_context():
    with pytest.raises(ValueError, match="odd"):
        TDNNLayer(4, 4, context=4)
