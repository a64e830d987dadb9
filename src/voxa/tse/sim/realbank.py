"""Banks of measured impulse responses (the paper's D4 uses BUT ReverbDB; AIR is the one at hand).

A real bank has the rows of a simulated one (see :mod:`voxa.tse.bank`) with ``room_dim``, ``mic``
and ``src`` left ``null`` where the corpus does not publish coordinates, plus ``extra`` (the corpus'
own fields). Two rules make it usable for two-talker mixtures and honest for testing:

* **group = one room and one microphone.** A mixture convolves each talker with a response to the
  same microphone, so responses from different microphones must never share a group. In AIR, the
  left and right ear (``channel``) are different microphones, and the dummy head being present or
  not (``head``) changes what the microphone picks up, so the group is ``air-{room}-ch{c}-head{h}``.
* **split by position.** Each source position (in AIR: room and position number; the four
  channel/head responses of a position are the same source) goes wholly to one split, so a test
  position is never heard in fine-tuning. Positions are split per room, so every room that can
  afford it appears in both; a split gets a room's positions only if it gets at least
  ``min_positions`` of them (a group with one position cannot form a two-talker mixture),
  otherwise they stay in train. With AIR's 3/3/5/6 positions (booth/office/meeting/lecture) and the
  default 25 % test, meeting and lecture give two test positions each, booth and office stay whole
  in fine-tuning: 16 of 68 responses (24 %) are test, near the paper's D4 ratio (182 of 806).
"""

from __future__ import annotations

import math
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from voxa.errors import CorpusError, VoxaError
from voxa.tse.bank import SPLITS, write_bank

__all__ = ["RealItem", "build_air_bank", "build_real_bank", "load_air_items", "load_butreverb",
           "split_positions"]

#: the paper's query half-width for real responses (D4)
R_SPK_REAL = 0.1


class RealItem(NamedTuple):
    """One measured response.

    Attributes:
        rir: the response, 1-D.
        rate: its sample rate in Hz.
        distance: source-microphone distance in metres.
        group: its room-and-microphone group.
        extra: corpus fields kept in the row (``room``, ``id``, ``rt60``... when known).
        position: identity of the source position for splitting (responses of one position share a
            split); ``None``: the distance within the room.
        split: a fixed split; ``None``: assigned by :func:`split_positions`.
    """

    rir: np.ndarray
    rate: int
    distance: float
    group: str
    extra: dict[str, Any]
    position: Hashable | None = None
    split: str | None = None


def _room(item: RealItem) -> str:
    return str(item.extra.get("room", item.group))


def _position(item: RealItem) -> Hashable:
    return (_room(item), item.position if item.position is not None else round(float(item.distance), 4))


def split_positions(n: int, fractions: Sequence[float], min_positions: int = 2) -> list[int]:
    """How many of a room's ``n`` positions go to (train, valid, test).

    Valid and test get ``ceil(fraction * n)`` each, or none if that is below ``min_positions``;
    train keeps the rest and must keep ``min_positions`` itself (valid gives way first, then test).
    """
    f = list(fractions) + [0.0] * (3 - len(fractions))
    valid = math.ceil(f[1] * n - 1e-9) if f[1] > 0 else 0
    test = math.ceil(f[2] * n - 1e-9) if f[2] > 0 else 0
    valid = valid if valid >= min_positions else 0
    test = test if test >= min_positions else 0
    if n - valid - test < min_positions:
        valid = 0
    if n - valid - test < min_positions:
        test = 0
    return [n - valid - test, valid, test]


