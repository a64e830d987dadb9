"""Corpus preparers on tiny fake layouts, then on the real data in ../shared/data."""

from __future__ import annotations

import collections
import gzip
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile as sf

from voxa.data import load_data, read_kaldi_dir, read_manifest
from voxa.data.corpora import (
    PREPARERS,
    load_air_rir,
    prepare,
    prepare_air,
    prepare_asterisk,
    prepare_emodb,
    prepare_fsdd,
    prepare_librispeech,
    prepare_timit,
)
from voxa.errors import AudioError, CorpusError


def _wav(path: Path, seconds: float = 0.1, rate: int = 8000, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = 0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))
    sf.write(str(path), x, rate, format=fmt or ("FLAC" if path.suffix == ".flac" else "WAV"),
             subtype="PCM_16")
    return path


# ----------------------------------------------------------------------------- registry

def test_unknown_corpus_name_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus 'nope'; known: air, asterisk"):
        prepare("nope", tmp_path, tmp_path / "out")


@pytest.mark.parametrize("name", sorted(PREPARERS))
def test_empty_root_names_root_and_expected_layout(name, tmp_path):
    with pytest.raises(CorpusError, match=rf"^{tmp_path}: no .* found \(expected "):
        PREPARERS[name](tmp_path)


def test_missing_root_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError, match="not a directory"):
        prepare_fsdd(tmp_path / "absent")


def test_prepare_writes_manifest_and_kaldi_files(tmp_path):
    _wav(tmp_path / "c" / "recordings" / "3_theo_7.wav")
    out = tmp_path / "out"
    records = prepare("fsdd", tmp_path / "c", out)
    assert read_manifest(out / "manifest.jsonl") == records
    assert (out / "text").read_text() == "theo-3-07 three\n"
    assert read_kaldi_dir(out)[0].speaker == "theo"


# ----------------------------------------------------------------------------- fsdd

@pytest.fixture
def fsdd_root(tmp_path):
    for name in ("0_jackson_0", "9_jackson_12", "4_theo_1"):
        _wav(tmp_path / "recordings" / f"{name}.wav")
    (tmp_path / "recordings" / "notes.wav").write_bytes(b"")  # not a recording name: ignored
    (tmp_path / "speakers.tsv").write_text(
        "speaker\tgender\taccent\tlanguage\njackson\tmale\tUSA/neutral\tenglish\n")
    return tmp_path


def test_fsdd_labels_from_file_names(fsdd_root):
    recs = prepare_fsdd(fsdd_root)
    assert [(r.id, r.text, r.speaker, r.extra["digit"], r.extra["take"]) for r in recs] == [
        ("jackson-0-00", "zero", "jackson", 0, 0), ("jackson-9-12", "nine", "jackson", 9, 12),
        ("theo-4-01", "four", "theo", 4, 1)]


def test_fsdd_speaker_table_adds_gender_and_accent(fsdd_root):
    recs = {r.id: r for r in prepare_fsdd(fsdd_root)}
    assert recs["jackson-0-00"].extra["gender"] == "male"
    assert recs["jackson-0-00"].extra["accent"] == "USA/neutral"
    assert "gender" not in recs["theo-4-01"].extra


def test_fsdd_accepts_the_recordings_folder_and_reads_headers(fsdd_root):
    recs = prepare_fsdd(fsdd_root / "recordings")
    assert len(recs) == 3 and recs[0].extra["gender"] == "male"
    assert recs[0].sample_rate == 8000 and recs[0].duration == pytest.approx(0.1)
    assert Path(recs[0].path).is_absolute()


# ----------------------------------------------------------------------------- librispeech

