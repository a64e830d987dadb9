"""Analysis windows (symmetric, as Kaldi and HTK use them for framing)."""

from __future__ import annotations

import math
from functools import lru_cache

import torch

from voxa.errors import ConfigError

WINDOWS = ("hamming", "hann", "hanning", "povey", "rectangular", "blackman")


@lru_cache(maxsize=64)
def _window(name: str, length: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    n = torch.arange(length, dtype=torch.float64)
    a = 2 * math.pi / max(length - 1, 1)
    if name == "hamming":
        w = 0.54 - 0.46 * torch.cos(a * n)
    elif name in ("hann", "hanning"):
        w = 0.5 - 0.5 * torch.cos(a * n)
    elif name == "povey":
        w = (0.5 - 0.5 * torch.cos(a * n)).pow(0.85)
    elif name == "rectangular":
        w = torch.ones(length, dtype=torch.float64)
    elif name == "blackman":
        w = 0.42 - 0.5 * torch.cos(a * n) + 0.08 * torch.cos(2 * a * n)
    else:
        raise ConfigError(f"window={name!r} is not one of {', '.join(WINDOWS)}")
    return w.to(device=device, dtype=dtype)


def get_window(name: str, length: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A symmetric window of ``length`` samples: hamming, hann, povey (Kaldi), rectangular, blackman.

    Raises:
        ConfigError: an unknown window name or a length below 1.

    Example:
        >>> get_window("hamming", 400).shape
        torch.Size([400])
    """
    if not isinstance(name, str):
        raise ConfigError(f"window={name!r} is not one of {', '.join(WINDOWS)}")
    if int(length) < 1:
        raise ConfigError(f"window length={length} must be >= 1 sample")
    return _window(name.lower(), int(length), str(device), dtype)
