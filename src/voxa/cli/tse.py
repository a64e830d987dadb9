"""``voxa tse``: distance-based target speech extraction (Shi, Yen, Nakadai 2024).

Verbs: ``simulate`` (the simulated impulse-response banks D1-D3), ``realbank`` (a bank of measured
responses), ``mixtures`` and ``score`` (fixed sets), ``train``, ``export`` (a model file from a checkpoint,
or averaged snapshots), ``evaluate``, ``ship`` (install a model as the default), ``extract``, ``locate``
and ``curves`` (runs side by side at equal CPU-hours).
Each verb is one ``cmd_*`` function plus one block in :func:`add_parser`; heavy modules are imported inside
the functions so that ``voxa --help`` stays fast.
"""

from __future__ import annotations

import argparse

from voxa.errors import VoxaError

# the simulated presets, named here so that --help does not import pyroomacoustics
_PRESETS = ("D1", "D2", "D3")
_CORPORA = ("air", "but")


def _workers(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {n}")
    return n


def cmd_simulate(args: argparse.Namespace) -> None:
    """Simulate a preset's bank and report its timing."""
    from voxa.tse.sim.presets import build_bank

    overrides = {"mics": args.mics, "speakers": args.speakers}
    report = build_bank(args.preset, args.out, size=args.size, rate=args.rate, seed=args.seed,
                        workers=args.workers, shard_size=args.shard_size, progress=not args.quiet,
                        **{k: v for k, v in overrides.items() if v is not None})
    line = f"{report.preset}: {report.rirs} RIRs -> {report.out}"
    if report.skipped_shards:
        line += f" ({report.skipped_shards}/{report.shards} shards already done)"
    print(line)
    per = report.seconds_per_1000
    print(f"simulated {report.computed} RIRs in {report.seconds:.1f} s"
          + (f" ({per:.1f} s per 1,000 RIRs)" if per is not None else ""))
    if report.preset == "D3":
        print(f"dropped rooms: {report.dropped_rooms}")


def cmd_realbank(args: argparse.Namespace) -> None:
    """A bank of measured responses from a corpus."""
    from voxa.tse.bank import RirBank
    from voxa.tse.sim.realbank import build_air_bank, build_real_bank, load_butreverb

    if args.corpus == "air":
        out = build_air_bank(args.root, args.out, rate=args.rate, test_fraction=args.test_fraction,
                             valid_fraction=args.valid_fraction, seed=args.seed)
    elif args.corpus == "but":
        items = load_butreverb(args.root, rooms=args.rooms or None)
        out = build_real_bank(items, args.out, rate=args.rate, name="BUT",
                              meta={"corpus": "BUT ReverbDB", "rooms": args.rooms or "all"},
                              fractions=(1 - args.test_fraction - args.valid_fraction, args.valid_fraction,
                                         args.test_fraction), seed=args.seed)
    else:  # argparse's choices keep this unreachable; a clear line if they ever drift
        raise VoxaError(f"unknown corpus {args.corpus!r}; one of {', '.join(_CORPORA)}")
    bank = RirBank(out)
    counts = ", ".join(f"{s} {len(bank.split(s))}" for s in ("train", "valid", "test"))
    groups = len({r["group"] for r in bank.rows})
    print(f"{args.corpus}: {len(bank)} RIRs in {groups} groups ({counts}) at {bank.bank_rate} Hz -> {out}")


def cmd_mixtures(args: argparse.Namespace) -> None:
    """A fixed evaluation set: mixture and target WAVs, mixtures.jsonl, and a geometry PNG."""
    from pathlib import Path

    from voxa.cli.common import load_data_arg
    from voxa.tse.data import (
        MixtureConfig,
        MixtureDataset,
        plot_mixture_geometry,
        speech_pools,
        write_mixture_set,
    )
    from voxa.utils.jsonl import read_jsonl

    records = load_data_arg(args.speech)
    pools = speech_pools(records, seed=args.pool_seed)
    cfg = MixtureConfig(num_talkers=args.talkers, seconds=args.seconds, rate=args.rate,
                        presence=args.presence, r_spk=args.r_spk, min_talker_gap=args.min_gap)
    ds = MixtureDataset(args.bank, args.split, pools[args.pool], cfg, length=args.count, seed=args.seed)
    out = write_mixture_set(ds, args.count, args.out)

    rows = read_jsonl(out / "mixtures.jsonl")
    png = plot_mixture_geometry(rows[:12], cfg.r_spk, Path(out) / "geometry.png")
    n_present = sum(r["present"] for r in rows)
    print(f"{args.count} mixtures ({n_present} with a target) from {args.split} responses and "
          f"{len(pools[args.pool])} {args.pool} utterances -> {out} (geometry: {png})")
    if ds.skipped_groups:
        rooms = len(ds.skipped_groups) + len(ds.group_names)
        print(f"left out {len(ds.skipped_groups)} of {rooms} rooms with no {args.talkers} responses "
              f"{args.min_gap} m apart: {', '.join(ds.skipped_groups)}")


def cmd_score(args: argparse.Namespace) -> None:
    """SDR, SDRi, PESQ and iSDR of estimates against a fixed mixture set."""
    import json

    from voxa.tse.scoring import score_directory

    res = score_directory(args.ref, args.est, args.out, with_pesq=not args.no_pesq)
    print(json.dumps({k: v for k, v in res.items() if k != "items"}, indent=2))


def cmd_train(args: argparse.Namespace) -> None:
    """Train (or resume, or fine-tune with --init) a TSE model."""
    from voxa.cli.common import load_data_arg
    from voxa.gmm.distributed import init_from_env
    from voxa.tasks.tse import apply_overrides, preset, train

    # settings are checked before any data is read
    apply_overrides(preset(args.preset), args.overrides)
    init_from_env()  # under torchrun: one rank of a DDP run (trainer.batch_size is per rank)
    res = train(args.preset, args.bank, load_data_arg(args.speech), args.exp, args.overrides, init=args.init,
                state_dir=args.state)
    print(f"trained {res['steps']} steps in {res['seconds']:.0f} s, best validation loss "
          f"{res['best_valid']:.2f} dB -> {res['model']}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """The paper's table (SDR, SDRi, PESQ, iSDR) on one or more fixed test sets."""
    import json
    from pathlib import Path

    from voxa.tasks.tse import evaluate_sets

    res = evaluate_sets(args.model, args.testset, Path(args.out), with_pesq=not args.no_pesq,
                        distances=not args.no_distances, query_set=args.query_set)
    print(res["markdown"])
    print(json.dumps(res["summary"]))


def cmd_ship(args: argparse.Namespace) -> None:
    """Install a trained model (with its card and scores) as the default for extract/locate."""
    from voxa.tasks.tse import ship_model

    dest = ship_model(args.model, args.results, args.out, args.notes)
    print(f"shipped {args.model} -> {dest} (card: {dest.with_suffix('.md')})")


def cmd_export(args: argparse.Namespace) -> None:
    """A model file from a run's checkpoint, or the mean of several snapshots' weights."""
    from voxa.nn.averaging import newest_snapshots
    from voxa.tasks.tse import export_model

    paths = list(args.files)
    if args.average:
        if len(paths) != 1:
            raise VoxaError("--average N takes one run folder (its snapshots/ are averaged)")
        paths = newest_snapshots(paths[0], args.average)
    out = export_model(paths, args.out, args.preset, args.overrides)
    n = f"the mean of {len(paths)} snapshots" if len(paths) > 1 else str(paths[0])
    print(f"exported {n} -> {out}")


def cmd_extract(args: argparse.Namespace) -> None:
    """Write the speech of the talkers near --distance metres."""
    from voxa.audio.io import load, save
    from voxa.tasks.tse import extract, load_tse_model

    model, _ = load_tse_model(args.model)
    wav, sr = load(args.input, mono=True)
    out = extract(model, wav[0], sr, args.distance)
    save(args.output, out, sr)
    print(f"extracted the talker(s) near {args.distance} m -> {args.output}")


def cmd_locate(args: argparse.Namespace) -> None:
    """Sweep the query distance and report the talkers' distances (last line: JSON)."""
    import json
    from pathlib import Path

    from voxa.audio.io import load
    from voxa.tasks.tse import load_tse_model, locate, plot_sweep

    model, _ = load_tse_model(args.model)
    wav, sr = load(args.input, mono=True)
    sweep = locate(model, wav[0], sr, args.min, args.max, args.step)
    png = Path(args.plot) if args.plot else Path(args.input).with_suffix(".sweep.png")
    plot_sweep(sweep, png)
    print(f"sweep plot -> {png}")
    print(json.dumps({"distances": sweep["distances"], "queries": sweep["queries"],
                      "isdr": [round(v, 2) for v in sweep["isdr"]], "plot": str(png)}))


def cmd_curves(args: argparse.Namespace) -> None:
    """Runs' query use and SI-SDRi at equal CPU-hours: a Markdown table and a PNG."""
    from pathlib import Path

    from voxa.tse.runs import compare_runs

    # a run folder's name, else the log's folder's; the path itself where that is empty (".")
    labels = args.label or [(Path(r).resolve() if Path(r).is_dir() else Path(r).resolve().parent).name or r
                            for r in args.runs]
    if len(labels) != len(args.runs):
        raise VoxaError(f"--label was given {len(labels)} times for {len(args.runs)} runs")
    if len(set(labels)) != len(labels):
        raise VoxaError(f"the runs need distinct labels (--label), got {', '.join(labels)}")
    res = compare_runs(dict(zip(labels, args.runs)), args.at, args.window, args.plot)
    print(res["markdown"])
    print(f"plot -> {args.plot}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``tse`` command group with its verbs on ``subparsers``."""
    p = subparsers.add_parser("tse", help="distance-based target speech extraction",
                              description="Distance-based target speech extraction (Shi, Yen, Nakadai 2024): "
                                          "impulse-response banks, and later mixtures, training and scoring.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    v = verbs.add_parser("simulate", help="simulate an impulse-response bank (D1, D2, D3)")
    v.add_argument("--preset", required=True, type=str.upper, choices=_PRESETS,
                   help="D1: one room, one mic; D2: one room, many mics; D3: many rooms")
    v.add_argument("--size", type=_positive, default=None,
                   help="D1: RIRs (10000); D2: total RIRs (200000, 2000 per mic); D3: rooms (50000)")
    v.add_argument("--rate", type=_positive, default=16000, help="sample rate in Hz (default 16000)")
    v.add_argument("--seed", type=int, default=0, help="seed of positions and simulation (default 0)")
    v.add_argument("--workers", type=_workers, default=None, help="processes (default: all cores)")
    v.add_argument("--shard-size", type=_positive, default=250, help="RIRs per shard (default 250)")
    v.add_argument("--mics", type=_positive, default=None, help="D2: number of microphone positions")
    v.add_argument("--speakers", type=_positive, default=None,
                   help="D2: positions per microphone; D3: speakers per room")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    v.add_argument("--out", required=True, help="bank directory (an interrupted build there resumes)")
    v.set_defaults(func=cmd_simulate)

    v = verbs.add_parser("realbank", help="a bank of measured impulse responses (AIR, BUT ReverbDB)")
    v.add_argument("--corpus", required=True, choices=_CORPORA, help="air: Aachen AIR 1.4; but: BUT ReverbDB")
    v.add_argument("root", help="the corpus root in its publisher's layout")
    v.add_argument("--out", required=True, help="bank directory")
    v.add_argument("--rate", type=_positive, default=16000, help="working sample rate in Hz (default 16000)")
    v.add_argument("--test-fraction", type=float, default=0.25,
                   help="share of each room's source positions for test (default 0.25)")
    v.add_argument("--valid-fraction", type=float, default=0.0,
                   help="share of each room's source positions for validation (default 0)")
    v.add_argument("--seed", type=int, default=0, help="seed of the position split (default 0)")
    v.add_argument("--rooms", nargs="+", default=None,
                   help="but: rooms to keep (the paper: VUT_FIT_Q301 VUT_FIT_L207 VUT_FIT_L212)")
    v.set_defaults(func=cmd_realbank)

    v = verbs.add_parser("mixtures", help="write a fixed evaluation set of mixtures")
    v.add_argument("--bank", required=True, help="impulse-response bank directory")
    v.add_argument("--speech", required=True, help="speech manifest or Kaldi dir (split by speaker)")
    v.add_argument("--count", type=_positive, required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--split", default="test", choices=["train", "valid", "test"], help="bank split")
    v.add_argument("--pool", default="test", choices=["train", "valid", "test"], help="speech pool")
    v.add_argument("--rate", type=_positive, default=16000)
    v.add_argument("--seconds", type=float, default=4.0)
    v.add_argument("--talkers", type=_positive, default=2)
    v.add_argument("--presence", type=float, default=0.9)
    v.add_argument("--r-spk", type=float, default=0.5, help="0.5 m for D1-D3, 0.1 m for D4")
    v.add_argument("--min-gap", type=float, default=0.0, help="minimum distance between talkers (m)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--pool-seed", type=int, default=0)
    v.set_defaults(func=cmd_mixtures)

    v = verbs.add_parser("score", help="score estimates (DIR/<id>.wav) against a mixture set")
    v.add_argument("--ref", required=True, help="mixture set directory")
    v.add_argument("--est", required=True, help="directory of estimates named <id>.wav")
    v.add_argument("--out", default=None, help="where results.json goes (default: --est)")
    v.add_argument("--no-pesq", action="store_true")
    v.set_defaults(func=cmd_score)

    v = verbs.add_parser("train", help="train a DQ/TS (or LSTM+DEG) extraction model; resumes in --exp")
    v.add_argument("--preset", default="cpu",
                   help="a preset of recipes/tse (cpu, paper, tiny) or a YAML file of the same form")
    v.add_argument("--bank", required=True)
    v.add_argument("--speech", required=True, help="speech manifest or Kaldi dir (split by speaker)")
    v.add_argument("--exp", required=True)
    v.add_argument("--init", default=None, help="start from this model (fine-tuning, e.g. D4 from D3)")
    v.add_argument("--state", default=None,
                   help="a folder that gets a copy of every checkpoint, the log, the learning curve and the "
                        "card (small enough to commit, e.g. models/tse/<run>); the run resumes from it when "
                        "it holds a later checkpoint than --exp")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a preset setting, e.g. trainer.epochs=10, mixing.seconds=2, "
                        "model_config.dim=16, model=lstm_deg, presence_schedule=[0.9,0.7]")
    v.set_defaults(func=cmd_train)

    v = verbs.add_parser("evaluate", help="SDR/SDRi/PESQ/iSDR table on fixed test sets")
    v.add_argument("--model", default=None, help="model file (default: the one voxa ships)")
    v.add_argument("--testset", required=True, nargs="+", help="one or more mixture sets (e.g. 5 seeds)")
    v.add_argument("--out", required=True)
    v.add_argument("--no-pesq", action="store_true")
    v.add_argument("--query-set", default=None,
                   help="a set whose every mixture has a target (--presence 1.0, at least 60 mixtures) for "
                        "the distance sweep and the query use (default: the first --testset)")
    v.add_argument("--no-distances", action="store_true",
                   help="skip the distance sweep (MAE) and query-use check on the first set")
    v.set_defaults(func=cmd_evaluate)

    v = verbs.add_parser("ship", help="install a trained model and its card as voxa's default TSE model")
    v.add_argument("--model", required=True)
    v.add_argument("--results", default=None, help="results.json of 'voxa tse evaluate' for the card")
    v.add_argument("--notes", default="", help="free text for the card")
    v.add_argument("-o", "--out", default=None, help="destination (default: the package's asset)")
    v.set_defaults(func=cmd_ship)

    v = verbs.add_parser("export", help="a model file from a run's checkpoint, or averaged snapshots")
    v.add_argument("files", nargs="+", help="checkpoint.pt or snapshot files (several: their mean), or "
                   "with --average one run folder")
    v.add_argument("-o", "--out", required=True, help="model file to write (.safetensors)")
    v.add_argument("--average", type=int, default=0, metavar="N",
                   help="average the run folder's newest N snapshots (trainer.keep_snapshots)")
    v.add_argument("--preset", default=None,
                   help="the run's preset or YAML (default: the config.yaml training wrote beside the files)")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a setting of the exported model, e.g. model_config.refine=project")
    v.set_defaults(func=cmd_export)

    v = verbs.add_parser("extract", help="extract the talker(s) at a distance from a mono recording")
    v.add_argument("input")
    v.add_argument("--distance", type=float, required=True, help="query distance in metres")
    v.add_argument("-o", "--output", required=True)
    v.add_argument("--model", default=None, help="model file (default: the one voxa ships)")
    v.set_defaults(func=cmd_extract)

    v = verbs.add_parser("locate", help="estimate the talkers' distances by sweeping the query")
    v.add_argument("input")
    v.add_argument("--model", default=None)
    v.add_argument("--min", type=float, default=0.5)
    v.add_argument("--max", type=float, default=5.0)
    v.add_argument("--step", type=float, default=0.5)
    v.add_argument("--plot", default=None, help="PNG path (default: beside the input)")
    v.set_defaults(func=cmd_locate)

    v = verbs.add_parser("curves", help="training runs' query use and SI-SDRi at equal CPU-hours")
    v.add_argument("runs", nargs="+", help="run folders or their train_log.csv")
    v.add_argument("--label", action="append", default=None, help="a name per run, in order")
    v.add_argument("--at", type=float, nargs="+", default=None, metavar="HOURS",
                   help="CPU-hour budgets (default: 0.5, 1, 2, 4, ... and the shortest run's end)")
    v.add_argument("--window", type=_positive, default=20, help="validation points averaged per budget")
    v.add_argument("--plot", required=True, help="PNG to write")
    v.set_defaults(func=cmd_curves)
