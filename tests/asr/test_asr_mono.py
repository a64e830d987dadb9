"""Monophone GMM-HMM end to end: a synthetic yes/no corpus (espeak-ng) is recognised perfectly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from voxa.asr.acoustic import AcousticModel
from voxa.asr.align import align_batch, build_chain
from voxa.asr.decoder import Decoder, DecoderConfig
from voxa.asr.graph import build_graph
from voxa.asr.lexicon import Lexicon
from voxa.asr.training import MonoConfig, train_mono
from voxa.errors import VoxaError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def yesno(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from voxa.data.corpora.yesno import prepare_yesno
    from voxa.data.synthetic_speech import make_yesno_corpus
    from voxa.tasks.asr import AsrConfig, load_asr_features

    root = tmp_path_factory.mktemp("yesno")
    recs = prepare_yesno(make_yesno_corpus(root, n_files=16, voices=("en", "en+f3", "en+m3")))
    cfg = AsrConfig.from_dict({"lexicon": {"type": "words"},
                               "mono": {"num_iters": 10, "max_gaussians": 60, "mixup_iters": 8}})
    feats = load_asr_features(recs, cfg, root / "exp")
    return recs, cfg, feats, root


@needs_espeak
def test_monophone_recognises_synthetic_yes_no_perfectly(yesno) -> None:
    from voxa.tasks.asr import decode_asr, make_graph, score_asr, train_asr, transcripts_of

    recs, cfg, feats, root = yesno
    train = [r for r in recs if r.extra["split"] == "train"]
    test = [r for r in recs if r.extra["split"] == "test"]
    system = train_asr(train, cfg, root / "exp", feats)
    graph = make_graph(system, "loop", cfg, root / "exp")
    refs = transcripts_of(test)
    hyps, timing = decode_asr(system, graph, feats, sorted(refs), cfg)
    score = score_asr(refs, hyps)
    assert score["ref_words"] == 8 * len(test)
    assert score["wer"] == 0.0
    assert timing["rtf"] < 1.0


@needs_espeak
def test_cmudict_lexicon_trains_phones_of_yes_and_no(yesno) -> None:
    from voxa.tasks.asr import decode_asr, make_graph, score_asr, train_asr, transcripts_of

    recs, cfg, feats, root = yesno
    cfg = type(cfg).from_dict({"lexicon": {"type": "cmudict"},
                               "mono": {"num_iters": 10, "max_gaussians": 80, "mixup_iters": 8}})
    train = [r for r in recs if r.extra["split"] == "train"]
    system = train_asr(train, cfg, root / "exp", feats)
    assert {"Y", "EH", "S", "N", "OW"} <= set(system.am.phones)
    refs = transcripts_of([r for r in recs if r.extra["split"] == "test"])
    hyps, _ = decode_asr(system, make_graph(system, "loop", cfg, root / "exp"), feats, sorted(refs), cfg)
    assert score_asr(refs, hyps)["wer"] <= 5.0


def test_training_names_the_words_missing_from_the_lexicon() -> None:
    lex = Lexicon({"yes": [(("Y", "EH", "S"), 1.0)]})
    feats = {"u1": torch.randn(50, 3)}
    with pytest.raises(VoxaError, match="zebra"):
        train_mono(feats, {"u1": ["yes", "zebra"]}, lex, MonoConfig(num_iters=1), progress=False)


def _toy_model() -> AcousticModel:
    am = AcousticModel.init_flat(["SIL", "a", "b"], 1, torch.zeros(1), torch.ones(1), silence_states=1)
    am.means[am.pdfs_of("a")] = 4.0
    am.means[am.pdfs_of("b")] = -4.0
    am._cache = None
    return am


def test_alignment_finds_the_word_boundaries_of_a_clean_signal() -> None:
    am = _toy_model()
    x = torch.cat([torch.zeros(6), torch.full((9,), 4.0), torch.zeros(5), torch.full((12,), -4.0)])[:, None]
    ali = align_batch(am, [x], [build_chain(am, [["a"], ["b"]])])[0]
    words = ali.word_segments(["A", "B"])
    assert [w[2] for w in words] == ["A", "B"]
    assert words[0][:2] == pytest.approx((0.06, 0.15))
    assert words[1][:2] == pytest.approx((0.20, 0.32))


def test_padded_batch_alignment_equals_single_alignment() -> None:
    am = _toy_model()
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(n, 1, generator=g) * 4 for n in (20, 35, 27)]
    chains = [build_chain(am, [["a"], ["b"], ["a"]])] * 3
    batch = align_batch(am, xs, chains)
    for x, c, b in zip(xs, chains, batch):
        one = align_batch(am, [x], [c])[0]
        assert torch.equal(one.states, b.states)
        assert one.score == pytest.approx(b.score, rel=1e-9)


def test_isolated_word_graph_outputs_exactly_one_word() -> None:
    am = _toy_model()
    lex = {"A": [(("a",), 1.0)], "B": [(("b",), 1.0)]}
    x = torch.cat([torch.full((9,), 4.0), torch.zeros(3), torch.full((9,), -4.0)])[:, None]
    dec = Decoder(build_graph(am, lex, grammar="isolated"), DecoderConfig(acoustic_scale=1.0))
    assert len(dec.decode(am.log_likelihoods(x)).words) == 1
    loop = Decoder(build_graph(am, lex, grammar="loop"), DecoderConfig(acoustic_scale=1.0))
    assert loop.decode(am.log_likelihoods(x)).words == ["A", "B"]


def test_acoustic_model_round_trips_through_voxa_load(tmp_path: Path) -> None:
    import voxa

    am = _toy_model()
    am.save(tmp_path / "am.safetensors")
    back = voxa.load(tmp_path / "am.safetensors")
    x = torch.randn(10, 1)
    assert torch.allclose(back.log_likelihoods(x), am.log_likelihoods(x))


@needs_espeak
def test_triphone_system_trains_a_tree_and_decodes_through_the_context_graph(yesno) -> None:
    from voxa.tasks.asr import decode_asr, make_graph, score_asr, train_systems, transcripts_of

    recs, cfg, feats, root = yesno
    cfg = type(cfg).from_dict({"lexicon": {"type": "cmudict"}, "systems": ["mono", "tri"],
                               "mono": {"num_iters": 10, "max_gaussians": 80, "mixup_iters": 8},
                               "tri": {"num_leaves": 20, "max_gaussians": 100, "num_iters": 6,
                                       "mixup_iters": 4, "realign_iters": [3], "min_count": 20}})
    train = [r for r in recs if r.extra["split"] == "train"]
    lex = cfg.lexicon.build(["yes", "no"])
    tri = train_systems(train, cfg, root / "exp", feats, lex)["tri"]
    assert tri.am.context_dependent and tri.am.num_pdfs > len(tri.am.phones)
    refs = transcripts_of([r for r in recs if r.extra["split"] == "test"])
    hyps, _ = decode_asr(tri, make_graph(tri, "loop", cfg, root / "exp"), feats, sorted(refs), cfg)
    assert score_asr(refs, hyps)["wer"] <= 10.0


def test_nbest_lists_distinct_word_sequences_best_first() -> None:
    am = _toy_model()
    lex = {"A": [(("a",), 1.0)], "B": [(("b",), 1.0)]}
    x = torch.cat([torch.full((9,), 4.0), torch.zeros(3), torch.full((9,), -1.0)])[:, None]
    dec = Decoder(build_graph(am, lex, grammar="loop"), DecoderConfig(acoustic_scale=1.0, lattice_beam=20))
    res = dec.decode(am.log_likelihoods(x), nbest=3)
    seqs = [tuple(w) for w, _ in res.nbest]
    costs = [c for _, c in res.nbest]
    assert len(seqs) >= 2 and len(set(seqs)) == len(seqs)
    assert costs == sorted(costs)
    assert list(seqs[0]) == dec.decode(am.log_likelihoods(x)).words


def test_pronunciation_counts_pick_the_pronunciation_the_audio_has() -> None:
    from voxa.asr.graph_align import pron_counts

    am = _toy_model()
    lex = Lexicon({"X": [(("a",), 1.0), (("b",), 1.0)], "Y": [(("a",), 1.0)]})
    feats = {f"u{i}": torch.cat([torch.full((8,), -4.0 if i < 3 else 4.0), torch.zeros(3),
                                 torch.full((8,), 4.0)])[:, None] for i in range(4)}
    counts = pron_counts(am, lex, feats, {k: ["X", "Y"] for k in feats}, acoustic_scale=1.0)
    assert counts == {("X", ("b",)): 3.0, ("X", ("a",)): 1.0, ("Y", ("a",)): 4.0}
    probs = dict(lex.reestimate(counts, smoothing=0.0).prons("X"))
    assert probs[("b",)] == 1.0 and probs[("a",)] == pytest.approx(1 / 3)


@needs_espeak
def test_streamed_features_train_the_same_model_as_in_memory(yesno) -> None:
    from voxa.tasks.asr import StreamedFeatures, load_asr_features, train_asr

    recs, cfg, feats, root = yesno
    cfg = type(cfg).from_dict({"lexicon": {"type": "words"}, "stream_features": True,
                               "mono": {"num_iters": 4, "max_gaussians": 30, "mixup_iters": 3}})
    streamed = load_asr_features(recs, cfg, root / "exp")
    assert isinstance(streamed, StreamedFeatures) and set(streamed) == set(feats)
    train = [r for r in recs if r.extra["split"] == "train"]
    a = train_asr(train, cfg, root / "exp", streamed).am
    b = train_asr(train, cfg, root / "exp", feats).am
    assert torch.equal(a.means, b.means) and torch.equal(a.log_self, b.log_self)


@needs_espeak
def test_word_position_phones_train_and_decode(yesno) -> None:
    from voxa.tasks.asr import decode_asr, make_graph, score_asr, train_asr, transcripts_of

    recs, cfg, feats, root = yesno
    cfg = type(cfg).from_dict({"lexicon": {"type": "cmudict", "word_position": True},
                               "mono": {"num_iters": 10, "max_gaussians": 80, "mixup_iters": 8}})
    system = train_asr([r for r in recs if r.extra["split"] == "train"], cfg, root / "exp", feats)
    assert {"Y_B", "EH_I", "S_E", "N_B", "OW_E"} <= set(system.am.phones)
    refs = transcripts_of([r for r in recs if r.extra["split"] == "test"])
    hyps, _ = decode_asr(system, make_graph(system, "loop", cfg, root / "exp"), feats, sorted(refs), cfg)
    assert score_asr(refs, hyps)["wer"] <= 5.0
