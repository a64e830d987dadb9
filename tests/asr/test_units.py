"""Output units of the end-to-end recognisers."""

import pytest

from voxa.asr.units import Units
from voxa.errors import ConfigError, VoxaError


def test_char_units_spell_words_with_a_separator_and_decode_back():
    u = Units.from_texts([["one", "two"], ["three"]], "chars", offset=1)
    ids = u.encode(["two", "one"])
    assert u.symbols[ids[3] - 1] == "|" and u.decode(ids) == ["two", "one"]


def test_word_units_are_the_transcript_tokens():
    u = Units.from_texts([["aa", "b"], ["b", "sh"]], "words", offset=3)
    assert u.symbols == ["aa", "b", "sh"] and u.encode(["sh", "aa"]) == [5, 3]


def test_decoding_drops_special_ids():
    u = Units.from_texts([["ab"]], "chars", offset=3)
    assert u.decode([1, 3 + u.symbols.index("a"), 2, 3 + u.symbols.index("b")]) == ["ab"]


def test_a_unit_outside_the_inventory_is_an_error():
    with pytest.raises(VoxaError, match="'z' is not in"):
        Units.from_texts([["ab"]], "chars").encode(["az"])


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="chars or words"):
        Units(["a"], "phones")
