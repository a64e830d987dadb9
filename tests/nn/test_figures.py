"""voxa.nn.figures: every figure is a readable PNG of a plausible size for tiny untrained models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from voxa.errors import VoxaError
from voxa.nn import figures
from voxa.nn.models import build_model
from voxa.utils.vectors import VectorSet

D, C = 8, 3
NAMES = ["eng", "fra", "deu"]


def _feats(t: int = 60, seed: int = 0) -> torch.Tensor:
    return torch.randn(t, D, generator=torch.Generator().manual_seed(seed))


def _tiny(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, D, C, **kw).eval()


def _readable(path, min_w: int = 300, min_h: int = 200) -> np.ndarray:
    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    h, w = img.shape[:2]
    assert min_w <= w <= 2500 and min_h <= h <= 2000, (w, h)
    assert img[..., :3].std() > 0.02  # something was drawn
    return img


def test_frame_posteriors_with_and_without_spectrogram(tmp_path, png_plot):
    model = _tiny("dnn", hidden=8, layers=1, context=1)
    p = figures.plot_frame_posteriors(model, _feats(), NAMES, tmp_path / "post.png")
    assert p == tmp_path / "post.png"
    png_plot(p, (994, 452))
    wav = torch.randn(16000 * 6 // 10, generator=torch.Generator().manual_seed(1)) * 0.1
    p2 = figures.plot_frame_posteriors(model, _feats(), NAMES, tmp_path / "post_spec.png", waveform=wav,
                                       rate=16000, title="one utterance")
    h1, h2 = imread(p).shape[0], imread(p2).shape[0]
    assert h2 > 1.5 * h1  # the spectrogram row was added
    _readable(p2)


def test_frame_posteriors_many_classes_fold_into_other(tmp_path):
    torch.manual_seed(0)
    model = build_model("dnn", D, 12, hidden=8, layers=1, context=1).eval()
    names = [f"c{i}" for i in range(12)]
    _readable(figures.plot_frame_posteriors(model, _feats(), names, tmp_path / "p.png"))
    with pytest.raises(VoxaError, match="12 classes but 3 class names"):
        figures.plot_frame_posteriors(model, _feats(), NAMES, tmp_path / "q.png")


def test_frame_posteriors_need_a_frame_model(tmp_path):
    with pytest.raises(VoxaError, match="no frame-level posteriors"):
        figures.plot_frame_posteriors(_tiny("xvector", hidden=8, stats_dim=8, emb_dim=4), _feats(), NAMES,
                                      tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_attention_on_a_subsampling_cnn_is_stretched_to_the_frames(tmp_path, png_plot):
    model = _tiny("resnet-sap", width=2, att_hidden=4, emb_dim=4)
    x = _feats(61)
    with torch.no_grad():
        raw = model.attention_weights(x[None], torch.tensor([61]))[0]
    assert raw.shape[0] == -(-61 // model.backbone.time_stride)  # the encoder does subsample
    w = figures.frame_attention(model, x)
    assert w.shape == (61,) and np.isclose(w.sum(), 1.0)
    # frames of one encoder frame share its weight evenly
    s = model.backbone.time_stride
    np.testing.assert_allclose(w[:s].sum(), float(raw[0]), rtol=1e-5)
    p = figures.plot_attention(model, x, tmp_path / "att.png")
    png_plot(p, (991, 470))
    wav = torch.randn(16000 * 61 // 100, generator=torch.Generator().manual_seed(2)) * 0.1
    _readable(figures.plot_attention(model, x, tmp_path / "att_spec.png", waveform=wav, rate=16000))


def test_attention_of_a_frame_rate_model(tmp_path):
    model = _tiny("dnn-attention", context=1, hidden=8, layers=1, att_hidden=4, emb_dim=4)
    w = figures.frame_attention(model, _feats(40))
    assert w.shape == (40,) and np.isclose(w.sum(), 1.0)
    _readable(figures.plot_attention(model, _feats(40), tmp_path / "a.png"))


@pytest.mark.parametrize("name,kw", [("resnet-tap", {"width": 2, "emb_dim": 4}),
                                     ("xvector", {"hidden": 8, "stats_dim": 8, "emb_dim": 4}),
                                     ("dnn", {"hidden": 8, "layers": 1})])
def test_no_attention_is_an_error(tmp_path, name, kw):
    model = _tiny(name, **kw)
    assert figures.frame_attention(model, _feats()) is None
    with pytest.raises(VoxaError, match="no attention weights"):
        figures.plot_attention(model, _feats(), tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()


def _clusters(n_per: int = 15, dim: int = 6):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(n_per, dim)) + 4 * k for k in range(3)])
    return X, [NAMES[k] for k in range(3) for _ in range(n_per)]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embeddings_from_arrays(tmp_path, png_plot, method):
    X, y = _clusters()
    p = figures.plot_embeddings((X, y), tmp_path / f"{method}.png", method=method, title=method)
    png_plot(p, (810, 655))


def test_embeddings_from_a_vectorset_and_pca_separates_clusters(tmp_path):
    X, y = _clusters()
    ids = [f"u{i}" for i in range(len(y))]
    vs = VectorSet(ids, X, {u: {"language": c} for u, c in zip(ids, y)})
    _readable(figures.plot_embeddings(vs, tmp_path / "vs.png"))
    Y, xl, _ = figures.project_2d(X)
    centres = np.array([Y[np.array(y) == c].mean(0) for c in NAMES])
    assert np.linalg.norm(centres[0] - centres[2]) > 5 and xl.startswith("PC 1")


def test_embeddings_bad_input(tmp_path):
    with pytest.raises(VoxaError, match="3 vectors but 2 labels"):
        figures.plot_embeddings((np.zeros((3, 2)), ["a", "b"]), tmp_path / "e.png")
    with pytest.raises(VoxaError, match="unknown projection"):
        figures.plot_embeddings((np.zeros((3, 2)), ["a", "b", "c"]), tmp_path / "e.png", method="umap")
    with pytest.raises(VoxaError, match="at least two"):
        figures.project_2d(np.zeros((1, 4)))


@pytest.mark.parametrize("name,kw,expected", [
    ("dnn", {"hidden": 8, "layers": 1, "context": 1}, {"embeddings_pca", "frame_posteriors"}),
    ("resnet-sap", {"width": 2, "att_hidden": 4, "emb_dim": 4}, {"embeddings_pca", "attention"}),
    ("xvector", {"hidden": 8, "stats_dim": 8, "emb_dim": 4}, {"embeddings_pca"}),
])
def test_system_figures(tmp_path, name, kw, expected):
    model = _tiny(name, **kw)
    feats = {f"u{i}": _feats(30 + 3 * i, seed=i) for i in range(9)}
    ids = list(feats)
    labels = [NAMES[i % 3] for i in range(9)]
    paths = figures.system_figures(model, feats, ids, labels, NAMES, tmp_path / "exp")
    assert set(paths) == expected
    for p in paths.values():
        assert p.parent == tmp_path / "exp"
        _readable(p)
    assert (tmp_path / "exp" / "embeddings_pca.png").exists()
    # integer labels name their classes the same way
    assert set(figures.system_figures(model, feats, ids, [i % 3 for i in range(9)], NAMES,
                                      tmp_path / "exp2")) == expected
