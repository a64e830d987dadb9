"""Speaker-disjoint data splits, so that test scores never reward memorising a voice."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterator, Sequence

from voxa.data.manifest import Record
from voxa.errors import ConfigError, ManifestError

__all__ = ["leave_one_speaker_out", "split_by_key", "split_by_speaker"]


def _speakers(records: Sequence[Record]) -> list[str]:
    missing = [r.id for r in records if r.speaker is None]
    if missing:
        raise ManifestError(f"{len(missing)} record(s) have no speaker (first: {missing[0]!r}); "
                            f"a speaker-disjoint split needs a speaker on every record")
    return sorted({r.speaker for r in records})  # type: ignore[misc]


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items into parts proportional to ``fractions`` (largest remainder), giving each
    part with a positive fraction at least one item."""
    exact = [f * n for f in fractions]
    counts = [math.floor(x) for x in exact]
    # ties go to the earlier part so that the result does not depend on float noise in the sort
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    for i, f in enumerate(fractions):
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: (counts[j], -j))
            counts[donor] -= 1
            counts[i] += 1
    return counts


def split_by_speaker(records: Sequence[Record], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                     seed: int = 0) -> tuple[list[Record], ...]:
    """Split records into speaker-disjoint parts holding the given fractions of the speakers.

    Speakers are sorted, shuffled with ``random.Random(seed)`` and cut by largest-remainder
    rounding, so the result depends only on the set of speakers and the seed, not on record order.
    Every part with a positive fraction gets at least one speaker. Records keep their input order
    within each part.

    Args:
        records: utterances, each with a speaker.
        fractions: non-negative fractions of speakers per part, summing to 1.
        seed: shuffling seed.

    Returns:
        One list of records per fraction.

    Raises:
        ManifestError: a record has no speaker, or there are fewer speakers than non-empty parts.
        ConfigError: fractions are negative or do not sum to 1.

    Example:
        >>> train, dev, test = split_by_speaker(records, (0.8, 0.1, 0.1))  # doctest: +SKIP
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(f < 0 or not math.isfinite(f) for f in fractions):
        raise ConfigError(f"split fractions must be non-negative numbers, got {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must sum to 1, got {fractions} (sum {sum(fractions)})")
    speakers = _speakers(records)
    parts = sum(f > 0 for f in fractions)
    if len(speakers) < parts:
        raise ManifestError(f"only {len(speakers)} speaker(s) for {parts} non-empty parts; "
                            f"a speaker-disjoint split needs at least one speaker per part")
    random.Random(seed).shuffle(speakers)
    part_of: dict[str, int] = {}
    start = 0
    for i, count in enumerate(_allocate(len(speakers), fractions)):
        for s in speakers[start:start + count]:
            part_of[s] = i
        start += count
    out: tuple[list[Record], ...] = tuple([] for _ in fractions)
    for r in records:
        out[part_of[r.speaker]].append(r)  # type: ignore[index]
    return out


def leave_one_speaker_out(records: Sequence[Record]
                          ) -> Iterator[tuple[str, list[Record], list[Record]]]:
    """Yield ``(speaker, train, test)`` once per speaker (sorted), testing on that speaker alone.

    Raises:
        ManifestError: a record has no speaker, or there are fewer than two speakers.
    """
    speakers = _speakers(records)
    if len(speakers) < 2:
        raise ManifestError(f"leave-one-speaker-out needs at least 2 speakers, got "
                            f"{len(speakers)}")
    for s in speakers:
        yield s, [r for r in records if r.speaker != s], [r for r in records if r.speaker == s]


def split_by_key(records: Sequence[Record], key_fn: Callable[[Record], Hashable]
                 ) -> dict[Hashable, list[Record]]:
    """Group records by ``key_fn(record)`` (e.g. a corpus' own train/test field), keeping order.

    Example:
        >>> parts = split_by_key(records, lambda r: r.extra["split"])  # doctest: +SKIP
    """
    out: dict[Hashable, list[Record]] = {}
    for r in records:
        out.setdefault(key_fn(r), []).append(r)
    return out
