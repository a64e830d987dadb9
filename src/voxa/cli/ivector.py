"""``voxa ivector train|extract``: a UBM and total-variability model from data, and i-vectors from them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("ivector", help="i-vector extractor: train, extract")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train", help="train a UBM and a total-variability matrix (tv.safetensors)")
    t.add_argument("data", help="manifest or Kaldi dir")
    t.add_argument("--exp", required=True)
    t.add_argument("--config", default=None, help="YAML with 'features', 'gmm' and 'ivector' sections")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. ivector.rank=100")
    t.set_defaults(func=_train)
    e = verbs.add_parser("extract", help="i-vectors of every utterance -> one safetensors file")
    e.add_argument("data")
    e.add_argument("--exp", required=True, help="the folder 'voxa ivector train' wrote")
    e.add_argument("-o", "--output", required=True, help="output .safetensors (ids in its header)")
    e.set_defaults(func=_extract)


def _train(args: argparse.Namespace) -> int:
    from voxa.cli.common import data_key, load_data_arg
    from voxa.cli.lid import load_config
    from voxa.features.cache import load_features, with_features
    from voxa.tasks.classify import FrontEnd
    from voxa.utils.atomic import write_text_atomic

    cfg = load_config(args.config, args.overrides)
    exp = Path(args.exp)
    records = load_data_arg(args.data)
    feats = load_features(records, cfg.features, exp / "feats" / data_key(records))
    records = with_features(records, feats)
    fe = FrontEnd(cfg).fit([feats[r.id] for r in records], ivectors=True)
    fe.tv.save(exp / "tv.safetensors")
    write_text_atomic(exp / "config.json", json.dumps(cfg.to_dict(), indent=2))
    print(f"i-vector extractor (UBM {cfg.gmm.n_components}, rank {cfg.ivector.rank}) on {len(records)} "
          f"utterances -> {exp / 'tv.safetensors'}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from voxa.cli.common import data_key, load_data_arg, require_files
    from voxa.features.cache import load_features, with_features
    from voxa.ivector import TotalVariability
    from voxa.tasks.classify import ClassifierConfig, FrontEnd
    from voxa.utils.vectors import save_vectors

    exp = Path(args.exp)
    require_files(exp, ("tv.safetensors", "config.json"), "voxa ivector train")
    cfg = ClassifierConfig.from_dict(json.loads((exp / "config.json").read_text()))
    fe = FrontEnd(cfg)
    fe.tv = TotalVariability.load(exp / "tv.safetensors")
    fe.ubm = fe.tv.ubm_
    records = load_data_arg(args.data)
    feats = load_features(records, cfg.features, exp / "feats" / data_key(records))
    records = with_features(records, feats)
    ids = [r.id for r in records]
    X = fe.ivectors([feats[u] for u in ids])
    meta = {r.id: {k: v for k, v in (("speaker", r.speaker), ("language", r.language),
                                       ("emotion", r.emotion)) if v is not None} for r in records}
    save_vectors(args.output, ids, X, labels=meta)
    print(f"{len(ids)} i-vectors of dimension {X.shape[1]} -> {args.output}")
    return 0
