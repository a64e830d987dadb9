"""CTM and TextGrid files: round trips, Kaldi's line format, and the errors on bad input."""

from __future__ import annotations

import pytest

from voxa.asr.ctm import CtmEntry, ctm_segments, read_ctm, read_textgrid, write_ctm, write_textgrid
from voxa.errors import ManifestError

WORDS = [(0.12, 0.48, "no"), (0.71, 1.05, "yes")]
PHONES = [(0.12, 0.3, "n"), (0.3, 0.48, "ow"), (0.71, 0.8, "y"), (0.8, 0.95, "eh"), (0.95, 1.05, "s")]


def test_ctm_round_trip_of_segments(tmp_path):
    p = write_ctm(tmp_path / "a.ctm", {"u2": WORDS, "u1": PHONES[:2]})
    segs = ctm_segments(read_ctm(p))
    assert list(segs) == ["u2", "u1"]
    assert segs["u2"] == [pytest.approx(s) for s in WORDS]


def test_ctm_lines_are_kaldis_format(tmp_path):
    p = write_ctm(tmp_path / "a.ctm", {"utt": [(0.12, 0.48, "no")]}, precision=2)
    assert p.read_text() == "utt 1 0.12 0.36 no\n"


def test_ctm_confidence_round_trips(tmp_path):
    p = write_ctm(tmp_path / "a.ctm", {"u": [(0.0, 0.5, "yes", 0.87), (0.5, 1.0, "no", None)]})
    assert [e.conf for e in read_ctm(p)] == [0.87, None]


def test_ctm_entries_write_as_given(tmp_path):
    entries = [CtmEntry("rec", "A", 1.0, 0.5, "hi", None), CtmEntry("rec", "A", 2.0, 0.25, "there", 1.0)]
    assert read_ctm(write_ctm(tmp_path / "a.ctm", entries)) == entries


def test_ctm_reader_skips_comments_and_blank_lines(tmp_path):
    p = tmp_path / "a.ctm"
    p.write_text(";; from sclite\n\nu 1 0.00 0.50 yes\n")
    assert read_ctm(p) == [CtmEntry("u", "1", 0.0, 0.5, "yes")]


def test_ctm_bad_line_names_file_and_line(tmp_path):
    p = tmp_path / "a.ctm"
    p.write_text("u 1 0.00 0.50 yes\nu 1 0.50\n")
    with pytest.raises(ManifestError, match=r"a\.ctm:2: expected"):
        read_ctm(p)


def test_ctm_token_with_space_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="white space"):
        write_ctm(tmp_path / "a.ctm", {"u": [(0.0, 1.0, "two words")]})


def test_ctm_write_leaves_no_temporary_file(tmp_path):
    write_ctm(tmp_path / "a.ctm", {"u": WORDS})
    assert [p.name for p in tmp_path.iterdir()] == ["a.ctm"]


def test_textgrid_round_trip_words_and_phones(tmp_path):
    p = write_textgrid(tmp_path / "a.TextGrid", WORDS, PHONES, duration=1.3)
    tiers = read_textgrid(p)
    assert list(tiers) == ["words", "phones"]
    assert tiers["words"] == [pytest.approx(s) for s in WORDS]
    assert tiers["phones"] == [pytest.approx(s) for s in PHONES]


def test_textgrid_is_long_format_with_praats_header_and_duration(tmp_path):
    text = write_textgrid(tmp_path / "a.TextGrid", WORDS, duration=1.3).read_text()
    assert text.startswith('File type = "ooTextFile"\nObject class = "TextGrid"')
    assert "xmax = 1.3" in text and 'name = "words"' in text and 'name = "phones"' not in text


def test_textgrid_duration_defaults_to_last_end(tmp_path):
    text = write_textgrid(tmp_path / "a.TextGrid", WORDS).read_text()
    assert "xmax = 1.05" in text


def test_textgrid_overlap_is_refused(tmp_path):
    with pytest.raises(ManifestError, match="overlaps"):
        write_textgrid(tmp_path / "a.TextGrid", [(0.0, 0.5, "a"), (0.4, 0.8, "b")])


def test_textgrid_missing_file_is_a_manifest_error(tmp_path):
    with pytest.raises(ManifestError, match="TextGrid not found"):
        read_textgrid(tmp_path / "absent.TextGrid")
