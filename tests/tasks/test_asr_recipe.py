"""The yes/no recipe end to end on a synthetic corpus laid out as Kaldi's waves_yesno."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from voxa.errors import ConfigError
from voxa.tasks.recipe import load_recipe, run_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_yesno_recipe_writes_wer_per_system_and_grammar(tmp_path) -> None:
    from voxa.data.synthetic_speech import make_yesno_corpus

    make_yesno_corpus(tmp_path / "data" / "yesno", n_files=16, voices=("en", "en+f3", "en+m3"))
    res = run_recipe(RECIPES / "yesno" / "asr_mono.yaml", data_root=str(tmp_path / "data"),
                     exp=str(tmp_path / "exp"),
                     overrides=["mono.num_iters=10", "mono.max_gaussians=60", "mono.mixup_iters=8"])
    saved = json.loads((tmp_path / "exp" / "results.json").read_text())
    assert saved["sets"]["test"]["loop"]["ref_words"] == 7 * 8
    assert saved["wer"] == res["wer"] <= 5.0
    assert "loop" in res.table and "%WER" in res.table
    assert (tmp_path / "exp" / "mono.mdl.safetensors").is_file()


def test_asr_recipe_refuses_an_unknown_system(tmp_path) -> None:
    with pytest.raises(ConfigError, match="systems"):
        load_recipe(RECIPES / "asterisk" / "asr_en.yaml", overrides=["systems=[mono, quadphone]"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_yesno_recipe_with_ctc_and_las_reports_every_decoding_and_plots(tmp_path) -> None:
    from voxa.data.synthetic_speech import make_yesno_corpus

    make_yesno_corpus(tmp_path / "data" / "yesno", n_files=16, voices=("en", "en+f3", "en+m3"))
    tiny = ["mono.num_iters=10", "mono.max_gaussians=60", "mono.mixup_iters=8", "systems=[mono, ctc, las]",
            "ctc.trainer.epochs=2", "ctc.model.hidden=16", "ctc.model.layers=1", "las.trainer.epochs=2",
            "las.units=words", "las.model.listener_hidden=16", "las.model.listener_layers=1",
            "las.model.speller_hidden=16", "perturb.copies=1", "perturb.speed=[1.1]"]
    res = run_recipe(RECIPES / "yesno" / "asr_ctc.yaml", data_root=str(tmp_path / "data"),
                     exp=str(tmp_path / "exp"), overrides=tiny)
    for name in ("ctc", "las"):
        sysres = res["systems"][name]
        assert set(sysres["sets"]["test"]) == {"greedy", "loop", "1"}
        assert sysres["training"]["utterances"] == 2 * sysres["train_utterances"]  # clean + one copy
        assert all(Path(p).is_file() for p in sysres["plots"])
        assert (tmp_path / "exp" / f"{name}.safetensors").is_file()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_leave_one_speaker_out_sums_every_decoding_over_the_folds(tmp_path) -> None:
    from dataclasses import replace

    from voxa.data.corpora.yesno import prepare_yesno
    from voxa.data.synthetic_speech import make_yesno_corpus
    from voxa.tasks.asr import AsrConfig, run_asr

    recs = prepare_yesno(make_yesno_corpus(tmp_path / "c", n_files=12, voices=("en", "en+f3", "en+m3")))
    recs = [replace(r, speaker=f"s{i % 2}") for i, r in enumerate(recs)]
    cfg = AsrConfig.from_dict({"lexicon": {"type": "words"}, "systems": ["mono", "ctc"],
                               "mono": {"num_iters": 5, "max_gaussians": 30, "mixup_iters": 4},
                               "ctc": {"units": "words", "model": {"hidden": 8, "layers": 1},
                                       "trainer": {"epochs": 1, "progress": False}}})
    res = run_asr({"train": recs}, cfg, tmp_path / "exp", folds="speaker")
    loso = res["systems"]["ctc"]["leave_one_speaker_out"]
    assert set(loso) == {"greedy", "loop"}
    folds = res["systems"]["ctc"]["folds"]
    assert loso["greedy"]["ref_words"] == sum(f["greedy"]["ref_words"] for f in folds.values()) == 12 * 8
