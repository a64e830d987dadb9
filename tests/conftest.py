"""Shared test helpers: where the real speech data lives, and what a written PNG shows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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



def check_png_plot(path: str | os.PathLike, size: tuple[int, int], *, rel: float = 0.15,
                   colored: int = 300) -> np.ndarray:
    """Open the PNG at ``path`` and check what it shows: about ``size`` = (width, height) pixels (within
    ``rel``: voxa saves figures with a tight bounding box, so the size moves a little with the fonts),
    something drawn in the middle, where the axes are (its pixels vary), and data drawn: more than
    ``colored`` coloured pixels (text, ticks, frames and grid are grey; lines, markers and colour maps are
    not, and a legend's samples alone are about 100). Returns the image, [h, w, 3] in [0, 1]."""
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4), f"{path}: not an RGB(A) image"
    rgb = img[..., :3] * img[..., 3:] + (1 - img[..., 3:]) if img.shape[2] == 4 else img
    h, w = rgb.shape[:2]
    assert abs(w - size[0]) <= rel * size[0] and abs(h - size[1]) <= rel * size[1], \
        f"{path}: {w}x{h} pixels, expected about {size[0]}x{size[1]}"
    assert rgb[h // 4:3 * h // 4, w // 4:3 * w // 4].std() > 0.005, f"{path}: the middle is blank"
    n = int((rgb.max(-1) - rgb.min(-1) > 0.25).sum())
    assert n > colored, f"{path}: {n} coloured pixels, expected more than {colored} (no data drawn?)"
    return rgb


@pytest.fixture
def png_plot():
    """Fixture form of :func:`check_png_plot`: ``png_plot(path, (width, height))``."""
    return check_png_plot
