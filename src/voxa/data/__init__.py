"""Data: manifests, Kaldi data dirs, validation, speaker-disjoint splits, corpus preparers."""

from voxa.data.kaldi_dir import read_kaldi_dir, write_kaldi_dir
from voxa.data.manifest import Record, iter_manifest, read_manifest, write_manifest
from voxa.data.splits import leave_one_speaker_out, split_by_key, split_by_speaker
from voxa.data.validate import check_sorted, load_data, validate

__all__ = [
    "Record",
    "check_sorted",
    "iter_manifest",
    "leave_one_speaker_out",
    "load_data",
    "read_kaldi_dir",
    "read_manifest",
    "split_by_key",
    "split_by_speaker",
    "validate",
    "write_kaldi_dir",
    "write_manifest",
]
