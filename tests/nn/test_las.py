"""voxa.nn.las: Listen, Attend and Spell shapes, padding invariance, loss, a toy spelling task, beam search,
LM fusion, saving, attention and its plot."""

from __future__ import annotations

import math

import pytest
import torch

import voxa
from voxa.errors import ConfigError
from voxa.nn import las
from voxa.nn.las import EOS_ID, PAD_ID, SOS_ID, LASConfig, ListenAttendSpell, char_lm_scorer, plot_attention

CHARS = "abcde"
TOKENS = [*las.SPECIALS, *CHARS]
V = len(TOKENS)
# words share their characters (two start with "b"), so spelling them needs the frames, not a prior
WORDS = ["bad", "cab", "dace", "bead"]
D = 12
_PATTERNS = torch.randn(len(CHARS), D, generator=torch.Generator().manual_seed(0))
TINY = {"input_dim": D, "vocab_size": V, "listener_hidden": 32, "listener_layers": 2, "speller_hidden": 32,
        "embed_dim": 16, "attention_dim": 32, "location_channels": 4, "location_kernel": 5}


def ids(word: str) -> list[int]:
    return [TOKENS.index(ch) for ch in word]


def spell(seq: list[int]) -> str:
    return "".join(TOKENS[i] for i in seq)


def utterance(word: str, g: torch.Generator) -> torch.Tensor:
    """5-8 frames of the character's fixed pattern plus noise per character, between short noise."""
    def noise(k: int) -> torch.Tensor:
        return 0.3 * torch.randn(k, D, generator=g)

    def count(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi, (1,), generator=g))

    parts = [noise(count(1, 4))]
    parts += [_PATTERNS[CHARS.index(ch)] + noise(count(5, 9)) for ch in word]
    parts.append(noise(count(1, 4)))
    return torch.cat(parts)


