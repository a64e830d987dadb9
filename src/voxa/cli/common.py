"""Small pieces every CLI group shares."""

from __future__ import annotations

from voxa.data.manifest import Record


def load_data_arg(path: str) -> list[Record]:
    """Records from a ``manifest.jsonl`` (or a folder holding one) or a Kaldi data directory."""
    from voxa.data import load_data

    return load_data(path)
