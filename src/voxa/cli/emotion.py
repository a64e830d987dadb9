"""``voxa emotion evaluate``: speaker-independent emotion recognition (``utt2emo`` labels)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("emotion", help="emotion recognition (GMM, i-vector, prosodic systems, fusion)")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    e = verbs.add_parser("evaluate", help="leave-one-speaker-out UAR, accuracy, confusion matrices")
    e.add_argument("--data", required=True, help="manifest or Kaldi dir with utt2emo and utt2spk")
    e.add_argument("--folds", default="loso", choices=["loso"], help="cross-validation folds")
    e.add_argument("--system", nargs="+", default=None, metavar="SYSTEM",
                   help="s1 (GMM, MFCC), s2 (i-vector + LDA), s3 (GMM, prosody), fusion, or a classify "
                        "system such as ivector-svm-rbf (default: s1 s2 s3 fusion, fusion reported)")
    e.add_argument("--speaker-norm", action=argparse.BooleanOptionalAction, default=None,
                   help="standardise each speaker's features over their utterances (default: on)")
    e.add_argument("--exp", required=True)
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of every system, e.g. gmm.n_components=32")
    e.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from voxa.cli.common import load_data_arg
    from voxa.tasks.emotion import FUSION, run_emotion
    from voxa.utils.config import apply_overrides

    systems = args.system
    if systems == [FUSION]:
        systems = None  # fusion alone means: the three systems and their fusion
    res = run_emotion(load_data_arg(args.data), args.exp, systems=systems,
                      overrides=apply_overrides({}, args.overrides) or None,
                      main=args.system[-1] if args.system else None,
                      speaker_norm=args.speaker_norm is not False)
    print(res.table)
    return 0
