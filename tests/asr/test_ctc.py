"""CTC: torch's loss against a brute-force sum, greedy and prefix beam search (LM fusion, lexicon),
forced alignment against brute force, token segments and the alignment plot."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from voxa.asr.ctc import (
    ctc_alignment_plot,
    ctc_forced_align,
    ctc_greedy,
    ctc_prefix_beam_search,
    ctc_segments,
)
from voxa.asr.lm import NgramLM
from voxa.errors import ConfigError, VoxaError

CHARS = ["-", " ", "a", "c", "d", "t"]  # blank 0, space 1
IDS = {c: i for i, c in enumerate(CHARS)}


def collapse(path, blank=0):
    return tuple(k for i, k in enumerate(path) if k != blank and (i == 0 or k != path[i - 1]))


def all_paths(T, V):
    return itertools.product(range(V), repeat=T)


def random_logp(T, V, seed, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(scale * torch.randn(T, V, generator=g, dtype=torch.float64), -1)


def peaked(text, frames=2, p=0.9, noise=None):
    """Posteriors that spell ``text`` (CHARS) with ``frames`` peaked frames per character and a blank
    frame after each; ``noise`` maps a position to ``{char: prob}`` overriding that character's frames."""
    rows = []
    for i, ch in enumerate(text):
        probs = (noise or {}).get(i, {ch: p})
        for _ in range(frames):
            r = np.full(len(CHARS), (1 - sum(probs.values())) / (len(CHARS) - len(probs)))
            for c, q in probs.items():
                r[IDS[c]] = q
            rows.append(r)
        rows.append(np.r_[p, np.full(len(CHARS) - 1, (1 - p) / (len(CHARS) - 1))])
    return torch.tensor(np.log(rows))


def text(ids):
    return "".join(CHARS[i] for i in ids)


