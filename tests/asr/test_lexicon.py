"""Pronunciation lexicons: the three file formats, CMUdict, checks and re-estimated probabilities."""

from __future__ import annotations

import logging
import shutil

import pytest

from voxa.asr.lexicon import Lexicon, LexiconError, g2p_espeak


@pytest.fixture
def lex():
    return Lexicon({"a": [(("AH",), 1.0), (("EY",), 0.25)], "cat": [(("K", "AE", "T"), 1.0)]})


def test_reads_kaldi_lexicon_txt(tmp_path):
    p = tmp_path / "lexicon.txt"
    p.write_text("a AH\na EY\ncat\tK AE T\n")
    assert Lexicon.read(p).prons("a") == [(("AH",), 1.0), (("EY",), 1.0)]


def test_reads_kaldi_lexiconp_txt(tmp_path):
    p = tmp_path / "lexiconp.txt"
    p.write_text("a 1.0 AH\na 0.25 EY\ncat 1.0 K AE T\n")
    assert Lexicon.read(p).prons("a") == [(("AH",), 1.0), (("EY",), 0.25)]


def test_reads_cmudict_format_with_variants_and_comments(tmp_path):
    p = tmp_path / "cmudict.txt"
    p.write_text(";;; a comment\nTOMATO  T AH0 M EY1 T OW2\nTOMATO(2)  T AH0 M AA1 T OW2 # british\n")
    lex = Lexicon.read(p)
    assert [ph for ph, _ in lex.prons("TOMATO")] == [tuple("T AH0 M EY1 T OW2".split()),
                                                     tuple("T AH0 M AA1 T OW2".split())]


def test_write_and_read_back_lexiconp(lex, tmp_path):
    lex.write(tmp_path / "lexiconp.txt")
    assert Lexicon.read(tmp_path / "lexiconp.txt") == lex


def test_write_without_probs_is_lexicon_txt(lex, tmp_path):
    lex.write(tmp_path / "lexicon.txt", with_probs=False)
    assert (tmp_path / "lexicon.txt").read_text() == "a AH\na EY\ncat K AE T\n"


def test_malformed_lexiconp_line_names_file_and_line(tmp_path):
    p = tmp_path / "lexiconp.txt"
    p.write_text("a 1.0 AH\nb EY\n")
    with pytest.raises(LexiconError, match=r"lexiconp.txt:2:"):
        Lexicon.read(p)


def test_word_without_phones_names_file_and_line(tmp_path):
    p = tmp_path / "lexicon.txt"
    p.write_text("a AH\n\nb\n")
    with pytest.raises(LexiconError, match=r"lexicon.txt:3: word 'b' has no phones"):
        Lexicon.read(p)


def test_probability_out_of_range_is_an_error(tmp_path):
    p = tmp_path / "lexiconp.txt"
    p.write_text("a 1.5 AH\n")
    with pytest.raises(LexiconError, match=r":1: .*not in \(0, 1\]"):
        Lexicon.read(p)


def test_missing_file_is_a_lexicon_error(tmp_path):
    with pytest.raises(LexiconError, match="nope.txt"):
        Lexicon.read(tmp_path / "nope.txt")


def test_phones_words_and_contains(lex):
    assert (lex.phones, lex.words, "cat" in lex, "dog" in lex) == (["AE", "AH", "EY", "K", "T"],
                                                                   ["a", "cat"], True, False)


def test_check_names_missing_words_in_one_line(lex):
    with pytest.raises(LexiconError) as e:
        lex.check(["a", "zyx", "qqq", "zyx"], where="transcripts")
    assert str(e.value) == "transcripts: 2 words not in the lexicon: zyx, qqq"


def test_check_shows_ten_words_and_a_count(lex):
    with pytest.raises(LexiconError, match=r"^12 words not in the lexicon: w0, .*w9 \(and 2 more\)$"):
        lex.check([f"w{i}" for i in range(12)])


def test_from_cmudict_strips_stress_and_lowercases():
    lex = Lexicon.from_cmudict(["HELLO"])
    assert lex.prons("hello")[0] == (("HH", "AH", "L", "OW"), 1.0)


def test_from_cmudict_keeps_stress_on_request():
    assert Lexicon.from_cmudict(["hello"], stress=True).prons("hello")[0][0] == ("HH", "AH0", "L", "OW1")


def test_from_cmudict_leaves_out_unknown_words_without_g2p():
    assert "qzxv" not in Lexicon.from_cmudict(["hello", "qzxv"])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_from_cmudict_guesses_unknown_words_with_espeak_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        lex = Lexicon.from_cmudict(["hello", "voxaly"], g2p="espeak")
    assert "voxaly" in lex and "voxaly" in caplog.text


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_g2p_espeak_returns_phone_tuples_without_stress_marks():
    phones = g2p_espeak(["hello"])["hello"]
    assert phones and all("'" not in p and "," not in p for p in phones)


def test_reestimate_normalises_best_pronunciation_to_one(lex):
    new = lex.reestimate({("a", ("AH",)): 3, ("a", ("EY",)): 1})
    assert new.prons("a") == [(("AH",), 1.0), (("EY",), 0.5)]


def test_reestimate_sum_normalisation(lex):
    new = lex.reestimate({("a", ("AH",)): 3, ("a", ("EY",)): 1}, normalised="sum")
    assert [p for _, p in new.prons("a")] == pytest.approx([2 / 3, 1 / 3])


def test_reestimate_rejects_counts_of_unknown_pronunciations(lex):
    with pytest.raises(LexiconError, match="not in the lexicon: a OW"):
        lex.reestimate({("a", ("OW",)): 1})


def test_with_silence_adds_silence_and_unknown_entries(lex):
    s = lex.with_silence()
    assert (s.prons("!SIL"), s.prons("<unk>"), "!SIL" in lex) == ([(("SIL",), 1.0)], [(("SPN",), 1.0)], False)
