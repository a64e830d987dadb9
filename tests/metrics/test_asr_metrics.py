"""Word/character/phone error rates: counts equal to kaldialign's and jiwer's, folding, formatting."""

from __future__ import annotations

import random

import pytest

from voxa.errors import VoxaError
from voxa.metrics.asr import TIMIT_61_TO_39, align, cer, fold_phones, format_alignment, per, wer


def _random_pairs(n=400, seed=0):
    r = random.Random(seed)
    return [([r.choice("abcd") for _ in range(r.randint(1, 12))],
             [r.choice("abcd") for _ in range(r.randint(1, 12))]) for _ in range(n)]


def test_counts_match_kaldialign_on_random_sequences():
    kaldialign = pytest.importorskip("kaldialign")
    for ref, hyp in _random_pairs():
        k = kaldialign.edit_distance(ref, hyp)
        r = wer([ref], [hyp])
        assert (r.insertions, r.deletions, r.substitutions, r.errors) == \
            (k["ins"], k["del"], k["sub"], k["total"]), (ref, hyp)


def test_counts_match_jiwer_on_random_sequences():
    jiwer = pytest.importorskip("jiwer")
    for ref, hyp in _random_pairs(seed=1):
        j = jiwer.process_words(" ".join(ref), " ".join(hyp))
        r = wer([ref], [hyp], style="jiwer")
        assert (r.insertions, r.deletions, r.substitutions, r.correct) == \
            (j.insertions, j.deletions, j.substitutions, j.hits), (ref, hyp)
        assert r.wer == pytest.approx(j.wer, abs=1e-12)


def test_corpus_wer_matches_jiwer_over_many_utterances():
    jiwer = pytest.importorskip("jiwer")
    pairs = _random_pairs(50, seed=2)
    refs, hyps = [" ".join(a) for a, _ in pairs], [" ".join(b) for _, b in pairs]
    assert wer(refs, hyps, style="jiwer").wer == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)


def test_alignment_is_consistent_with_both_sequences():
    for style in ("kaldi", "jiwer"):
        for ref, hyp in _random_pairs(100, seed=3):
            al = align(ref, hyp, style)
            assert [a for _, a, _ in al if a is not None] == ref
            assert [b for _, _, b in al if b is not None] == hyp
            assert all((op == "C") == (a == b) for op, a, b in al)


def test_empty_hypothesis_is_all_deletions():
    r = wer(["a b c"], [""])
    assert (r.deletions, r.errors, r.wer) == (3, 3, 1.0)


def test_empty_reference_set_raises():
    with pytest.raises(VoxaError, match="no word"):
        wer([""], ["a b"])


def test_empty_reference_utterance_counts_insertions_in_the_total():
    r = wer(["a b", ""], ["a b", "x"])
    assert (r.insertions, r.ref_words, r.wer, r.per_utterance[1].wer) == (1, 2, 0.5, None)


def test_mismatched_numbers_of_utterances_raise():
    with pytest.raises(VoxaError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])


def test_token_lists_and_strings_agree():
    assert wer([["a", "b", "c"]], [["a", "c"]]) == wer(["a b c"], ["a  c"])


def test_cer_counts_characters():
    jiwer = pytest.importorskip("jiwer")
    refs, hyps = ["hello world", "abc"], ["helo word", "abd"]
    assert cer(refs, hyps, style="jiwer").wer == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)


def test_timit_folding_has_61_phones_onto_39():
    assert len(TIMIT_61_TO_39) == 61
    assert len({v for v in TIMIT_61_TO_39.values() if v is not None}) == 39
    silent = ("bcl", "dcl", "gcl", "pcl", "tcl", "kcl", "h#", "pau", "epi")
    assert all(TIMIT_61_TO_39[c] == "sil" for c in silent)


def test_fold_phones_deletes_q():
    assert fold_phones(["q", "aa", "ao", "q"], TIMIT_61_TO_39) == ["aa", "aa"]


def test_per_with_timit39_folding_forgives_folded_confusions():
    assert per(["h# ix zh q"], ["sil ih sh"]).errors == 4
    assert per(["h# ix zh q"], ["sil ih sh"], fold="timit39").errors == 0


def test_format_alignment_columns_line_up():
    lines = format_alignment("a bb c", "a x c d").splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["REF", "HYP", "EVAL"]
    assert lines[0].index("c") == lines[1].index("c")
    assert lines[2].split()[1:] == ["S", "I"]


def test_unknown_style_raises():
    with pytest.raises(VoxaError, match="style"):
        align(["a"], ["b"], style="sclite")
