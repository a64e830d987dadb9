"""Speaker-disjoint splits."""

from __future__ import annotations

import pytest

from voxa.data import Record, leave_one_speaker_out, split_by_key, split_by_speaker
from voxa.errors import ConfigError, ManifestError


def _recs(n_speakers, per_speaker=3):
    return [Record(id=f"s{s:02d}-{u}", path="/x.wav", speaker=f"s{s:02d}",
                   extra={"split": "train" if s % 2 else "test"})
            for s in range(n_speakers) for u in range(per_speaker)]


def _speakers(part):
    return {r.speaker for r in part}


def test_every_speaker_in_exactly_one_part():
    parts = split_by_speaker(_recs(20))
    sets = [_speakers(p) for p in parts]
    assert sum(len(s) for s in sets) == 20
    assert set().union(*sets) == {f"s{i:02d}" for i in range(20)}


def test_fractions_are_of_speakers():
    parts = split_by_speaker(_recs(20, per_speaker=2), (0.8, 0.1, 0.1))
    assert [len(_speakers(p)) for p in parts] == [16, 2, 2]
    assert sum(len(p) for p in parts) == 40


def test_deterministic_and_independent_of_record_order():
    recs = _recs(15)
    a = split_by_speaker(recs, seed=3)
    b = split_by_speaker(list(reversed(recs)), seed=3)
    assert [_speakers(p) for p in a] == [_speakers(p) for p in b]


def test_seed_changes_the_split():
    recs = _recs(30)
    assert ({frozenset(_speakers(p)) for p in split_by_speaker(recs, seed=0)}
            != {frozenset(_speakers(p)) for p in split_by_speaker(recs, seed=1)})


def test_small_parts_get_at_least_one_speaker():
    parts = split_by_speaker(_recs(3), (0.9, 0.05, 0.05))
    assert [len(_speakers(p)) for p in parts] == [1, 1, 1]


def test_zero_fraction_part_is_empty():
    parts = split_by_speaker(_recs(4), (0.5, 0.0, 0.5))
    assert parts[1] == [] and len(_speakers(parts[0])) == 2


def test_fewer_speakers_than_parts_is_an_error():
    with pytest.raises(ManifestError, match="only 2 speaker"):
        split_by_speaker(_recs(2))


def test_records_without_speaker_are_an_error():
    recs = _recs(5)
    recs[4].speaker = None
    with pytest.raises(ManifestError, match=r"1 record\(s\) have no speaker \(first: 's01-1'\)"):
        split_by_speaker(recs)


@pytest.mark.parametrize("fractions", [(0.5, 0.6), (1.2, -0.2), ()])
def test_bad_fractions_are_an_error(fractions):
    with pytest.raises(ConfigError):
        split_by_speaker(_recs(5), fractions)


def test_leave_one_speaker_out_covers_each_speaker_once():
    folds = list(leave_one_speaker_out(_recs(4)))
    assert [s for s, _, _ in folds] == ["s00", "s01", "s02", "s03"]
    for s, train, test in folds:
        assert _speakers(test) == {s} and s not in _speakers(train)
        assert len(train) + len(test) == 12


def test_leave_one_speaker_out_needs_two_speakers():
    with pytest.raises(ManifestError, match="at least 2 speakers"):
        list(leave_one_speaker_out(_recs(1)))


def test_split_by_key_groups_in_order():
    groups = split_by_key(_recs(4, per_speaker=1), lambda r: r.extra["split"])
    assert {k: [r.id for r in v] for k, v in groups.items()} == {
        "test": ["s00-0", "s02-0"], "train": ["s01-0", "s03-0"]}
