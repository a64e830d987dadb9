"""``voxa run RECIPE.yaml``: a recipe wires a corpus to a pipeline with its settings.

A recipe is YAML with ``task``, ``corpus: {name, root}`` (root relative to the data root),
``sets`` (named selections, see :func:`voxa.data.select.select`) and the task's settings
(``features``, ``gmm``, ``ivector``, ``trials``, ``systems``); a set may name its own
``corpus``. ``overrides`` such as ``gmm.n_components=64`` change single fields. Results land in the
experiment directory (default ``exp/<corpus>/<recipe name>``).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from voxa.errors import ConfigError, VoxaError

TASKS = ("speaker-identification", "speaker-verification", "speaker-verification-ivector", "language-id",
         "emotion")


def load_recipe(path: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a recipe and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe not found")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "parse error"
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping")
    recipe = apply_overrides(recipe, overrides or [])
    recipe.setdefault("name", path.stem)
    for key in ("task", "corpus", "sets"):
        if key not in recipe:
            raise ConfigError(f"{path}: recipe lacks '{key}'")
    if recipe["task"] not in TASKS:
        raise ConfigError(f"{path}: unknown task {recipe['task']!r}; one of {', '.join(TASKS)}")
    return recipe


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    d = copy.deepcopy(d)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, value = item.split("=", 1)
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a mapping")
        node[parts[-1]] = yaml.safe_load(value)
    return d


def run_recipe(path: str | os.PathLike, data_root: str | None = None, exp: str | None = None,
               overrides: list[str] | None = None) -> dict[str, Any]:
    """Run a recipe end to end; returns (and writes) its results."""
    from voxa.data.corpora import prepare
    from voxa.data.select import select
    from voxa.tasks.demo import find_data_root
    from voxa.tasks.speaker import SpeakerConfig, run_identification, run_verification

    recipe = load_recipe(path, overrides)
    root = find_data_root(data_root)
    if root is None:
        raise VoxaError("no data root: pass --data DIR or set VOXA_DATA")
    corpus = recipe["corpus"]
    if not isinstance(corpus, dict) or "name" not in corpus:
        raise ConfigError(f"{path}: corpus must be a mapping with 'name' (and 'root')")
    exp_dir = Path(exp) if exp else Path("exp") / corpus["name"] / recipe["name"]
    exp_dir.mkdir(parents=True, exist_ok=True)
    records = prepare(corpus["name"], root / corpus.get("root", corpus["name"]), exp_dir / "data")
    sets = {}
    for name, spec in recipe["sets"].items():
        spec = dict(spec or {})
        other = spec.pop("corpus", None)
        if other is not None:
            # a set from another corpus, e.g. a LibriSpeech background for TIMIT trials
            if not isinstance(other, dict) or "name" not in other:
                raise ConfigError(f"{path}: set {name!r}: corpus must be a mapping with 'name'")
            pool = prepare(other["name"], root / other.get("root", other["name"]),
                           exp_dir / f"data_{other['name']}")
        else:
            pool = records
        sets[name] = select(pool, spec)
    for name, recs in sets.items():
        if not recs:
            raise ConfigError(f"{path}: set {name!r} selects no utterances")
    (exp_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    task = recipe["task"]
    if task in ("speaker-verification-ivector", "language-id", "emotion"):
        return _run_classifier_task(recipe, sets, exp_dir, path)
    cfg = SpeakerConfig.from_dict({k: recipe[k] for k in ("features", "gmm") if k in recipe})
    if task == "speaker-identification":
        return run_identification(_need(sets, "train", path), _need(sets, "test", path), cfg, exp_dir)
    trials = recipe.get("trials") or {}
    ev = _need(sets, "eval", path)
    return run_verification(_need(sets, "background", path), ev, ev, cfg, exp_dir,
                            nontarget_ratio=float(trials.get("nontarget_ratio", 1.0)),
                            seed=int(trials.get("seed", 0)))


def _run_classifier_task(recipe: dict[str, Any], sets: dict[str, Any], exp_dir: Path, path: Any
                         ) -> dict[str, Any]:
    from voxa.tasks.classify import ClassifierConfig

    task = recipe["task"]
    systems = recipe.get("systems")
    if task == "emotion":
        from voxa.tasks.emotion import run_emotion

        overrides = {k: recipe[k] for k in ("features", "gmm", "ivector") if k in recipe}
        return run_emotion(_need(sets, "all", path), exp_dir, systems=systems, overrides=overrides or None,
                           main=recipe.get("main"), speaker_norm=bool(recipe.get("speaker_norm", True)))
    cfg = ClassifierConfig.from_dict({k: recipe[k] for k in ("features", "gmm", "ivector") if k in recipe})
    if task == "language-id":
        from voxa.tasks.lid import DEFAULT_DURATIONS, run_lid

        durations = recipe.get("durations", list(DEFAULT_DURATIONS))
        durations = [None if d in (None, "full") else float(d) for d in durations]
        return run_lid(_need(sets, "train", path), _need(sets, "test", path), cfg, exp_dir, systems=systems,
                       durations=durations, main=recipe.get("main"))
    from voxa.tasks.speaker_ivector import VERIFICATION_BACKENDS, run_ivector_verification

    trials = recipe.get("trials") or {}
    return run_ivector_verification(_need(sets, "background", path), _need(sets, "eval", path), cfg, exp_dir,
                                    nontarget_ratio=float(trials.get("nontarget_ratio", 1.0)),
                                    seed=int(trials.get("seed", 0)),
                                    backends=recipe.get("backends", list(VERIFICATION_BACKENDS)),
                                    segment_frames=recipe.get("segment_frames", 300))


def _need(sets: dict[str, Any], name: str, path: Any) -> Any:
    if name not in sets:
        raise ConfigError(f"{path}: this task needs a set named {name!r}")
    return sets[name]
