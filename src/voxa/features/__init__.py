"""Speech features in torch, batched ``[batch, samples] -> [batch, frames, dims]`` on CPU or GPU.

MFCC, log mel filterbanks, PLP, LPCC, shifted delta cepstra, deltas, CMVN, energy VAD, pitch and
prosody; a Kaldi-compatible mode (``kaldi_compat=True``) for MFCC, fbank and PLP.
"""

from voxa.features.cmvn import GlobalCMVN, cmvn
from voxa.features.deltas import add_deltas
from voxa.features.deltas import deltas as delta
from voxa.features.filterbanks import bark_filterbank, mel_filterbank
from voxa.features.framing import frame_signal, num_frames, preemphasize
from voxa.features.lpc import levinson_durbin, lpc, lpc_to_cepstrum, lpcc
from voxa.features.mfcc import fbank, mfcc
from voxa.features.pitch import pitch
from voxa.features.plp import plp
from voxa.features.prosody import PROSODY_STAT_NAMES, prosody_contours, prosody_statistics
from voxa.features.sdc import sdc
from voxa.features.spectrum import FrameOptions, spectrogram
from voxa.features.vad import energy_vad, vad_from_log_energy
from voxa.features.windows import get_window


def deltas(feats, order: int = 2, window: int = 2):
    """Append ``order`` orders of regression deltas: ``[..., T, D] -> [..., T, D * (order + 1)]``."""
    return add_deltas(feats, order, window)


__all__ = [
    "FrameOptions", "GlobalCMVN", "PROSODY_STAT_NAMES", "add_deltas", "bark_filterbank", "cmvn",
    "delta", "deltas", "energy_vad", "fbank", "frame_signal", "get_window", "levinson_durbin", "lpc",
    "lpc_to_cepstrum", "lpcc", "mel_filterbank", "mfcc", "num_frames", "pitch", "plp", "preemphasize",
    "prosody_contours", "prosody_statistics", "sdc", "spectrogram", "vad_from_log_energy",
]
