"""Small pieces every CLI group shares."""

from __future__ import annotations

from voxa.data.manifest import Record


def load_data_arg(path: str) -> list[Record]:
    """Records from a ``manifest.jsonl`` (or a folder holding one) or a Kaldi data directory."""
    from voxa.data import load_data

    return load_data(path)


def config_dict(path: str | None, overrides: list[str], default: dict | None = None) -> dict:
    """Settings from a YAML file (else ``default``) with ``key.sub=value`` overrides applied."""
    import copy
    from pathlib import Path

    import yaml

    from voxa.errors import ConfigError
    from voxa.tasks.recipe import apply_overrides

    d = copy.deepcopy(default or {})
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: config not found")
        try:
            d = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return apply_overrides(d, overrides)


def data_key(records: list[Record]) -> str:
    """A folder name unique to a list of utterances, so each data set keeps its own feature cache."""
    import hashlib

    return "data-" + hashlib.sha1("\n".join(sorted(r.id for r in records)).encode()).hexdigest()[:10]