@pytest.fixture
def libri_root(tmp_path):
    base = tmp_path / "LibriSpeech"
    _wav(base / "dev-clean" / "84" / "121123" / "84-121123-0000.flac", rate=16000)
    _wav(base / "dev-clean" / "84" / "121123" / "84-121123-0001.flac", rate=16000)
    _wav(base / "test-other" / "1688" / "142285" / "1688-142285-0000.flac", rate=16000)
    (base / "dev-clean" / "84" / "121123" / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n")
    (base / "SPEAKERS.TXT").write_text(
        ";ID  |SEX| SUBSET  |MINUTES| NAME\n84   | F | dev-clean | 8.02 | Christie Nowak\n")
    return tmp_path


def test_librispeech_finds_all_subsets(libri_root):
    recs = prepare_librispeech(libri_root)
    assert [(r.id, r.extra["subset"], r.extra["chapter"], r.speaker) for r in recs] == [
        ("1688-142285-0000", "test-other", "142285", "1688"),
        ("84-121123-0000", "dev-clean", "121123", "84"),
        ("84-121123-0001", "dev-clean", "121123", "84")]


def test_librispeech_transcripts_when_present_else_none(libri_root):
    recs = {r.id: r for r in prepare_librispeech(libri_root / "LibriSpeech")}
    assert recs["84-121123-0001"].text == "BUT IN LESS THAN FIVE MINUTES"
    assert recs["1688-142285-0000"].text is None


def test_librispeech_gender_from_speakers_txt(libri_root):
    recs = {r.id: r for r in prepare_librispeech(libri_root)}
    assert recs["84-121123-0000"].extra["gender"] == "female"
    assert "gender" not in recs["1688-142285-0000"].extra


# ----------------------------------------------------------------------------- timit

def _timit_files(folder: Path, sent: str, upper: bool, nist: bool) -> None:
    ext = (lambda e: e.upper()) if upper else (lambda e: e)
    name = sent.upper() if upper else sent
    _wav(folder / f"{name}.{ext('wav')}", seconds=0.25, rate=16000, fmt="NIST" if nist else "WAV")
    (folder / f"{name}.{ext('txt')}").write_text("0 4000 She had your dark suit.\n")
    (folder / f"{name}.{ext('wrd')}").write_text("800 2400 she\n2400 4000 had\n")
    (folder / f"{name}.{ext('phn')}").write_text("0 800 h#\n800 1600 sh\n1600 2400 iy\n")


def test_timit_nltk_sample_layout(tmp_path):
    _timit_files(tmp_path / "dr1-fvmh0", "sa1", upper=False, nist=False)
    (r,) = prepare_timit(tmp_path)
    assert (r.id, r.speaker, r.text) == ("fvmh0-sa1", "fvmh0", "She had your dark suit.")
    assert r.extra["gender"] == "female" and r.extra["dialect"] == "dr1"
    assert r.extra["phones"] == [[0.0, 0.05, "h#"], [0.05, 0.1, "sh"], [0.1, 0.15, "iy"]]
    assert r.extra["words"][1] == [0.15, 0.25, "had"]
    assert "split" not in r.extra


def test_timit_ldc_layout_any_case_with_sphere_audio(tmp_path):
    _timit_files(tmp_path / "TIMIT" / "TRAIN" / "DR1" / "FCJF0", "sa1", upper=True, nist=True)
    _timit_files(tmp_path / "TIMIT" / "test" / "dr2" / "mabc0", "si100", upper=False, nist=True)
    recs = prepare_timit(tmp_path)
    assert [(r.id, r.extra["split"], r.extra["dialect"], r.extra["gender"]) for r in recs] == [
        ("fcjf0-sa1", "train", "dr1", "female"), ("mabc0-si100", "test", "dr2", "male")]
    assert recs[0].sample_rate == 16000 and recs[0].duration == pytest.approx(0.25)
    assert len(recs[0].extra["phones"]) == 3


def test_timit_converted_riff_copy_is_not_counted_twice(tmp_path):
    spk = tmp_path / "TRAIN" / "DR1" / "FCJF0"
    _timit_files(spk, "sa1", upper=True, nist=True)
    _wav(spk / "SA1.WAV.wav", seconds=0.25, rate=16000)
    assert [r.id for r in prepare_timit(tmp_path)] == ["fcjf0-sa1"]


def test_timit_malformed_phone_line_names_file_and_line(tmp_path):
    _timit_files(tmp_path / "dr1-fvmh0", "sa1", upper=False, nist=False)
    (tmp_path / "dr1-fvmh0" / "sa1.phn").write_text("0 800 h#\n800 sh\n")
    with pytest.raises(CorpusError, match=r"sa1\.phn:2: expected 'start end label'"):
        prepare_timit(tmp_path)


# ----------------------------------------------------------------------------- emodb

def test_emodb_file_names_give_speaker_emotion_and_text_code(tmp_path):
    for name in ("03a01Wa", "16b10Tb", "08a02Nc"):
        _wav(tmp_path / "wav" / f"{name}.wav", rate=16000)
    _wav(tmp_path / "wav" / "readme.wav")  # not an EmoDB name: ignored
    recs = prepare_emodb(tmp_path)
    assert [(r.id, r.speaker, r.emotion, r.extra["text_code"], r.language) for r in recs] == [
        ("03a01Wa", "03", "anger", "a01", "de"), ("08a02Nc", "08", "neutral", "a02", "de"),
        ("16b10Tb", "16", "sadness", "b10", "de")]
    assert recs[2].extra["gender"] == "female"


# ----------------------------------------------------------------------------- air

def _air_mat(path: Path, n: int, **info) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h = np.zeros(n)
    h[10] = 1.0
    scipy.io.savemat(str(path), {"h_air": h, "air_info": {"fs": 48000, **info}})
    return path


@pytest.fixture
def air_root(tmp_path):
    _air_mat(tmp_path / "AIR_1_4" / "air_binaural_office_1_0_2.mat", 4800, room="office",
             distance=200, channel=1, head=0, filename="air_office_1_0_2.mat")
    _air_mat(tmp_path / "AIR_1_4" / "air_phone_lecture1_hhp_0.mat", 9600, room="lecture2",
             channel=1, head=1, phone_pos="hhp")
    return tmp_path


def test_air_distance_is_converted_from_centimetres(air_root):
    recs = {r.id: r for r in prepare_air(air_root)}
    r = recs["office-air_binaural_office_1_0_2"]
    assert r.extra["distance_m"] == 2.0 and "distance" not in r.extra
    assert (r.extra["room"], r.extra["channel"], r.extra["head"], r.extra["fs"]) == (
        "office", 1, 0, 48000)
    assert r.duration == pytest.approx(0.1) and r.speaker is None


def test_air_phone_room_comes_from_the_file_name(air_root):
    recs = {r.id: r for r in prepare_air(air_root / "AIR_1_4")}
    r = recs["lecture1-air_phone_lecture1_hhp_0"]
    assert r.extra["room"] == "lecture1" and r.extra["info_room"] == "lecture2"
    assert "distance_m" not in r.extra and r.duration == pytest.approx(0.2)


def test_air_kaldi_dir_groups_by_room_only(air_root, tmp_path):
    out = tmp_path / "out"
    prepare("air", air_root, out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.jsonl", "spk2utt", "utt2spk",
                                                     "wav.scp"]
    assert "office-air_binaural_office_1_0_2 office\n" in (out / "utt2spk").read_text()


def test_load_air_rir_returns_float32_and_rate(air_root):
    h, rate = load_air_rir(air_root / "AIR_1_4" / "air_binaural_office_1_0_2.mat")
    assert h.dtype == np.float32 and h.shape == (4800,) and rate == 48000 and h[10] == 1.0


def test_load_air_rir_rejects_a_non_matlab_file(tmp_path):
    (tmp_path / "x.mat").write_text("hello")
    with pytest.raises(AudioError, match="not a readable MATLAB file"):
        load_air_rir(tmp_path / "x.mat")


def test_air_file_without_h_air_is_a_corpus_error(tmp_path):
    scipy.io.savemat(str(tmp_path / "air_binaural_booth_0_0_1.mat"), {"x": np.zeros(3)})
    with pytest.raises(CorpusError, match="lacks 'h_air' or 'air_info'"):
        prepare_air(tmp_path)


# ----------------------------------------------------------------------------- asterisk

@pytest.fixture
def sounds_root(tmp_path):
    sounds = tmp_path / "sounds"
    en = sounds / "en_US_f_Allison"
    for rel in ("hello-world", "digits/1", "beep"):
        _wav(en / f"{rel}.wav")
    (en / "empty.wav").parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(en / "empty.wav"), np.zeros(0), 8000)  # header only, like Debian's ru/is.wav
    (en / "hello-world.gsm").write_bytes(b"x")  # other formats are ignored
    (sounds / "en").symlink_to(en, target_is_directory=True)
    (sounds / "en_US").symlink_to(en, target_is_directory=True)
    _wav(sounds / "it_IT_m_Carlo" / "ciao.wav")
    with gzip.open(tmp_path / "core-sounds-en.txt.gz", "wt", encoding="utf-8") as f:
        f.write("; Core Asterisk Sounds in English\n\nhello-world: Hello world.\n"
                "digits/1: one\nbeep: [this is a simple beep tone]\n")
    return sounds


