"""``voxa lm train|perplexity``: word n-gram language models as ARPA files.

The models are library code (:mod:`voxa.asr.lm`); this module parses and prints.
"""

from __future__ import annotations

import argparse

_KALDI_TEXT = "the first field of each line is an utterance id"


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("lm", help="n-gram language models: train, perplexity")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train", help="train an n-gram model on text and write it as ARPA")
    t.add_argument("text", help="one sentence per line (or a Kaldi text file with --kaldi-text)")
    t.add_argument("--order", type=int, default=3)
    t.add_argument("--smoothing", default="kneser-ney",
                   help="kneser-ney (modified, interpolated) or witten-bell")
    t.add_argument("--kaldi-text", action="store_true", help=_KALDI_TEXT)
    t.add_argument("--unk", action="store_true", help="add <unk> and score out-of-vocabulary words as it")
    t.add_argument("--out", required=True, help="ARPA file to write")
    t.set_defaults(func=_train)
    p = verbs.add_parser("perplexity", help="SRILM-style perplexity of an ARPA model on text")
    p.add_argument("lm", help="ARPA file")
    p.add_argument("text", help="one sentence per line (or a Kaldi text file with --kaldi-text)")
    p.add_argument("--kaldi-text", action="store_true", help=_KALDI_TEXT)
    p.set_defaults(func=_perplexity)


def _train(args: argparse.Namespace) -> int:
    from voxa.asr.lm import NgramLM, read_sentences

    sents = read_sentences(args.text, kaldi_text=args.kaldi_text)
    lm = NgramLM.fit(sents, order=args.order, smoothing=args.smoothing, unk=args.unk)
    lm.write_arpa(args.out)
    sizes = ", ".join(f"{len(t)} {k + 1}-grams" for k, t in enumerate(lm.probs))
    print(f"{args.smoothing} {lm.order}-gram on {len(sents)} sentences ({len(lm.vocab)} words): {sizes} "
          f"-> {args.out}")
    return 0


def _perplexity(args: argparse.Namespace) -> int:
    from voxa.asr.lm import NgramLM, read_sentences

    r = NgramLM.read_arpa(args.lm).perplexity(read_sentences(args.text, kaldi_text=args.kaldi_text))
    print(f"{r['sentences']} sentences, {r['words']} words, {r['oovs']} OOVs")
    print(f"logprob= {r['logprob']:.6g} ppl= {r['ppl']:.6g} ppl1= {r['ppl1']:.6g}")
    return 0
