"""``voxa lid evaluate``: spoken language identification over manifests or Kaldi dirs (``utt2lang``)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from voxa.tasks.classify import SYSTEMS

    g = sub.add_parser("lid", help="spoken language identification (GMM-UBM, i-vector systems)")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    e = verbs.add_parser("evaluate", help="train on one set, test on another: Cavg, EER, accuracy")
    e.add_argument("--train", help="training data (manifest or Kaldi dir with utt2lang)")
    e.add_argument("--test", help="test data")
    e.add_argument("--data", help="one data set split here instead of --train/--test")
    e.add_argument("--test-fraction", type=float, default=0.3,
                   help="with --data: share of each language held out for testing")
    e.add_argument("--system", nargs="+", default=None, metavar="SYSTEM",
                   help=f"one or more of: {', '.join(SYSTEMS)}, or a neural system (dnn, dnn-attention, "
                        f"lstm, res-tdnn, xvector, resnet-sap, ...; settings under neural.*) "
                        f"(default: ivector-svm-rbf)")
    e.add_argument("--durations", nargs="+", default=["1", "3", "full"],
                   help="test conditions in seconds of speech, 'full' for whole utterances")
    e.add_argument("--exp", required=True)
    e.add_argument("--config", default=None, help="YAML with 'features', 'gmm' and 'ivector' sections")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. ivector.rank=100")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=_evaluate)


def load_config(path: str | None, overrides: list[str], default: dict | None = None):
    """A :class:`~voxa.tasks.classify.ClassifierConfig` from a YAML file (or ``default``) and overrides."""
    from voxa.cli.common import config_dict
    from voxa.tasks.classify import ClassifierConfig

    return ClassifierConfig.from_dict(config_dict(path, overrides, default))


def _evaluate(args: argparse.Namespace) -> int:
    from voxa.cli.common import load_data_arg
    from voxa.errors import ConfigError
    from voxa.tasks.lid import DEFAULT_CONFIG, dev_split, run_lid

    if args.data and (args.train or args.test):
        raise ConfigError("give either --data or --train and --test")
    if args.data:
        records = [r for r in load_data_arg(args.data) if not (r.extra or {}).get("nonspeech")]
        train_idx, test_idx = dev_split(records, args.test_fraction, args.seed + 1)
        train, test = [records[i] for i in train_idx], [records[i] for i in test_idx]
    elif args.train and args.test:
        train, test = load_data_arg(args.train), load_data_arg(args.test)
    else:
        raise ConfigError("give --train and --test (or --data)")
    durations = []
    for d in args.durations:
        try:
            durations.append(None if d == "full" else float(d))
        except ValueError:
            raise ConfigError(f"duration {d!r} must be seconds or 'full'") from None
    cfg = load_config(args.config, args.overrides, DEFAULT_CONFIG)
    print(run_lid(train, test, cfg, args.exp, systems=args.system, durations=durations, seed=args.seed).table)
    return 0
