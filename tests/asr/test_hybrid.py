"""DNN-HMM hybrid: scaled likelihoods, training on frame targets, decoding through the HMM graph."""

import torch

import voxa
from voxa.asr.acoustic import AcousticModel
from voxa.asr.decoder import Decoder, DecoderConfig
from voxa.asr.graph import build_graph
from voxa.asr.hybrid import HybridConfig, HybridModel, HybridTrainConfig, train_hybrid
from voxa.nn.trainer import TrainerConfig


def test_scaled_likelihoods_are_log_posteriors_minus_log_priors():
    m = HybridModel(HybridConfig(input_dim=2, num_pdfs=3, context=0, hidden=4, layers=1)).eval()
    m.set_prior(torch.tensor([1.0, 1.0, 2.0]))
    x = torch.randn(5, 2)
    got = m.pseudo_log_likelihoods(x)
    want = m.log_posteriors(x) - torch.tensor([0.25, 0.25, 0.5]).log()
    assert torch.allclose(got, want, atol=1e-6)


def test_a_state_never_aligned_gets_the_floored_prior():
    m = HybridModel(HybridConfig(input_dim=2, num_pdfs=3, prior_floor=1e-4))
    m.set_prior(torch.tensor([5.0, 5.0, 0.0]))
    assert abs(float(m.log_prior[2]) - float(torch.log(torch.tensor(1e-4)))) < 1e-5


def test_decoding_a_fixed_posterior_matrix_gives_the_expected_words():
    am = AcousticModel.init_flat(["SIL", "a", "b"], 1, torch.zeros(1), torch.ones(1))
    g = build_graph(am, {"A": [(("a",), 1.0)], "B": [(("b",), 1.0)]}, grammar="loop")
    # 4 frames of silence, 9 of phone b's states, 9 of a's, 4 of silence: posteriors peaked on them
    seq = [am.pdfs_of("SIL")] * 1 + [am.pdfs_of("b")] + [am.pdfs_of("a")] + [am.pdfs_of("SIL")]
    pdfs = [p for block in seq for p in block for _ in range(3)]
    post = torch.full((len(pdfs), am.num_pdfs), 1e-3)
    post[torch.arange(len(pdfs)), torch.tensor(pdfs)] = 1.0
    post = post / post.sum(1, keepdim=True)
    prior = torch.full((am.num_pdfs,), 1.0 / am.num_pdfs)
    res = Decoder(g, DecoderConfig(acoustic_scale=1.0)).decode(post.log() - prior.log())
    assert res.words == ["B", "A"]


def test_train_hybrid_learns_frame_targets_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 6, generator=g) * 2
    feats, targets = {}, {}
    for i in range(24):
        y = torch.randint(0, 4, (8,), generator=g).repeat_interleave(10)
        feats[f"u{i}"] = centres[y] + 0.3 * torch.randn(len(y), 6, generator=g)
        targets[f"u{i}"] = y
    cfg = HybridTrainConfig(model={"context": 1, "hidden": 32, "layers": 1, "dropout": 0.0},
                            trainer=TrainerConfig(epochs=8, batch_size=4, lr=3e-3, checkpoint_every=0,
                                                  progress=False), chunk=40)
    model = train_hybrid(feats, targets, 4, cfg, tmp_path / "exp")
    acc = float((model.log_posteriors(feats["u0"]).argmax(1) == targets["u0"]).float().mean())
    assert acc > 0.9
    path = model.save(tmp_path / "hybrid.safetensors")
    again = voxa.load(path)
    want = model.pseudo_log_likelihoods(feats["u1"])
    assert torch.allclose(again.pseudo_log_likelihoods(feats["u1"]), want)
