import json

import pytest
import torch

from voxa.cli.main import main
from voxa.errors import ConfigError, VoxaError
from voxa.tasks import tse as tse_tasks
from voxa.tasks.tse import (
    build_model,
    distance_and_query_use,
    evaluate_sets,
    load_tse_model,
    preset,
    save_tse_model,
    ship_model,
)
from voxa.tse.data import MixtureConfig, MixtureDataset, MixtureSet, write_mixture_set
from voxa.tse.models import DQTSConfig, StftConfig

RATE = 8000


@pytest.fixture(scope="module")
def testset(bank, speech, tmp_path_factory):
    cfg = MixtureConfig(seconds=1.0, rate=RATE, r_spk=0.5, presence=0.7, min_talker_gap=1.5)
    ds = MixtureDataset(bank, "train", speech, cfg, length=6, seed=3)
    return write_mixture_set(ds, 6, tmp_path_factory.mktemp("set") / "s0", progress=False)


class _Oracle(torch.nn.Module):
    """Knows each mixture's target: answers the target at its query's window, the other talker
    (mixture minus target) at the other talker's, zeros elsewhere."""

    def __init__(self, testset, bank):
        super().__init__()
        self.cfg = DQTSConfig(stft=StftConfig(rate=RATE))
        ms = MixtureSet(testset)
        self.items = [ms[i] for i in range(len(ms))]

    def forward(self, mix, d):
        out = []
        for x, q in zip(mix, d):
            it = next(i for i in self.items if torch.allclose(i["mix"].reshape(-1), x, atol=1e-6))
            near = [abs(float(t) - float(q)) <= 0.5 for t in it["distances"]]
            target_near = [abs(float(t) - float(it["query"])) <= 0.5 for t in it["distances"]]
            if any(near) and near == target_near:
                out.append(it["target"].reshape(-1))
            elif any(near):
                out.append(x - it["target"].reshape(-1))  # the other talker (two-talker mixtures)
            else:
                out.append(torch.zeros_like(x))
        return torch.stack(out)


def test_oracle_uses_the_query_and_finds_the_talkers(testset, bank, tmp_path, png_plot):
    res = distance_and_query_use(_Oracle(testset, bank), testset, tmp_path)
    assert res["sdr_right_minus_other_query_db"] > 20
    assert res["mixtures_with_estimate"] >= 4 and res["distance_mae_m"] < 0.5
    png_plot(tmp_path / "sweep_000.png", (732, 470))


