import json

import numpy as np
import soundfile as sf

from voxa.cli.main import main
from voxa.tasks.tse import build_model, load_tse_model, preset, save_tse_model


def _model(tmp_path):
    return save_tse_model(tmp_path / "m.safetensors", build_model("tiny"), preset("tiny").mixing)


def test_extract_writes_audio_of_the_input_length(tmp_path):
    sf.write(tmp_path / "mix.wav", (np.random.default_rng(0).standard_normal(12000) * 0.1).astype(np.float32),
             16000)
    assert main(["tse", "extract", str(tmp_path / "mix.wav"), "--distance", "1.5", "-o",
                 str(tmp_path / "out.wav"), "--model", str(_model(tmp_path))]) == 0
    y, sr = sf.read(tmp_path / "out.wav")
    assert sr == 16000 and len(y) == 12000


def test_locate_last_line_is_json_and_plot_is_written(tmp_path, capsys, png_plot):
    sf.write(tmp_path / "mix.wav", (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32),
             8000)
    assert main(["tse", "locate", str(tmp_path / "mix.wav"), "--model", str(_model(tmp_path))]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert "distances" in res and len(res["queries"]) == 10
    png_plot(tmp_path / "mix.sweep.png", (732, 470))


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    sf.write(tmp_path / "mix.wav", np.zeros(800, dtype=np.float32), 8000)
    rc = main(["tse", "extract", str(tmp_path / "mix.wav"), "--distance", "1", "-o", str(tmp_path / "o.wav"),
               "--model", str(tmp_path / "none.safetensors")])
    assert rc == 1 and "model not found" in capsys.readouterr().err


def test_train_tiny_preset_and_resume(tmp_path, png_plot):
    import torch

    rng = np.random.default_rng(0)
    recs = []
    for s in range(10):
        p = tmp_path / f"s{s}.wav"
        sf.write(p, (rng.standard_normal(8000) * 0.1).astype(np.float32), 8000)
        recs.append(json.dumps({"id": f"s{s}", "path": str(p), "speaker": f"k{s}", "duration": 1.0}))
    (tmp_path / "m.jsonl").write_text("\n".join(recs) + "\n")
    assert main(["tse", "simulate", "--preset", "D1", "--size", "60", "--rate", "8000", "--quiet",
                 "--out", str(tmp_path / "bank")]) == 0
    args = ["tse", "train", "--preset", "tiny", "--bank", str(tmp_path / "bank"), "--speech",
            str(tmp_path / "m.jsonl"), "--exp", str(tmp_path / "exp")]
    assert main(args) == 0
    state = torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and (tmp_path / "exp" / "model.safetensors").exists()
    png_plot(tmp_path / "exp" / "curves.png", (732, 445))
    assert (tmp_path / "exp" / "train_log.csv").exists()
    # the presence schedule (0.9, then 0.7) changes the training set, not the settings the model records
    _, header = load_tse_model(tmp_path / "exp" / "model.safetensors")
    assert header["mixing"]["presence"] == 0.9
    # the effective settings are in the experiment folder and in the model's header
    import yaml

    written = yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())
    assert written["trainer"]["epochs"] == 2 and header["settings"] == written
    assert main(args + ["--set", "trainer.epochs=3"]) == 0  # resumes for one more epoch
    assert torch.load(tmp_path / "exp" / "checkpoint.pt", weights_only=True)["epoch"] == 3
    # a nearest-talker first stage (epoch 0 of 2) is judged on its own task; the model kept is the best
    # of the final task's epochs
    assert main(args[:-1] + [str(tmp_path / "exp2"), "--set", "nearest_first=0.5"]) == 0
    assert torch.load(tmp_path / "exp2" / "best.pt", weights_only=True)["epoch"] == 1


def test_export_averages_checkpoints_with_the_run_settings(tmp_path, capsys):
    import torch
    import yaml

    from voxa.utils.config import to_dict

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(to_dict(preset("tiny"))))
    models = []
    for i, step in enumerate((100, 200)):
        torch.manual_seed(i)
        m = build_model("tiny")
        torch.save({"model": m.state_dict(), "global_step": step, "cpu_seconds": 7200.0 * (i + 1),
                    "extra": json.dumps({})}, run / f"ck{step}.pt")
        models.append(m)
    out = tmp_path / "avg.safetensors"
    assert main(["tse", "export", str(run / "ck100.pt"), str(run / "ck200.pt"), "-o", str(out)]) == 0
    assert "mean of 2" in capsys.readouterr().out
    model, header = load_tse_model(out)
    k = next(iter(model.state_dict()))
    mean = (models[0].state_dict()[k] + models[1].state_dict()[k]) / 2
    assert torch.allclose(model.state_dict()[k], mean)
    assert header["card"]["averaged_steps"] == [100, 200] and header["card"]["cpu_hours"] == 4.0


def test_export_without_settings_names_the_file(tmp_path, capsys):
    import torch

    torch.save({"model": build_model("tiny").state_dict()}, tmp_path / "ck.pt")
    rc = main(["tse", "export", str(tmp_path / "ck.pt"), "-o", str(tmp_path / "m.safetensors")])
    assert rc == 1 and "ck.pt: no config.yaml" in capsys.readouterr().err


def test_export_applies_a_setting_and_the_model_extracts_with_it(tmp_path):
    import torch
    import yaml

    from voxa.tse.models import BandSplitConfig, BandSplitModel, StftConfig
    from voxa.utils.config import to_dict

    cfg = BandSplitConfig(dim=8, hidden=8, n_dq=1, n_ts=0, n_bands=6, stft=StftConfig(rate=8000))
    torch.save({"model": BandSplitModel(cfg).state_dict()}, tmp_path / "ck.pt")
    p = preset("tiny")
    settings = {**to_dict(p), "model": "bandsplit", "model_config": {"dim": 8, "hidden": 8, "n_dq": 1,
                                                                     "n_ts": 0, "n_bands": 6}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(settings))
    out = tmp_path / "m.safetensors"
    assert main(["tse", "export", str(tmp_path / "ck.pt"), "-o", str(out),
                 "--set", "model_config.refine=project"]) == 0
    model, _ = load_tse_model(out)
    assert model.cfg.refine == "project"
    bad = main(["tse", "export", str(tmp_path / "ck.pt"), "-o", str(out), "--set", "model_config.refine=x"])
    assert bad == 1
