"""The error contract: every CLI group answers a bad setting and a bad file with one line and exit 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from voxa.cli.main import main

_SR = 8000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four one-second utterances of two speakers with language and emotion labels."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        path = root / f"u{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(_SR)).astype(np.float32), _SR)
        rows.append({"id": f"u{i}", "path": str(path), "speaker": f"s{i % 2}", "language": f"l{i % 2}",
                     "emotion": f"e{i % 2}", "duration": 1.0})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxa: error:"), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def _cases(m, tmp):
    """(argv with a bad setting, words the error names), (argv with a bad file, words it names)."""
    missing = str(tmp / "missing.jsonl")
    exp = str(tmp / "exp")
    return {
        "data": ((["data", "split", m, str(tmp / "sp"), "--fractions", "0.5", "0.7", "0.1"], ["sum to 1"]),
                 (["data", "validate", missing], ["missing.jsonl"])),
        "features": ((["features", "compute", m, str(tmp / "f"), "--num-ceps", "50"], ["num_ceps"]),
                     (["features", "compute", missing, str(tmp / "f")], ["missing.jsonl"])),
        "speaker": ((["speaker", "identify", "--train", m, "--test", m, "--exp", exp,
                      "--set", "gmm.colour=1"], ["gmm.colour"]),
                    (["speaker", "identify", "--train", missing, "--test", m, "--exp", exp],
                     ["missing.jsonl"])),
        "ivector": ((["ivector", "train", m, "--exp", exp, "--set", "ivector.colour=1"], ["ivector.colour"]),
                    (["ivector", "train", missing, "--exp", exp], ["missing.jsonl"])),
        "backend": ((["backend", "train", "--vectors", missing, "--chain", "lnorm,knn", "-o", str(tmp / "b")],
                     ["lnorm,knn"]),
                    (["backend", "train", "--vectors", missing, "-o", str(tmp / "b")], ["missing.jsonl"])),
        "lid": ((["lid", "evaluate", "--train", m, "--test", m, "--exp", exp, "--set", "gmm.colour=1"],
                 ["gmm.colour"]),
                (["lid", "evaluate", "--train", missing, "--test", m, "--exp", exp], ["missing.jsonl"])),
        "emotion": ((["emotion", "evaluate", "--data", m, "--exp", exp, "--set", "gmm.colour=1"], ["colour"]),
                    (["emotion", "evaluate", "--data", missing, "--exp", exp], ["missing.jsonl"])),
        "run": ((["run", "RECIPE", "--set", "colour=1"], ["colour"]),
                (["run", str(tmp / "missing.yaml")], ["missing.yaml"])),
        "demo": ((["demo", "--out", str(tmp / "demo"), "--stages", "nosuchstage"], ["nosuchstage"]),
                 (["demo", "--data", str(tmp / "nodata"), "--out", str(tmp / "demo")], ["nodata"])),
        "tse": ((["tse", "train", "--preset", "cpu", "--bank", str(tmp), "--speech", m, "--exp", exp,
                  "--set", "mixing.presence=0.2"], ["mixing.presence", "presence_schedule"]),
                (["tse", "extract", str(tmp / "missing.wav"), "--distance", "1", "-o", str(tmp / "o.wav"),
                  "--model", str(tmp / "missing.safetensors")], ["missing"])),
        "lm": ((["lm", "train", m, "--order", "0", "--out", str(tmp / "lm.arpa")], ["order"]),
               (["lm", "perplexity", str(tmp / "missing.arpa"), m], ["missing.arpa"])),
        "asr": ((["asr", "train", m, "--out", exp, "--set", "mono.colour=1"], ["colour"]),
                (["asr", "decode", str(tmp / "nosystem"), m, "--out", str(tmp / "hyp.txt")], ["nosystem"])),
    }


GROUPS = ("data", "features", "speaker", "ivector", "backend", "lid", "emotion", "run", "demo", "tse", "lm",
          "asr")


def test_every_group_has_cases():
    from voxa.cli.main import GROUPS as ALL

    assert set(GROUPS) == set(ALL)


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("kind", [0, 1], ids=["bad-setting", "bad-file"])
def test_group_answers_with_one_line_and_exit_1(group, kind, corpus, tmp_path, capsys):
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "fsdd" / "speaker_gmm_ubm.yaml"
    argv, needles = _cases(str(corpus), tmp_path)[group][kind]
    argv = [str(recipe) if a == "RECIPE" else a for a in argv]
    assert main(argv) == 1
    _one_line_error(capsys, *needles)


def test_a_group_that_fails_to_import_is_an_error(monkeypatch, capsys):
    import importlib

    real_import_module = importlib.import_module

    def import_module(name, *a, **kw):
        if name == "voxa.cli.lid":
            raise ImportError("simulated broken module")
        return real_import_module(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", import_module)
    assert main(["data", "--help"]) == 1
    _one_line_error(capsys, "simulated broken module")
