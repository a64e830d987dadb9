"""``voxa demo``: a short tour that runs on real data when it can find some, else on data it makes."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxa.utils.atomic import write_text_atomic


def find_data_root(explicit: str | None = None) -> Path | None:
    """The real-data root: ``explicit``, else ``$VOXA_DATA``, else ``../shared/data`` beside the
    working directory or beside this checkout; ``None`` if none exists."""
    cands: list[Path] = []
    if explicit:
        if not Path(explicit).is_dir():
            from voxa.errors import VoxaError

            raise VoxaError(f"{explicit}: data directory not found")
        cands.append(Path(explicit))
    if os.environ.get("VOXA_DATA"):
        cands.append(Path(os.environ["VOXA_DATA"]))
    cands.append(Path.cwd().parent / "shared" / "data")
    cands.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    for c in cands:
        if c.is_dir():
            return c.resolve()
    return None


@dataclass
class DemoContext:
    out: Path
    data_root: Path | None
    quick: bool = False
    state: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    report: Callable[[str], None] = logging.getLogger(__name__).info

    def log(self, msg: str) -> None:
        self.report(f"[demo] {msg}")


def _stage_corpus(ctx: DemoContext) -> None:
    from voxa.data.corpora import prepare

    fsdd = ctx.data_root / "fsdd" if ctx.data_root else None
    if fsdd is not None and (fsdd / "recordings").is_dir():
        source, root = f"real corpus FSDD at {fsdd}", fsdd
    else:
        from voxa.data.synthetic import make_digit_corpus

        root = ctx.out / "synthetic_digits"
        kind = make_digit_corpus(root, takes=4 if ctx.quick else 10)
        source = f"a spoken-digit corpus voxa synthesised with {kind} at {root} (no real data found)"
    ctx.log(f"using {source}")
    records = prepare("fsdd", root, ctx.out / "data" / "fsdd")
    ctx.state["records"] = records
    ctx.summary["corpus"] = {"source": source, "utterances": len(records),
                             "speakers": len({r.speaker for r in records})}
    ctx.log(f"prepared {len(records)} utterances, {ctx.summary['corpus']['speakers']} speakers "
            f"-> {ctx.out / 'data' / 'fsdd'}")


def _stage_features(ctx: DemoContext) -> None:
    from voxa.features.pipeline import FeatureConfig, compute_features

    records = ctx.state["records"]
    cfg = FeatureConfig(type="mfcc", deltas=2, cmvn="utt", vad=True)
    t0 = time.perf_counter()
    index = compute_features(records, cfg, ctx.out / "feats" / "mfcc39")
    dt = time.perf_counter() - t0
    ctx.summary["features"] = {"type": "mfcc39+cmvn+vad", "index": str(index), "seconds": round(dt, 2)}
    ctx.log(f"MFCC-39 (CMVN, energy VAD) for {len(records)} utterances in {dt:.1f} s -> {index}")


def _stage_plot(ctx: DemoContext) -> None:
    from voxa.data.loading import load_record
    from voxa.plots import plot_spectrogram_and_mfcc

    rec = ctx.state["records"][0]
    wav, sr = load_record(rec)
    png = plot_spectrogram_and_mfcc(wav, sr, ctx.out / "spectrogram_mfcc.png",
                                    title=f"{rec.id} ({rec.text or ''}, speaker {rec.speaker})")
    ctx.summary["plot"] = str(png)
    ctx.log(f"spectrogram and MFCCs of {rec.id} -> {png}")


def _stage_speaker_id(ctx: DemoContext) -> None:
    from voxa.gmm.ubm import GmmUbmConfig
    from voxa.tasks.speaker import SpeakerConfig, run_identification

    records = ctx.state["records"]
    takes = sorted({r.extra["take"] for r in records})
    cut = takes[int(0.8 * len(takes))]
    train = [r for r in records if r.extra["take"] < cut]
    test = [r for r in records if r.extra["take"] >= cut]
    cfg = SpeakerConfig(gmm=GmmUbmConfig(n_components=32 if ctx.quick else 64, max_iter=10, adapt="mwv"))
    res = run_identification(train, test, cfg, ctx.out / "speaker_id")
    ctx.summary["speaker_identification"] = {
        "accuracy": res["accuracy"], "uar": res["uar"], "n_test": res["n_test"],
        "results": str(ctx.out / "speaker_id" / "results.json"),
        "confusion": str(ctx.out / "speaker_id" / "confusion.png")}
    ctx.log(f"GMM-UBM speaker identification: {100 * res['accuracy']:.1f} % of {res['n_test']} "
            f"test utterances -> {ctx.out / 'speaker_id'}")


def _stage_digit_recognition(ctx: DemoContext) -> None:
    """Isolated-digit recognition with a monophone GMM-HMM (CMUdict pronunciations), on the same
    take-based split as speaker identification."""
    from voxa.tasks.asr import AsrConfig, run_asr

    records = ctx.state["records"]
    takes = sorted({r.extra["take"] for r in records})
    cut = takes[int(0.8 * len(takes))]
    sets = {"train": [r for r in records if r.extra["take"] < cut],
            "test": [r for r in records if r.extra["take"] >= cut]}
    cfg = AsrConfig.from_dict({"lexicon": {"type": "cmudict"}, "grammars": ["isolated"],
                               "mono": {"num_iters": 10 if ctx.quick else 20,
                                        "max_gaussians": 150 if ctx.quick else 300,
                                        "mixup_iters": 8 if ctx.quick else 15}})
    res = run_asr(sets, cfg, ctx.out / "digit_asr")
    test = res["sets"]["test"]["isolated"]
    ctx.summary["digit_recognition"] = {"wer": test["wer"], "words": test["ref_words"], "rtf": test["rtf"],
                                        "gaussians": res["gaussians"], "train_seconds": res["train_seconds"],
                                        "results": str(ctx.out / "digit_asr" / "results.json")}
    ctx.log(f"monophone GMM-HMM digit recognition: WER {test['wer']:.2f} % of {test['ref_words']} test words "
            f"(trained in {res['train_seconds']:.0f} s, RTF {test['rtf']:.3f}) -> {ctx.out / 'digit_asr'}")


def _stage_language_id(ctx: DemoContext) -> None:
    """i-vector language ID on Debian's Asterisk prompts (5 languages), when they are installed."""
    from voxa.data.corpora.asterisk import prepare_asterisk
    from voxa.data.select import select
    from voxa.tasks.classify import ClassifierConfig
    from voxa.tasks.lid import run_lid

    root = Path(os.environ.get("VOXA_ASTERISK", "/usr/share/asterisk/sounds"))
    if not root.is_dir():
        ctx.log(f"language ID skipped: no Asterisk prompts at {root} (scripts/setup.sh installs them)")
        return
    records = prepare_asterisk(root)
    train = select(records, {"hash_fraction": [0.0, 0.7], "not_extra": ["nonspeech"]})
    test = select(records, {"hash_fraction": [0.7, 1.0], "not_extra": ["nonspeech"]})
    cfg = ClassifierConfig.from_dict({
        "features": {"type": "mfcc", "deltas": 2, "cmvn": "utt", "vad": True},
        "gmm": {"n_components": 32 if ctx.quick else 64, "max_iter": 10},
        "ivector": {"rank": 50 if ctx.quick else 100, "n_iter": 5}})
    res = run_lid(train, test, cfg, ctx.out / "language_id", systems=["ivector-lda"], durations=(3.0, None))
    ctx.summary["language_identification"] = {
        "system": res["system"], "cavg": res["cavg"], "eer": res["eer"], "accuracy": res["accuracy"],
        "languages": res["languages"], "results": str(ctx.out / "language_id" / "results.json")}
    ctx.log(f"i-vector language ID over {', '.join(res['languages'])}: accuracy "
            f"{100 * res['accuracy']:.1f} %, Cavg {100 * res['cavg']:.2f} % -> {ctx.out / 'language_id'}")


