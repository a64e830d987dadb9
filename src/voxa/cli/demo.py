"""``voxa demo``: prepare a corpus, compute features, plot, and (as voxa grows) train and score."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="run voxa's tour on real data if found, else on data it makes")
    d.add_argument("--data", default=None,
                   help="data root (default: $VOXA_DATA, else ../shared/data, else synthesised)")
    d.add_argument("--out", default="exp/demo", help="where everything is written")
    d.add_argument("--quick", action="store_true", help="smaller synthetic corpus")
    d.add_argument("--stages", nargs="*", default=None, help="run only these stages")
    d.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from voxa.tasks.demo import run_demo

    run_demo(args.out, args.data, args.quick, args.stages, report=lambda msg: print(msg, flush=True))
    return 0
