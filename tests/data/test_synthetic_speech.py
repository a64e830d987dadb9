"""espeak-ng corpora: a waves_yesno look-alike that prepare_yesno reads, and isolated words."""

from __future__ import annotations

import re
import shutil

import pytest
import soundfile as sf

from voxa.data import read_manifest
from voxa.data.corpora.yesno import prepare_yesno
from voxa.data.synthetic_speech import make_word_corpus, make_yesno_corpus
from voxa.errors import VoxaError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture(scope="module")
def yesno_folder(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    return make_yesno_corpus(tmp_path_factory.mktemp("synth"), n_files=12, seed=3)


@needs_espeak
def test_yesno_files_named_like_kaldis(yesno_folder):
    names = sorted(p.name for p in yesno_folder.glob("*.wav"))
    assert len(names) == 12 and all(re.fullmatch(r"[01](_[01]){7}\.wav", n) for n in names)


@needs_espeak
def test_yesno_round_trips_through_prepare_yesno(yesno_folder):
    records = prepare_yesno(yesno_folder.parent)
    assert len(records) == 12
    assert all(r.text == " ".join("yes" if c == "1" else "no" for c in r.id.split("_")) for r in records)
    assert [r.extra["split"] for r in records] == ["train"] * 7 + ["test"] * 5


@needs_espeak
def test_yesno_audio_is_8khz_speech_with_pauses(yesno_folder):
    info = sf.info(str(next(yesno_folder.glob("*.wav"))))
    assert info.samplerate == 8000 and info.channels == 1
    # eight words of >= ~0.15 s, seven pauses >= 0.1 s, lead-in and tail >= 0.2 s each
    assert 8 * 0.15 + 7 * 0.1 + 0.4 < info.duration < 10.0


@needs_espeak
def test_yesno_same_seed_same_audio(tmp_path):
    a = make_yesno_corpus(tmp_path / "a", n_files=2, words_per_file=3, seed=1)
    b = make_yesno_corpus(tmp_path / "b", n_files=2, words_per_file=3, seed=1)
    names = sorted(p.name for p in a.glob("*.wav"))
    assert names == sorted(p.name for p in b.glob("*.wav"))
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_yesno_more_files_than_sequences_is_an_error(tmp_path):
    with pytest.raises(VoxaError, match="only 4 distinct 2-word sequences"):
        make_yesno_corpus(tmp_path, n_files=5, words_per_file=2)


def test_missing_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(VoxaError, match="espeak-ng not found on PATH"):
        make_yesno_corpus(tmp_path, n_files=1)


@needs_espeak
def test_word_corpus_records_and_manifest(tmp_path):
    records = make_word_corpus(tmp_path, ["one", "two"], n_per_word=2, voices=("en", "en-us+f3"))
    assert [r.id for r in records] == ["en-one-00", "en-one-01", "en-two-00", "en-two-01",
                                       "enusf3-one-00", "enusf3-one-01", "enusf3-two-00", "enusf3-two-01"]
    assert [(r.id, r.text, r.language) for r in read_manifest(tmp_path / "manifest.jsonl")] == \
        [(r.id, r.text, "en") for r in records]


@needs_espeak
def test_word_corpus_durations_match_files(tmp_path):
    records = make_word_corpus(tmp_path, ["seven"], n_per_word=1, voices=("en",), rate=16000)
    info = sf.info(records[0].path)
    assert info.samplerate == 16000 and records[0].duration == pytest.approx(info.duration)


def test_word_corpus_duplicate_file_names_are_an_error(tmp_path):
    with pytest.raises(VoxaError, match="distinct"):
        make_word_corpus(tmp_path, ["one", "o-ne"])


@needs_espeak
def test_unknown_voice_is_a_voxa_error(tmp_path):
    with pytest.raises(VoxaError, match="nosuchvoice"):
        make_word_corpus(tmp_path, ["one"], voices=("nosuchvoice",))
