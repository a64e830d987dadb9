"""The waves_yesno preparer and downloader on tiny fake folders (nothing is fetched from the network)."""

from __future__ import annotations

import hashlib
import itertools
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxa.data.corpora import PREPARERS, prepare
from voxa.data.corpora.yesno import download_yesno, prepare_yesno, yesno_split
from voxa.errors import CorpusError

# 60 distinct 8-word names, in a scrambled order so the preparer must sort them itself
_STEMS = ["_".join(bits) for bits in itertools.islice(itertools.product("01", repeat=8), 7, 247, 4)]


def _wav(path: Path, seconds: float = 0.02, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate)), rate,
             subtype="PCM_16")
    return path


@pytest.fixture
def yesno_root(tmp_path) -> Path:
    folder = tmp_path / "waves_yesno"
    for stem in reversed(_STEMS):
        _wav(folder / f"{stem}.wav")
    (folder / "README").write_text("fake\n")
    return tmp_path


def test_stems_are_sixty_distinct_names():
    assert len(set(_STEMS)) == 60


def test_sixty_records_sorted_by_id(yesno_root):
    records = prepare_yesno(yesno_root)
    assert [r.id for r in records] == sorted(_STEMS)


def test_text_is_the_words_of_the_name(yesno_root):
    r = {r.id: r for r in prepare_yesno(yesno_root)}["0_0_0_0_1_0_1_1"]
    assert r.text == "no no no no yes no yes yes"


def test_labels_speaker_language_rate(yesno_root):
    r = prepare_yesno(yesno_root)[0]
    assert (r.speaker, r.language, r.sample_rate, r.extra["n_words"]) == ("yesno", "he", 8000, 8)
    assert r.duration == pytest.approx(0.02)


def test_kaldi_split_first_31_sorted_train_last_29_test(yesno_root):
    records = prepare_yesno(yesno_root)
    splits = [r.extra["split"] for r in records]
    assert splits == ["train"] * 31 + ["test"] * 29


def test_split_rule_counts_the_two_extra_listed_entries():
    assert [yesno_split(n) for n in (1, 2, 12, 60)] == [1, 2, 7, 31]


def test_root_may_be_the_waves_folder_itself(yesno_root):
    assert len(prepare_yesno(yesno_root / "waves_yesno")) == 60


def test_malformed_names_are_skipped_with_a_count(yesno_root):
    _wav(yesno_root / "waves_yesno" / "0_1_2.wav")
    _wav(yesno_root / "waves_yesno" / "notes.wav")
    with pytest.warns(RuntimeWarning, match="skipped 2 wav file"):
        records = prepare_yesno(yesno_root)
    assert len(records) == 60


def test_no_wav_is_a_corpus_error_naming_the_root(tmp_path):
    (tmp_path / "waves_yesno").mkdir()
    with pytest.raises(CorpusError, match=rf"^{tmp_path}: no waves_yesno recordings"):
        prepare_yesno(tmp_path)


def test_only_malformed_wavs_is_a_corpus_error(tmp_path):
    _wav(tmp_path / "hello.wav")
    with pytest.raises(CorpusError, match="none named like"), pytest.warns(RuntimeWarning):
        prepare_yesno(tmp_path)


def test_registered_for_voxa_data_prepare(yesno_root, tmp_path):
    assert PREPARERS["yesno"] is prepare_yesno
    records = prepare("yesno", yesno_root, tmp_path / "out")
    assert (tmp_path / "out" / "text").read_text().splitlines()[0] == f"{records[0].id} {records[0].text}"


# ----------------------------------------------------------------------------- download

def _tarball(tmp_path: Path, stems: list[str]) -> Path:
    src = tmp_path / "src" / "waves_yesno"
    for s in stems:
        _wav(src / f"{s}.wav")
    tgz = tmp_path / "waves_yesno.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(src, arcname="waves_yesno")
    return tgz


def test_download_extracts_a_checked_archive(tmp_path):
    tgz = _tarball(tmp_path, _STEMS[:3])
    digest = hashlib.sha256(tgz.read_bytes()).hexdigest()
    folder = download_yesno(tmp_path / "dest", url=tgz.as_uri(), sha256=digest)
    assert folder == tmp_path / "dest" / "waves_yesno"
    assert len(prepare_yesno(folder)) == 3


def test_download_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path):
    tgz = _tarball(tmp_path, _STEMS[:2])
    with pytest.raises(CorpusError, match="checksum mismatch"):
        download_yesno(tmp_path / "dest", url=tgz.as_uri(), sha256="0" * 64)
    assert list((tmp_path / "dest").iterdir()) == []


def test_download_unreachable_url_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="download failed"):
        download_yesno(tmp_path / "dest", url=(tmp_path / "absent.tar.gz").as_uri(), sha256=None)
