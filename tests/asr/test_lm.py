"""N-gram language models: smoothing, SRILM perplexity, ARPA round trip and kaldilm conversion."""

from __future__ import annotations

import math

import pytest

from voxa.asr.lm import EOS, LmError, NgramLM, arpa_to_fst_text

CORPUS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog",
          "the cat saw the dog", "a dog sat on a mat", "the log saw a cat"]

CONTEXTS = [(), ("<s>",), ("the",), ("<s>", "the"), ("the", "cat"), ("cat", "the"), ("mat", "mat"),
            ("on", "a")]


@pytest.fixture(scope="module", params=["kneser-ney", "witten-bell"])
def trigram(request):
    return NgramLM.fit(CORPUS, order=3, smoothing=request.param)


def test_probabilities_of_every_context_sum_to_one(trigram):
    vp = sorted(trigram.vocab | {EOS})
    for ctx in CONTEXTS:
        assert sum(10 ** trigram.logprob(w, ctx) for w in vp) == pytest.approx(1.0, abs=1e-9), ctx


@pytest.mark.parametrize("smoothing", ["kneser-ney", "witten-bell"])
def test_higher_orders_have_lower_held_in_perplexity(smoothing):
    ppl = [NgramLM.fit(CORPUS, order=n, smoothing=smoothing).perplexity(CORPUS)["ppl"] for n in (1, 2, 3)]
    assert ppl[0] > ppl[1] > ppl[2]


def test_witten_bell_bigram_matches_hand_computation():
    # <s> a b </s>, <s> a a </s>: unigrams a 3, b 1, </s> 2 (6 tokens, 3 types, |V| = 3):
    # P(a) = (3 + 3/3) / 9 = 4/9, P(b) = 2/9; after "a": a, b, </s> once each (3 tokens, 3 types):
    # P(b|a) = (1 + 3 * 2/9) / 6 = 5/18; "b" is followed by </s> only: P(a|b) = (0 + 1 * 4/9) / 2 = 2/9
    lm = NgramLM.fit(["a b", "a a"], order=2, smoothing="witten-bell")
    assert 10 ** lm.logprob("b", ["a"]) == pytest.approx(5 / 18, abs=1e-12)
    assert 10 ** lm.logprob("a", ["b"]) == pytest.approx(2 / 9, abs=1e-12)


def test_kneser_ney_lower_order_uses_continuation_counts():
    # "francisco" is frequent but always after "san": its unigram (continuation) probability is that of
    # a word seen after one distinct word, below that of "the" seen after several
    text = ["san francisco"] * 5 + ["the cat", "a the", "in the"]
    lm = NgramLM.fit(text, order=2, discounts=(0.5, 1.0, 1.5))
    assert lm.logprob("francisco", ["in"]) < lm.logprob("the", ["cat"])


def test_explicit_discounts_are_used():
    a = NgramLM.fit(CORPUS, order=2, discounts=(0.2, 0.4, 0.6))
    b = NgramLM.fit(CORPUS, order=2, discounts=(0.8, 1.6, 2.4))
    assert a.logprob("cat", ["the"]) > b.logprob("cat", ["the"])


def test_bad_discounts_raise():
    with pytest.raises(LmError, match="discounts of order"):
        NgramLM.fit(CORPUS, order=2, discounts=(1.5, 1.0, 1.0))


def test_perplexity_counts_oovs_apart_like_srilm():
    lm = NgramLM.fit(CORPUS, order=2)
    with_oov = lm.perplexity(["the zebra sat"])
    manual = lm.logprob("the", ["<s>"]) + lm.logprob("sat", ["<s>", "the", "zebra"]) + \
        lm.logprob(EOS, ["sat"])
    assert (with_oov["words"], with_oov["oovs"], with_oov["sentences"]) == (3, 1, 1)
    assert with_oov["logprob"] == pytest.approx(manual, abs=1e-12)
    assert with_oov["ppl"] == pytest.approx(10 ** (-manual / 3), rel=1e-12)


