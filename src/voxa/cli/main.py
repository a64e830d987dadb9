"""Entry point: ``voxa <group> <verb> ...``. Every group is a module with ``add_parser(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from voxa import __version__
from voxa.errors import VoxaError

# group modules, imported lazily so that ``voxa --help`` stays fast
GROUPS = ("data", "features", "speaker", "ivector", "backend", "lid", "emotion", "run", "demo", "tse", "lm",
          "asr")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voxa", description="Speech features, models and evaluation.")
    p.add_argument("--version", action="version", version=f"voxa {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="group", metavar="<group>")
    sub.required = True
    for name in GROUPS:
        # a group that fails to import is a broken install, never a silently missing command
        mod = importlib.import_module(f"voxa.cli.{name}")
        mod.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except ImportError as e:
        print(f"voxa: error: a command group failed to import ({e}); reinstall voxa", file=sys.stderr)
        return 1
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.parse_args([args.group, "--help"])
        return 2
    try:
        rc = func(args)
    except VoxaError as e:
        print(f"voxa: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("voxa: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
