"""Audio input and output: load, save, segment reading, resampling, mono mix-down."""

from voxa.audio.io import AudioInfo, info, load, load_segment, save
from voxa.audio.resample import resample, to_mono

__all__ = ["AudioInfo", "info", "load", "load_segment", "save", "resample", "to_mono"]