def _stage_extraction(ctx: DemoContext) -> None:
    """Two talkers in a simulated room; the shipped model extracts each by its distance, and a sweep
    of the query estimates both distances."""
    from voxa.audio.io import save
    from voxa.tasks.tse import DEFAULT_MODEL, distance_mae, extract, load_tse_model, locate, plot_sweep
    from voxa.tse.data import MixtureConfig, MixtureDataset
    from voxa.tse.sim.presets import build_bank

    if not DEFAULT_MODEL.exists():
        ctx.log("extraction skipped: this build of voxa ships no TSE model")
        return
    model, header = load_tse_model()
    rate = header["mixing"]["rate"]
    out = ctx.out / "extraction"
    bank = out / "bank"
    build_bank("D1", bank, size=60, rate=rate, seed=0, progress=False)
    cfg = MixtureConfig(seconds=2.0, rate=rate, presence=1.0, min_talker_gap=1.5)
    ds = MixtureDataset(bank, "train", ctx.state["records"], cfg, length=1, seed=1)
    item = ds[0]
    d = [float(x) for x in item["distances"]]
    save(out / "mixture.wav", item["mix"], rate)
    for dist in d:
        save(out / f"extracted_at_{dist:.2f}m.wav", extract(model, item["mix"], rate, dist), rate)
    sweep = locate(model, item["mix"], rate)
    plot_sweep(sweep, out / "sweep.png", true=d)
    ctx.summary["extraction"] = {"true_distances": d, "estimated_distances": sweep["distances"],
                                 "mae_m": distance_mae(sweep["distances"], d), "dir": str(out)}
    ctx.log(f"extraction: talkers at {', '.join(f'{x:.2f}' for x in d)} m; each extracted by its distance; "
            f"sweep estimates {sweep['distances']} -> {out}")


STAGES: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("corpus", _stage_corpus),
    ("features", _stage_features),
    ("plot", _stage_plot),
    ("speaker_id", _stage_speaker_id),
    ("digit_recognition", _stage_digit_recognition),
    ("language_id", _stage_language_id),
    ("extraction", _stage_extraction),
]


def run_demo(out: str | os.PathLike = "exp/demo", data: str | None = None, quick: bool = False,
             stages: list[str] | None = None, report: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the demo's stages in order and write ``out/summary.json``; each step's line goes to ``report``
    (default: this module's logger; the CLI prints them)."""
    names = [n for n, _ in STAGES]
    unknown = [s for s in stages or [] if s not in names]
    if unknown:
        from voxa.errors import ConfigError

        raise ConfigError(f"unknown demo stage {unknown[0]!r}; the stages are: {', '.join(names)}")
    ctx = DemoContext(out=Path(out).resolve(), data_root=find_data_root(data), quick=quick)
    if report is not None:
        ctx.report = report
    ctx.out.mkdir(parents=True, exist_ok=True)
    for name, fn in STAGES:
        if stages and name not in stages and name != "corpus":
            continue
        fn(ctx)
    write_text_atomic(ctx.out / "summary.json", json.dumps(ctx.summary, indent=2))
    ctx.log(f"done; summary in {ctx.out / 'summary.json'}")
    return ctx.summary
