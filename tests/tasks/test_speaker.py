import json

import pytest

from voxa.cli.main import main
from voxa.data.corpora import prepare
from voxa.gmm.ubm import GmmUbmConfig
from voxa.tasks.speaker import SpeakerConfig, run_identification, run_verification


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Six synthetic talkers (source-filter synthesis, no espeak: fast and deterministic)."""
    import voxa.data.synthetic as syn

    root = tmp_path_factory.mktemp("digits")
    real_which = syn.shutil.which
    syn.shutil.which = lambda name: None
    try:
        syn.make_digit_corpus(root, takes=3)
    finally:
        syn.shutil.which = real_which
    return prepare("fsdd", root, root / "data")


def _cfg(k=8):
    return SpeakerConfig(gmm=GmmUbmConfig(n_components=k, max_iter=5))


def test_identification_on_synthetic_talkers(digits, tmp_path, png_plot):
    train = [r for r in digits if r.extra["take"] < 2]
    test = [r for r in digits if r.extra["take"] == 2]
    res = run_identification(train, test, _cfg(), tmp_path)
    assert res["accuracy"] >= 0.9
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["accuracy"] == res["accuracy"] and "uar" in saved
    png_plot(tmp_path / "confusion.png", (807, 680))
    assert (tmp_path / "ubm.safetensors").exists()


def test_verification_writes_metrics_and_det(digits, tmp_path, png_plot):
    bg = [r for r in digits if r.extra["digit"] < 5]
    ev = [r for r in digits if r.extra["digit"] >= 5]
    res = run_verification(bg, ev, ev, _cfg(), tmp_path)
    # 0.35 s utterances of unseen words: hard, but far from chance (0.5)
    assert res["eer"] < 0.4
    assert res["n_target"] == res["n_nontarget"] > 0
    png_plot(tmp_path / "det.png", (644, 655))
    assert len((tmp_path / "trials").read_text().splitlines()) == res["n_target"] * 2


def test_verification_with_speaker_models_from_a_trials_file(digits, tmp_path):
    enroll = [r for r in digits if r.extra["take"] < 2]
    test = [r for r in digits if r.extra["take"] == 2]
    spk = sorted({r.speaker for r in digits})
    lines = [f"{s} {r.id} {'target' if r.speaker == s else 'nontarget'}" for s in spk for r in test]
    (tmp_path / "trials.txt").write_text("\n".join(lines) + "\n")
    res = run_verification(enroll, enroll, test, _cfg(), tmp_path / "exp", trials=tmp_path / "trials.txt")
    assert res["n_models"] == len(spk)
    assert res["eer"] < 0.2


def test_cli_identify_and_train_enroll(digits, tmp_path):
    import voxa.data

    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    voxa.data.write_manifest(train, [r for r in digits if r.extra["take"] < 2])
    voxa.data.write_manifest(test, [r for r in digits if r.extra["take"] == 2])
    assert main(["speaker", "identify", "--train", str(train), "--test", str(test),
                 "--exp", str(tmp_path / "id"), "--set", "gmm.n_components=8",
                 "--set", "gmm.max_iter=3"]) == 0
    assert json.loads((tmp_path / "id" / "results.json").read_text())["accuracy"] > 0.8
    assert main(["speaker", "train-ubm", str(train), "--exp", str(tmp_path / "u"),
                 "--set", "gmm.n_components=4", "--set", "gmm.max_iter=2"]) == 0
    assert main(["speaker", "enroll", str(train), "--exp", str(tmp_path / "u")]) == 0
    assert len(list((tmp_path / "u" / "models").glob("*.safetensors"))) == 6


def test_cli_bad_override_is_an_error(digits, tmp_path, capsys):
    import voxa.data

    m = tmp_path / "m.jsonl"
    voxa.data.write_manifest(m, digits[:4])
    rc = main(["speaker", "train-ubm", str(m), "--exp", str(tmp_path / "u"), "--set", "gmm.n_comp=4"])
    assert rc == 1 and "unknown setting 'gmm.n_comp'" in capsys.readouterr().err


def test_fsdd_recipe_on_real_data(shared_data_dir, tmp_path):
    """The FSDD recipe with a smaller UBM (32 Gaussians, 5 iterations) still identifies >= 98 %."""
    from pathlib import Path

    from voxa.tasks.recipe import run_recipe

    recipe = Path(__file__).resolve().parents[2] / "recipes/fsdd/speaker_gmm_ubm.yaml"
    res = run_recipe(recipe, str(shared_data_dir), str(tmp_path),
                     ["gmm.n_components=32", "gmm.max_iter=5"])
    assert res["accuracy"] >= 0.98


def test_cli_verify_writes_results(digits, tmp_path):
    import voxa.data

    bg, ev = tmp_path / "bg.jsonl", tmp_path / "ev.jsonl"
    voxa.data.write_manifest(bg, [r for r in digits if r.extra["digit"] < 5])
    voxa.data.write_manifest(ev, [r for r in digits if r.extra["digit"] >= 5])
    assert main(["speaker", "verify", "--background", str(bg), "--enroll", str(ev), "--test", str(ev),
                 "--exp", str(tmp_path / "v"), "--set", "gmm.n_components=8"]) == 0
    res = json.loads((tmp_path / "v" / "results.json").read_text())
    assert {"eer", "min_dcf", "min_dcf_0.01", "min_dcf_0.05", "cllr"} <= set(res)


@pytest.mark.slow
def test_train_ubm_under_torchrun_two_processes(digits, tmp_path):
    import shutil
    import subprocess
    import sys

    import voxa.data
    from voxa.gmm import GaussianMixture

    torchrun = shutil.which("torchrun") or str(__import__("pathlib").Path(sys.executable).parent / "torchrun")
    m = tmp_path / "m.jsonl"
    voxa.data.write_manifest(m, digits)
    p = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "voxa.cli.main", "speaker",
                        "train-ubm", str(m), "--exp", str(tmp_path / "u"), "--set", "gmm.n_components=4",
                        "--set", "gmm.max_iter=3"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "2 process(es)" in p.stdout
    assert GaussianMixture.load(tmp_path / "u" / "ubm.safetensors").means_.shape[0] == 4
    assert (tmp_path / "u" / "feats" / "rank1").is_dir()


def test_a_test_utterance_shorter_than_one_frame_is_skipped_and_counted(digits, tmp_path, caplog):
    import dataclasses

    import numpy as np
    import soundfile as sf

    train = [r for r in digits if r.extra["take"] < 2]
    test = [r for r in digits if r.extra["take"] == 2]
    sf.write(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), 8000)
    short = dataclasses.replace(test[0], id="zz-short", path=str(tmp_path / "short.wav"), duration=0.0125)
    res = run_identification(train, test + [short], _cfg(), tmp_path / "exp")
    assert res["n_test"] == len(test)
    assert "1 of" in caplog.text and "zz-short" in caplog.text
