"""Aachen Impulse Response database (AIR) 1.4: ``ROOT[/AIR_1_4]/air_*.mat``.

Each MATLAB v5 file holds one response ``h_air`` (48 kHz, float64) and a struct ``air_info``.
Facts about the release that the code relies on:

* binaural files ``air_binaural_{room}_{channel}_{head}_{position}.mat`` carry ``distance`` in
  **centimetres** (booth 50-150, office 100-300, meeting 145-280, lecture 225-1020); it becomes
  ``extra["distance_m"]`` in metres;
* phone mock-up files ``air_phone_[BT_]{room}_{hhp|hfrp}_{n}.mat`` have no distance at all, number
  their channels 1/2 instead of 0/1, and their ``air_info.room`` disagrees with the file name
  (``lecutre1``, ``lecture2``, ``office1``), so the room is taken from the file name and the
  struct's value is kept as ``extra["info_room"]``;
* ``air_info.filename`` names the file before it was renamed; it is kept as
  ``extra["info_filename"]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from voxa.data.corpora._common import as_root
from voxa.data.manifest import Record
from voxa.errors import AudioError, CorpusError

__all__ = ["load_air_rir", "prepare_air"]

AIR_RATE = 48000
_BINAURAL = re.compile(r"^air_binaural_([a-z]+)_(\d+)_(\d+)_(\d+)$")
_PHONE = re.compile(r"^air_phone_(?:(BT)_)?([a-z]+\d*)_(hhp|hfrp)_(\d+)$")
_SKIP = {"description", "copyright", "contact", "precision"}


def _plain(v: Any) -> Any:
    """A MATLAB value as JSON-serialisable Python."""
    if isinstance(v, np.ndarray):
        return v.item() if v.ndim == 0 else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def _loadmat(path: Path, **kw: Any) -> dict[str, Any]:
    import scipy.io

    try:
        return scipy.io.loadmat(str(path), squeeze_me=True, struct_as_record=False, **kw)
    except Exception as e:  # scipy raises ValueError, TypeError, MatReadError... for bad files
        raise AudioError(path, f"not a readable MATLAB file ({type(e).__name__}: {e})") from None


def load_air_rir(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Load one AIR impulse response.

    Args:
        path: an AIR ``.mat`` file.

    Returns:
        ``(response, rate)``: a 1-D float32 array and its rate in Hz (``air_info.fs``, 48000).

    Raises:
        AudioError: the file is missing, not MATLAB, or lacks ``h_air``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "file not found")
    m = _loadmat(path, variable_names=["h_air", "air_info"])
    if "h_air" not in m:
        raise AudioError(path, "no 'h_air' variable (not an AIR response file)")
    h = np.asarray(m["h_air"], dtype=np.float32).reshape(-1)
    if h.size == 0 or not np.isfinite(h).all():
        raise AudioError(path, "empty or non-finite impulse response")
    info = m.get("air_info")
    rate = int(getattr(info, "fs", AIR_RATE)) if info is not None else AIR_RATE
    return h, rate


def _record(mat: Path) -> Record:
    import scipy.io

    try:
        shapes = {name: shape for name, shape, _cls in scipy.io.whosmat(str(mat))}
    except Exception as e:
        raise CorpusError(f"{mat}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    if "h_air" not in shapes or "air_info" not in shapes:
        raise CorpusError(f"{mat}: lacks 'h_air' or 'air_info' (not an AIR 1.4 file)")
    try:
        info = _loadmat(mat, variable_names=["air_info"])["air_info"]
    except AudioError as e:
        raise CorpusError(str(e)) from None
    fields = {k: _plain(getattr(info, k)) for k in info._fieldnames if k not in _SKIP}
    rate = int(fields.pop("fs", AIR_RATE))
    # whosmat reads only the header, so the response is never decoded here
    n = int(np.prod(shapes["h_air"]))
    extra: dict[str, Any] = {"fs": rate}
    if "filename" in fields:
        fields["info_filename"] = fields.pop("filename")
    b, p = _BINAURAL.match(mat.stem), _PHONE.match(mat.stem)
    if b:
        room = b.group(1)
        extra.update(rir_type="binaural", position=int(b.group(4)))
    elif p:
        room = p.group(2)
        extra.update(rir_type="phone", phone_pos=p.group(3), mock_up=p.group(1) or "HHP")
    else:
        room = str(fields.get("room", "unknown"))
    info_room = fields.pop("room", None)
    if info_room is not None and info_room != room:
        extra["info_room"] = info_room
    extra["room"] = room
    extra.update(fields)
    if "distance" in fields:
        # air_info.distance is in centimetres (booth 50/100/150 = 0.5/1/1.5 m in the AIR paper)
        extra["distance_m"] = round(float(fields.pop("distance")) / 100.0, 4)
        del extra["distance"]
    return Record(id=f"{room}-{mat.stem}", path=str(mat), duration=n / rate, sample_rate=rate,
                  extra=extra)


def prepare_air(root: str | os.PathLike) -> list[Record]:
    """Records for the AIR 1.4 responses, one per ``.mat`` file, sorted by id ``{room}-{stem}``.

    The record's ``path`` is the ``.mat`` file (load it with :func:`load_air_rir`; ``voxa.audio``
    cannot read it). ``speaker`` is ``None``; ``duration`` is the response length over ``fs``.

    Args:
        root: the folder holding ``AIR_1_4/`` or the ``AIR_1_4`` folder itself.

    Returns:
        Records with ``extra``: ``room``, ``distance_m`` (binaural only), ``channel``, ``head``,
        ``fs``, ``rir_type`` and the remaining ``air_info`` fields.

    Raises:
        CorpusError: no ``air_*.mat`` files under the root, or a file lacking ``h_air``.
    """
    root = as_root(root)
    base = root / "AIR_1_4" if (root / "AIR_1_4").is_dir() else root
    records = [_record(mat) for mat in sorted(base.glob("air_*.mat"))]
    if not records:
        raise CorpusError(f"{root}: no AIR responses found (expected [AIR_1_4/]air_*.mat)")
    return sorted(records, key=lambda r: r.id)
