"""``voxa asr train|decode|align|score``: speech recognition, GMM-HMM, DNN-HMM, RNN-CTC and LAS.

The work is library code (:mod:`voxa.tasks.asr`, :mod:`voxa.tasks.asr_neural`, :mod:`voxa.asr`); this
module parses and prints. A system folder holds ``lexiconp.txt``, ``train_text`` (Kaldi ``text`` of the
training transcripts, for n-gram LMs) and the model: ``final.mdl.safetensors`` (the HMM system, plus
``hybrid.safetensors`` for a DNN-HMM) or ``model.safetensors`` (CTC, LAS).
"""

from __future__ import annotations

import argparse
from pathlib import Path

_SET = "dotted setting, e.g. mono.num_iters=20 or lexicon.type=words (repeatable)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("asr", help="GMM-HMM speech recognition: train, decode, align, score")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train", help="train a recogniser on a manifest with transcripts")
    t.add_argument("manifest", help="JSONL manifest (records with text, or extra.phones)")
    t.add_argument("--out", required=True, help="system folder to write (networks train and resume in it)")
    t.add_argument("--system", default="mono", choices=["mono", "tri", "dnn-hmm", "ctc", "las"],
                   help="mono/tri GMM-HMM, dnn-hmm hybrid (on the mono alignments; --set dnn_hmm.source=tri "
                        "for triphones), ctc (BLSTM-CTC) or las (Listen, Attend and Spell)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET)
    t.set_defaults(func=_train)
    d = verbs.add_parser("decode", help="decode a manifest; writes Kaldi-style hypotheses, prints WER")
    d.add_argument("system", help="system folder (voxa asr train --out)")
    d.add_argument("manifest")
    d.add_argument("--grammar", default="loop",
                   help="loop (no LM), isolated (one word), an n-gram order (trained on train_text); CTC and "
                        "LAS also greedy")
    d.add_argument("--lm", help="ARPA language model (instead of --grammar)")
    d.add_argument("--out", required=True, help="hypothesis file (Kaldi text: id word word ...)")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET)
    d.set_defaults(func=_decode)
    a = verbs.add_parser("align", help="forced alignment of transcripts: word and phone CTM, TextGrids")
    a.add_argument("system")
    a.add_argument("manifest")
    a.add_argument("--ctm", required=True, help="word CTM to write (phones go to <ctm>.phones)")
    a.add_argument("--textgrid", help="folder for one Praat TextGrid per utterance")
    a.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET)
    a.set_defaults(func=_align)
    s = verbs.add_parser("score", help="WER of a hypothesis file against a reference (Kaldi text files)")
    s.add_argument("ref")
    s.add_argument("hyp")
    s.set_defaults(func=_score)


def _cfg(overrides: list[str]):
    from voxa.tasks.asr import AsrConfig
    from voxa.utils.config import apply_overrides

    return AsrConfig.from_dict(apply_overrides({}, overrides))


def _train(args: argparse.Namespace) -> int:
    from voxa.data.manifest import read_manifest
    from voxa.tasks.asr import save_system, train_system

    cfg = _cfg(args.overrides)
    records = read_manifest(args.manifest)
    system = train_system(records, cfg, args.system, Path(args.out))
    save_system(system, args.out)
    if args.system in ("mono", "tri"):
        size = f"{system.am.num_pdfs} pdfs, {system.am.num_gaussians} Gaussians"
    else:
        size = f"{system.parameters:,} parameters"
    print(f"{args.system}: {size}, {len(system.train_texts)} utterances, {system.seconds:.1f} s "
          f"-> {args.out}")
    return 0


def _decode(args: argparse.Namespace) -> int:
    from voxa.data.manifest import read_manifest
    from voxa.tasks.asr import decode_manifest

    cfg = _cfg(args.overrides)
    grammar = int(args.grammar) if args.grammar.isdigit() else args.grammar
    res = decode_manifest(args.system, read_manifest(args.manifest), cfg, grammar, args.out, lm=args.lm)
    if "wer" in res:
        print(f"%WER {res['wer']:.2f} [ {res['errors']} / {res['ref_words']}, {res['insertions']} ins, "
              f"{res['deletions']} del, {res['substitutions']} sub ]")
    print(f"{res['utterances']} utterances, RTF {res['rtf']:.4f} -> {args.out}")
    return 0


def _align(args: argparse.Namespace) -> int:
    from voxa.data.manifest import read_manifest
    from voxa.tasks.asr import align_manifest

    cfg = _cfg(args.overrides)
    n = align_manifest(args.system, read_manifest(args.manifest), cfg, args.ctm, args.textgrid)
    print(f"{n} utterances aligned -> {args.ctm}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from voxa.tasks.asr import read_text, score_asr

    refs, hyps = read_text(args.ref), read_text(args.hyp)
    r = score_asr(refs, hyps)
    print(f"%WER {r['wer']:.2f} [ {r['errors']} / {r['ref_words']}, {r['insertions']} ins, "
          f"{r['deletions']} del, {r['substitutions']} sub ] over {r['utterances']} utterances")
    return 0
