"""Asterisk core sound prompts as packaged by Debian (``asterisk-core-sounds-<lang>[-wav]``).

Layout: ``/usr/share/asterisk/sounds/<lang>/`` with prompts in subfolders (``digits/``,
``letters/`` ...). In Debian, ``en``, ``en_US`` ... are alternatives symlinks to the real voice
folders named ``<lang>_<REGION>_<f|m>_<Voice>`` (``en_US_f_Allison``, ``es_MX_f_Allison``,
``fr_CA_f_June``, ``it_IT_m_Carlo``, ``ru_RU_f_IvrvoiceRU``); each voice is read once. Transcripts
are ``name: text`` lines (``digits/1: one``; ``;`` starts a comment) in
``/usr/share/doc/asterisk-core-sounds-<lang>/core-sounds-<lang>.txt.gz``.

Confound: **English and Spanish are spoken by the same voice (Allison)**, so both get
``speaker="allison"``. A language-ID model trained on these prompts can partly learn speakers; a
speaker-disjoint split keeps en and es together. The ids (``{lang}-...``) do not start with the
speaker, so Kaldi's ``validate_data_dir.sh`` reports ``utt2spk`` as not sorted by speaker; voxa
itself does not need that order.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from voxa.data.corpora._common import as_root, gender_word, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["prepare_asterisk", "read_transcripts"]

_LANG_DIR = re.compile(r"^([a-z]{2,3})(?:_[A-Za-z]{2,3})?(?:_([fm])_(\w+))?$")
_VOICE_DIR = re.compile(r"^([a-z]{2,3})_([A-Za-z]{2,3})_([fm])_(\w+)$")
# Voices of the stock core sounds, for installs whose folders are plain language codes.
_KNOWN_VOICES = {"en": ("allison", "f"), "es": ("allison", "f"), "fr": ("june", "f"),
                 "it": ("carlo", "m"), "ru": ("ivrvoiceru", "f")}
_DOC = Path("/usr/share/doc")


def read_transcripts(path: str | os.PathLike) -> dict[str, str]:
    """``{prompt name: text}`` from a ``core-sounds-<lang>.txt[.gz]`` file (UTF-8, BOM allowed)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    out = {}
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            out[name.strip()] = text.strip()
    return out


def _find_transcripts(lang: str, lang_dir: Path, root: Path) -> Path | None:
    names = (f"core-sounds-{lang}.txt", f"core-sounds-{lang}.txt.gz")
    for folder in (lang_dir, root, *root.parents):
        for n in names:
            if (folder / n).is_file():
                return folder / n
    if _DOC.is_dir():
        for doc in sorted(_DOC.glob(f"asterisk-core-sounds-{lang}*")):
            for n in names:
                if (doc / n).is_file():
                    return doc / n
    return None


def _has_wav(folder: Path) -> bool:
    return next(folder.rglob("*.wav"), None) is not None


def _language_dirs(root: Path) -> list[tuple[str, Path]]:
    """``(lang, real folder)`` per distinct voice folder; ROOT is a sounds or a language folder."""
    if next(root.glob("*.wav"), None) is not None or (root / "digits").is_dir():
        m = _LANG_DIR.match(root.name) or _LANG_DIR.match(root.resolve().name)
        if not m:
            raise CorpusError(f"{root}: cannot tell the language from the folder name (expected "
                              f"e.g. en, en_US or en_US_f_Allison)")
        return [(m.group(1), root.resolve())]
    by_real: dict[Path, str] = {}
    for child in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        m = _LANG_DIR.match(child.name)
        if not m or not child.is_dir():
            continue
        real = child.resolve()
        # en, en_US and en_US_f_Allison are one folder; the shortest name wins as the code
        if real not in by_real and _has_wav(real):
            by_real[real] = m.group(1)
    return sorted(((lang, real) for real, lang in by_real.items()), key=lambda x: x[0])


def prepare_asterisk(root: str | os.PathLike) -> list[Record]:
    """Records for the Asterisk prompts (8 kHz ``.wav`` only), sorted by id.

    Args:
        root: the sounds folder holding language folders (``/usr/share/asterisk/sounds``), or one
            language folder.

    Returns:
        One record per non-empty ``.wav``, id ``{lang}-{relative path without suffix, / as -}``:
        ``language`` the code, ``speaker`` the voice (lower case, e.g. ``allison``; else
        ``asterisk-{lang}``), ``text`` from the transcript when found. Prompts whose transcript
        is only a bracketed description (``[ascending tones]``, ``(1 second of silence)``) get
        ``text=None`` and ``extra["nonspeech"]``. ``extra`` also has ``prompt``, ``voice`` and
        ``gender`` where known.

    Raises:
        CorpusError: no language folder with ``.wav`` prompts under the root.
    """
    root = as_root(root)
    records = []
    for lang, folder in _language_dirs(root):
        v = _VOICE_DIR.match(folder.name)
        if v:
            voice, sex = v.group(4).lower(), v.group(3)
        else:
            voice, sex = _KNOWN_VOICES.get(lang, (None, None))
        trans_file = _find_transcripts(lang, folder, root)
        trans = read_transcripts(trans_file) if trans_file else {}
        for wav in sorted(folder.rglob("*.wav")):
            prompt = wav.relative_to(folder).with_suffix("").as_posix()
            rate, dur = header(wav)
            if dur == 0:
                # Debian's ru/is.wav is a bare 44-byte header (its transcript line is empty too)
                continue
            extra: dict[str, object] = {"prompt": prompt}
            if voice:
                extra["voice"] = voice
            if gender_word(sex):
                extra["gender"] = gender_word(sex)
            text = trans.get(prompt)
            if text is not None and re.fullmatch(r"[\[(][^\])]*[\])]", text):
                extra["nonspeech"] = text[1:-1].strip()
                text = None
            records.append(Record(id=f"{lang}-{prompt.replace('/', '-')}", path=str(wav),
                                  duration=dur, sample_rate=rate,
                                  speaker=voice or f"asterisk-{lang}", language=lang,
                                  text=text or None, extra=extra))
    if not records:
        raise CorpusError(f"{root}: no Asterisk prompts found (expected <lang>/*.wav, e.g. "
                          f"/usr/share/asterisk/sounds/en/digits/1.wav)")
    return sorted(records, key=lambda r: r.id)