def _assign_splits(items: Sequence[RealItem], fractions: Sequence[float], seed: int,
                   min_positions: int) -> list[str]:
    by_room: dict[str, list[Hashable]] = defaultdict(list)
    for it in items:
        key = _position(it)
        if key not in by_room[_room(it)]:
            by_room[_room(it)].append(key)
    where: dict[Hashable, str] = {}
    for room, keys in sorted(by_room.items()):
        keys = sorted(keys, key=repr)
        # each room's shuffle depends only on (seed, room): adding a room never reshuffles another
        rng = np.random.default_rng([int(seed), zlib.crc32(room.encode())])
        order = [keys[i] for i in rng.permutation(len(keys))]
        counts = split_positions(len(keys), fractions, min_positions)
        labels = [s for s, c in zip(SPLITS, counts) for _ in range(c)]
        where.update(zip(order, labels))
    return [it.split or where[_position(it)] for it in items]


def build_real_bank(items: Iterable[RealItem | tuple], out: str | os.PathLike, rate: int = 16000,
                    name: str = "real", meta: dict[str, Any] | None = None,
                    fractions: Sequence[float] = (0.75, 0.0, 0.25), seed: int = 0, min_positions: int = 2,
                    shard_size: int = 500) -> Path:
    """Write measured responses as a bank, resampled to ``rate``, split by source position.

    Args:
        items: :class:`RealItem` or plain ``(rir, rate, distance, group, extra)`` tuples.
        out: bank directory (a new one, or one holding the same build).
        rate: the bank's sample rate in Hz.
        name: the bank's ``preset`` field and id prefix.
        meta: more bank metadata.
        fractions: (train, valid, test) share of each room's positions; see :func:`split_positions`.
        seed: shuffles positions within each room before assigning them.
        min_positions: fewest positions a split may take from a room.
        shard_size: responses per shard.

    Returns:
        The bank directory.

    Raises:
        VoxaError: no items, or a distance that is not a positive number.
    """
    from voxa.audio.resample import resample

    its = [it if isinstance(it, RealItem) else RealItem(*it) for it in items]
    if not its:
        raise VoxaError(f"{out}: no impulse responses to write")
    for it in its:
        if not (isinstance(it.distance, (int, float)) and math.isfinite(it.distance) and it.distance > 0):
            raise VoxaError(f"{it.extra.get('id', it.group)}: distance must be a positive number of metres, "
                            f"got {it.distance!r}")
    splits = _assign_splits(its, fractions, seed, min_positions)
    rooms = {r: k for k, r in enumerate(sorted({_room(it) for it in its}))}
    mics: dict[str, dict[str, int]] = defaultdict(dict)
    for it in its:
        mics[_room(it)].setdefault(it.group, len(mics[_room(it)]))

    def rows() -> Iterable[tuple[dict[str, Any], np.ndarray]]:
        for i, (it, split) in enumerate(zip(its, splits)):
            h = resample(np.asarray(it.rir, dtype=np.float32).reshape(-1), int(it.rate), int(rate)).numpy()
            extra = {k: v for k, v in it.extra.items() if k not in ("id", "rt60", "room_dim", "mic", "src")}
            yield {
                "id": str(it.extra.get("id", f"{name}-r{i:05d}")), "group": it.group,
                "room_id": rooms[_room(it)], "mic_id": mics[_room(it)][it.group], "split": split,
                "room_dim": it.extra.get("room_dim"), "rt60": it.extra.get("rt60"),
                "mic": it.extra.get("mic"), "src": it.extra.get("src"),
                "distance": round(float(it.distance), 6), "preset": name, "room": _room(it),
                "position": str(_position(it)[1]), "extra": extra,
            }, h

    full_meta = {"kind": "real", "preset": name, "rate": int(rate), "seed": int(seed),
                 "fractions": [float(f) for f in fractions], "min_positions": int(min_positions),
                 "split_by": "source position within each room", "r_spk": R_SPK_REAL,
                 "rirs": len(its), "distance": "source-microphone distance, metres", **(meta or {})}
    return write_bank(out, full_meta, rows(), shard_size=shard_size)


