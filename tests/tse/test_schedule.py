"""Separation first: stage losses, hand-over, a staged run that resumes exactly, and query use learned."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from voxa.errors import ConfigError
from voxa.tasks.tse import TsePreset, preset, train
from voxa.tse.schedule import (
    StageConfig,
    by_distance,
    handover,
    order_loss,
    pit_loss,
    stage_loss,
    two_outputs,
)


def _staged(**trainer) -> TsePreset:
    p = preset("tiny")
    return replace(p, model="bandsplit",
                   model_config={"dim": 8, "hidden": 8, "n_dq": 1, "n_ts": 0, "n_bands": 6},
                   trainer=replace(p.trainer, epochs=100, batch_size=4, checkpoint_every=2, **trainer),
                   epoch_size=8, valid_size=4,
                   stages=[StageConfig(task="pit", max_steps=4), StageConfig(task="order", max_steps=4),
                           StageConfig(task="query", max_steps=4, queries_per_mixture=2, presence=1.0)])


def test_pit_loss_takes_the_better_assignment_and_order_loss_does_not():
    s = torch.randn(3, 2, 800)
    assert torch.allclose(pit_loss(s.flip(1), s), pit_loss(s, s))
    assert float(order_loss(s.flip(1), s)) > float(order_loss(s, s)) + 10


def test_sources_are_ordered_nearer_first():
    s = torch.arange(4.0).reshape(2, 2, 1).expand(2, 2, 3)
    d = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    assert by_distance(s, d)[:, :, 0].tolist() == [[1.0, 0.0], [2.0, 3.0]]


def test_a_stage_hands_over_at_its_figure_or_its_budget():
    stages = [StageConfig(task="pit", max_steps=100, until=5.0), StageConfig(task="query", max_steps=50)]
    extra: dict = {}
    assert not handover(stages, extra, [{"stage": 0, "si_sdri": 4.9}], 40, epoch=1)
    assert extra["stage"] == 0
    assert not handover(stages, extra, [{"stage": 0, "si_sdri": 5.1}], 50, epoch=2)
    assert extra["stage"] == 1 and extra["handovers"][0]["reason"].startswith("si_sdri 5.10")
    # the same epoch is not decided twice (a resumed run calls on_epoch again)
    assert not handover(stages, extra, [{"stage": 1, "query_use": 9.0}], 200, epoch=2)
    assert handover(stages, extra, [], 100, epoch=3)  # budget of the last stage: the schedule is done
    assert extra["handovers"][-1]["reason"] == "step budget (50)"


def test_an_unknown_stage_task_is_refused():
    with pytest.raises(ConfigError, match="stage task"):
        StageConfig(task="denoise")


def test_aux_pit_is_refused_outside_a_query_stage_and_a_bad_stage_lr_too():
    with pytest.raises(ConfigError, match="aux_pit"):
        StageConfig(task="pit", aux_pit=1.0)
    with pytest.raises(ConfigError, match="lr"):
        StageConfig(task="query", lr=0.0)


def test_a_negative_stage_lr_patience_is_refused():
    with pytest.raises(ConfigError, match="lr_patience"):
        StageConfig(task="query", lr_patience=-1)


def test_aux_pit_adds_the_separation_loss_of_each_distinct_mixture_once():
    from voxa.tse.models import BandSplitConfig, BandSplitModel

    torch.manual_seed(0)
    net = BandSplitModel(BandSplitConfig(dim=8, hidden=8, n_dq=1, n_ts=0, n_bands=6))
    mix = torch.randn(2, 800).repeat_interleave(2, 0)  # two mixtures, each queried twice
    src = torch.randn(2, 2, 800).repeat_interleave(2, 0)
    batch = {"mix": mix, "query": torch.tensor([1.0, 2.0, 1.5, 3.0]), "target": src[:, 0],
             "present": torch.ones(4, dtype=torch.bool), "sources": src}
    plain = StageConfig(task="query", queries_per_mixture=2)
    aux = StageConfig(task="query", queries_per_mixture=2, aux_pit=0.5)
    with torch.no_grad():
        expect = stage_loss(plain, net, batch) + 0.5 * pit_loss(two_outputs(net, mix[::2]), src[::2])
        assert torch.allclose(stage_loss(aux, net, batch), expect)


def test_stages_appended_to_a_finished_schedule_run_on_resume_with_their_learning_rate(bank, speech,
                                                                                       tmp_path):
    p = _staged()
    first = train(p, bank.root, speech, tmp_path / "exp", state_dir=tmp_path / "state")
    assert first["card"]["finished"] and first["steps"] == 12
    more = replace(p, stages=[*p.stages, StageConfig(task="query", name="query-aux", max_steps=4,
                                                     queries_per_mixture=2, presence=1.0, aux_pit=1.0,
                                                     lr=1e-4, lr_patience=7)])
    res = train(more, bank.root, speech, tmp_path / "exp", state_dir=tmp_path / "state")
    assert res["steps"] == 16 and res["card"]["finished"]
    assert [h["name"] for h in res["card"]["handovers"]][-1] == "query-aux"
    st = torch.load(tmp_path / "state" / "checkpoint.pt", weights_only=True)
    assert st["opt"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert st["sched"]["patience"] == 7


def test_a_stage_trains_and_validates_on_its_own_mixture_length(bank, speech, tmp_path, monkeypatch):
    import voxa.tse.schedule as schedule

    p = _staged()
    p = replace(p, stages=[*p.stages[:2], replace(p.stages[2], seconds=0.75)])
    seen: dict[str, set] = {"train": set(), "valid": set()}
    real_loss, real_valid = schedule.stage_loss, schedule.validate_query

    def loss(stage, net, b):
        seen["train"].add((stage.task, b["mix"].shape[-1]))
        return real_loss(stage, net, b)

    def valid(net, items, batch_size):
        seen["valid"].add(items[0]["mix"].shape[-1])
        return real_valid(net, items, batch_size)

    monkeypatch.setattr(schedule, "stage_loss", loss)
    monkeypatch.setattr(schedule, "validate_query", valid)
    train(p, bank.root, speech, tmp_path / "exp")
    rate, short = p.mixing.rate, p.mixing.samples
    assert seen["train"] == {("pit", short), ("order", short), ("query", int(0.75 * rate))}
    assert seen["valid"] == {int(0.75 * rate)}


def test_a_non_positive_stage_length_is_refused():
    with pytest.raises(ConfigError, match="seconds"):
        StageConfig(task="query", seconds=0.0)


def test_a_staged_run_hands_over_and_records_it(bank, speech, tmp_path, png_plot):
    res = train(_staged(), bank.root, speech, tmp_path / "exp", state_dir=tmp_path / "state")
    card = res["card"]
    assert [h["name"] for h in card["handovers"]] == ["pit", "order", "query"]
    assert [h["at_step"] for h in card["handovers"]] == [4, 8, 12] and card["finished"]
    assert card["cpu_hours"] > 0
    state = tmp_path / "state"
    assert json.loads((state / "card.json").read_text())["steps"] == 12
    assert (state / "checkpoint.pt").stat().st_size < 6 * 2 ** 20
    log = (state / "train_log.csv").read_text().splitlines()
    assert "query_use" in log[0] and "si_sdri" in log[0] and "cpu_hours" in log[0]
    png_plot(state / "learning_curve.png", (790, 470), colored=50)


def test_a_staged_run_resumes_exactly_from_the_committed_state_after_a_kill(bank, speech, tmp_path,
                                                                           monkeypatch):
    import voxa.tse.schedule as schedule

    straight = train(_staged(), bank.root, speech, tmp_path / "a")
    real = schedule.stage_loss
    calls = {"n": 0}

    def dying(stage, net, b):
        calls["n"] += 1
        if calls["n"] == 7:  # in the order stage, after the checkpoint at step 6
            raise KeyboardInterrupt
        return real(stage, net, b)

    monkeypatch.setattr(schedule, "stage_loss", dying)
    with pytest.raises(KeyboardInterrupt):
        train(_staged(), bank.root, speech, tmp_path / "b", state_dir=tmp_path / "state")
    monkeypatch.setattr(schedule, "stage_loss", real)
    shutil.rmtree(tmp_path / "b")  # a fresh checkout: only the committed state is left
    resumed = train(_staged(), bank.root, speech, tmp_path / "b", state_dir=tmp_path / "state")
    assert resumed["steps"] == straight["steps"] == 12
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_a_tiny_model_learns_to_use_its_query_on_a_tiny_bank(bank, speech):
    """Two mixtures of the test bank, each queried at both talkers: 200 steps of the band-split model give
    each query's output a clearly higher SDR against its own talker than the other query's output."""
    from voxa.metrics.separation import sdr
    from voxa.tasks.tse import build_model
    from voxa.tse.data import MixtureConfig, MixtureDataset, collate
    from voxa.tse.losses import tse_loss

    torch.manual_seed(0)
    cfg = MixtureConfig(seconds=0.5, rate=8000, presence=1.0, min_talker_gap=1.5, queries_per_mixture=2)
    ds = MixtureDataset(bank, "train", speech, cfg, length=4, seed=3)
    b = collate([ds[i] for i in range(4)])
    p = replace(preset("cpu"), model_config={"dim": 16, "hidden": 16, "n_dq": 1, "n_ts": 1, "n_bands": 8})
    m = build_model(p)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    for _ in range(200):
        loss = tse_loss(m(b["mix"], b["query"]), b["target"], b["mix"], b["present"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 5.0)
        opt.step()
    with torch.no_grad():
        out = m(b["mix"], b["query"])
    other = out.reshape(2, 2, -1).flip(1).reshape_as(out)
    use = (sdr(out, b["target"]) - sdr(other, b["target"])).numpy()
    assert np.all(use > 3.0), use
