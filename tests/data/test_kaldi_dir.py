"""Kaldi data directories: writing, reading, round trips and malformed input."""

from __future__ import annotations

import pytest

from voxa.data import Record, read_kaldi_dir, write_kaldi_dir
from voxa.errors import ManifestError


def _recs(tmp_path):
    return [
        Record(id="s2-u1", path=str(tmp_path / "b.wav"), duration=2.0, speaker="s2",
               language="en", text="hello  world"),
        Record(id="s1-u1", path=str(tmp_path / "a.wav"), duration=1.5, speaker="s1",
               language="de", emotion="anger", text="guten tag"),
    ]


def test_files_are_sorted_by_utterance_id(tmp_path):
    write_kaldi_dir(_recs(tmp_path), tmp_path / "d")
    ids = [line.split()[0] for line in (tmp_path / "d" / "wav.scp").read_text().splitlines()]
    assert ids == ["s1-u1", "s2-u1"]


def test_whole_files_are_written_without_segments(tmp_path):
    write_kaldi_dir(_recs(tmp_path), tmp_path / "d")
    assert not (tmp_path / "d" / "segments").exists()
    assert (tmp_path / "d" / "spk2utt").read_text() == "s1 s1-u1\ns2 s2-u1\n"


def test_round_trip_keeps_labels_and_durations(tmp_path):
    recs = _recs(tmp_path)
    write_kaldi_dir(recs, tmp_path / "d")
    back = {r.id: r for r in read_kaldi_dir(tmp_path / "d")}
    assert back["s1-u1"].emotion == "anger"
    assert back["s1-u1"].language == "de"
    assert back["s2-u1"].text == "hello world"  # Kaldi text is whitespace-normalised
    assert back["s2-u1"].duration == pytest.approx(2.0)
    assert back["s2-u1"].speaker == "s2"


def test_shared_recording_gets_segments_keyed_by_stem(tmp_path):
    wav = str(tmp_path / "long.wav")
    recs = [Record(id="u2", path=wav, start=1.0, duration=0.5, speaker="x"),
            Record(id="u1", path=wav, start=0.0, duration=1.0, speaker="x")]
    write_kaldi_dir(recs, tmp_path / "d")
    assert (tmp_path / "d" / "wav.scp").read_text() == f"long {wav}\n"
    assert (tmp_path / "d" / "segments").read_text() == "u1 long 0.0 1.0\nu2 long 1.0 1.5\n"
    back = read_kaldi_dir(tmp_path / "d")
    assert [(r.id, r.path, r.start, r.duration) for r in back] == [
        ("u1", wav, 0.0, 1.0), ("u2", wav, 1.0, 0.5)]


def test_colliding_stems_get_distinct_recording_ids(tmp_path):
    recs = [Record(id="a", path=str(tmp_path / "x" / "sa1.wav"), start=0.5),
            Record(id="b", path=str(tmp_path / "y" / "sa1.wav"), start=0.5)]
    write_kaldi_dir(recs, tmp_path / "d")
    rec_ids = [line.split()[0] for line in (tmp_path / "d" / "wav.scp").read_text().splitlines()]
    assert len(set(rec_ids)) == 2 and all(r.startswith("sa1-") for r in rec_ids)
    assert {r.path for r in read_kaldi_dir(tmp_path / "d")} == {recs[0].path, recs[1].path}


def test_missing_speaker_uses_utterance_id_and_reads_back_as_none(tmp_path):
    write_kaldi_dir([Record(id="u1", path="/a.wav")], tmp_path / "d")
    assert (tmp_path / "d" / "utt2spk").read_text() == "u1 u1\n"
    assert read_kaldi_dir(tmp_path / "d")[0].speaker is None


def test_stale_segments_from_an_earlier_write_are_removed(tmp_path):
    write_kaldi_dir([Record(id="u1", path="/a.wav", start=1.0)], tmp_path / "d")
    write_kaldi_dir([Record(id="u1", path="/a.wav")], tmp_path / "d")
    assert not (tmp_path / "d" / "segments").exists()
    assert read_kaldi_dir(tmp_path / "d")[0].start == 0.0