def pad_batch(seqs: list[torch.Tensor], value: float | int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    n = torch.tensor([len(s) for s in seqs])
    out = torch.full((len(seqs), int(n.max()), *seqs[0].shape[1:]), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, n


def batch(words: list[str], g: torch.Generator):
    x, n = pad_batch([utterance(w, g) for w in words])
    y, m = pad_batch([torch.tensor(ids(w)) for w in words], PAD_ID)
    return x, n, y, m


def tiny(**over) -> ListenAttendSpell:
    torch.manual_seed(0)
    return ListenAttendSpell(LASConfig(**{**TINY, **over}))


@pytest.fixture(scope="module")
def trained() -> ListenAttendSpell:
    """A tiny LAS after 120 Adam steps on the four words (fresh noise and durations every step)."""
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(120):
        loss = model.loss(*batch(WORDS * 4, g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def test_set():
    """Three unseen renditions of each word."""
    return batch(WORDS * 3, torch.Generator().manual_seed(99))


# ------------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("layers", [0, 1, 3])
def test_listener_output_length_halves_per_pyramid_layer(layers):
    model = tiny(listener_layers=layers).eval()
    x, n = torch.randn(3, 29, D), torch.tensor([29, 16, 5])
    h, n2 = model.listen(x, n)
    s = 2 ** layers
    assert tuple(h.shape) == (3, -(-29 // s), 2 * TINY["listener_hidden"])
    assert n2.tolist() == [-(-k // s) for k in n.tolist()]
    assert h[2, n2[2]:].abs().max() == 0  # padded listener frames


def test_forward_gives_one_step_per_target_and_eos():
    model = tiny().eval()
    x, n, y, m = batch(["bad", "cab", "dace"], torch.Generator().manual_seed(2))
    assert tuple(model(x, n, y, m).shape) == (3, 5, V)


# ------------------------------------------------------------------------------------------------ padding
@pytest.mark.parametrize("attention", ["location", "content"])
def test_padding_is_ignored(attention):
    model = tiny(attention=attention).eval()
    g = torch.Generator().manual_seed(3)
    x, n, y, m = batch(["dace", "bad", "cab"], g)
    with torch.no_grad():
        full = model(x, n, y, m)
        for b in range(3):
            alone = model(x[b:b + 1, :n[b]], n[b:b + 1], y[b:b + 1, :m[b]], m[b:b + 1])
            torch.testing.assert_close(full[b:b + 1, :m[b] + 1], alone, rtol=0, atol=1e-5)
        # the short utterance twice, once with extra padded frames and target slots holding junk
        b = 1
        xx = torch.cat([x[b:b + 1, :n[b]], torch.zeros(1, 9, D)], 1).repeat(2, 1, 1)
        xx[1, n[b]:] = 5.0
        yy = torch.cat([y[b:b + 1, :m[b]], torch.tensor([[3, 4]])], 1).repeat(2, 1)
        nn_, mm = n[b:b + 1].repeat(2), m[b:b + 1].repeat(2)
        alone = model.loss(x[b:b + 1, :n[b]], n[b:b + 1], y[b:b + 1, :m[b]], m[b:b + 1])
        torch.testing.assert_close(model.loss(xx, nn_, yy, mm), alone, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ loss
def test_loss_is_label_smoothed_cross_entropy_over_output_tokens():
    x, n, y, m = batch(["bad", "cab", "dace"], torch.Generator().manual_seed(4))
    gold = torch.full((3, 5), PAD_ID)
    for b, k in enumerate(m.tolist()):
        gold[b, :k] = y[b, :k]
        gold[b, k] = EOS_ID
    keep = gold != PAD_ID
    for eps in (0.0, 0.2):
        model = tiny(label_smoothing=eps).eval()
        with torch.no_grad():
            logits = model(x, n, y, m)
            lp = torch.log_softmax(logits[..., 2:], -1)  # pad and <s> (ids 0, 1) are never predicted
            nll = -lp.gather(-1, (gold - 2).clamp(min=0)[..., None]).squeeze(-1)
            want = ((1 - eps) * nll - eps * lp.mean(-1))[keep].mean()
            torch.testing.assert_close(model.loss(x, n, y, m), want, rtol=1e-5, atol=1e-6)


def test_scheduled_sampling_feeds_the_models_own_tokens():
    x, n, y, m = batch(["bad", "cab"], torch.Generator().manual_seed(5))
    other = y.clone()
    other[:, 1:] = torch.where(other[:, 1:] != PAD_ID, 7 - other[:, 1:] + 3, PAD_ID)  # other characters

    def logits(model, targets):
        torch.manual_seed(11)
        return model(x, n, targets, m)

    always = tiny(sampling_prob=1.0).train()
    # every input after the first comes from the model, so the ground truth beyond it does not matter
    torch.testing.assert_close(logits(always, y), logits(always, other))
    never = tiny(sampling_prob=0.0).train()
    assert not torch.allclose(logits(never, y)[:, 2:], logits(never, other)[:, 2:])


# ------------------------------------------------------------------------------------------------ learning
def test_tiny_las_learns_to_spell_the_words(trained, test_set):
    x, n, _, _ = test_set
    want = [spell(ids(w)) for w in WORDS * 3]
    assert [spell(s) for s in trained.greedy(x, n)] == want
    assert [spell(trained.beam_search(x[i], n[i], beam=4)[0][0]) for i in range(len(x))] == want


def test_beam_one_equals_greedy(trained, test_set):
    x, n, _, _ = test_set
    assert [trained.beam_search(x[i], n[i], beam=1)[0][0] for i in range(len(x))] == trained.greedy(x, n)
    # an untrained model too, whose outputs run into max_len
    model = tiny().eval()
    xr, nr = torch.randn(4, 30, D), torch.tensor([30, 22, 13, 9])
    greedy = model.greedy(xr, nr, max_len=6)
    for ln in (True, False):
        assert [model.beam_search(xr[i], nr[i], beam=1, max_len=6, length_norm=ln)[0][0]
                for i in range(4)] == greedy


def test_larger_beam_never_scores_lower_than_beam_one(trained, test_set):
    x, n, _, _ = test_set
    model = tiny().eval()
    xr, nr = torch.randn(4, 30, D, generator=torch.Generator().manual_seed(6)), torch.tensor([30, 22, 13, 9])
    for m, xs, ns in ((trained, x, n), (model, xr, nr)):
        for i in range(len(xs)):
            one = m.beam_search(xs[i], ns[i], beam=1, max_len=8, length_norm=False)
            five = m.beam_search(xs[i], ns[i], beam=5, max_len=8, length_norm=False)
            assert len(five) == 5 and [s for _, s in five] == sorted((s for _, s in five), reverse=True)
            assert five[0][1] >= one[0][1] - 1e-6


# ------------------------------------------------------------------------------------------------ LM fusion
def _prefer(word: str):
    """An LM that puts almost all of its mass on spelling ``word``."""
    target = ids(word) + [EOS_ID]

    def lm(prefix: tuple[int, ...]) -> torch.Tensor:
        out = torch.full((V,), math.log(0.01))
        if list(prefix) == target[:len(prefix)] and len(prefix) < len(target):
            out[target[len(prefix)]] = math.log(0.95)
        return out

    return lm


def test_lm_fusion_changes_the_output_and_zero_weight_does_not(trained, test_set):
    x, n, _, _ = test_set
    i = WORDS.index("bad")
    plain = trained.beam_search(x[i], n[i], beam=4)
    assert spell(plain[0][0]) == "bad"
    assert trained.beam_search(x[i], n[i], beam=4, lm=_prefer("cab"), lm_weight=0.0) == plain
    fused = trained.beam_search(x[i], n[i], beam=4, lm=_prefer("cab"), lm_weight=2.0)
    assert spell(fused[0][0]) == "cab"


def test_char_lm_scorer_gives_natural_log_next_token_probabilities():
    from voxa.asr.lm import EOS, NgramLM

    lm = NgramLM.fit([list(w) for w in WORDS], order=3, smoothing="witten-bell")
    score = char_lm_scorer(lm, TOKENS, eos_id=EOS_ID)
    lp = score(tuple(ids("ba")))
    assert lp.shape == (V,) and torch.isinf(lp[[PAD_ID, SOS_ID]]).all()
    assert math.isclose(float(lp[3:].exp().sum() + lp[EOS_ID].exp()), 1.0, rel_tol=1e-6)
    assert math.isclose(float(lp[TOKENS.index("d")]), lm.logprob("d", ["b", "a"]) * math.log(10),
                        rel_tol=1e-6)
    assert math.isclose(float(score(tuple(ids("bad")))[EOS_ID]), lm.logprob(EOS, ["a", "d"]) * math.log(10),
                        rel_tol=1e-6)


def test_fusion_with_a_char_lm_of_the_words_keeps_every_spelling(trained, test_set):
    from voxa.asr.lm import NgramLM

    x, n, _, _ = test_set
    score = char_lm_scorer(NgramLM.fit([list(w) for w in WORDS], order=3), TOKENS, trained)
    got = [spell(trained.beam_search(x[i], n[i], beam=4, lm=score, lm_weight=0.5)[0][0])
           for i in range(len(x))]
    assert got == WORDS * 3


# ------------------------------------------------------------------------------------------------ saving
def test_save_and_load_round_trip_gives_the_same_logits(tmp_path):
    x, n, y, m = batch(WORDS, torch.Generator().manual_seed(7))
    model = tiny(vocab=TOKENS, attention="content")
    model.set_normalisation(torch.linspace(-1, 1, D), torch.linspace(0.5, 2, D))
    model.eval()
    back = voxa.load(model.save(tmp_path / "las.safetensors"))
    assert type(back) is ListenAttendSpell and back.cfg == model.cfg and back.cfg.vocab == TOKENS
    with torch.no_grad():
        torch.testing.assert_close(back(x, n, y, m), model(x, n, y, m), rtol=0, atol=0)


def test_feature_normalisation_is_applied_to_the_inputs():
    x, n, y, m = batch(WORDS, torch.Generator().manual_seed(8))
    mean, std = torch.linspace(-1, 1, D), torch.linspace(0.5, 2, D)
    plain, normed = tiny().eval(), tiny().eval()
    normed.set_normalisation(mean, std)
    with torch.no_grad():
        torch.testing.assert_close(normed(x, n, y, m), plain((x - mean) / std, n, y, m))


# ------------------------------------------------------------------------------------------------ attention
def test_attention_rows_sum_to_one_over_valid_frames_and_are_zero_on_padding(trained, test_set):
    x, n, y, m = test_set
    att = trained.attention(x, y, n, m)
    n2 = trained.listen(x, n)[1]
    assert tuple(att.shape) == (len(x), y.shape[1] + 1, -(-x.shape[1] // 4))
    for b in range(len(x)):
        rows = int(m[b]) + 1
        torch.testing.assert_close(att[b, :rows].sum(1), torch.ones(rows))
        assert att[b, :, n2[b]:].abs().sum() == 0 and att[b, rows:].abs().sum() == 0
    one = trained.attention(x[0, :n[0]], y[0, :m[0]])
    torch.testing.assert_close(one, att[0, :int(m[0]) + 1, :int(n2[0])], rtol=0, atol=1e-6)


def test_attention_plot_writes_a_png(trained, test_set, tmp_path, png_plot):
    x, n, y, m = test_set
    w = trained.attention(x[3, :n[3]], y[3, :m[3]])
    p = plot_attention(w, tmp_path / "att.png", tokens=WORDS[3], title="bead")
    assert p == tmp_path / "att.png"
    png_plot(p, (810, 563))


# ------------------------------------------------------------------------------------------------ settings
@pytest.mark.parametrize("setting,value", [("attention", "dot"), ("location_kernel", 4), ("eos_id", SOS_ID),
                                           ("vocab_size", 3), ("sampling_prob", 1.5),
                                           ("listener_layers", -1), ("vocab", ["a", "b"])])
def test_a_bad_setting_is_a_config_error_naming_it(setting, value):
    with pytest.raises(ConfigError, match=setting):
        LASConfig(**{**TINY, setting: value})
