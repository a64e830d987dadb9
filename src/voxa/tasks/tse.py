"""Distance-based target speech extraction: presets, training, evaluation, extraction, distance sweep.

Library functions behind ``voxa tse train|evaluate|extract|locate``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from voxa.errors import ConfigError, VoxaError
from voxa.nn.trainer import TrainerConfig
from voxa.tse.data import MixtureConfig
from voxa.tse.models import MODELS, StftConfig, query_batches
from voxa.tse.schedule import StageConfig
from voxa.utils.atomic import write_text_atomic

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "tse" / "bandsplit_cpu_d1.safetensors"
#: the named presets are YAML recipes: ``recipes/tse/<name>.yaml`` of the checkout, else the copy a wheel
#: installs under ``<prefix>/share/voxa/recipes/tse``
PRESET_DIRS = (Path(__file__).resolve().parents[3] / "recipes" / "tse",
               Path(sys.prefix) / "share" / "voxa" / "recipes" / "tse")
PRESET_DIR = next((d for d in PRESET_DIRS if d.is_dir()), PRESET_DIRS[0])


@dataclass
class TsePreset:
    """Everything a training run needs besides data (``recipes/tse/*.yaml`` fill one).

    Attributes:
        model: short name of the model class (``dqts``, ``lstm_deg``).
        model_config: that class's settings (its STFT follows ``mixing.rate``).
        mixing: how training mixtures are drawn; ``mixing.presence`` is set by ``presence_schedule``.
        trainer: optimiser, schedule and checkpoint settings.
        presence_schedule: presence ratio for the first and the second half of the epochs.
        epoch_size: training mixtures per epoch.
        valid_size: validation mixtures.
        nearest_first: share of the epochs in which every query names the talker nearest to the
            microphone (presence 1), with talkers at least ``nearest_min_gap`` m apart.
        nearest_min_gap: see ``nearest_first``.
        stages: a schedule in stages (:class:`voxa.tse.schedule.StageConfig`: separation, distance
            order, the query task); when given it replaces ``presence_schedule`` and ``nearest_first``,
            and the run ends with its last stage.
    """

    #: settings a schedule overwrites during training: setting them directly would be ignored
    __scheduled__ = {"mixing.presence": "presence_schedule"}

    model: str = "dqts"
    model_config: dict[str, Any] = field(default_factory=dict)
    mixing: MixtureConfig = field(default_factory=MixtureConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    presence_schedule: tuple[float, float] = (0.9, 0.7)
    epoch_size: int = 9000
    valid_size: int = 200
    nearest_first: float = 0.0
    nearest_min_gap: float = 0.0
    stages: list[StageConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown TSE model {self.model!r}; one of {', '.join(MODELS)}")
        names = sorted(f.name for f in fields(MODELS[self.model][1]) if f.name != "stft")
        bad = sorted(set(self.model_config) - set(names))
        if bad:
            raise ConfigError(f"unknown setting 'model_config.{bad[0]}'; model {self.model!r} takes: "
                              f"{', '.join(names)}")
        self.presence_schedule = tuple(self.presence_schedule)  # type: ignore[assignment]
        if len(self.presence_schedule) != 2 or not all(0 <= v <= 1 for v in self.presence_schedule):
            raise ConfigError(f"presence_schedule must be two ratios in [0, 1], got {self.presence_schedule}")


def preset_names() -> list[str]:
    """The named presets (``paper``, ``cpu``, ``tiny``, ...)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset(name: str | os.PathLike) -> TsePreset:
    """A preset by name (``paper``: the article's settings; ``cpu``: small enough for a 2-core CPU in
    about an hour; ``tiny``: for tests) or from a YAML file of the same form."""
    from voxa.utils.config import load_yaml

    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESET_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown TSE preset {str(name)!r}; use one of {', '.join(preset_names())} "
                              f"or a YAML file")
    return load_yaml(path, TsePreset)


def build_model(model: str | TsePreset = "cpu", **overrides: Any) -> torch.nn.Module:
    """A model from a preset name (or preset) with config overrides."""
    from voxa.utils.config import from_dict

    p = preset(model) if isinstance(model, str) else model
    cls, cfg_cls = MODELS[p.model]
    cfg = from_dict(cfg_cls, {**p.model_config, **overrides}, "model_config.")
    cfg.stft = StftConfig(rate=p.mixing.rate)
    return cls(cfg)


def save_tse_model(path: str | os.PathLike, model: torch.nn.Module, mixing: MixtureConfig,
                   card: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> Path:
    """Write the model as safetensors with a JSON header (class, config, mixing settings, card and the
    effective training settings)."""
    from voxa.utils.config import to_dict

    return model.save(path, mixing=to_dict(mixing), card=card or {}, settings=settings or {})


def load_tse_model(path: str | os.PathLike | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a saved model (default: the one shipped with voxa) without unpickling anything."""
    from voxa.tse.models import TseModel

    path = Path(path) if path else DEFAULT_MODEL
    if not path.exists():
        raise VoxaError(f"{path}: model not found" + (" (voxa ships none in this build; train one with "
                                                       "'voxa tse train')" if path == DEFAULT_MODEL else ""))
    model = TseModel.load(path)
    return model, model.voxa_header


@torch.no_grad()
def extract(model: torch.nn.Module, mix: torch.Tensor, rate: int, distance: float | list[float],
            batch: int | None = None) -> torch.Tensor:
    """Speech of the talkers near ``distance`` metres from a mono mixture ``[samples]`` at ``rate``, as
    the model extracts it (:meth:`voxa.tse.models.TseModel.extract`: its forward pass, or its refinement),
    at most ``batch`` queries per forward pass (None: all at once).

    Returns ``[samples]`` (one distance) or ``[len(distances), samples]``, at the input's rate.
    """
    from voxa.audio.resample import resample

    model_rate = model.cfg.stft.rate
    x = mix.reshape(-1).float()
    if rate != model_rate:
        x = resample(x, rate, model_rate)
    one = np.ndim(distance) == 0  # a number, or a 0-d array or tensor
    ds = torch.as_tensor(np.asarray(distance, dtype=np.float32).reshape(-1))
    if hasattr(model, "extract"):
        out = model.extract(x, ds, batch)
    else:  # any module mapping (mixtures [B, N], distances [B]) to [B, N]
        out = torch.cat([model(x.expand(len(d), -1).contiguous(), d) for d in query_batches(ds, batch)])
    if rate != model_rate:
        out = resample(out, model_rate, rate)[..., : mix.numel()]
    return out[0] if one else out


def locate(model: torch.nn.Module, mix: torch.Tensor, rate: int, lo: float = 0.5, hi: float = 5.0,
           step: float = 0.5, neighbourhood: float = 1.0, prominence_db: float = 3.0,
           tau_inactive: float = 1e-2, batch: int = 8) -> dict[str, Any]:
    """Estimate talkers' distances by sweeping the query (the paper's Table III / Fig. 3).

    For each query the output level ``iSDR(d) = 10 log10(||x_hat||^2 + tau ||y||^2)`` is computed;
    the indicator sums, over queries within ``neighbourhood`` metres, how far iSDR rises above the
    sweep's minimum; local maxima of iSDR at least ``prominence_db`` above that minimum are candidates,
    taken strongest indicator first, each suppressing the others within ``neighbourhood``. The sweep is
    one :func:`extract` call of at most ``batch`` queries per forward pass (a refining model separates
    the mixture once for the whole sweep).
    """
    queries = np.round(np.arange(lo, hi + step / 2, step), 6)
    from voxa.metrics.separation import energy, inactive_level

    y2 = energy(mix.double().reshape(-1))
    # one call: a refining model separates the mixture once for the whole sweep
    out = extract(model, mix, rate, queries.tolist(), batch=batch)
    isdr = inactive_level(energy(out.double()), y2, tau_inactive).numpy()
    excess = isdr - isdr.min()
    near = np.abs(queries[:, None] - queries[None, :]) <= neighbourhood + 1e-9
    indicator = near.astype(float) @ excess
    # candidates: local maxima of the output level that rise prominence_db above the sweep's floor;
    # the strongest by summed indicator win, and each suppresses the others within the neighbourhood
    cands = [k for k in range(len(queries))
             if excess[k] >= prominence_db
             and (k == 0 or isdr[k] >= isdr[k - 1]) and (k + 1 == len(queries) or isdr[k] >= isdr[k + 1])]
    peaks: list[float] = []
    for k in sorted(cands, key=lambda k: (-indicator[k], -isdr[k])):
        if all(abs(queries[k] - p) > neighbourhood for p in peaks):
            peaks.append(float(queries[k]))
    peaks.sort()
    return {"distances": peaks, "queries": queries.tolist(), "isdr": isdr.tolist(),
            "indicator": indicator.tolist()}


def distance_mae(estimated: list[float], true: list[float]) -> float:
    """Mean absolute error of each estimated distance to the nearest true talker (NaN if none estimated)."""
    if not estimated:
        return float("nan")
    t = np.asarray(true)
    return float(np.mean([np.min(np.abs(t - e)) for e in estimated]))


def plot_sweep(sweep: dict[str, Any], path: str | os.PathLike, true: list[float] | None = None) -> Path:
    """iSDR and the summed indicator against query distance, estimated (and true) distances marked."""
    from voxa.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    q = sweep["queries"]
    ax.plot(q, sweep["isdr"], "o-", label="iSDR of the output (dB)")
    ax.plot(q, sweep["indicator"], "s--", label="indicator: mean over ±1 m")
    for d in sweep["distances"]:
        ax.axvline(d, color="tab:green", ls="-", alpha=0.7)
    for d in true or []:
        ax.axvline(d, color="k", ls=":", alpha=0.8)
    ax.set_xlabel("query distance (m)")
    ax.set_ylabel("dB")
    ax.set_title("distance sweep: estimated (green)" + (", true (dotted)" if true else ""))
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def apply_overrides(p: TsePreset, overrides: list[str] | None) -> TsePreset:
    """``p`` with dotted ``--set`` items applied (``trainer.lr=3e-3``, ``mixing.seconds=2``,
    ``model_config.dim=16``, ``presence_schedule=[0.9,0.7]``).

    Naming another ``model`` drops the preset's model settings (they belong to its own class); give
    that model's own as ``model_config.<key>=...``.

    Raises:
        ConfigError: For an unknown key (naming the valid ones) or ``mixing.presence``, which the
            presence schedule overwrites.
    """
    from voxa.utils.config import override, parse_overrides

    items = list(overrides or [])
    new_model = next((v for (parts, v) in parse_overrides(items) if parts == ["model"]), None) \
        if any(i.startswith("model=") for i in items) else None
    if new_model is not None and new_model != p.model:
        p = replace(p, model_config={})
    return override(p, items)


def train(preset_name: str | TsePreset, bank: str | os.PathLike, speech: list, exp: str | os.PathLike,
          overrides: list[str] | None = None, init: str | os.PathLike | None = None,
          state_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train a TSE model on a bank's train split, validating on its valid split; resumes if ``exp`` (or
    ``state_dir``) holds a checkpoint. ``init`` starts from a saved model (fine-tuning, e.g. D4 from D3).

    ``state_dir`` receives a copy of every checkpoint, the log, the learning curve and a card small
    enough to commit, so that a fresh checkout continues the run from there."""
    p = apply_overrides(preset(preset_name) if isinstance(preset_name, str) else preset_name, overrides)
    if p.stages:
        return _train_staged(p, preset_name, bank, speech, Path(exp), init, state_dir)
    from voxa.nn.trainer import Trainer
    from voxa.tse.data import MixtureDataset, collate, speech_pools
    from voxa.tse.losses import tse_loss
    from voxa.utils.config import to_dict

    t = p.trainer
    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    settings = to_dict(p)
    # the effective settings, as a recipe that reproduces the run (voxa tse train --preset exp/config.yaml)
    write_text_atomic(exp / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
    pools = speech_pools(speech, seed=t.seed)
    # a copy: the schedule changes the dataset's presence and gap, not the preset's recorded settings
    train_set = MixtureDataset(bank, "train", pools["train"], replace(p.mixing), length=p.epoch_size,
                               seed=t.seed, preload=True)
    vcfg = replace(p.mixing, presence=0.5)
    valid_split = "valid" if _split_has_room(bank, "valid", vcfg) else "train"
    valid_set = MixtureDataset(bank, valid_split, pools["valid"], vcfg, length=p.valid_size, seed=t.seed + 1,
                               preload=True)
    valid_items = [valid_set[i] for i in range(len(valid_set))]
    n_nearest = math.ceil(p.nearest_first * t.epochs)
    if n_nearest:
        # the nearest-talker stage validates on its own task, so that neither the learning-rate schedule
        # nor best-model selection judges it by a task it is not yet trained for
        valid_set.set_query_rule("nearest")
        valid_set.set_presence(1.0)
        nearest_items = [valid_set[i] for i in range(len(valid_set))]
    torch.manual_seed(t.seed)  # the same settings give the same initial weights, so runs reproduce
    model = build_model(p) if init is None else load_tse_model(init)[0]

    def loss_fn(net, b):
        return tse_loss(net(b["mix"], b["query"]), b["target"], b["mix"], b["present"])

    def valid_fn(net):
        losses = []
        dev = next(net.parameters()).device
        items = nearest_items if trainer.epoch < n_nearest else valid_items
        for i in range(0, len(items), t.batch_size):
            b = collate(items[i:i + t.batch_size])
            est = net(b["mix"].to(dev), b["query"].to(dev))
            losses.append(float(tse_loss(est, b["target"].to(dev), b["mix"].to(dev), b["present"].to(dev))))
        return float(np.mean(losses))

    def on_epoch(epoch, trainer):
        # the paper: presence 0.9 for the first half of training, 0.7 for the second; optionally a first
        # stage in which every query names the nearest talker (no absent ones)
        nearest = epoch < n_nearest
        if n_nearest and epoch == n_nearest:
            trainer.new_stage()
        train_set.set_query_rule("nearest" if nearest else "any")
        # the nearest stage may also keep the talkers further apart (a larger reverberation contrast)
        train_set.cfg.min_talker_gap = max(p.mixing.min_talker_gap, p.nearest_min_gap) if nearest \
            else p.mixing.min_talker_gap
        train_set.set_presence(1.0 if nearest else p.presence_schedule[0] if epoch < t.epochs / 2
                               else p.presence_schedule[1])

    trainer = Trainer(model, train_set, collate, loss_fn, valid_fn, exp, t, on_epoch=on_epoch)
    trainer.resume()
    t0 = time.perf_counter()
    res = trainer.fit()
    best = torch.load(exp / "best.pt", weights_only=True) if (exp / "best.pt").exists() else None
    if best is not None:
        model.load_state_dict(best["model"])
    card = _card(preset_name, bank, train_set, pools, res, trainer)
    save_tse_model(exp / "model.safetensors", model.cpu(), p.mixing, card, settings)
    summary = {**card, "wall_seconds": time.perf_counter() - t0}
    write_text_atomic(exp / "train_summary.json", json.dumps(summary, indent=2, default=str))
    return {**res, "model": str(exp / "model.safetensors")}


def _card(preset_name: Any, bank: Any, train_set: Any, pools: dict[str, Any], res: dict[str, Any],
          trainer: Any) -> dict[str, Any]:
    """What a model card records of a training run (data, settings, steps, time)."""
    t = trainer.cfg
    return {"preset": preset_name if isinstance(preset_name, str) else "custom", "bank": str(bank),
            "bank_meta": train_set.bank.meta, "speech_train_utterances": len(pools["train"]),
            "epochs": res["epochs"], "steps": res["steps"], "train_seconds": round(res["seconds"], 1),
            "cpu_hours": float(f"{trainer.cpu_seconds / 3600:.4g}"), "best_valid_loss": res["best_valid"],
            "batch_size": t.batch_size, "lr": t.lr}


def _train_staged(p: TsePreset, preset_name: Any, bank: str | os.PathLike, speech: list, exp: Path,
                  init: str | os.PathLike | None, state_dir: str | os.PathLike | None) -> dict[str, Any]:
    """:func:`train` for a preset with ``stages`` (see :mod:`voxa.tse.schedule`)."""
    from voxa.nn.trainer import Trainer
    from voxa.tse.data import MixtureDataset, collate, speech_pools
    from voxa.tse.schedule import handover, stage_loss, validate_query, validate_separation
    from voxa.utils.config import to_dict

    t = p.trainer
    exp.mkdir(parents=True, exist_ok=True)
    state = Path(state_dir) if state_dir else None
    settings = to_dict(p)
    for folder in (exp, state):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(folder / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
    if t.batch_size % 2:
        raise ConfigError(f"trainer.batch_size must be even for a staged schedule, got {t.batch_size}")
    pools = speech_pools(speech, seed=t.seed)
    train_set = MixtureDataset(bank, "train", pools["train"], replace(p.mixing), length=p.epoch_size,
                               seed=t.seed, preload=True)
    valid_split = "valid" if _split_has_room(bank, "valid", p.mixing) else "train"
    n_valid = p.valid_size + p.valid_size % 2
    valid_sets: dict[float, tuple[list, list]] = {}

    def valid_items(seconds: float) -> tuple[list, list]:
        """The fixed validation items at one mixture length (a stage may change it): separation items,
        and query items, each mixture queried at each of its two talkers as consecutive pairs."""
        if seconds not in valid_sets:
            mixing = replace(p.mixing, seconds=seconds)
            sep_set = MixtureDataset(bank, valid_split, pools["valid"], replace(mixing, presence=1.0),
                                     length=n_valid, seed=t.seed + 1, preload=True)
            q_set = MixtureDataset(bank, valid_split, pools["valid"],
                                   replace(mixing, presence=1.0, queries_per_mixture=2), length=n_valid,
                                   seed=t.seed + 2, preload=True)
            valid_sets[seconds] = ([sep_set[i] for i in range(len(sep_set))],
                                   [q_set[i] for i in range(len(q_set))])
        return valid_sets[seconds]

    torch.manual_seed(t.seed)  # the same settings give the same initial weights, so runs reproduce
    model = build_model(p) if init is None else load_tse_model(init)[0]

    def current(trainer: Trainer) -> StageConfig:
        return p.stages[min(trainer.extra.get("stage", 0), len(p.stages) - 1)]

    def loss_fn(net, b):
        return stage_loss(current(trainer), net, b)

    def valid_fn(net):
        st = current(trainer)
        sep_items, q_items = valid_items(st.seconds or p.mixing.seconds)
        out = validate_query(net, q_items, t.batch_size) if st.task == "query" \
            else validate_separation(st, net, sep_items, t.batch_size)
        return {**out, "stage": trainer.extra.get("stage", 0)}

    def on_epoch(epoch, trainer):
        # the stage whose fresh start (best loss, plateau record, learning rate) has been made; a run
        # whose schedule ended and that is resumed with stages appended begins the first new one here
        begun = trainer.extra.get("stage_begun", trainer.extra.get("stage", 0))
        if handover(p.stages, trainer.extra, trainer.history, trainer.global_step, epoch):
            trainer.request_stop()
            return
        i = trainer.extra["stage"]
        if i != begun:
            h = trainer.extra["handovers"][-1]
            log.info("stage %s hands over to %s at step %d: %s", h["name"], p.stages[i].name, h["at_step"],
                     h["reason"])
            trainer.new_stage(p.stages[i].lr, p.stages[i].lr_patience)
        trainer.extra["stage_begun"] = i
        st = p.stages[i]
        train_set.cfg.presence = st.presence if st.task == "query" else 1.0
        train_set.cfg.queries_per_mixture = st.queries_per_mixture if st.task == "query" else 1
        train_set.cfg.min_talker_gap = p.mixing.min_talker_gap if st.min_talker_gap is None \
            else st.min_talker_gap
        train_set.cfg.seconds = st.seconds or p.mixing.seconds
        if trainer.history and trainer.rank == 0:
            for folder in (exp, state):
                if folder is not None:
                    plot_learning_curve(trainer.history, folder / "learning_curve.png", p.stages)

    trainer = Trainer(model, train_set, collate, loss_fn, valid_fn, exp, t, on_epoch=on_epoch,
                      state_dir=state)
    trainer.resume()
    res = trainer.fit()
    stage = trainer.extra.get("stage", 0)
    card = {**_card(preset_name, bank, train_set, pools, res, trainer),
            "stage": p.stages[min(stage, len(p.stages) - 1)].name,
            "handovers": trainer.extra.get("handovers", []), "finished": stage >= len(p.stages)}
    if trainer.rank:
        return {**res, "model": str(exp / "model.safetensors"), "card": card}
    # the model as it stands (its stage's task), not the best of an earlier stage's
    save_tse_model(exp / "model.safetensors", model.cpu(), p.mixing, card, settings)
    for folder in (exp, state):
        if folder is not None:
            write_text_atomic(folder / "card.json", json.dumps(card, indent=2, default=str))
            if trainer.history:
                plot_learning_curve(trainer.history, folder / "learning_curve.png", p.stages)
    return {**res, "model": str(exp / "model.safetensors"), "card": card}


def plot_learning_curve(history: list[dict[str, Any]], path: str | os.PathLike,
                        stages: list[StageConfig] | None = None) -> Path:
    """Query use and SI-SDR improvement (dB) against training steps, with CPU-hours on the top axis and
    the stages shaded."""
    from voxa.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [h["step"] for h in history]
    for key, label, style in (("query_use", "query use (right minus other query SDR)", "o-"),
                              ("si_sdri", "SI-SDR improvement", "s-")):
        pts = [(h["step"], float(h[key])) for h in history if h.get(key) not in (None, "")]
        if pts:
            ax.plot(*zip(*pts), style, ms=3, label=label)
    ax.axhline(0.0, color="k", lw=0.8)
    if stages:
        bounds = {}
        for h in history:
            bounds.setdefault(int(h.get("stage", 0)), [h["step"], h["step"]])[1] = h["step"]
        for i, (a, b) in sorted(bounds.items()):
            if i % 2:
                ax.axvspan(a, b, color="0.92", zorder=0)
            # alternate heights: short stages sit close together and their names would overlap
            lo, hi = ax.get_ylim()
            ax.text(a, hi - (0.06 * (hi - lo) if i % 2 else 0.0), f" {stages[min(i, len(stages) - 1)].name}",
                    va="top", fontsize=8)
    ax.set_xlabel("training steps")
    ax.set_ylabel("dB (validation)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    hours = [float(h.get("cpu_hours", 0.0)) for h in history]
    if steps and max(steps) > 0 and max(hours) > 0:
        top = ax.secondary_xaxis("top", functions=(lambda s: s * max(hours) / max(steps),
                                                   lambda c: c * max(steps) / max(hours)))
        top.set_xlabel("CPU-hours")
    return save_figure(fig, path)


def _split_has_room(bank: str | os.PathLike, split: str, cfg: MixtureConfig) -> bool:
    from voxa.tse.bank import RirBank

    b = RirBank(bank, rate=cfg.rate)
    return any(len(v) >= cfg.num_talkers for v in b.groups(split).values())


def evaluate(model_path: str | os.PathLike | None, testset: str | os.PathLike, out: str | os.PathLike,
             with_pesq: bool = True) -> dict[str, Any]:
    """SDR, SDRi, PESQ (present) and iSDR (absent) of a model on a fixed mixture set; writes
    ``results.json`` and a Markdown row."""
    from voxa.tse.scoring import score_model, write_results

    model, header = load_tse_model(model_path)
    from voxa.tse.data import MixtureSet

    rate = MixtureSet(testset).rate
    res = score_model(lambda mix, q: extract(model, mix, rate, q), testset, with_pesq)
    out = Path(out)
    write_results(out, res)
    md = markdown_table({header.get("model", "model"): res})
    write_text_atomic(out / "results.md", md)
    return res


def distance_and_query_use(model: torch.nn.Module, testset: str | os.PathLike, out: Path | None = None,
                           limit: int | None = None, plots: int = 3, step: float = 0.5) -> dict[str, Any]:
    """The paper's distance estimation (Table III) and a check that the model uses its query.

    For each mixture of ``testset`` the query is swept (:func:`locate`) and each estimated distance's
    error to the nearest true talker is averaged (mixtures with no estimate are counted, not scored).
    For each mixture with a present target, the output's SDR at the target's query minus its SDR when
    queried at the other talker's distance is averaged: about 0 dB means the query is ignored.
    The sweep runs in ``step`` m steps from 0.5 m to the set's farthest talker plus 0.5 m (at least 5 m).
    The first ``plots`` sweeps are saved as PNGs in ``out``.
    """
    from voxa.metrics.separation import sdr
    from voxa.tse.data import MixtureSet

    ms = MixtureSet(testset)
    n = len(ms) if limit is None else min(limit, len(ms))
    far = max(max(r["distances"]) for r in ms.rows)
    hi = max(5.0, float(np.ceil((far + 0.5) / step) * step))
    errors, gaps, found = [], [], 0
    for i in range(n):
        it = ms[i]
        mix = it["mix"].reshape(-1)
        true = [float(v) for v in it["distances"]]
        sweep = locate(model, mix, ms.rate, 0.5, hi, step)
        if sweep["distances"]:
            found += 1
            errors.append(distance_mae(sweep["distances"], true))
        if out is not None and i < plots:
            plot_sweep(sweep, out / f"sweep_{i:03d}.png", true=true)
        if it["present"] and len(true) > 1:
            q = float(it["query"])
            other = max(true, key=lambda d: abs(d - q))
            outs = extract(model, mix, ms.rate, [q, other])
            tgt = it["target"].reshape(-1)
            gaps.append(float(sdr(outs[0], tgt) - sdr(outs[1], tgt)))
    return {"distance_mae_m": float(np.mean(errors)) if errors else None,
            "mixtures_with_estimate": found, "mixtures": n, "query_use_mixtures": len(gaps),
            "sdr_right_minus_other_query_db": float(np.mean(gaps)) if gaps else None}


def evaluate_sets(model_path: str | os.PathLike | None, testsets: list[str], out: Path,
                  with_pesq: bool = True, distances: bool = True, query_set: str | None = None
                  ) -> dict[str, Any]:
    """Evaluate on several fixed sets (the paper: 5 query/mixture seeds) and report mean +- std across
    the sets' means, as Markdown and JSON; with ``distances``, also the distance sweep's MAE and the
    query use (:func:`distance_and_query_use`) on ``query_set`` (a set whose every mixture has a target,
    e.g. ``voxa tse mixtures --presence 1.0 --count 60``), else on the first set."""
    out = Path(out)
    per_set = []
    for i, ts in enumerate(testsets):
        per_set.append(evaluate(model_path, ts, out / f"set{i}", with_pesq))
    summary: dict[str, Any] = {}
    for key in ("sdr", "sdri", "si_sdri", "bss_sdri", "pesq", "isdr", "attenuation_db"):
        means = [r[key]["mean"] for r in per_set if r[key]["n"]]
        summary[key] = {"mean": float(np.mean(means)) if means else None,
                        "std": float(np.std(means)) if means else None, "n": len(means)}
    model, header = load_tse_model(model_path)
    md = markdown_table({header.get("model", "model"): summary})
    if distances:
        qset = query_set or testsets[0]
        summary["distance"] = distance_and_query_use(model, qset, out)
        dq = summary["distance"]
        mae = "none found" if dq["distance_mae_m"] is None else f"{dq['distance_mae_m']:.2f} m"
        gap = dq["sdr_right_minus_other_query_db"]
        few = "" if dq["query_use_mixtures"] >= 60 else " (fewer than 60 mixtures with a target)"
        md += (f"\nDistance sweep on {qset}: MAE {mae} ({dq['mixtures_with_estimate']} of "
               f"{dq['mixtures']} mixtures with an estimate); query use (SDR at the right query minus at "
               f"the other talker's) on {dq['query_use_mixtures']} mixtures{few}: "
               f"{'n/a' if gap is None else f'{gap:.2f} dB'}.\n")
    write_text_atomic(out / "results.md", md)
    write_text_atomic(out / "results.json", json.dumps({"summary": summary, "sets": testsets}, indent=2))
    return {"summary": summary, "per_set": per_set, "markdown": md}


MAX_SHIPPED_BYTES = 6 * 1024 * 1024


def ship_model(model_path: str | os.PathLike, results: str | os.PathLike | None = None,
               out: str | os.PathLike | None = None, notes: str = "") -> Path:
    """Write a trained model with its model card where ``extract``/``locate`` find it by default.

    The card keeps what training recorded (data, settings, steps, time) and adds the scores of an
    :func:`evaluate_sets` run (its ``results.json``) and free-form ``notes``. Refuses files over 6 MB.
    """
    model, header = load_tse_model(model_path)
    card = dict(header.get("card") or {})
    if results is not None:
        try:
            card["scores"] = json.loads(Path(results).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise VoxaError(f"{results}: cannot read evaluation results ({e})") from None
    if notes:
        card["notes"] = notes
    dest = Path(out) if out else DEFAULT_MODEL
    dest.parent.mkdir(parents=True, exist_ok=True)
    # written beside the destination first, so an oversized model never replaces the shipped one
    tmp = dest.with_name(dest.name + ".partial")
    save_tse_model(tmp, model, MixtureConfig(**header["mixing"]), card)
    size = tmp.stat().st_size
    if size > MAX_SHIPPED_BYTES:
        tmp.unlink()
        raise VoxaError(f"{model_path}: {size / 2**20:.1f} MB; a shipped model must be at most 6 MB")
    os.replace(tmp, dest)
    write_text_atomic(dest.with_suffix(".md"), model_card_markdown(header, card))
    return dest


#: the parts of a run's card.json that describe its data and settings (not its progress)
_RUN_CARD_KEYS = ("bank", "bank_meta", "speech_train_utterances", "batch_size", "lr")


def export_model(paths: list[str | os.PathLike], out: str | os.PathLike,
                 preset_name: str | os.PathLike | None = None, overrides: list[str] | None = None) -> Path:
    """Write a model file (what ``evaluate``, ``extract`` and ``ship`` read) from a run's trainer
    checkpoint or snapshots; with several, the mean of their weights (checkpoint averaging,
    :mod:`voxa.nn.averaging`).

    The settings come from ``preset_name`` or else from the ``config.yaml`` that training wrote beside the
    first file (or one folder up, for ``exp/snapshots``), with dotted ``overrides`` applied (e.g.
    ``model_config.refine=project``, an extraction option); the card from the ``card.json`` there, with
    the steps and CPU-hours of the last file and, for an average, the steps averaged.

    Raises:
        VoxaError: no files, an unreadable one, no settings, or weights of another model.
    """
    from voxa.nn.averaging import average_weights

    if not paths:
        raise VoxaError("no checkpoint or snapshot to export")
    first = Path(paths[0])
    near = [first.parent, first.parent.parent]
    if preset_name is None:
        found = [d / "config.yaml" for d in near if (d / "config.yaml").exists()]
        if not found:
            raise VoxaError(f"{first}: no config.yaml beside it or above; name the run's preset (--preset)")
        preset_name = found[0]
    p = apply_overrides(preset(preset_name), overrides)
    sd, infos = average_weights(paths)
    model = build_model(p)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise VoxaError(f"{first}: weights do not fit the {p.model} model of these settings "
                        f"({str(e).splitlines()[0][:120]})") from None
    card: dict[str, Any] = {}
    for d in near:
        if (d / "card.json").exists():
            try:
                run_card = json.loads((d / "card.json").read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise VoxaError(f"{d / 'card.json'}: unreadable model card ({e})") from None
            # what the run was trained on and with; its progress figures are the checkpoint's, below
            card = {k: run_card[k] for k in _RUN_CARD_KEYS if k in run_card}
            break
    last = infos[-1]
    card["preset"] = str(preset_name) if not isinstance(preset_name, str) else preset_name
    for key, name in (("step", "steps"), ("epochs", "epochs"), ("train_seconds", "train_seconds"),
                      ("cpu_hours", "cpu_hours")):
        if key in last:
            card[name] = last[key]
    extra = last.get("extra") or {}
    if "stage" in extra and p.stages:
        card["stage"] = p.stages[min(int(extra["stage"]), len(p.stages) - 1)].name
        card["handovers"] = extra.get("handovers", [])
        card["finished"] = int(extra["stage"]) >= len(p.stages)
    if len(paths) > 1:
        card["averaged_steps"] = [i.get("step") for i in infos]
    from voxa.utils.config import to_dict

    return save_tse_model(out, model.eval(), p.mixing, card, to_dict(p))


def model_card_markdown(header: dict[str, Any], card: dict[str, Any]) -> str:
    """A human-readable model card from a model file's header and card."""
    lines = [f"# TSE model card: {header.get('model')} ({header.get('parameters')} parameters)", "",
             "Distance-based single-channel target speech extraction (Shi, Yen, Nakadai 2024).", "",
             "## Settings", "", f"- model config: `{json.dumps(header.get('config'))}`",
             f"- mixing: `{json.dumps(header.get('mixing'))}`"]
    for k in ("preset", "bank", "speech_train_utterances", "epochs", "steps", "cpu_hours", "stage",
              "train_seconds", "batch_size", "lr", "best_valid_loss"):
        if k in card:
            lines.append(f"- {k.replace('_', ' ')}: {card[k]}")
    if card.get("averaged_steps"):
        steps = card["averaged_steps"]
        lines.append(f"- weights: the mean of {len(steps)} snapshots, steps {steps[0]} to {steps[-1]}")
    meta = card.get("bank_meta") or {}
    if meta:
        lines += ["", "## Data", "", f"- bank: {meta.get('description', meta.get('preset'))}, "
                  f"{meta.get('rirs')} responses at {meta.get('rate')} Hz"]
    scores = (card.get("scores") or {}).get("summary")
    if scores:
        lines += ["", "## Scores", "", markdown_table({header.get("model", "model"): scores}).rstrip()]
        d = scores.get("distance")
        if d:
            lines.append(f"\ndistance MAE: {d.get('distance_mae_m')} m ({d.get('mixtures_with_estimate')} of "
                         f"{d.get('mixtures')} mixtures); right-minus-other-query SDR: "
                         f"{d.get('sdr_right_minus_other_query_db')} dB")
    if card.get("notes"):
        lines += ["", "## Notes", "", str(card["notes"])]
    return "\n".join(lines) + "\n"


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| model | SDR (dB) | SDRi (dB) | SI-SDRi (dB) | BSS-eval SDRi (dB) | PESQ | iSDR (dB) "
             "| attenuation (dB) |", "|---|---|---|---|---|---|---|---|"]
    def fmt(v: dict[str, Any]) -> str:
        if v is None or v["n"] == 0 or v["mean"] is None:
            return "–"
        return f"{v['mean']:.2f} ± {v['std']:.2f}"

    for name, r in rows.items():
        keys = ("sdr", "sdri", "si_sdri", "bss_sdri", "pesq", "isdr", "attenuation_db")
        cells = " | ".join(fmt(r.get(k)) for k in keys)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"