def test_unk_model_scores_oovs_as_unk():
    lm = NgramLM.fit(CORPUS, order=2, unk=True)
    r = lm.perplexity(["the zebra sat"])
    assert r["oovs"] == 0 and lm.logprob("zebra", ["the"]) == lm.logprob("<unk>", ["the"])


def test_vocab_restricts_the_model():
    lm = NgramLM.fit(CORPUS, order=2, vocab=["the", "cat", "dog"])
    assert lm.vocab == {"the", "cat", "dog"} and lm.logprob("sat", ["the"]) == -math.inf


@pytest.mark.parametrize("smoothing", ["kneser-ney", "witten-bell"])
def test_arpa_round_trip_keeps_perplexity(smoothing, tmp_path):
    lm = NgramLM.fit(CORPUS, order=3, smoothing=smoothing)
    lm.write_arpa(tmp_path / "lm.arpa")
    back = NgramLM.read_arpa(tmp_path / "lm.arpa")
    test = ["the cat sat on a log", "a dog saw the mat", "the zebra and the cat"]
    assert back.perplexity(test)["ppl"] == pytest.approx(lm.perplexity(test)["ppl"], rel=1e-6)


def _arpa(tmp_path, body):
    p = tmp_path / "bad.arpa"
    p.write_text(body)
    return p


GOOD_UNIGRAMS = "-0.5\t</s>\n-99\t<s>\t-0.3\n-0.4\ta\t-0.2\n"


def test_arpa_with_wrong_header_count_names_the_line(tmp_path):
    p = _arpa(tmp_path, f"\\data\\\nngram 1=4\n\n\\1-grams:\n{GOOD_UNIGRAMS}\n\\end\\\n")
    with pytest.raises(LmError, match=r"bad.arpa:2: the header says ngram 1=4 but .* has 3 entries"):
        NgramLM.read_arpa(p)


def test_arpa_entry_with_wrong_number_of_fields_names_the_line(tmp_path):
    p = _arpa(tmp_path, f"\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n{GOOD_UNIGRAMS}\n"
                        "\\2-grams:\n-0.1\ta\n\n\\end\\\n")
    with pytest.raises(LmError, match=r"bad.arpa:11: a 2-gram entry has 3 or 4 fields, got 2"):
        NgramLM.read_arpa(p)


def test_arpa_with_a_non_number_names_the_line(tmp_path):
    p = _arpa(tmp_path, "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.5\t</s>\nabc\ta\n\n\\end\\\n")
    with pytest.raises(LmError, match=r"bad.arpa:6: not a number"):
        NgramLM.read_arpa(p)


def test_truncated_arpa_is_an_error(tmp_path):
    p = _arpa(tmp_path, f"\\data\\\nngram 1=3\n\n\\1-grams:\n{GOOD_UNIGRAMS}")
    with pytest.raises(LmError, match=r"no \\end\\"):
        NgramLM.read_arpa(p)


def test_kaldilm_reads_the_arpa_with_one_arc_per_unigram(tmp_path):
    pytest.importorskip("kaldilm")
    lm = NgramLM.fit(CORPUS, order=2)
    lm.write_arpa(tmp_path / "lm.arpa")
    fst = arpa_to_fst_text(tmp_path / "lm.arpa", tmp_path / "words.txt")
    syms = dict(ln.split() for ln in (tmp_path / "words.txt").read_text().splitlines())
    arcs = [ln.split() for ln in fst.splitlines() if len(ln.split()) >= 4]
    # the null-history state is where the backoff arcs (#0) lead; it has one arc per word, <s> and </s>
    # excepted (</s> is its final weight)
    null_state = {a[1] for a in arcs if a[2] == syms["#0"]}
    assert len(null_state) == 1
    out = [a for a in arcs if a[0] in null_state]
    assert len(out) == len(lm.vocab)
