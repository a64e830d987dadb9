"""voxa.nn.models (and heads): one interface, padding invariance, a toy task each learns, build_model.

(Named test_nn_models.py: tests/tse/test_models.py holds the basename test_models.py.)
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from voxa.errors import ConfigError
from voxa.nn.heads import AAMSoftmaxHead, SoftmaxHead
from voxa.nn.layers import lengths_to_mask
from voxa.nn.models import MODEL_NAMES, build_model

D, C = 8, 3
# tiny settings per short name: a few thousand parameters each, so each trains in a second on one thread
TINY = {
    "dnn": {"context": 2, "hidden": 16, "layers": 2},
    "dnn-attention": {"context": 2, "hidden": 16, "layers": 2, "att_hidden": 8, "emb_dim": 8},
    "lstm": {"hidden": 8, "layers": 1, "emb_dim": 8},
    "lstm-sap-aam": {"hidden": 8, "layers": 1, "emb_dim": 8, "pooling": "sap", "att_hidden": 8,
                     "head": "aam"},
    "res-tdnn": {"channels": 12, "dilations": (2, 3), "se_bottleneck": 4, "pool_channels": 16,
                 "att_hidden": 8, "emb_dim": 8},
    "xvector": {"hidden": 12, "stats_dim": 16, "emb_dim": 8},
    "vgg-sap": {"width": 2, "att_hidden": 8, "emb_dim": 8},
    "resnet-tap": {"width": 2, "emb_dim": 8},
    "resnet-stats": {"width": 2, "emb_dim": 8},
    "resnet-sap": {"width": 2, "att_hidden": 8, "emb_dim": 8},
    "resnet-mha": {"width": 2, "heads": 2, "emb_dim": 8},
    "resnet-asp": {"width": 2, "att_hidden": 8, "emb_dim": 8, "head": "aam", "margin": 0.1},
    "resnet34-sap": {"backbone": "resnet34", "width": 2, "att_hidden": 8, "emb_dim": 8},
}
ATTENTIVE = {"dnn-attention", "lstm-sap-aam", "res-tdnn", "vgg-sap", "resnet-sap", "resnet-mha", "resnet-asp",
             "resnet34-sap"}


def tiny(key: str):
    name = {"lstm-sap-aam": "lstm", "resnet34-sap": "resnet-sap"}.get(key, key)
    torch.manual_seed(0)
    return build_model(name, D, C, **TINY[key])


def _toy(n_per_class=8, seed=0):
    """3 classes of random sequences (20-60 frames, 8 dims); the class shifts the mean of 2 dims."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(C).repeat_interleave(n_per_class)
    lengths = torch.randint(20, 61, (len(y),), generator=g)
    x = torch.randn(len(y), int(lengths.max()), D, generator=g)
    shift = torch.zeros(C, D)
    shift[torch.arange(C), 2 * torch.arange(C)] = 1.5
    shift[torch.arange(C), 2 * torch.arange(C) + 1] = -1.5
    x = (x + shift[y][:, None]) * lengths_to_mask(lengths, x.shape[1])[:, :, None]
    return x, lengths, y


def test_the_tiny_cases_cover_every_short_name():
    assert set(MODEL_NAMES) <= set(TINY)


@pytest.mark.parametrize("key", sorted(TINY))
def test_interface_shapes_and_padding_invariance(key):
    model = tiny(key)
    x, n, y = _toy(2, seed=3)
    model.train()
    model(x, n, y).sum().backward()  # one training pass: batch-norm running statistics move off identity
    model.eval()
    x = x + 40 * ~lengths_to_mask(n, x.shape[1])[:, :, None]  # garbage in the padding
    with torch.no_grad():
        logits, emb = model(x, n), model.embed(x, n)
        att, post = model.attention_weights(x, n), model.frame_posteriors(x, n)
        assert logits.shape == (6, C) and emb.ndim == 2 and emb.shape[0] == 6
        assert (att is not None) == (key in ATTENTIVE)
        assert (post is not None) == (key == "dnn")
        if att is not None:
            torch.testing.assert_close(att.sum(1), torch.ones(6))
        if post is not None:
            assert post.shape == (6, x.shape[1], C)
            torch.testing.assert_close(post.sum(-1), lengths_to_mask(n, x.shape[1]).float())
        for b in range(6):
            xb, nb = x[b:b + 1, :n[b]], n[b:b + 1]
            torch.testing.assert_close(logits[b], model(xb, nb)[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(emb[b], model.embed(xb, nb)[0], rtol=1e-5, atol=1e-5)
            if att is not None:
                alone = model.attention_weights(xb, nb)[0]
                torch.testing.assert_close(att[b, :len(alone)], alone, rtol=1e-5, atol=1e-5)
                assert (att[b, len(alone):] == 0).all()
            if post is not None:
                torch.testing.assert_close(post[b, :n[b]], model.frame_posteriors(xb, nb)[0],
                                           rtol=1e-5, atol=1e-5)


# resnet34 is left out (its blocks are resnet18's; it costs as much as three other models here)
@pytest.mark.parametrize("key", sorted(set(TINY) - {"resnet34-sap"}))
def test_a_tiny_model_learns_a_separable_toy_task(key):
    model = tiny(key)
    x, n, y = _toy(6)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x, n, y), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x, n).argmax(1) == y).float().mean().item()
    assert acc >= 0.9, f"{key}: training accuracy {acc:.2f}"


