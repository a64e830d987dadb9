"""Selecting subsets of a manifest by field values, ranges and per-speaker positions (for recipes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from voxa.data.manifest import Record
from voxa.errors import ConfigError


def field_value(record: Record, name: str) -> Any:
    """A record's field by name; ``extra.key`` reaches into the extras."""
    if name.startswith("extra."):
        return record.extra.get(name[6:])
    if not hasattr(record, name):
        raise ConfigError(f"records have no field {name!r} (use extra.<key> for extras)")
    return getattr(record, name)


def select(records: Sequence[Record], spec: dict[str, Any] | None) -> list[Record]:
    """Records matching ``spec``.

    Spec keys (all optional, combined with AND):
        ``where``: ``{field: value or [values]}``; ``range``: ``{field: [lo, hi]}`` inclusive;
        ``per_speaker``: ``[start, stop]`` slice of each speaker's utterances sorted by id.

    Example:
        >>> select(recs, {"range": {"extra.take": [0, 39]}})  # doctest: +SKIP
    """
    spec = dict(spec or {})
    unknown = set(spec) - {"where", "range", "per_speaker"}
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
    if spec.get("per_speaker") is not None:
        start, stop = spec["per_speaker"]
        by: dict[str, list[Record]] = defaultdict(list)
        for r in sorted(out, key=lambda r: r.id):
            by[str(r.speaker)].append(r)
        out = [r for spk in sorted(by) for r in by[spk][start:stop]]
    return out
