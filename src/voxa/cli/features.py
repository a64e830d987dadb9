"""``voxa features compute``: features for every utterance of a manifest or Kaldi data directory."""

from __future__ import annotations

import argparse

from voxa.cli.common import load_data_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("features", help="compute and store features")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    c = verbs.add_parser("compute", help="features for a data set, written as ark/scp (resumable)")
    c.add_argument("input", help="manifest.jsonl or Kaldi data directory")
    c.add_argument("outdir")
    c.add_argument("--type", default="mfcc", choices=["mfcc", "fbank", "plp", "lpcc", "sdc"])
    c.add_argument("--deltas", type=int, default=0, help="orders of deltas to append (0-2)")
    c.add_argument("--cmvn", action="store_true", help="per-utterance mean normalisation")
    c.add_argument("--norm-vars", action="store_true", help="with --cmvn, also variance")
    c.add_argument("--vad", action="store_true", help="keep only energy-VAD speech frames")
    c.add_argument("--kaldi-compat", action="store_true", help="Kaldi's defaults and sample scale")
    c.add_argument("--sample-rate", type=int, default=None, help="resample to this rate first")
    c.add_argument("--format", default="kaldi", choices=["kaldi", "voxa"],
                   help="ark/scp (default) or voxa's safetensors store")
    c.add_argument("--num-ceps", type=int, default=None)
    c.add_argument("--num-mel-bins", type=int, default=None)
    c.add_argument("--shard-size", type=int, default=200)
    c.set_defaults(func=_compute)


def _compute(args: argparse.Namespace) -> int:
    from voxa.features.pipeline import FeatureConfig, compute_features

    records = load_data_arg(args.input)
    opts = {}
    if args.num_ceps is not None:
        opts["num_ceps"] = args.num_ceps
    if args.num_mel_bins is not None:
        key = "num_bins" if args.type == "plp" else "num_mel_bins"
        opts[key] = args.num_mel_bins
    cfg = FeatureConfig(type=args.type, deltas=args.deltas, cmvn="utt" if args.cmvn else None,
                        norm_vars=args.norm_vars, vad=args.vad, kaldi_compat=args.kaldi_compat,
                        sample_rate=args.sample_rate, options=opts)
    index = compute_features(records, cfg, args.outdir, fmt=args.format, shard_size=args.shard_size)
    summary = getattr(index, "summary", None)
    n_short = summary.skipped if summary is not None else 0
    skipped = f" ({n_short} skipped as shorter than one frame, listed in {index.parent / 'skipped'})" \
        if n_short else ""
    print(f"wrote {len(records) - n_short} utterances of {args.type} features: "
          f"{index}{skipped}")
    return 0
