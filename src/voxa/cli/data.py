"""``voxa data``: prepare corpora, validate, split and convert manifests and Kaldi data dirs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from voxa.data import (
    Record,
    check_sorted,
    load_data,
    split_by_speaker,
    validate,
    write_kaldi_dir,
    write_manifest,
)
from voxa.data.corpora import PREPARERS, prepare
from voxa.errors import ConfigError

_PART_NAMES = {2: ("train", "test"), 3: ("train", "dev", "test")}


def _summary(records: Sequence[Record]) -> str:
    speakers = {r.speaker for r in records if r.speaker is not None}
    known = [r.duration for r in records if r.duration is not None]
    hours = f"{sum(known) / 3600:.2f} h" + ("" if len(known) == len(records) else " (known part)")
    return f"{len(records)} utterances, {len(speakers)} speakers, {hours}"


def _write(records: Sequence[Record], outdir: Path) -> None:
    write_manifest(outdir / "manifest.jsonl", records)
    write_kaldi_dir(records, outdir)


def cmd_prepare(args: argparse.Namespace) -> None:
    """Prepare a corpus into a manifest plus Kaldi files."""
    records = prepare(args.name, args.root, args.outdir)
    print(f"{args.name}: {_summary(records)} -> {Path(args.outdir) / 'manifest.jsonl'} "
          f"(+ Kaldi files in {args.outdir})")


def cmd_validate(args: argparse.Namespace) -> None:
    """Validate a manifest or Kaldi dir; raises ManifestError on the first problem."""
    records = load_data(args.data)
    validate(records, check_files=not args.no_check_files)
    if Path(args.data).is_dir() and not (Path(args.data) / "manifest.jsonl").is_file():
        # only Kaldi dirs must be sorted; manifests may be in any order
        check_sorted(records)
    print(f"OK: {args.data}: {_summary(records)}")


def cmd_split(args: argparse.Namespace) -> None:
    """Speaker-disjoint split into OUTDIR/{train,dev,test}."""
    if len(args.fractions) not in (2, 3):
        raise ConfigError(f"--fractions: give 2 (train test) or 3 (train dev test) numbers, got "
                          f"{len(args.fractions)}")
    records = load_data(args.data)
    parts = split_by_speaker(records, args.fractions, seed=args.seed)
    outdir = Path(args.outdir)
    for name, part in zip(_PART_NAMES[len(parts)], parts):
        _write(sorted(part, key=lambda r: r.id), outdir / name)
        print(f"{name}: {_summary(part)} -> {outdir / name}")


def cmd_convert(args: argparse.Namespace) -> None:
    """Manifest -> Kaldi dir, or Kaldi dir -> manifest."""
    src = Path(args.data)
    records = load_data(src)
    outdir = Path(args.outdir)
    is_kaldi = src.is_dir() and not (src / "manifest.jsonl").is_file()
    if is_kaldi:
        dest = write_manifest(outdir / "manifest.jsonl", records)
    else:
        dest = write_kaldi_dir(records, outdir)
    print(f"{_summary(records)}: {src} -> {dest}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` command group with its verbs on ``subparsers``."""
    p = subparsers.add_parser("data", help="prepare, validate, split and convert data",
                              description=__doc__)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("prepare", help="prepare a corpus: manifest.jsonl + Kaldi files")
    v.add_argument("name", choices=sorted(PREPARERS), metavar="NAME",
                   help=f"corpus: {', '.join(sorted(PREPARERS))}")
    v.add_argument("root", help="the corpus in its publisher's layout")
    v.add_argument("outdir", help="where to write manifest.jsonl and the Kaldi files")
    v.set_defaults(func=cmd_prepare)

    v = verbs.add_parser("validate", help="check a manifest or Kaldi data dir")
    v.add_argument("data", help="manifest.jsonl, a folder holding it, or a Kaldi data dir")
    v.add_argument("--no-check-files", action="store_true",
                   help="do not check that the audio files exist")
    v.set_defaults(func=cmd_validate)

    v = verbs.add_parser("split", help="speaker-disjoint train/dev/test split")
    v.add_argument("data", help="manifest.jsonl, a folder holding it, or a Kaldi data dir")
    v.add_argument("outdir", help="writes OUTDIR/{train,dev,test}/manifest.jsonl + Kaldi files")
    v.add_argument("--fractions", nargs="+", type=float, default=[0.8, 0.1, 0.1], metavar="F",
                   help="fractions of speakers: train dev test, or train test "
                        "(default 0.8 0.1 0.1)")
    v.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    v.set_defaults(func=cmd_split)

    v = verbs.add_parser("convert", help="manifest -> Kaldi data dir, or Kaldi dir -> manifest")
    v.add_argument("data", help="manifest.jsonl (or a folder holding it), or a Kaldi data dir")
    v.add_argument("outdir", help="output folder")
    v.set_defaults(func=cmd_convert)