def test_torch_ctc_loss_and_gradient_match_brute_force_path_sum():
    T, V, target = 4, 3, (1, 2)
    logits = torch.randn(T, V, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = logits.clone().requires_grad_(True)
    loss = F.ctc_loss(torch.log_softmax(a, -1)[:, None], torch.tensor([target]), [T], [len(target)],
                      blank=0, reduction="sum")
    loss.backward()
    b = logits.clone().requires_grad_(True)
    lp = torch.log_softmax(b, -1)
    paths = [p for p in all_paths(T, V) if collapse(p) == target]
    assert len(paths) == 15  # "12" padded to 4 frames: 1 and 2 stretched and blanks before/between/after
    scores = torch.stack([lp[torch.arange(T), torch.tensor(p)].sum() for p in paths])
    brute = -torch.logsumexp(scores, 0)
    brute.backward()
    assert loss.item() == pytest.approx(brute.item(), rel=1e-12)
    assert torch.allclose(a.grad, b.grad, atol=1e-12)


def test_greedy_collapses_repeats_and_drops_blanks():
    a, b = 1, 2
    logp = torch.log_softmax(10 * torch.eye(3)[[a, a, 0, a, b, b]], -1)
    assert ctc_greedy(logp) == [a, a, b]


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_search_finds_the_brute_force_best_labelling(seed):
    T, V = 5, 3
    lp = random_logp(T, V, seed)
    sums: dict[tuple, list] = {}
    for p in all_paths(T, V):
        sums.setdefault(collapse(p), []).append(float(lp[torch.arange(T), torch.tensor(p)].sum()))
    best = max(sums, key=lambda k: np.logaddexp.reduce(sums[k]))
    (ids, score), = ctc_prefix_beam_search(lp, beam=64, prune=-math.inf)
    assert tuple(ids) == best
    assert score == pytest.approx(np.logaddexp.reduce(sums[best]), abs=1e-9)


def test_wide_beam_with_word_lm_finds_the_brute_force_best_fused_score():
    # the beam (400) holds every prefix of 5 frames over blank, space, a, b: the search is exhaustive
    chars = ["-", " ", "a", "b"]
    T, w, bonus = 5, 0.8, 0.4
    lp = random_logp(T, 4, 3)
    lm = NgramLM.fit(["a b", "ab b", "b a a", "ba"], order=2)

    def fused(lab):
        words = "".join(chars[k] for k in lab).split()
        ctx, s = ["<s>"], 0.0
        for word in words + ["</s>"]:
            p = lm.logprob(word, ctx)
            s += w * (p * math.log(10) if p > -math.inf else -10.0) + (bonus if word != "</s>" else 0.0)
            ctx.append(word)
        return s

    sums: dict[tuple, list] = {}
    for p in all_paths(T, 4):
        sums.setdefault(collapse(p), []).append(float(lp[torch.arange(T), torch.tensor(p)].sum()))
    total = {k: np.logaddexp.reduce(v) + fused(k) for k, v in sums.items()}
    best = max(total, key=total.get)
    (ids, score), = ctc_prefix_beam_search(lp, beam=400, tokens=chars, space=1, lm=lm, lm_weight=w,
                                           word_bonus=bonus, prune=-math.inf)
    assert tuple(ids) == best
    assert score == pytest.approx(total[best], abs=1e-9)


def test_beam_search_prefers_the_best_labelling_where_greedy_takes_the_best_path():
    # best path "- -" has 0.36; "a" sums a a + a - + - a = 0.16 + 0.24 + 0.24 = 0.64
    logp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert ctc_greedy(logp) == []
    (ids, score), = ctc_prefix_beam_search(logp, beam=4)
    assert ids == [1]
    assert score == pytest.approx(math.log(0.64), abs=1e-6)


def test_nbest_are_distinct_and_sorted():
    hyps = ctc_prefix_beam_search(random_logp(8, 4, 1), beam=8, nbest=5)
    assert len(hyps) == 5
    assert len({tuple(h) for h, _ in hyps}) == 5
    assert [s for _, s in hyps] == sorted((s for _, s in hyps), reverse=True)


def test_word_lm_flips_a_slight_acoustic_preference_and_weight_zero_keeps_it():
    # the last letter says "d" (0.5) a little more than "t" (0.42): "cad" acoustically, "cat" by the LM
    logp = peaked("cat", noise={2: {"d": 0.5, "t": 0.42}})
    lm = NgramLM.fit(["cat"] * 8 + ["cad", "a cat"], order=2)
    kw = dict(beam=10, tokens=CHARS, space=IDS[" "], lm=lm)
    assert text(ctc_greedy(logp)) == "cad"
    assert text(ctc_prefix_beam_search(logp, lm_weight=0.0, **kw)[0][0]) == "cad"
    assert text(ctc_prefix_beam_search(logp, lm_weight=1.0, **kw)[0][0]) == "cat"


def test_token_level_lm_scores_each_emitted_word_token():
    words = ["-", "the", "cat", "mat"]
    logp = torch.tensor([[0.1, 0.8, 0.05, 0.05], [0.9, 0.04, 0.03, 0.03],
                         [0.1, 0.05, 0.4, 0.45], [0.9, 0.04, 0.03, 0.03]]).log()
    lm = NgramLM.fit(["the cat"] * 5 + ["a mat"], order=2)
    assert ctc_prefix_beam_search(logp, tokens=words, lm=lm, lm_weight=0.0)[0][0] == [1, 3]
    assert ctc_prefix_beam_search(logp, tokens=words, lm=lm, lm_weight=1.0)[0][0] == [1, 2]


def test_lexicon_constrains_every_output_word():
    logp = peaked("cad at", noise={0: {"c": 0.5, "t": 0.3}, 2: {"d": 0.6, "t": 0.3}})
    lexicon = {"cat", "at", "tad"}
    free = text(ctc_prefix_beam_search(logp, beam=10, tokens=CHARS, space=1)[0][0]).split()
    assert "cad" in free  # the constraint has something to change
    hyps = ctc_prefix_beam_search(logp, beam=10, tokens=CHARS, space=1, lexicon=lexicon, nbest=3)
    assert hyps
    for ids, _ in hyps:
        words = text(ids).split()
        assert words and set(words) <= lexicon, words


def test_bad_settings_raise_config_errors():
    lp = random_logp(3, 3, 0)
    with pytest.raises(ConfigError, match="beam"):
        ctc_prefix_beam_search(lp, beam=0)
    with pytest.raises(ConfigError, match="tokens"):
        ctc_prefix_beam_search(lp, lexicon={"a"})


@pytest.mark.parametrize("target", [(1, 1, 2), (3, 2, 3)])
def test_forced_alignment_is_the_best_path_of_the_targets(target):
    T, V = 6, 4
    lp = random_logp(T, V, sum(target), scale=1.5)
    labels = ctc_forced_align(lp, list(target))
    assert labels.shape == (T,)
    assert collapse(labels.tolist()) == target
    best = max(float(lp[torch.arange(T), torch.tensor(p)].sum()) for p in all_paths(T, V)
               if collapse(p) == target)
    assert float(lp[torch.arange(T), labels].sum()) == pytest.approx(best, abs=1e-12)


def test_forced_alignment_too_short_for_targets_raises():
    with pytest.raises(VoxaError, match="3 frames cannot hold 3 tokens with 1 repeats"):
        ctc_forced_align(random_logp(3, 3, 0), [1, 1, 2])


def test_segments_span_each_token_run_without_blanks():
    assert ctc_segments(torch.tensor([0, 2, 2, 0, 2, 1, 1, 0]), frame_shift=0.01) == [
        (0.01, 0.03, 2), (0.04, 0.05, 2), (0.05, 0.07, 1)]


def test_alignment_plot_writes_a_png(tmp_path, png_plot):
    logp = peaked("cat at", frames=8, p=0.8)
    labels = ctc_forced_align(logp, [IDS[c] for c in "cat at"])
    out = ctc_alignment_plot(logp, labels, CHARS, tmp_path / "align.png", title="cat at")
    assert out == tmp_path / "align.png"
    png_plot(out, (968, 423))
    assert not list(tmp_path.glob(".*tmp*"))
