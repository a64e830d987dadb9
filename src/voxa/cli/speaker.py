"""``voxa speaker train-ubm|enroll|identify|verify``: the GMM-UBM system over manifests or Kaldi dirs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exp", required=True, help="experiment directory")
    p.add_argument("--config", default=None, help="YAML with 'features' and 'gmm' sections")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. gmm.n_components=64")


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("speaker", help="GMM-UBM speaker identification and verification")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train-ubm", help="train a universal background model")
    t.add_argument("data")
    _common(t)
    t.set_defaults(func=_train_ubm)
    e = verbs.add_parser("enroll", help="MAP-adapt one model per speaker from a trained UBM")
    e.add_argument("data")
    _common(e)
    e.set_defaults(func=_enroll)
    i = verbs.add_parser("identify", help="closed-set identification: train on one set, test another")
    i.add_argument("--train", required=True)
    i.add_argument("--test", required=True)
    i.add_argument("--system", default="gmm-ubm",
                   help="gmm-ubm, or a neural system: xvector, resnet-tap, resnet-stats, resnet-sap, "
                        "resnet-mha, resnet-asp, res-tdnn, lstm, dnn, ... (settings under neural.*, e.g. "
                        "--set neural.trainer.epochs=20)")
    _common(i)
    i.set_defaults(func=_identify)
    v = verbs.add_parser("verify", help="verification trials: EER, minDCF, DET")
    v.add_argument("--background", required=True)
    v.add_argument("--enroll", required=True)
    v.add_argument("--test", required=True)
    v.add_argument("--trials", default=None, help="Kaldi trials file (default: generated from --test)")
    v.add_argument("--nontarget-ratio", type=float, default=1.0)
    v.add_argument("--seed", type=int, default=0)
    _common(v)
    v.set_defaults(func=_verify)


def _config(args: argparse.Namespace):
    from voxa.cli.common import config_dict
    from voxa.tasks.speaker import SpeakerConfig

    return SpeakerConfig.from_dict(config_dict(args.config, args.overrides))


def _data(path: str):
    from voxa.cli.common import load_data_arg

    return load_data_arg(path)


def _train_ubm(args: argparse.Namespace) -> int:
    """Under ``torchrun`` every rank extracts and holds only its share of the utterances; EM sums
    the sufficient statistics over ranks, and rank 0 writes the model."""
    from voxa.features.cache import load_features
    from voxa.gmm.distributed import init_from_env, rank, world_size
    from voxa.gmm.ubm import train_ubm
    from voxa.utils.atomic import write_text_atomic

    cfg = _config(args)
    exp = Path(args.exp)
    records = _data(args.data)
    feat_dir = exp / "feats"
    if init_from_env():
        records = sorted(records, key=lambda r: r.id)[rank()::world_size()]
        feat_dir = feat_dir / f"rank{rank()}"
    feats = load_features(records, cfg.features, feat_dir)
    ubm = train_ubm(feats, cfg.gmm)
    if rank() == 0:
        ubm.save(exp / "ubm.safetensors")
        write_text_atomic(exp / "config.json", json.dumps(cfg.to_dict(), indent=2))
        print(f"UBM with {cfg.gmm.n_components} Gaussians ({world_size()} process(es)) "
              f"-> {exp / 'ubm.safetensors'}")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from voxa.cli.common import require_files
    from voxa.data.select import groups_by_speaker
    from voxa.features.cache import load_features, with_features
    from voxa.gmm import GaussianMixture
    from voxa.gmm.ubm import enroll
    from voxa.tasks.speaker import SpeakerConfig

    exp = Path(args.exp)
    require_files(exp, ("ubm.safetensors",), "voxa speaker train-ubm")
    cfg = SpeakerConfig.from_dict(json.loads((exp / "config.json").read_text())) \
        if (exp / "config.json").is_file() else _config(args)
    ubm = GaussianMixture.load(exp / "ubm.safetensors")
    records = _data(args.data)
    from voxa.cli.common import data_key

    feats = load_features(records, cfg.features, exp / "feats_enroll" / data_key(records))
    records = with_features(records, feats)
    models = enroll(ubm, feats, groups_by_speaker(records), cfg.gmm)
    for name, m in models.items():
        m.save(exp / "models" / f"{name}.safetensors")
    print(f"enrolled {len(models)} speakers -> {exp / 'models'}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from voxa.tasks.speaker import run_identification

    if args.system == "gmm-ubm":
        print(run_identification(_data(args.train), _data(args.test), _config(args), args.exp).table)
        return 0
    from voxa.cli.common import config_dict
    from voxa.tasks.classify import check_system
    from voxa.tasks.neural import NeuralConfig, run_neural_system
    from voxa.tasks.speaker import SpeakerConfig
    from voxa.utils.config import apply_overrides

    check_system(args.system)
    mine = [o[len("neural."):] for o in args.overrides if o.startswith("neural.")]
    rest = [o for o in args.overrides if not o.startswith("neural.")]
    cfg = SpeakerConfig.from_dict(config_dict(args.config, rest))
    ncfg = NeuralConfig.from_dict({**apply_overrides({}, mine), "system": args.system})
    res = run_neural_system(_data(args.train), _data(args.test), "speaker", cfg.features, ncfg, args.exp)
    print(res.table)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from voxa.tasks.speaker import run_verification

    res = run_verification(_data(args.background), _data(args.enroll), _data(args.test), _config(args),
                           args.exp, trials=args.trials, nontarget_ratio=args.nontarget_ratio, seed=args.seed)
    print(res.table)
    return 0