def test_frame_dnn_logits_are_the_log_of_the_averaged_frame_posteriors():
    model = tiny("dnn").eval()
    x, n, _ = _toy(1)
    with torch.no_grad():
        post = model.frame_posteriors(x, n)
        for b in range(len(n)):
            torch.testing.assert_close(model(x, n)[b].exp(), post[b, :n[b]].mean(0))


def test_xvector_embedding_is_the_first_embedding_layers_affine_output():
    model = tiny("xvector").eval()
    x, n, _ = _toy(1)
    with torch.no_grad():
        h, m = model.encode(x, n)
        torch.testing.assert_close(model.embed(x, n), model.embedding(model.pool(h, m)))
    assert [layer.conv.kernel_size[0] for layer in model.frames] == [5, 3, 3, 1, 1]
    assert [layer.conv.dilation[0] for layer in model.frames] == [1, 2, 3, 1, 1]


def test_aam_head_is_scaled_cosine_at_inference_and_margin_lowers_the_target_in_training():
    torch.manual_seed(0)
    head = AAMSoftmaxHead(6, 4, margin=0.2, scale=30.0)
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0])
    cos = F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).T
    head.eval()
    torch.testing.assert_close(head(x), 30 * cos)
    torch.testing.assert_close(head(x, y), 30 * cos)  # no margin at inference, labels or not
    head.train()
    torch.testing.assert_close(head(x), 30 * cos)  # nor without labels
    out = head(x, y)
    target = out.gather(1, y[:, None]).squeeze(1)
    theta = torch.acos(cos.gather(1, y[:, None]).squeeze(1))
    torch.testing.assert_close(target, 30 * torch.cos(theta + 0.2), rtol=1e-4, atol=1e-4)
    assert (target < 30 * cos.gather(1, y[:, None]).squeeze(1)).all()
    others = torch.ones_like(out, dtype=torch.bool).scatter(1, y[:, None], False)
    torch.testing.assert_close(out[others], 30 * cos[others])


def test_aam_target_logit_keeps_falling_past_pi_minus_margin():
    head = AAMSoftmaxHead(2, 2, margin=0.5, scale=1.0).train()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    angles = torch.linspace(2.4, math.pi - 1e-3, 20)
    x = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    t = head(x, torch.zeros(20, dtype=torch.long))[:, 0]
    assert (t[1:] <= t[:-1] + 1e-6).all()


def test_softmax_head_ignores_labels():
    head = SoftmaxHead(4, 3).train()
    x = torch.randn(2, 4)
    torch.testing.assert_close(head(x, torch.tensor([0, 1])), head(x))


def test_build_model_overrides_and_errors():
    m = build_model("resnet-sap", 40, 7, backbone="resnet34", width=4, head="aam")
    assert (m.cfg.backbone, m.cfg.width, m.cfg.head, m.cfg.num_classes) == ("resnet34", 4, "aam", 7)
    assert len(m.backbone.blocks) == 16 and isinstance(m.head, AAMSoftmaxHead)
    assert build_model("vgg-sap", 40, 2).cfg.backbone == "vgg"
    assert build_model("resnet-mha", 40, 2).cfg.width == 16
    with pytest.raises(ConfigError, match="unknown model 'cnn'; choose one of: dnn, dnn-attention"):
        build_model("cnn", 40, 2)
    with pytest.raises(ConfigError, match="unknown setting 'depth'; CNNConfig takes: .*backbone"):
        build_model("resnet-tap", 40, 2, depth=3)
    with pytest.raises(ConfigError, match="unknown backbone 'resnet50'; choose one of: vgg, resnet18"):
        build_model("resnet-tap", 40, 2, backbone="resnet50")
    with pytest.raises(ConfigError, match="unknown pooling"):
        build_model("lstm", 40, 2, pooling="mha")
    with pytest.raises(ConfigError, match="unknown head"):
        build_model("xvector", 40, 2, head="arcface")


def test_round_trip_keeps_every_output(tmp_path):
    import voxa

    model = tiny("resnet-asp").eval()
    x, n, _ = _toy(1)
    back = voxa.load(model.save(tmp_path / "m.safetensors"))
    assert type(back) is type(model) and back.cfg == model.cfg
    with torch.no_grad():
        for f in ("forward", "embed", "attention_weights"):
            torch.testing.assert_close(getattr(back, f)(x, n), getattr(model, f)(x, n), rtol=0, atol=0)