def load_air_items(root: str | os.PathLike) -> list[RealItem]:
    """AIR 1.4 responses that have a measured distance (the binaural ones), at 48 kHz.

    Phone mock-up responses carry no distance and are left out. Group: ``air-{room}-ch{c}-head{h}``;
    position: ``air_info``'s position number within the room.

    Raises:
        CorpusError: no AIR responses, or none with a distance.
    """
    from voxa.data.corpora.air import load_air_rir, prepare_air

    items = []
    for rec in prepare_air(root):
        x = rec.extra
        if x.get("distance_m") is None:
            continue
        h, fs = load_air_rir(rec.path)
        group = f"air-{x['room']}-ch{x.get('channel', 0)}-head{x.get('head', 0)}"
        extra = {"id": f"air-{Path(rec.path).stem}", "room": x["room"], "channel": x.get("channel"),
                 "head": x.get("head"), "position_number": x.get("position"), "corpus": "AIR 1.4"}
        pos = (x.get("position"), x.get("azimuth")) if x.get("azimuth") is not None else x.get("position")
        items.append(RealItem(h, fs, float(x["distance_m"]), group, extra, position=pos))
    if not items:
        raise CorpusError(f"{root}: no AIR responses with a measured distance (binaural files)")
    return items


def build_air_bank(root: str | os.PathLike, out: str | os.PathLike, rate: int = 16000,
                   test_fraction: float = 0.25, valid_fraction: float = 0.0, seed: int = 0) -> Path:
    """A bank from the Aachen AIR 1.4 binaural responses (a small stand-in for the paper's D4).

    Args:
        root: folder holding ``AIR_1_4/`` (or that folder).
        out: bank directory.
        rate: working rate; AIR's 48 kHz responses are resampled to it.
        test_fraction, valid_fraction: share of each room's positions for test / valid (see the
            module docstring: a room's share is taken only if it reaches two positions, so with
            AIR's few positions the default has no valid split; fine-tuning may validate on D3's).
        seed: shuffles the positions within each room.

    Returns:
        The bank directory.
    """
    if not 0 <= test_fraction < 1 or not 0 <= valid_fraction < 1 or test_fraction + valid_fraction >= 1:
        raise VoxaError(f"test/valid fractions must be in [0, 1) and sum below 1, got "
                        f"{test_fraction}/{valid_fraction}")
    items = load_air_items(root)
    return build_real_bank(items, out, rate, name="AIR",
                           meta={"corpus": "AIR 1.4 binaural", "source_rate": 48000,
                                 "group": "room-channel-head (one microphone in one room)"},
                           fractions=(1 - test_fraction - valid_fraction, valid_fraction, test_fraction),
                           seed=seed)


_META_LINE = re.compile(r"^\$(\S+)\s+(.*?)\s*$")


