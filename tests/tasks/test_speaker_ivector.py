"""i-vector speaker verification back-ends on synthetic speaker vectors."""

import numpy as np
import pytest

from voxa.errors import ConfigError
from voxa.metrics.detection import eer
from voxa.tasks.speaker_ivector import VERIFICATION_BACKENDS, backend_scores


def _vectors(rng, n_speakers, per_speaker, dim=10, prefix="s"):
    """Speaker means ~ N(0, 4 I), each vector its speaker's mean plus N(0, I)."""
    means = rng.standard_normal((n_speakers, dim)) * 2.0
    X = np.repeat(means, per_speaker, axis=0) + rng.standard_normal((n_speakers * per_speaker, dim))
    spk = [f"{prefix}{i:02d}" for i in range(n_speakers) for _ in range(per_speaker)]
    return X, spk


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    bg, bg_spk = _vectors(rng, 20, 8, prefix="bg")
    ev, ev_spk = _vectors(rng, 10, 4, prefix="ev")  # speakers unseen by the back-ends
    return bg, bg_spk, ev, ev_spk


@pytest.mark.parametrize("backend", VERIFICATION_BACKENDS)
def test_backend_scores_shape_and_finite(data, backend):
    bg, bg_spk, ev, _ = data
    s = backend_scores(backend, bg, bg_spk, ev[:7], ev[7:])
    assert s.shape == (7, len(ev) - 7)
    assert np.isfinite(s).all()


@pytest.mark.parametrize("backend", VERIFICATION_BACKENDS)
def test_backend_scores_separate_speakers(data, backend):
    bg, bg_spk, ev, ev_spk = data
    s = backend_scores(backend, bg, bg_spk, ev, ev)
    same = np.equal.outer(ev_spk, ev_spk)
    off = ~np.eye(len(ev), dtype=bool)  # no utterance against itself
    scores, labels = s[off], same[off]
    assert scores[labels].mean() > scores[~labels].mean()
    assert eer(scores, labels) < 0.15


def test_cosine_backend_is_symmetric(data):
    bg, bg_spk, ev, _ = data
    s = backend_scores("cosine", bg, bg_spk, ev, ev)
    np.testing.assert_allclose(s, s.T, atol=1e-9)


def test_lda_dim_is_used(data):
    bg, bg_spk, ev, _ = data
    full = backend_scores("lda-wccn-cosine", bg, bg_spk, ev, ev)
    two = backend_scores("lda-wccn-cosine", bg, bg_spk, ev, ev, lda_dim=2)
    assert full.shape == two.shape and not np.allclose(full, two)


def test_unknown_backend_is_an_error(data):
    bg, bg_spk, ev, _ = data
    with pytest.raises(ConfigError, match="unknown back-end 'svm'"):
        backend_scores("svm", bg, bg_spk, ev, ev)


def test_segment_cuts_utterances_into_labelled_pieces():
    import torch

    from voxa.tasks.speaker_ivector import segment

    feats, spk = segment([torch.zeros(650, 3), torch.zeros(120, 3)], ["a", "b"], 300)
    assert [f.shape[0] for f in feats] == [300, 300, 120]
    assert spk == ["a", "a", "b"]


def test_jfa_scores_rank_same_speaker_pairs_higher():
    import torch

    from voxa.metrics.detection import eer
    from voxa.tasks.classify import ClassifierConfig, FrontEnd
    from voxa.tasks.speaker_ivector import jfa_scores

    g = torch.Generator().manual_seed(0)
    means = 2.0 * torch.randn(34, 4, generator=g)
    feats, spk = [], []
    for s in range(34):
        for _ in range(5):
            feats.append(torch.randn(80, 4, generator=g) + means[s] + 0.2 * torch.randn(4, generator=g))
            spk.append(str(s))
    cfg = ClassifierConfig.from_dict({"gmm": {"n_components": 4, "max_iter": 3},
                                      "ivector": {"rank": 3, "n_iter": 3}})
    fe = FrontEnd(cfg).fit(feats, ivectors=False)
    m = jfa_scores(fe, feats[:150], spk[:150], feats[150:], cfg, speaker_rank=4, channel_rank=2)
    same = np.array([[a == b for b in spk[150:]] for a in spk[150:]])
    off = ~np.eye(len(same), dtype=bool)
    assert m.shape == (20, 20)
    assert eer(m[off], same[off]) < 0.3  # chance is 0.5


def test_neural_embeddings_feed_the_verification_back_ends(tmp_path):
    """x-vectors trained on 4 synthetic voices score trials between the 2 others (the embedder path)."""
    from voxa.data.corpora import prepare
    from voxa.data.synthetic import make_digit_corpus
    from voxa.tasks.classify import ClassifierConfig
    from voxa.tasks.speaker_ivector import run_ivector_verification

    make_digit_corpus(tmp_path / "c", takes=2)
    recs = prepare("fsdd", tmp_path / "c", tmp_path / "d")
    speakers = sorted({r.speaker for r in recs})
    bg = [r for r in recs if r.speaker in speakers[:4]]
    ev = [r for r in recs if r.speaker in speakers[4:]]
    cfg = ClassifierConfig.from_dict({
        "features": {"type": "mfcc", "deltas": 2, "cmvn": "utt", "vad": True},
        "neural": {"model": {"hidden": 32, "emb_dim": 16, "stats_dim": 64},
                   "trainer": {"epochs": 3, "batch_size": 8, "progress": False}, "crop": None}})
    res = run_ivector_verification(bg, ev, cfg, tmp_path / "exp", backends=["cosine", "plda"],
                                   embedder="xvector", segment_frames=None)
    assert res["system"] == "xvector-cosine" and set(res["backends"]) == {"cosine", "plda"}
    assert 0.0 <= res["eer"] <= 1.0 and res["n_trials"] > 0
    assert (tmp_path / "exp" / "nn" / "model.safetensors").is_file()
