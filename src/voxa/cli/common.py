"""Small pieces every CLI group shares."""

from __future__ import annotations

from voxa.data.manifest import Record


def load_data_arg(path: str) -> list[Record]:
    """Records from a ``manifest.jsonl`` (or a folder holding one) or a Kaldi data directory."""
    from voxa.data import load_data

    return load_data(path)


def config_dict(path: str | None, overrides: list[str], default: dict | None = None) -> dict:
    """Settings from a YAML file (else ``default``) with dotted ``key.sub=value`` overrides applied; the
    task's config class checks the keys."""
    import copy

    from voxa.utils.config import apply_overrides, load_yaml

    d = load_yaml(path) if path else copy.deepcopy(default or {})
    return apply_overrides(d, overrides)


def data_key(records: list[Record]) -> str:
    """A folder name unique to a list of utterances, so each data set keeps its own feature cache."""
    import hashlib

    return "data-" + hashlib.sha1("\n".join(sorted(r.id for r in records)).encode()).hexdigest()[:10]


def require_files(folder, names: tuple[str, ...], command: str) -> None:
    """A one-line VoxaError unless ``folder`` holds every file in ``names`` (written by ``command``)."""
    from pathlib import Path

    from voxa.errors import VoxaError

    for name in names:
        if not (Path(folder) / name).is_file():
            raise VoxaError(f"{folder}: no {name} (run '{command}' first)")
