"""voxa asr train/decode/align/score on a synthetic yes/no corpus, through the CLI."""

from __future__ import annotations

import shutil

import pytest

from voxa.cli.main import main

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_asr_cli_trains_decodes_aligns_and_scores(tmp_path, capsys) -> None:
    from voxa.data.corpora.yesno import prepare_yesno
    from voxa.data.manifest import write_manifest
    from voxa.data.synthetic_speech import make_yesno_corpus

    recs = prepare_yesno(make_yesno_corpus(tmp_path / "c", n_files=16, voices=("en", "en+f3", "en+m3")))
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    write_manifest(train, [r for r in recs if r.extra["split"] == "train"])
    write_manifest(test, [r for r in recs if r.extra["split"] == "test"])
    sys_dir = str(tmp_path / "sys")
    sets = ["--set", "lexicon.type=words", "--set", "mono.num_iters=10", "--set", "mono.max_gaussians=60",
            "--set", "mono.mixup_iters=8"]
    assert main(["asr", "train", str(train), "--out", sys_dir, *sets]) == 0
    assert main(["asr", "decode", sys_dir, str(test), "--grammar", "loop", "--out", str(tmp_path / "hyp"),
                 *sets]) == 0
    out = capsys.readouterr().out
    assert "%WER 0.00" in out
    assert main(["asr", "align", sys_dir, str(test), "--ctm", str(tmp_path / "ali.ctm"),
                 "--textgrid", str(tmp_path / "tg"), *sets]) == 0
    lines = (tmp_path / "ali.ctm").read_text().splitlines()
    assert len(lines) == 8 * 7 and {ln.split()[4] for ln in lines} == {"yes", "no"}
    assert len(list((tmp_path / "tg").glob("*.TextGrid"))) == 7
    ref = tmp_path / "ref"
    ref.write_text("".join(f"{r.id} {r.text}\n" for r in recs if r.extra["split"] == "test"))
    assert main(["asr", "score", str(ref), str(tmp_path / "hyp")]) == 0
    assert "%WER 0.00 [ 0 / 56" in capsys.readouterr().out


def _yesno_manifests(tmp_path):
    from voxa.data.corpora.yesno import prepare_yesno
    from voxa.data.manifest import write_manifest
    from voxa.data.synthetic_speech import make_yesno_corpus

    recs = prepare_yesno(make_yesno_corpus(tmp_path / "c", n_files=16, voices=("en", "en+f3", "en+m3")))
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    write_manifest(train, [r for r in recs if r.extra["split"] == "train"])
    write_manifest(test, [r for r in recs if r.extra["split"] == "test"])
    return train, test


_GMM = ["--set", "lexicon.type=words", "--set", "mono.num_iters=10", "--set", "mono.max_gaussians=60",
        "--set", "mono.mixup_iters=8"]


@pytest.mark.slow
def test_asr_cli_trains_and_decodes_a_dnn_hmm_hybrid(tmp_path, capsys) -> None:
    train, test = _yesno_manifests(tmp_path)
    sys_dir = str(tmp_path / "sys")
    sets = [*_GMM, "--set", "dnn_hmm.trainer.epochs=30", "--set", "dnn_hmm.trainer.batch_size=2",
            "--set", "dnn_hmm.model.hidden=64", "--set", "dnn_hmm.model.layers=2",
            "--set", "dnn_hmm.trainer.progress=false"]
    assert main(["asr", "train", str(train), "--out", sys_dir, "--system", "dnn-hmm", *sets]) == 0
    assert "dnn-hmm:" in capsys.readouterr().out
    assert (tmp_path / "sys" / "hybrid.safetensors").is_file()
    assert main(["asr", "decode", sys_dir, str(test), "--grammar", "loop", "--out", str(tmp_path / "hyp"),
                 *sets]) == 0
    assert "%WER 0.00" in capsys.readouterr().out


@pytest.mark.slow
def test_asr_cli_trains_and_decodes_a_ctc_system(tmp_path, capsys) -> None:
    train, test = _yesno_manifests(tmp_path)
    sys_dir = str(tmp_path / "ctc")
    sets = [*_GMM, "--set", "ctc.units=words", "--set", "ctc.trainer.epochs=25", "--set",
            "ctc.trainer.batch_size=2", "--set", "ctc.trainer.lr=5e-3", "--set", "ctc.model.hidden=32",
            "--set", "ctc.model.layers=1", "--set", "ctc.model.subsample=3",
            "--set", "ctc.trainer.progress=false"]
    assert main(["asr", "train", str(train), "--out", sys_dir, "--system", "ctc", *sets]) == 0
    assert (tmp_path / "ctc" / "model.safetensors").is_file()
    assert main(["asr", "decode", sys_dir, str(test), "--grammar", "greedy", "--out", str(tmp_path / "hyp"),
                 *sets]) == 0
    out = capsys.readouterr().out
    wer = float(out.split("%WER")[1].split()[0])
    assert wer <= 10.0