def test_asterisk_reads_each_voice_once(sounds_root):
    recs = prepare_asterisk(sounds_root)
    assert [(r.id, r.language, r.speaker) for r in recs] == [
        ("en-beep", "en", "allison"), ("en-digits-1", "en", "allison"),
        ("en-hello-world", "en", "allison"), ("it-ciao", "it", "carlo")]


def test_asterisk_transcripts_from_a_parent_folder(sounds_root):
    recs = {r.id: r for r in prepare_asterisk(sounds_root)}
    assert recs["en-digits-1"].text == "one" and recs["en-hello-world"].text == "Hello world."
    assert recs["en-beep"].text is None
    assert recs["en-beep"].extra["nonspeech"] == "this is a simple beep tone"


def test_asterisk_accepts_one_language_folder(sounds_root):
    recs = prepare_asterisk(sounds_root / "en")
    assert {r.language for r in recs} == {"en"} and len(recs) == 3
    assert recs[0].extra["gender"] == "female"


# ----------------------------------------------------------------------------- real data

def test_real_fsdd(shared_data_dir):
    recs = prepare_fsdd(shared_data_dir / "fsdd")
    assert len(recs) == 3000
    assert len({r.speaker for r in recs}) == 6
    assert collections.Counter(r.text for r in recs)["seven"] == 300
    assert {r.sample_rate for r in recs} == {8000}


