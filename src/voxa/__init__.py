"""voxa: speech features, statistical and neural speech systems, and distance-based target speech
extraction.

``voxa.load(path)`` restores any object voxa saved (GMMs, statistics, i-vector extractors, JFA,
back-ends and back-end chains, vector sets, global CMVN, TSE models) from the class tag in its
safetensors header; ``voxa.save(obj, path)`` writes one. Nothing is unpickled.
"""

from __future__ import annotations

import os
from typing import Any

from voxa.errors import VoxaError

__version__ = "0.1.0"

__all__ = ["VoxaError", "__version__", "load", "save"]


def load(path: str | os.PathLike, **kwargs: Any) -> Any:
    """Restore any object voxa saved (see :func:`voxa.utils.serialization.load`)."""
    from voxa.utils.serialization import load as _load

    return _load(path, **kwargs)


def save(obj: Any, path: str | os.PathLike, **kwargs: Any):
    """Write any voxa object that can be saved (see :func:`voxa.utils.serialization.save`)."""
    from voxa.utils.serialization import save as _save

    return _save(obj, path, **kwargs)
