"""``voxa run RECIPE.yaml [--data ROOT] [--exp DIR] [--set key=value ...]``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run a recipe end to end")
    r.add_argument("recipe")
    r.add_argument("--data", default=None, help="data root (default $VOXA_DATA or ../shared/data)")
    r.add_argument("--exp", default=None, help="experiment directory (default exp/<corpus>/<recipe>)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. gmm.n_components=64 (repeatable)")
    r.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from voxa.tasks.recipe import run_recipe

    print(run_recipe(args.recipe, args.data, args.exp, args.overrides).table)
    return 0
