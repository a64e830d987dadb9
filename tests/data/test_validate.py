"""validate, check_sorted and load_data."""

from __future__ import annotations

import math

import pytest

from voxa.data import Record, check_sorted, load_data, validate, write_kaldi_dir, write_manifest
from voxa.errors import ManifestError


@pytest.fixture
def wavs(tmp_path):
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    return [Record(id="a", path=str(tmp_path / "a.wav"), speaker="s"),
            Record(id="b", path=str(tmp_path / "b.wav"), speaker="s")]


def test_valid_records_pass(wavs):
    assert validate(wavs) is None


def test_duplicate_id_is_named(wavs):
    wavs[1].id = "a"
    with pytest.raises(ManifestError, match="duplicate utterance id 'a'"):
        validate(wavs, check_files=False)


def test_missing_file_names_file_and_utterance(wavs, tmp_path):
    wavs[1].path = str(tmp_path / "gone.wav")
    with pytest.raises(ManifestError, match=r"gone\.wav: audio file of utterance 'b' not found"):
        validate(wavs)


def test_missing_file_is_not_checked_when_asked(wavs, tmp_path):
    wavs[1].path = str(tmp_path / "gone.wav")
    validate(wavs, check_files=False)


@pytest.mark.parametrize("start", [-0.1, math.nan])
def test_bad_start_is_rejected(wavs, start):
    wavs[0].start = start
    with pytest.raises(ManifestError, match="utterance 'a' has a negative or invalid start"):
        validate(wavs, check_files=False)


@pytest.mark.parametrize("duration", [-1.0, 0.0, math.inf])
def test_bad_duration_is_rejected(wavs, duration):
    wavs[1].duration = duration
    with pytest.raises(ManifestError, match="utterance 'b' has a non-positive or invalid duration"):
        validate(wavs, check_files=False)


def test_check_sorted_accepts_c_order():
    # C order puts upper case before lower case and '-' before digits
    check_sorted([Record(id=i, path="/x") for i in ("A", "a-1", "a1", "b")])


def test_check_sorted_names_the_pair_out_of_order():
    with pytest.raises(ManifestError, match="'b' is followed by 'a'"):
        check_sorted([Record(id="b", path="/x"), Record(id="a", path="/x")])


def test_check_sorted_rejects_duplicates():
    with pytest.raises(ManifestError, match="duplicate"):
        check_sorted([Record(id="a", path="/x"), Record(id="a", path="/x")])


def test_check_sorted_speakers_requires_speaker_prefix_order():
    recs = [Record(id="u1", path="/x", speaker="zed"), Record(id="u2", path="/x", speaker="amy")]
    check_sorted(recs)
    with pytest.raises(ManifestError, match="speaker order"):
        check_sorted(recs, speakers=True)


def test_load_data_reads_a_manifest_file(wavs, tmp_path):
    write_manifest(tmp_path / "x.jsonl", wavs)
    assert [r.id for r in load_data(tmp_path / "x.jsonl")] == ["a", "b"]


def test_load_data_prefers_manifest_in_a_folder(wavs, tmp_path):
    d = tmp_path / "d"
    write_manifest(d / "manifest.jsonl", [wavs[0]])
    write_kaldi_dir(wavs, d)
    assert [r.id for r in load_data(d)] == ["a"]


def test_load_data_reads_a_kaldi_dir(wavs, tmp_path):
    write_kaldi_dir(wavs, tmp_path / "k")
    assert [r.speaker for r in load_data(tmp_path / "k")] == ["s", "s"]


def test_load_data_rejects_an_empty_folder(tmp_path):
    with pytest.raises(ManifestError, match="neither manifest.jsonl nor a Kaldi data directory"):
        load_data(tmp_path)


def test_load_data_rejects_a_missing_path(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest file or data directory"):
        load_data(tmp_path / "nope")