def _read_meta(path: Path) -> dict[str, str]:
    """BUT ``*_meta.txt``: ``$Key<TAB>value`` lines (other lines are comments)."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _META_LINE.match(line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _float(meta: dict[str, str], key: str) -> float | None:
    try:
        v = float(meta[key])
    except (KeyError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _xyz(meta: dict[str, str], prefix: str) -> list[float] | None:
    # BUT gives positions as Depth (x), Width (y), Height (z) in metres
    v = [_float(meta, f"{prefix}{a}") for a in ("Depth", "Width", "Height")]
    return None if any(c is None for c in v) else [float(c) for c in v]  # type: ignore[arg-type]


def load_butreverb(root: str | os.PathLike, rooms: Sequence[str] | None = None,
                   group_by: str = "mic") -> list[RealItem]:
    """BUT Speech@FIT ReverbDB (rel_19_06, RIR-only) responses with their distances.

    Layout: ``ROOT/<room>/<MicIDxx>/<SpkIDyy_date_variant>/<NN>/{mic_meta.txt, RIR/*.wav}``, where
    ``<NN>`` is one microphone of the ``MicIDxx`` configuration and ``mic_meta.txt`` holds
    ``$Key<TAB>value`` lines: the distance ``$EnvMic<N>RelDistance`` (or else it is computed from the
    microphone ``$EnvMic<N>Depth/Width/Height`` and loudspeaker ``$EnvSpk...Depth/Width/Height``
    positions, also looked up in the session's ``spk_meta.txt``) and ``$EnvMic<N>RelRT60``. Of
    repeated measurements (several sessions of one loudspeaker position, or ``.v00``, ``.v01``...
    sweeps) the first is kept, preferring sessions ending in ``_S`` (dedicated RIR sessions).

    Args:
        root: the extracted corpus root.
        rooms: keep only these rooms (the paper's D4: ``VUT_FIT_Q301``, ``VUT_FIT_L207``,
            ``VUT_FIT_L212``).
        group_by: ``"mic"``: a group is one microphone and its loudspeaker positions (mixtures are
            then physically exact; positions = loudspeaker positions); ``"speaker"``: one loudspeaker
            position and every microphone, by acoustic reciprocity (many more distances per group;
            positions = microphones).

    Returns:
        Items with ``extra``: ``room``, ``config``, ``speaker``, ``mic``, ``rt60``, ``mic``/``src``
        coordinates when given, ``path``.

    Raises:
        CorpusError: the root has no such layout, or a response has no usable distance.
    """
    from voxa.audio.io import load

    if group_by not in ("mic", "speaker"):
        raise VoxaError(f"group_by must be 'mic' or 'speaker', got {group_by!r}")
    base = Path(root)
    if not base.is_dir():
        raise CorpusError(f"{base}: corpus root is not a directory")
    wavs = sorted(base.glob("*/*/*/*/RIR/*.wav"),
                  key=lambda p: (p.parts[-6], p.parts[-5], p.parts[-4].split("_")[0], p.parts[-3],
                                 not p.parts[-4].endswith("_S"), p.parts[-4], p.name))
    seen: set[tuple[str, ...]] = set()
    items = []
    for wav in wavs:
        room, config, session, mic = wav.parts[-6:-2]
        if rooms is not None and room not in rooms:
            continue
        speaker = session.split("_")[0]
        key = (room, config, speaker, mic)
        if key in seen:
            continue
        seen.add(key)
        meta = {**_read_meta(wav.parent.parent.parent / "spk_meta.txt"), **_read_meta(wav.parent.parent /
                                                                                        "mic_meta.txt")}
        mic_no = meta.get("EnvMicID", str(int(mic)) if mic.isdigit() else mic)
        pfx = f"EnvMic{mic_no}"
        mic_xyz = _xyz(meta, pfx)
        spk_keys = sorted({k[: -len("Depth")] for k in meta if k.startswith("EnvSpk") and k.endswith("Depth")
                           and "Rel" not in k})
        spk_xyz = _xyz(meta, spk_keys[0]) if spk_keys else None
        distance = _float(meta, f"{pfx}RelDistance")
        if distance is None and mic_xyz is not None and spk_xyz is not None:
            distance = float(np.linalg.norm(np.subtract(mic_xyz, spk_xyz)))
        if distance is None or distance <= 0:
            raise CorpusError(f"{wav.parent.parent / 'mic_meta.txt'}: no {pfx}RelDistance and no microphone "
                              f"and loudspeaker positions to compute it")
        x, fs = load(wav)
        group = f"but-{room}-{config}-" + (f"mic{mic}" if group_by == "mic" else speaker)
        position = (config, speaker) if group_by == "mic" else (config, mic)
        items.append(RealItem(x[0].numpy(), fs, distance, group, {
            "id": f"but-{room}-{config}-{speaker}-{mic}", "room": room, "config": config, "speaker": speaker,
            "mic_no": mic, "rt60": _float(meta, f"{pfx}RelRT60"), "mic": mic_xyz, "src": spk_xyz,
            "path": str(wav), "corpus": "BUT ReverbDB"}, position=position))
    if not items:
        raise CorpusError(f"{base}: no BUT ReverbDB responses "
                          f"(expected <room>/<MicID>/<SpkID...>/<NN>/RIR/*.wav)")
    return items