class _Blind(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.cfg = DQTSConfig(stft=StftConfig(rate=RATE))

    def forward(self, mix, d):
        return 0.5 * mix


def test_query_blind_model_shows_no_query_use(testset):
    res = distance_and_query_use(_Blind(), testset)
    assert abs(res["sdr_right_minus_other_query_db"]) < 1e-6 and res["mixtures_with_estimate"] == 0
    assert res["distance_mae_m"] is None


def test_evaluate_writes_table_with_distance_line_and_ship_installs_a_model_with_card(testset, tmp_path):
    model = save_tse_model(tmp_path / "m.safetensors", build_model("tiny"), preset("tiny").mixing,
                           {"preset": "tiny", "steps": 3, "train_seconds": 1.0, "cpu_hours": 0.5,
                            "averaged_steps": [2, 3]})
    res = evaluate_sets(model, [str(testset)], tmp_path / "eval", with_pesq=False)
    assert "Distance sweep" in (tmp_path / "eval" / "results.md").read_text()
    assert "distance" in res["summary"] and res["summary"]["sdr"]["n"] == 1
    dest = ship_model(model, tmp_path / "eval" / "results.json", tmp_path / "ship" / "x.safetensors", "hello")
    _, header = load_tse_model(dest)
    assert header["card"]["scores"]["summary"]["sdr"]["n"] == 1 and header["card"]["notes"] == "hello"
    card = dest.with_suffix(".md").read_text()
    assert "## Scores" in card and "train seconds: 1.0" in card and "cpu hours: 0.5" in card
    assert "the mean of 2 snapshots, steps 2 to 3" in card


def test_ship_refuses_an_oversized_model_and_keeps_the_old_one(tmp_path, monkeypatch):
    model = save_tse_model(tmp_path / "m.safetensors", build_model("tiny"), preset("tiny").mixing)
    dest = tmp_path / "ship" / "x.safetensors"
    ship_model(model, out=dest)
    before = dest.read_bytes()
    monkeypatch.setattr(tse_tasks, "MAX_SHIPPED_BYTES", 100)
    with pytest.raises(VoxaError, match="at most 6 MB"):
        ship_model(model, out=dest, notes="bigger card")
    assert dest.read_bytes() == before and not list(dest.parent.glob("*.partial"))


def test_cli_ship_and_evaluate(testset, tmp_path, capsys):
    model = save_tse_model(tmp_path / "m.safetensors", build_model("tiny"), preset("tiny").mixing)
    assert main(["tse", "evaluate", "--model", str(model), "--testset", str(testset), "--out",
                 str(tmp_path / "ev"), "--no-pesq", "--no-distances"]) == 0
    assert "SDRi" in capsys.readouterr().out
    assert main(["tse", "ship", "--model", str(model), "--results", str(tmp_path / "ev" / "results.json"),
                 "-o", str(tmp_path / "s.safetensors")]) == 0
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["summary"]["sdr"]["n"] == 1
    assert "## Scores" in (tmp_path / "s.md").read_text()


def test_overriding_the_model_drops_the_presets_model_settings():
    p = tse_tasks.apply_overrides(preset("cpu"), ["model=lstm_deg", "trainer.epochs=3", "mixing.seconds=0.5"])
    assert p.model_config == {} and p.trainer.epochs == 3 and p.mixing.seconds == 0.5
    assert build_model(p).__class__.__name__ == "LstmDegModel"


def test_an_unknown_setting_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown setting 'colour'.*trainer"):
        tse_tasks.apply_overrides(preset("cpu"), ["colour=1"])


def test_a_flat_key_is_refused_with_its_dotted_path():
    with pytest.raises(ConfigError, match="did you mean trainer.epochs"):
        tse_tasks.apply_overrides(preset("cpu"), ["epochs=3"])


def test_a_setting_the_presence_schedule_overwrites_is_refused():
    with pytest.raises(ConfigError, match="mixing.presence.*presence_schedule"):
        tse_tasks.apply_overrides(preset("cpu"), ["mixing.presence=0.2"])
    p = tse_tasks.apply_overrides(preset("cpu"), ["presence_schedule=[0.2,0.2]"])
    assert p.presence_schedule == (0.2, 0.2)


def test_model_settings_are_overridable():
    p = tse_tasks.apply_overrides(preset("dqts-cpu"),
                                  ["model_config.query_every_step=true", "model_config.dim=16"])
    assert p.model_config["query_every_step"] is True and p.model_config["dim"] == 16
    assert build_model(p).cfg.dim == 16
    # a key of the DQ/TS model is refused once the model is LSTM+DEG, whatever the order given
    with pytest.raises(ConfigError, match="model_config.query_every_step"):
        tse_tasks.apply_overrides(preset("dqts-cpu"),
                                  ["model_config.query_every_step=true", "model=lstm_deg"])


def test_a_fixed_gain_scores_sdri_but_no_scale_free_improvement(testset):
    from voxa.tse.scoring import score_model

    res = score_model(lambda mix, q: 0.5 * mix, testset, with_pesq=False)
    assert res["sdri"]["mean"] > 1.0  # the gain alone "improves" SDR
    assert abs(res["si_sdri"]["mean"]) < 1e-3 and abs(res["bss_sdri"]["mean"]) < 1e-3


def test_query_use_is_measured_on_the_query_set_and_counted(testset, tmp_path):
    model = save_tse_model(tmp_path / "m.safetensors", build_model("tiny"), preset("tiny").mixing)
    res = evaluate_sets(model, [str(testset)], tmp_path / "eval", with_pesq=False, query_set=str(testset))
    d = res["summary"]["distance"]
    assert 0 < d["query_use_mixtures"] <= 6
    assert "fewer than 60 mixtures" in res["markdown"]