def test_real_librispeech_subsets_without_transcripts(shared_data_dir):
    recs = prepare_librispeech(shared_data_dir / "librispeech")
    subsets = collections.Counter(r.extra["subset"] for r in recs)
    assert subsets == {"test-other": 100, "train-clean-100": 251}
    assert all(r.text is None for r in recs)
    assert all(r.extra.get("gender") in ("female", "male") for r in recs)


def test_real_timit_sample(shared_data_dir):
    recs = prepare_timit(shared_data_dir / "timit_sample")
    assert len(recs) == 160 and len({r.speaker for r in recs}) == 16
    assert all(len(r.extra["phones"]) > 10 and r.extra["words"] for r in recs)
    r = next(r for r in recs if r.id == "fvmh0-sa1")
    assert r.text == "She had your dark suit in greasy wash water all year."
    assert r.extra["phones"][0] == [0.0, 0.48825, "h#"]
    # the last phone ends within the audio, give or take one sample: fvmh0/sa1.phn ends at sample
    # 54682 of a 54681-sample file
    assert all(r.extra["phones"][-1][1] <= r.duration + 1 / 16000 + 1e-6 for r in recs)


def test_real_emodb(shared_data_dir):
    recs = prepare_emodb(shared_data_dir / "emodb")
    assert len(recs) == 535 and len({r.speaker for r in recs}) == 10
    assert set(collections.Counter(r.emotion for r in recs)) == {
        "anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"}


