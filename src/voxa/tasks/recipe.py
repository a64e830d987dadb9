"""``voxa run RECIPE.yaml``: a recipe wires a corpus to a pipeline with its settings.

A recipe is YAML with ``task``, ``corpus: {name, root}`` (root relative to the data root),
``sets`` (named selections, see :func:`voxa.data.select.select`) and the task's settings
(``features``, ``gmm``, ``ivector``, ``trials``, ``systems``); a set may name its own
``corpus``. ``overrides`` such as ``gmm.n_components=64`` change single fields. Results land in the
experiment directory (default ``exp/<corpus>/<recipe name>``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from voxa.errors import ConfigError, VoxaError
from voxa.utils.atomic import write_text_atomic

TASKS = ("speaker-identification", "speaker-verification", "speaker-verification-ivector", "language-id",
         "emotion", "asr")
_BASE_KEYS = ("task", "name", "description", "corpus", "sets")
#: the settings each task takes besides the base keys; anything else in a recipe (or a --set) is an error
TASK_KEYS: dict[str, tuple[str, ...]] = {
    "speaker-identification": ("features", "gmm", "system", "neural"),
    "speaker-verification": ("features", "gmm", "trials"),
    "speaker-verification-ivector": ("features", "gmm", "ivector", "neural", "embedder", "trials", "backends",
                                     "segment_frames"),
    "language-id": ("features", "gmm", "ivector", "neural", "augment", "phonetic", "systems", "durations",
                    "main"),
    "emotion": ("features", "gmm", "ivector", "neural", "systems", "main", "speaker_norm"),
    "asr": ("features", "lexicon", "mono", "tri", "perturb", "dnn_hmm", "ctc", "las", "systems", "decoder",
            "grammars", "sil_prob", "smoothing", "phone_fold", "pron_probs", "stream_features", "folds"),
}
_ASR_KEYS = ("features", "lexicon", "mono", "tri", "perturb", "dnn_hmm", "ctc", "las", "systems", "decoder",
             "grammars", "sil_prob", "smoothing", "phone_fold", "pron_probs", "stream_features")
_TRIALS_KEYS = ("nontarget_ratio", "seed")


def load_recipe(path: str | os.PathLike, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a recipe, apply dotted ``key.sub=value`` overrides (values parsed as YAML) and check every key.

    Raises:
        ConfigError: If the file is missing or not YAML, lacks ``task``/``corpus``/``sets``, names an
            unknown task, or has (or is given) a setting its task does not take, naming the valid ones.
    """
    from voxa.utils.config import apply_overrides, load_yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe not found")
    recipe = load_yaml(path)
    recipe = apply_overrides(recipe, overrides or [])
    recipe.setdefault("name", path.stem)
    for key in ("task", "corpus", "sets"):
        if key not in recipe:
            raise ConfigError(f"{path}: recipe lacks '{key}'")
    task = recipe["task"]
    if task not in TASKS:
        raise ConfigError(f"{path}: unknown task {task!r}; one of {', '.join(TASKS)}")
    valid = _BASE_KEYS + TASK_KEYS[task]
    unknown = sorted(set(recipe) - set(valid))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r} for task {task}; it takes: "
                          f"{', '.join(valid)}")
    bad_trials = sorted(set(recipe.get("trials") or {}) - set(_TRIALS_KEYS))
    if bad_trials:
        raise ConfigError(f"{path}: unknown setting 'trials.{bad_trials[0]}'; trials takes: "
                          f"{', '.join(_TRIALS_KEYS)}")
    try:
        _check_settings(recipe)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return recipe


def _check_settings(recipe: dict[str, Any]) -> None:
    """Build the task's config now, so that a bad setting fails before any corpus is prepared."""
    from voxa.tasks.classify import ClassifierConfig
    from voxa.tasks.speaker import SpeakerConfig

    if recipe["task"] == "asr":
        from voxa.tasks.asr import AsrConfig

        AsrConfig.from_dict({k: recipe[k] for k in _ASR_KEYS if k in recipe})
        if recipe.get("folds") not in (None, "speaker"):
            raise ConfigError(f"folds={recipe['folds']!r}: only 'speaker' (leave one speaker out) or null")
        return
    sections = {k: recipe[k] for k in ("features", "gmm", "ivector", "augment", "phonetic") if k in recipe}
    if recipe["task"] in ("speaker-identification", "speaker-verification"):
        SpeakerConfig.from_dict(sections)
        if recipe.get("system", "gmm-ubm") != "gmm-ubm":
            from voxa.tasks.classify import check_system
            from voxa.tasks.neural import NeuralConfig

            check_system(recipe["system"])
            NeuralConfig.from_dict({**(recipe.get("neural") or {}), "system": recipe["system"]})
    else:
        neural = {"neural": recipe["neural"]} if "neural" in recipe else {}
        ClassifierConfig.from_dict({**sections, **neural})


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
    write_text_atomic(exp_dir / "recipe.yaml", yaml.safe_dump(recipe, sort_keys=False))
    task = recipe["task"]
    if task == "asr":
        from voxa.tasks.asr import AsrConfig, run_asr

        cfg = AsrConfig.from_dict({k: recipe[k] for k in _ASR_KEYS if k in recipe})
        _need(sets, "train", path)
        return run_asr(sets, cfg, exp_dir, folds=recipe.get("folds"))
    if task in ("speaker-verification-ivector", "language-id", "emotion"):
        return _run_classifier_task(recipe, sets, exp_dir, path)
    cfg = SpeakerConfig.from_dict({k: recipe[k] for k in ("features", "gmm") if k in recipe})
    if task == "speaker-identification":
        if recipe.get("system", "gmm-ubm") != "gmm-ubm":
            from voxa.tasks.neural import NeuralConfig, run_neural_system

            ncfg = NeuralConfig.from_dict({**(recipe.get("neural") or {}), "system": recipe["system"]})
            return run_neural_system(_need(sets, "train", path), _need(sets, "test", path), "speaker",
                                     cfg.features, ncfg, exp_dir)
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

        overrides = {k: recipe[k] for k in ("features", "gmm", "ivector", "neural") if k in recipe}
        return run_emotion(_need(sets, "all", path), exp_dir, systems=systems, overrides=overrides or None,
                           main=recipe.get("main"), speaker_norm=bool(recipe.get("speaker_norm", True)))
    sections = ("features", "gmm", "ivector", "neural", "augment", "phonetic")
    cfg = ClassifierConfig.from_dict({k: recipe[k] for k in sections if k in recipe})
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
                                    segment_frames=recipe.get("segment_frames", 300),
                                    embedder=recipe.get("embedder"))


def _need(sets: dict[str, Any], name: str, path: Any) -> Any:
    if name not in sets:
        raise ConfigError(f"{path}: this task needs a set named {name!r}")
    return sets[name]
