"""Corpus preparers: turn a corpus in its publisher's layout into a manifest and a Kaldi data dir.

Each preparer takes the corpus root and returns records sorted by id, with absolute audio paths
and durations read from file headers. :func:`prepare` runs one by name and writes
``outdir/manifest.jsonl`` and the Kaldi files beside it.

Example:
    >>> records = prepare("fsdd", "/data/free-spoken-digit-dataset", "data/fsdd")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxa.data.corpora.air import load_air_rir, prepare_air
from voxa.data.corpora.asterisk import prepare_asterisk
from voxa.data.corpora.emodb import prepare_emodb
from voxa.data.corpora.fsdd import prepare_fsdd
from voxa.data.corpora.klettres import prepare_klettres
from voxa.data.corpora.librispeech import prepare_librispeech
from voxa.data.corpora.timit import prepare_timit
from voxa.data.corpora.yesno import prepare_yesno
from voxa.data.kaldi_dir import write_kaldi_dir
from voxa.data.manifest import Record, write_manifest
from voxa.errors import CorpusError

__all__ = ["PREPARERS", "load_air_rir", "prepare", "prepare_air", "prepare_asterisk",
           "prepare_emodb", "prepare_fsdd", "prepare_klettres", "prepare_librispeech", "prepare_timit"]

PREPARERS: dict[str, Callable[[str | os.PathLike], list[Record]]] = {
    "air": prepare_air,
    "asterisk": prepare_asterisk,
    "emodb": prepare_emodb,
    "fsdd": prepare_fsdd,
    "klettres": prepare_klettres,
    "librispeech": prepare_librispeech,
    "timit": prepare_timit,
    "yesno": prepare_yesno,
}
"""Corpus name -> preparer taking the corpus root and returning sorted records."""

# Impulse responses have no speakers or labels: utt2spk groups them by room and nothing else
# (text, durations) is written, so Kaldi tools do not mistake them for utterances.
_KALDI_OPTIONS: dict[str, dict[str, Any]] = {
    "air": {"speaker_fn": lambda r: r.extra.get("room"), "labels": False},
}


def prepare(name: str, root: str | os.PathLike, outdir: str | os.PathLike) -> list[Record]:
    """Prepare corpus ``name`` found at ``root`` into ``outdir``.

    Writes ``outdir/manifest.jsonl`` and a Kaldi data directory in ``outdir`` (``wav.scp``,
    ``utt2spk``, ``spk2utt``, ``text`` ...), all atomically.

    Args:
        name: a key of :data:`PREPARERS`.
        root: the corpus in its publisher's layout.
        outdir: where to write.

    Returns:
        The records written.

    Raises:
        CorpusError: unknown name, or a root lacking the corpus' layout.
    """
    if name not in PREPARERS:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(sorted(PREPARERS))}")
    records = PREPARERS[name](root)
    outdir = Path(outdir)
    write_manifest(outdir / "manifest.jsonl", records)
    write_kaldi_dir(records, outdir, **_KALDI_OPTIONS.get(name, {}))
    return records