def test_real_air_distances(shared_data_dir):
    recs = prepare_air(shared_data_dir / "air")
    assert len(recs) == 86
    dist = {r.extra["room"]: set() for r in recs}
    for r in recs:
        if "distance_m" in r.extra:
            dist[r.extra["room"]].add(r.extra["distance_m"])
    assert dist["booth"] == {0.5, 1.0, 1.5} and dist["office"] == {1.0, 2.0, 3.0}
    assert min(dist["lecture"]) == 2.25 and max(dist["lecture"]) == 10.2
    assert sum("distance_m" in r.extra for r in recs) == 68  # the 18 phone mock-ups have none


def test_real_prepare_round_trips_through_both_forms(shared_data_dir, tmp_path):
    records = prepare("emodb", shared_data_dir / "emodb", tmp_path)
    from_kaldi = read_kaldi_dir(tmp_path)
    assert [(r.id, r.path, r.speaker, r.emotion) for r in from_kaldi] == [
        (r.id, r.path, r.speaker, r.emotion) for r in records]
    assert load_data(tmp_path) == records


_SOUNDS = Path("/usr/share/asterisk/sounds")


@pytest.mark.skipif(not (_SOUNDS / "en").is_dir(),
                    reason="asterisk-core-sounds-en-wav not installed (/usr/share/asterisk/sounds)")
def test_real_asterisk():
    recs = prepare_asterisk(_SOUNDS)
    by_lang = collections.Counter(r.language for r in recs)
    assert all(500 <= n <= 620 for n in by_lang.values()), by_lang
    assert {r.sample_rate for r in recs} == {8000}
    speakers = {lang: {r.speaker for r in recs if r.language == lang} for lang in by_lang}
    if "es" in speakers:
        assert speakers["en"] == speakers["es"] == {"allison"}
    en = [r for r in recs if r.language == "en"]
    assert sum(r.text is not None for r in en) > 0.9 * len(en)
    assert next(r for r in en if r.id == "en-digits-7").text == "seven"


# ----------------------------------------------------------------------------- klettres

def _ogg(path: Path, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), 0.1 * np.sin(np.arange(int(44100 * seconds)) * 0.05), 44100, format="OGG",
             subtype="VORBIS")


def test_klettres_reads_languages_variants_and_names(tmp_path):
    from voxa.data.corpora import prepare_klettres

    _ogg(tmp_path / "fr" / "alpha" / "a-0.ogg")
    _ogg(tmp_path / "fr" / "syllab" / "ba.ogg")
    _ogg(tmp_path / "en_GB" / "alpha" / "a-0.ogg")
    (tmp_path / "fr" / "sounds.xml").write_text(
        '<klettres><language code="fr"><alphabet><sound name="A" file="fr/alpha/a-0.ogg" />'
        '</alphabet></language></klettres>', encoding="utf-8")
    (tmp_path / "pics").mkdir()  # not a language folder
    recs = {r.id: r for r in prepare_klettres(tmp_path)}
    assert sorted(recs) == ["klettres-en_GB-alpha-a-0", "klettres-fr-alpha-a-0", "klettres-fr-syllab-ba"]
    gb = recs["klettres-en_GB-alpha-a-0"]
    assert (gb.language, gb.speaker, gb.extra["set"]) == ("en", "klettres-en_GB", "alpha")
    assert recs["klettres-fr-alpha-a-0"].text == "A" and recs["klettres-fr-syllab-ba"].text is None
    assert abs(recs["klettres-fr-syllab-ba"].duration - 0.5) < 0.01


def test_klettres_without_sounds_is_a_corpus_error(tmp_path):
    from voxa.data.corpora import prepare_klettres

    (tmp_path / "fr").mkdir()
    with pytest.raises(CorpusError, match="no KLettres sounds"):
        prepare_klettres(tmp_path)
