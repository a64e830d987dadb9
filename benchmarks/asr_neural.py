"""CTC decoding: voxa's greedy and prefix beam search against pyctcdecode, plus a CTC training step.

Both decoders see the same per-frame log-posteriors: --utts utterances x --frames frames (10 ms) over
29 characters (blank, space, a-z, apostrophe). Each utterance spells the words (as many as fit) of a
sentence drawn from a random word bigram chain over a 400-word vocabulary: every character lasts 1-4
frames and is followed by 0-3 blank frames, and its frames get a boost of about 5 nats over Gaussian
logits, so that now and then another character comes out on top (a greedy CER of about 11 %). The
word LM is a trigram ``voxa.asr.lm.NgramLM`` (Kneser-Ney) fitted on 3000 other sentences of the chain;
pyctcdecode reads the same model from its ARPA file through kenlm (its LM row is left out when kenlm
does not import).

Settings shared by both: beam width, token pruning at the frame (voxa ``prune`` = pyctcdecode
``token_min_logp``), LM weight 0.5 and word bonus 1.5 (pyctcdecode's ``alpha``/``beta``). pyctcdecode
also drops beams more than 10 nats behind the best (its default ``beam_prune_logp``); voxa keeps the
full beam. They differ in what they search: voxa sums over each prefix's alignments (Hannun et al.),
pyctcdecode keeps the last emitted character apart, so their transcripts can differ (voxa's are then
the more probable labellings). With the LM, pyctcdecode scores out-of-vocabulary words at kenlm's
log10 -100 and penalises partial words that start no word of the LM: near a lexicon, so voxa's
``+ LM`` row runs with ``lexicon`` = the LM's words; ``+ LM open`` is voxa without it (an unknown word
costs ``oov_logprob`` -10 nats before the weight), with no pyctcdecode counterpart.

Reported per row: the seconds for all utterances (best of --repeats after a warm-up on three), the
real-time factor (seconds of compute per second of audio), the character error rate against the spelled
text and how many transcripts equal the other toolkit's in the same setting. Then the median time of
one CTC training step (forward, ``F.ctc_loss``, backward, Adam) of a 2 x 128 BLSTM on 40-dim inputs,
batch 8 x --frames frames. The last line is pyctcdecode's time / voxa's for beam search without an LM
at beam 10.

    OMP_NUM_THREADS=1 python benchmarks/asr_neural.py [--utts 50] [--frames 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FRAME_RATE = 100.0
CHARS = ["", " "] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["'"]  # blank 0, space 1


def timed(fn, inputs: list, repeats: int) -> tuple[float, list]:
    """Best seconds of ``[fn(x) for x in inputs]`` over ``repeats`` (after a warm-up on three), and its
    outputs."""
    for x in inputs[:3]:
        fn(x)
    best, out = math.inf, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = [fn(x) for x in inputs]
        best = min(best, time.perf_counter() - t0)
    return best, out


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (kenlm prints its loading progress from C++, past sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def word_chain(rng: np.random.Generator, n_words: int = 400):
    """A vocabulary and a sampler of sentences from a sparse word bigram chain (Zipf-like start)."""
    letters = np.array(CHARS[2:28])
    vocab = sorted({"".join(rng.choice(letters, rng.integers(2, 8))) for _ in range(n_words)})
    succ = [rng.choice(len(vocab), 8, replace=False) for _ in vocab]
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()

    def sentence(n_chars: int) -> str:
        w = rng.choice(len(vocab), p=zipf)
        out = [vocab[w]]
        while sum(map(len, out)) + len(out) < n_chars:
            w = succ[w][min(rng.geometric(0.4) - 1, 7)]
            out.append(vocab[w])
        return " ".join(out)

    return vocab, sentence


def posteriors(text: str, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """``[frames, 29]`` log-posteriors spelling the words of ``text`` that fit; returns them and the words."""
    ids = {c: i for i, c in enumerate(CHARS)}
    lab: list[int] = [0] * int(rng.integers(0, 10))
    said: list[str] = []
    for word in text.split():
        seg = [] if not said else [ids[" "]] * int(rng.integers(1, 4)) + [0] * int(rng.integers(0, 3))
        for i, ch in enumerate(word):
            if i and word[i - 1] == ch and seg[-1] != 0:
                seg.append(0)  # a repeated letter needs a blank between its copies
            seg += [ids[ch]] * int(rng.integers(1, 5)) + [0] * int(rng.integers(0, 4))
        if len(lab) + len(seg) > frames:
            break
        lab += seg
        said.append(word)
    lab = (lab + [0] * frames)[:frames]
    logits = rng.normal(size=(frames, len(CHARS)))
    logits[np.arange(frames), lab] += rng.normal(5.0, 1.0, frames)
    logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    return logp, " ".join(said)


def cer(hyps: list[str], refs: list[str]) -> float:
    import jiwer

    return 100 * jiwer.cer(refs, hyps)


def ctc_train_step_time(repeats: int, frames: int) -> tuple[float, int]:
    class BLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(40, 128, num_layers=2, bidirectional=True, batch_first=True)
            self.out = nn.Linear(256, len(CHARS))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.log_softmax(self.out(self.rnn(x)[0]), -1)

    torch.manual_seed(0)
    model = BLSTM()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    B = 8
    x = torch.randn(B, frames, 40)
    tgt_len = torch.randint(frames // 6, frames // 3, (B,))
    targets = torch.randint(1, len(CHARS), (int(tgt_len.sum()),))
    in_len = torch.full((B,), frames, dtype=torch.long)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        lp = model(x).transpose(0, 1)  # ctc_loss wants [T, B, V]
        F.ctc_loss(lp, targets, in_len, tgt_len, blank=0, zero_infinity=True).backward()
        opt.step()

    step()
    ts = []
    for _ in range(max(repeats, 3)):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utts", type=int, default=50)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=1, help="timed repeats (the best is kept)")
    ap.add_argument("--prune", type=float, default=-12.0, help="voxa prune = pyctcdecode token_min_logp")
    args = ap.parse_args(argv)

    from voxa.asr.ctc import ctc_greedy, ctc_prefix_beam_search
    from voxa.asr.lm import NgramLM

    logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyctcdecode import build_ctcdecoder
        try:
            import kenlm  # noqa: F401
            have_kenlm = True
        except ImportError:
            have_kenlm = False

    rng = np.random.default_rng(0)
    _, sentence = word_chain(rng)
    lm = NgramLM.fit([sentence(int(rng.integers(10, 60))) for _ in range(3000)], order=3)
    data = [posteriors(sentence(args.frames // 3), args.frames, rng) for _ in range(args.utts)]
    refs = [t for _, t in data]
    logps = [lp for lp, _ in data]
    audio_s = args.utts * args.frames / FRAME_RATE
    alpha, beta = 0.5, 1.5

    def text(ids: list[int]) -> str:
        return " ".join("".join(CHARS[i] for i in ids).split())

    def voxa_fn(beam: int | None, mode: str | None):
        if beam is None:
            return lambda lp: text(ctc_greedy(lp))
        kw: dict = {}
        if mode is not None:
            kw = dict(lm=lm, lm_weight=alpha, word_bonus=beta,
                      lexicon=lm.vocab if mode == "lexicon" else None)
        return lambda lp: text(ctc_prefix_beam_search(lp, beam=beam, space=1, tokens=CHARS, prune=args.prune,
                                                      **kw)[0][0])

    decoders = {None: build_ctcdecoder(CHARS)}
    if have_kenlm:
        arpa = Path(tempfile.mkdtemp(prefix="voxa-bench-ctc-")) / "lm.arpa"
        lm.write_arpa(arpa)
        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")
            decoders["lexicon"] = build_ctcdecoder(CHARS, kenlm_model_path=str(arpa), alpha=alpha, beta=beta)

    def peer_fn(beam: int, mode: str | None):
        dec = decoders[mode]
        return lambda lp: " ".join(dec.decode(lp.astype(np.float32), beam_width=beam,
                                              token_min_logp=args.prune).split())

    settings = [("greedy", None, None), ("beam 10", 10, None), ("beam 25", 25, None),
                ("beam 10 + LM", 10, "lexicon"), ("beam 10 + LM open", 10, "open")]
    print(f"{args.utts} utterances x {args.frames} frames x {len(CHARS)} characters ({audio_s:.0f} s of "
          f"audio); torch threads: {torch.get_num_threads()}; best of {args.repeats}; pyctcdecode "
          f"{version('pyctcdecode')}; LM: trigram, {len(lm.vocab)} words, weight {alpha}, bonus {beta}")
    head = (f"{'setting':<19}{'toolkit':<13}{'seconds':>9}{'RTF':>10}{'CER %':>8}{'same as peer':>14}"
            f"{'speedup':>9}")
    print(head)
    print("-" * len(head))
    speedups: dict[str, float] = {}
    for name, beam, mode in settings:
        rows = [("voxa", voxa_fn(beam, mode))]
        if beam is not None and mode in decoders:
            rows.append(("pyctcdecode", peer_fn(beam, mode)))
        secs, outs = {}, {}
        for tk, fn in rows:
            secs[tk], outs[tk] = timed(fn, logps, args.repeats)
        for tk, _ in rows:
            other = [o for o in outs if o != tk]
            same = f"{sum(a == b for a, b in zip(outs[tk], outs[other[0]]))}/{args.utts}" if other else ""
            ratio = ""
            if tk == "voxa" and "pyctcdecode" in secs:
                speedups[name] = secs["pyctcdecode"] / secs["voxa"]
                ratio = f"{speedups[name]:.1f}x"
            print(f"{name:<19}{tk:<13}{secs[tk]:>9.3f}{secs[tk] / audio_s:>10.5f}{cer(outs[tk], refs):>8.2f}"
                  f"{same:>14}{ratio:>9}")
    if not have_kenlm:
        print("pyctcdecode with an LM needs kenlm, which does not import here: the LM rows are voxa's only")

    step_s, n_params = ctc_train_step_time(args.repeats, args.frames)
    print(f"CTC training step, 2x128 BLSTM ({n_params:,} params), batch 8 x {args.frames} frames x 40 dims: "
          f"{step_s:.3f} s (median), RTF {step_s / (8 * args.frames / FRAME_RATE):.4f}")
    ratio = speedups["beam 10"]
    print(f"speedup vs pyctcdecode: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
