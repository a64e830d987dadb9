"""``voxa lm train|perplexity``, and the lm group's side of the one-line error contract."""

from __future__ import annotations

import pytest

from voxa.asr.lm import NgramLM
from voxa.cli.main import main

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("".join(s + "\n" for s in CORPUS))
    return p


def test_train_writes_an_arpa_model(text, tmp_path, capsys):
    out = tmp_path / "lm.arpa"
    assert main(["lm", "train", str(text), "--order", "2", "--out", str(out)]) == 0
    assert NgramLM.read_arpa(out).order == 2 and str(out) in capsys.readouterr().out


def test_train_on_kaldi_text_drops_utterance_ids(tmp_path):
    p = tmp_path / "text"
    p.write_text("".join(f"utt{i} {s}\n" for i, s in enumerate(CORPUS)))
    out = tmp_path / "lm.arpa"
    assert main(["lm", "train", str(p), "--kaldi-text", "--order", "2", "--out", str(out)]) == 0
    assert not any(w.startswith("utt") for w in NgramLM.read_arpa(out).vocab)


def test_perplexity_prints_ppl_words_and_oovs(text, tmp_path, capsys):
    out = tmp_path / "lm.arpa"
    main(["lm", "train", str(text), "--smoothing", "witten-bell", "--out", str(out)])
    test = tmp_path / "test.txt"
    test.write_text("the cat sat on the zebra\n")
    capsys.readouterr()
    assert main(["lm", "perplexity", str(out), str(test)]) == 0
    printed = capsys.readouterr().out
    assert "1 sentences, 6 words, 1 OOVs" in printed and "ppl= " in printed


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxa: error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_bad_setting_is_one_line_and_exit_1(text, tmp_path, capsys):
    assert main(["lm", "train", str(text), "--order", "0", "--out", str(tmp_path / "lm.arpa")]) == 1
    _one_line_error(capsys, "order")


def test_bad_smoothing_is_one_line_and_exit_1(text, tmp_path, capsys):
    argv = ["lm", "train", str(text), "--smoothing", "good-turing", "--out", str(tmp_path / "lm.arpa")]
    assert main(argv) == 1
    _one_line_error(capsys, "good-turing")


def test_missing_file_is_one_line_and_exit_1(tmp_path, capsys):
    assert main(["lm", "train", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "lm.arpa")]) == 1
    _one_line_error(capsys, "missing.txt")


def test_malformed_arpa_is_one_line_and_exit_1(text, tmp_path, capsys):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-0.5\t</s>\n\n\\end\\\n")
    assert main(["lm", "perplexity", str(bad), str(text)]) == 1
    _one_line_error(capsys, "bad.arpa:2")
