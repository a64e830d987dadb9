"""voxa: speech features, statistical and neural speech systems, and distance-based target speech
extraction."""

from voxa.errors import VoxaError

__version__ = "0.1.0"

__all__ = ["VoxaError", "__version__"]