def test_speaker_fn_and_labels_off(tmp_path):
    recs = [Record(id="booth-1", path="/r.mat", duration=0.5, text="x", extra={"room": "booth"})]
    write_kaldi_dir(recs, tmp_path / "d", speaker_fn=lambda r: r.extra["room"], labels=False)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["spk2utt", "utt2spk", "wav.scp"]
    assert (tmp_path / "d" / "utt2spk").read_text() == "booth-1 booth\n"


def test_whitespace_in_id_is_rejected(tmp_path):
    with pytest.raises(ManifestError, match="whitespace"):
        write_kaldi_dir([Record(id="a b", path="/a.wav")], tmp_path / "d")


def test_duplicate_ids_are_rejected_on_write(tmp_path):
    with pytest.raises(ManifestError, match="duplicate utterance id 'a'"):
        write_kaldi_dir([Record(id="a", path="/a.wav"), Record(id="a", path="/b.wav")],
                        tmp_path / "d")


def test_piped_wav_scp_entry_is_rejected_with_file_and_line(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 /a.wav\nu2 sox /b.wav -t wav - |\n")
    with pytest.raises(ManifestError, match=r"wav\.scp:2: piped"):
        read_kaldi_dir(tmp_path)


def test_malformed_segments_line_names_file_and_line(tmp_path):
    (tmp_path / "wav.scp").write_text("r /a.wav\n")
    (tmp_path / "segments").write_text("u1 r 0.0 1.0\nu2 r 1.0\n")
    with pytest.raises(ManifestError, match=r"segments:2: expected 4 fields, got 3"):
        read_kaldi_dir(tmp_path)


def test_segment_with_unknown_recording_is_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("r /a.wav\n")
    (tmp_path / "segments").write_text("u1 q 0.0 1.0\n")
    with pytest.raises(ManifestError, match=r"segments:1: recording 'q' is not in wav\.scp"):
        read_kaldi_dir(tmp_path)


def test_segment_end_before_start_is_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("r /a.wav\n")
    (tmp_path / "segments").write_text("u1 r 2.0 1.0\n")
    with pytest.raises(ManifestError, match=r"segments:1: bad segment times"):
        read_kaldi_dir(tmp_path)


def test_segment_end_minus_one_means_to_the_end(tmp_path):
    (tmp_path / "wav.scp").write_text("r /a.wav\n")
    (tmp_path / "segments").write_text("u1 r 2.0 -1\n")
    (r,) = read_kaldi_dir(tmp_path)
    assert (r.start, r.duration) == (2.0, None)


def test_utt2spk_naming_unknown_utterance_is_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 /a.wav\n")
    (tmp_path / "utt2spk").write_text("u1 s\nu9 s\n")
    with pytest.raises(ManifestError, match=r"utt2spk:2: utterance 'u9'"):
        read_kaldi_dir(tmp_path)


def test_duplicate_wav_scp_key_is_rejected(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 /a.wav\nu1 /b.wav\n")
    with pytest.raises(ManifestError, match=r"wav\.scp:2: duplicate id 'u1'"):
        read_kaldi_dir(tmp_path)


def test_bad_utt2dur_value_names_file_and_line(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 /a.wav\n")
    (tmp_path / "utt2dur").write_text("u1 abc\n")
    with pytest.raises(ManifestError, match=r"utt2dur:1: duration 'abc' is not a number"):
        read_kaldi_dir(tmp_path)


def test_directory_without_wav_scp_is_rejected(tmp_path):
    with pytest.raises(ManifestError, match="no wav.scp"):
        read_kaldi_dir(tmp_path)


def test_paths_with_spaces_survive(tmp_path):
    p = str(tmp_path / "my audio" / "a.wav")
    write_kaldi_dir([Record(id="u1", path=p)], tmp_path / "d")
    assert read_kaldi_dir(tmp_path / "d")[0].path == p
