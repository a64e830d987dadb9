"""Re-synthesising a query output from the model's separated outputs."""

import pytest
import torch

import voxa.tse.models as models
from voxa.errors import ConfigError, VoxaError
from voxa.tasks.tse import extract, locate
from voxa.tse.models import BandSplitConfig, BandSplitModel, StftConfig
from voxa.tse.refine import project
from voxa.tse.schedule import two_outputs


def _sources(n=16000, b=2):
    return torch.randn(b, 2, n, generator=torch.Generator().manual_seed(0))


def test_a_query_output_in_the_span_of_the_separated_outputs_is_kept():
    s = _sources()
    q = 0.9 * s[:, 0] - 0.3 * s[:, 1]
    assert torch.allclose(project(s, q), q, atol=1e-4)


def test_what_the_separated_outputs_do_not_explain_is_dropped():
    s = _sources()
    clean = 0.8 * s[:, 0] + 0.1 * s[:, 1]
    q = clean + 0.5 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    assert (project(s, q) - clean).norm() < 0.1 * (q - clean).norm()


def test_weights_fitted_per_block_follow_a_change_of_talker():
    s = _sources(32000, 1)
    q = torch.cat([s[:, 0, :16000], s[:, 1, 16000:]], -1)  # the first talker, then the second
    whole = (project(s, q) - q).norm()
    blocks = (project(s, q, block=4000) - q).norm()
    assert blocks < 0.3 * whole


def test_a_silent_query_output_stays_silent_and_finite():
    s = _sources()
    out = project(s, torch.zeros(2, 16000), block=4000)
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


def test_mismatched_shapes_are_refused():
    with pytest.raises(ConfigError, match="do not match"):
        project(_sources(), torch.zeros(3, 16000))


def _model(refine):
    torch.manual_seed(0)
    return BandSplitModel(BandSplitConfig(dim=8, hidden=8, n_dq=1, n_ts=0, n_bands=6, refine=refine,
                                          stft=StftConfig(rate=8000))).eval()


def test_a_model_extracts_with_its_refinement_and_only_then():
    mix = torch.randn(8000, generator=torch.Generator().manual_seed(2))
    d = torch.tensor([1.0, 2.5])
    plain, refined = _model("none"), _model("project")
    with torch.no_grad():
        forward = plain(mix.expand(2, -1).contiguous(), d)
        expected = project(two_outputs(plain, mix[None]).expand(2, -1, -1), forward)
    assert torch.allclose(plain.extract(mix, d), forward)
    assert torch.allclose(refined.extract(mix, d), expected, atol=1e-5)
    assert not torch.equal(expected, forward)


def test_an_unknown_refinement_is_refused():
    with pytest.raises(ConfigError, match="refine"):
        _model("smooth")


def test_queries_in_batches_give_what_one_pass_gives():
    mix = torch.randn(8000, generator=torch.Generator().manual_seed(3))
    d = torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5])
    m = _model("project")
    assert torch.allclose(m.extract(mix, d, batch=2), m.extract(mix, d), atol=1e-5)


def test_a_sweep_separates_the_mixture_once(monkeypatch):
    calls = []
    monkeypatch.setattr(models, "two_outputs", lambda m, x: calls.append(x.shape) or two_outputs(m, x))
    sweep = locate(_model("project"), torch.randn(8000, generator=torch.Generator().manual_seed(4)), 8000,
                   batch=3)
    assert len(sweep["queries"]) == 10 and len(calls) == 1


@pytest.mark.parametrize("distances, batch, match", [([], None, "no query distance"), ([1.0], 0, "batch")])
def test_extract_refuses_no_queries_and_a_batch_below_one(distances, batch, match):
    with pytest.raises(VoxaError, match=match):
        extract(_model("none"), torch.randn(800), 8000, distances, batch=batch)


def test_a_zero_dimensional_distance_is_one_query():
    m, mix = _model("none"), torch.randn(8000, generator=torch.Generator().manual_seed(5))
    out = extract(m, mix, 8000, torch.tensor(1.5))
    assert out.shape == (8000,) and torch.allclose(out, extract(m, mix, 8000, 1.5))
