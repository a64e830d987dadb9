"""Shared test helpers: where the real speech data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data() -> Path:
    """The real-data folder (``$VOXA_DATA`` or ``../shared/data`` beside the checkout); skips the
    calling test when it is absent."""
    path = Path(os.environ["VOXA_DATA"]) if os.environ.get("VOXA_DATA") else _DEFAULT
    if not path.is_dir():
        pytest.skip(f"../shared/data not present: {path} (set VOXA_DATA to the real-data folder)")
    return path


@pytest.fixture
def shared_data_dir() -> Path:
    """Fixture form of :func:`shared_data`."""
    return shared_data()
