"""Selecting subsets of a manifest by field values, ranges and per-speaker positions (for recipes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError


def field_value(record: Record, name: str) -> Any:
    """A record's field by name; ``extra.key`` reaches into the extras."""
    if name.startswith("extra."):
        return record.extra.get(name[6:])
    if not hasattr(record, name):
        raise ConfigError(f"records have no field {name!r} (use extra.<key> for extras)")
    return getattr(record, name)


def id_fraction(utt_id: str) -> float:
    """A stable number in [0, 1) from an utterance id (SHA-1), for splits that need no seed."""
    import hashlib

    return int.from_bytes(hashlib.sha1(utt_id.encode()).digest()[:8], "big") / 2.0 ** 64


def select(records: Sequence[Record], spec: dict[str, Any] | None) -> list[Record]:
    """Records matching ``spec``.

    Spec keys (all optional, combined with AND):
        ``where``: ``{field: value or [values]}``; ``range``: ``{field: [lo, hi]}`` inclusive;
        ``per_speaker``: ``[start, stop]`` slice of each speaker's utterances sorted by id;
        ``hash_fraction``: ``[lo, hi)`` of a stable hash of the id mapped to [0, 1), a seed-free random
        split that does not change when other records are added (``[0, 0.7]`` and ``[0.7, 1]`` part
        a corpus 70/30); ``not_extra``: extras that must be absent or false (e.g. ``[nonspeech]``).

    Example:
        >>> select(recs, {"range": {"extra.take": [0, 39]}})  # doctest: +SKIP
    """
    spec = dict(spec or {})
    unknown = set(spec) - {"where", "range", "per_speaker", "hash_fraction", "not_extra"}
    if unknown:
        raise ConfigError(f"unknown selection key(s): {', '.join(sorted(unknown))}")
    out = list(records)
    for name, want in (spec.get("where") or {}).items():
        allowed = set(want) if isinstance(want, (list, tuple)) else {want}
        out = [r for r in out if field_value(r, name) in allowed]
    for name, bounds in (spec.get("range") or {}).items():
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2):
            raise ConfigError(f"range for {name} must be [lo, hi], got {bounds!r}")
        lo, hi = bounds
        out = [r for r in out if field_value(r, name) is not None and lo <= field_value(r, name) <= hi]
    if spec.get("hash_fraction") is not None:
        bounds = spec["hash_fraction"]
        if not (isinstance(bounds, (list, tuple)) and len(bounds) == 2 and 0 <= bounds[0] <= bounds[1] <= 1):
            raise ConfigError(f"hash_fraction must be [lo, hi] within [0, 1], got {bounds!r}")
        out = [r for r in out if bounds[0] <= id_fraction(r.id) < bounds[1] or (bounds[1] == 1 and
                                                                                  id_fraction(r.id) == 1)]
    keys = spec.get("not_extra") or []
    if isinstance(keys, str):
        keys = [keys]
    for key in keys:
        out = [r for r in out if not r.extra.get(key)]
    if spec.get("per_speaker") is not None:
        start, stop = spec["per_speaker"]
        by: dict[str, list[Record]] = defaultdict(list)
        for r in sorted(out, key=lambda r: r.id):
            by[str(r.speaker)].append(r)
        out = [r for spk in sorted(by) for r in by[spk][start:stop]]
    return out


def groups_by_speaker(records: Sequence[Record]) -> dict[str, list[str]]:
    """Utterance ids by speaker label, in record order.

    Raises:
        VoxaError: If a record has no speaker label.
    """
    g: dict[str, list[str]] = defaultdict(list)
    for r in records:
        if r.speaker is None:
            raise VoxaError(f"{r.id}: no speaker label (needed to enrol)")
        g[r.speaker].append(r.id)
    return dict(g)
