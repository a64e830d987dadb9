"""Kaldi's ``waves_yesno`` corpus (OpenSLR resource 1): ``ROOT/waves_yesno/{w1}_{w2}_..._{w8}.wav``.

60 files at 8 kHz, one male speaker saying eight words each, every word the **Hebrew** for "yes"
("ken") or "no" ("lo"), per Kaldi's ``egs/yesno/README.txt``; the transcript is the file name, 1 for
yes and 0 for no (``0_1_1_0_1_0_1_1.wav``). The records carry the English glosses as text ("no yes
yes no ...", Kaldi writes ``NO YES ...``) and ``language="he"``.

Split, from Kaldi's ``egs/yesno/s5/local/prepare_data.sh`` and
``local/create_yesno_waves_test_train.pl``: ``ls -1 waves_yesno`` is listed into ``n`` lines and the
lines with 1-based index ``i <= n / 2`` go to train, the rest to test. The published folder holds two
non-wav entries that sort after the wavs (Kaldi's own run warns ``#lines is (utt2spk,feats.scp) is
(31,29)`` for ``test_yesno``: 31 listed, 29 with features), so ``n = 62`` and the 60 sorted wavs split
into the first 31 (train) and the last 29 (test, the 232 words of Kaldi's ``%WER ... / 232``). Here the
rule is applied to the wavs with those two entries counted, ``n_train = (n_wav + 2) // 2``, so a folder
with extra files of its own (a manifest, notes) does not move the split.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
import warnings
from pathlib import Path

from voxa.data.corpora._common import as_root, header
from voxa.data.manifest import Record
from voxa.errors import CorpusError

__all__ = ["YESNO_SHA256", "YESNO_URL", "download_yesno", "prepare_yesno", "yesno_split", "yesno_text"]

YESNO_URL = "http://www.openslr.org/resources/1/waves_yesno.tar.gz"
"""OpenSLR resource 1, the archive Kaldi's ``egs/yesno/s5/run.sh`` downloads (about 4.5 MB)."""
YESNO_SHA256 = "c3f49e0cca421f96b75b41640749167b52118f232498667ca7a5f9416aef8e73"
"""SHA-256 of ``waves_yesno.tar.gz`` (the checksum torchaudio's YESNO dataset checks)."""

_NAME = re.compile(r"^[01](?:_[01])*$")
_WORDS = {"0": "no", "1": "yes"}
# Non-wav entries of the published folder that Kaldi's listing counts (see the module docstring).
_EXTRA_LISTED = 2


def yesno_text(stem: str) -> str:
    """The words a ``waves_yesno`` file name encodes.

    Example:
        >>> yesno_text("0_1_1_0")
        'no yes yes no'
    """
    return " ".join(_WORDS[c] for c in stem.split("_"))


def yesno_split(n_wav: int) -> int:
    """How many of ``n_wav`` sorted files Kaldi's rule puts in train (the rest are test).

    Example:
        >>> yesno_split(60)
        31
    """
    n = n_wav + _EXTRA_LISTED
    # the Perl script's `$i <= $nol/2` over 1-based line numbers
    return min(n_wav, n // 2)


def _wav_dir(root: Path) -> Path:
    sub = root / "waves_yesno"
    return sub if sub.is_dir() else root


def prepare_yesno(root: str | os.PathLike) -> list[Record]:
    """Records for ``waves_yesno``, sorted by id (the file stem, as in Kaldi).

    Args:
        root: the ``waves_yesno`` folder or the folder holding it.

    Returns:
        One record per file: ``text`` the words ("no yes ..."), ``speaker="yesno"``,
        ``language="he"``, ``extra`` with ``split`` (``"train"``/``"test"``, Kaldi's split) and
        ``n_words``.

    Raises:
        CorpusError: no wav files under the root. Files whose names are not 0/1 words joined by
            ``_`` are skipped with one warning giving their count.

    Example:
        >>> records = prepare_yesno("/data/waves_yesno")  # doctest: +SKIP
        >>> records[0].text, records[0].extra["split"]  # doctest: +SKIP
        ('no no no no no no no no', 'train')
    """
    root = as_root(root)
    wav_dir = _wav_dir(root)
    wavs = sorted(wav_dir.glob("*.wav"), key=lambda p: p.name)
    if not wavs:
        raise CorpusError(f"{root}: no waves_yesno recordings found (expected "
                          f"[waves_yesno/]0_1_..._1.wav)")
    good = [w for w in wavs if _NAME.match(w.stem)]
    if len(good) < len(wavs):
        bad = [w.name for w in wavs if not _NAME.match(w.stem)]
        warnings.warn(f"{wav_dir}: skipped {len(bad)} wav file(s) not named like 0_1_..._1.wav "
                      f"(e.g. {bad[0]})", RuntimeWarning, stacklevel=2)
    if not good:
        raise CorpusError(f"{root}: no waves_yesno recordings found ({len(wavs)} wav file(s), none "
                          f"named like 0_1_..._1.wav)")
    n_train = yesno_split(len(good))
    records = []
    for i, wav in enumerate(good):
        rate, dur = header(wav)
        text = yesno_text(wav.stem)
        records.append(Record(id=wav.stem, path=str(wav), duration=dur, sample_rate=rate,
                              speaker="yesno", language="he", text=text,
                              extra={"split": "train" if i < n_train else "test",
                                     "n_words": len(text.split())}))
    return sorted(records, key=lambda r: r.id)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_yesno(dest: str | os.PathLike, url: str = YESNO_URL, sha256: str | None = YESNO_SHA256,
                   timeout: float = 60.0) -> Path:
    """Download ``waves_yesno.tar.gz`` and extract it into ``dest``; returns ``dest/waves_yesno``.

    Nothing is downloaded when ``dest/waves_yesno`` already holds wavs. The archive goes to a temporary
    file and is checked (non-empty, SHA-256 when ``sha256`` is given) before extraction; members that
    would land outside ``dest`` are refused.

    Args:
        dest: folder to extract into (created).
        url: where to fetch from (``file://`` URLs work, for tests).
        sha256: expected SHA-256 of the archive; ``None`` skips the check.
        timeout: seconds to wait on the connection.

    Returns:
        The extracted ``waves_yesno`` folder.

    Raises:
        CorpusError: download failed, checksum mismatch, not a tar archive, or no ``waves_yesno``
            folder with wavs in it.

    Example:
        >>> folder = download_yesno("/data")  # doctest: +SKIP
        >>> len(prepare_yesno(folder))  # doctest: +SKIP
        60
    """
    dest = Path(dest).expanduser().absolute()
    target = dest / "waves_yesno"
    if target.is_dir() and next(target.glob("*.wav"), None) is not None:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".waves_yesno.", suffix=".tar.gz", dir=dest)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as e:
            raise CorpusError(f"{url}: download failed ({e})") from None
        size = tmp.stat().st_size
        if size == 0:
            raise CorpusError(f"{url}: downloaded an empty file")
        if sha256 is not None and (got := _sha256(tmp)) != sha256.lower():
            raise CorpusError(f"{url}: checksum mismatch ({size} bytes, sha256 {got}, expected {sha256})")
        try:
            with tarfile.open(tmp) as tar:
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, OSError) as e:
            raise CorpusError(f"{url}: cannot extract ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    if not target.is_dir() or next(target.glob("*.wav"), None) is None:
        raise CorpusError(f"{url}: the archive holds no waves_yesno/*.wav")
    return target
