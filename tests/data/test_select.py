"""Manifest selection: the seed-free hash split and the not_extra filter."""

import pytest

from voxa.data.manifest import Record
from voxa.data.select import id_fraction, select
from voxa.errors import ConfigError


def _recs(n=200, prefix="u"):
    return [Record(id=f"{prefix}{i:04d}", path="x.wav", speaker=f"s{i % 5}") for i in range(n)]


def _ids(records):
    return [r.id for r in records]


def test_id_fraction_is_stable_and_in_unit_interval():
    vals = [id_fraction(f"u{i}") for i in range(500)]
    assert all(0.0 <= v < 1.0 for v in vals)
    assert vals == [id_fraction(f"u{i}") for i in range(500)]
    # roughly uniform: every tenth of [0, 1) gets some ids
    assert {int(v * 10) for v in vals} == set(range(10))


def test_hash_fraction_parts_partition_the_records():
    recs = _recs()
    a = select(recs, {"hash_fraction": [0, 0.7]})
    b = select(recs, {"hash_fraction": [0.7, 1]})
    assert set(_ids(a)).isdisjoint(_ids(b))
    assert sorted(_ids(a) + _ids(b)) == _ids(recs)
    assert 0.55 < len(a) / len(recs) < 0.85  # about 70 %


def test_hash_fraction_is_stable_when_records_are_added():
    recs = _recs()
    before = _ids(select(recs, {"hash_fraction": [0, 0.7]}))
    more = _recs(150, prefix="new") + list(reversed(recs))
    after = _ids(select(more, {"hash_fraction": [0, 0.7]}))
    assert set(before) == {u for u in after if u.startswith("u")}
    assert any(u.startswith("new") for u in after)


def test_hash_fraction_full_range_keeps_everything():
    recs = _recs(50)
    assert _ids(select(recs, {"hash_fraction": [0, 1]})) == _ids(recs)


def test_hash_fraction_combines_with_where():
    recs = _recs()
    got = select(recs, {"where": {"speaker": "s1"}, "hash_fraction": [0, 0.5]})
    assert got and all(r.speaker == "s1" and id_fraction(r.id) < 0.5 for r in got)


@pytest.mark.parametrize("bounds", [[0.7, 0.3], [-0.1, 0.5], [0.5, 1.2], [0.5], "0,0.7", [0, 0.5, 1]])
def test_hash_fraction_bad_bounds_are_an_error(bounds):
    with pytest.raises(ConfigError, match="hash_fraction"):
        select(_recs(5), {"hash_fraction": bounds})


def test_not_extra_drops_records_whose_flag_is_true():
    recs = [Record(id="a", path="x", extra={"nonspeech": True}),
            Record(id="b", path="x", extra={"nonspeech": False}),
            Record(id="c", path="x"),
            Record(id="d", path="x", extra={"nonspeech": 1, "noisy": False}),
            Record(id="e", path="x", extra={"noisy": True})]
    assert _ids(select(recs, {"not_extra": ["nonspeech"]})) == ["b", "c", "e"]
    assert _ids(select(recs, {"not_extra": ["nonspeech", "noisy"]})) == ["b", "c"]
    assert _ids(select(recs, {"not_extra": []})) == _ids(recs)
