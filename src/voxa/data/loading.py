"""Loading the audio a manifest record points at (its channel, start and duration)."""

from __future__ import annotations

import torch

from voxa.audio.io import load, load_segment
from voxa.data.manifest import Record


def load_record(record: Record, sample_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """Load a record's audio as mono ``[1, samples]`` float32, optionally resampled.

    The record's ``channel`` is selected when set; otherwise all channels are averaged.

    Raises:
        AudioError: the file is missing or bad (the message names it).
    """
    if record.start or record.duration is not None:
        wav, sr = load_segment(record.path, record.start, record.duration)
    else:
        wav, sr = load(record.path)
    if record.channel is not None:
        if record.channel >= wav.shape[0]:
            from voxa.errors import AudioError

            raise AudioError(record.path, f"has {wav.shape[0]} channel(s), record {record.id} "
                                          f"asks for channel {record.channel}")
        wav = wav[record.channel: record.channel + 1]
    elif wav.shape[0] > 1:
        wav = wav.mean(0, keepdim=True)
    if sample_rate is not None and sample_rate != sr:
        from voxa.audio.resample import resample

        wav, sr = resample(wav, sr, sample_rate), sample_rate
    return wav, sr
