"""KLettres' spoken letters and syllables as packaged by Debian (``klettres-data``).

Layout: ``/usr/share/klettres/<code>/{alpha,syllab}/*.ogg`` (44.1 kHz Ogg Vorbis), one folder per
language or regional variant (``en``, ``en_GB``, ``es``, ``fr``, ``it``, ``ru``, ...), with the names
of the sounds in ``<code>/sounds.xml`` (``<sound name="BA" file="es/syllab/ba.ogg"/>``). Each folder
is read by other speakers than the Asterisk prompts, which makes it the cross-voice test set of
language ID: a system trained on Asterisk's one voice per language and tested here has to recognise
the language, not the voice. The items are short (0.2-3.5 s, one letter or syllable each).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from voxa.data.corpora._common import as_root, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["prepare_klettres"]

_CODE = re.compile(r"^([a-z]{2,3})(?:_[A-Za-z]{2,3})?$")


def _names(xml_file: Path) -> dict[str, str]:
    """``{relative file: sound name}`` from a ``sounds.xml`` (empty when it is missing or malformed)."""
    if not xml_file.is_file():
        return {}
    try:
        tree = ET.parse(xml_file)
    except ET.ParseError:
        return {}
    return {s.get("file"): s.get("name") for s in tree.iter("sound") if s.get("file") and s.get("name")}


def prepare_klettres(root: str | os.PathLike) -> list[Record]:
    """Records for the KLettres sounds, sorted by id.

    Args:
        root: the folder holding the language folders (``/usr/share/klettres``).

    Returns:
        One record per non-empty ``.ogg``, id ``klettres-{code}-{alpha|syllab}-{name}``: ``language``
        the two- or three-letter code (``en_GB`` -> ``en``), ``speaker`` ``klettres-{code}`` (one
        voice per folder), ``text`` the letter or syllable from ``sounds.xml`` when listed, and
        ``extra`` ``{"set": "alpha" | "syllab", "variant": code}``.

    Raises:
        CorpusError: no language folder with ``.ogg`` sounds under the root.

    Example:
        >>> recs = prepare_klettres("/usr/share/klettres")  # doctest: +SKIP
        >>> sorted({r.language for r in recs})[:3]          # doctest: +SKIP
        ['ar', 'cs', 'da']
    """
    root = as_root(root)
    records = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        m = _CODE.match(folder.name)
        if not m:
            continue
        names = _names(folder / "sounds.xml")
        for ogg in sorted(folder.rglob("*.ogg")):
            rel = ogg.relative_to(folder)
            rate, dur = header(ogg)
            if dur == 0:
                continue
            kind = rel.parts[0] if len(rel.parts) > 1 else "other"
            stem = rel.with_suffix("").as_posix().replace("/", "-")
            records.append(Record(id=f"klettres-{folder.name}-{stem}", path=str(ogg), duration=dur,
                                  sample_rate=rate, speaker=f"klettres-{folder.name}",
                                  language=m.group(1), text=names.get(f"{folder.name}/{rel.as_posix()}"),
                                  extra={"set": kind, "variant": folder.name}))
    if not records:
        raise CorpusError(f"{root}: no KLettres sounds found (expected <code>/alpha/*.ogg, e.g. "
                          f"/usr/share/klettres/fr/alpha/a-0.ogg)")
    return sorted(records, key=lambda r: r.id)
