"""The one config mechanism: strict dataclass configs from mappings, dotted overrides, schedules."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from voxa.errors import ConfigError
from voxa.utils.config import from_dict, load_yaml, override, parse_overrides, to_dict


@dataclass
class Opt:
    lr: float = 1e-3
    epochs: int = 10
    label: str | None = None


@dataclass
class Mix:
    presence: float = 0.9
    span: tuple[float, float] = (0.5, 1.0)


@dataclass
class Run:
    __scheduled__ = {"mix.presence": "schedule"}

    name: str = "x"
    trainer: Opt = field(default_factory=Opt)
    mix: Mix = field(default_factory=Mix)
    schedule: tuple[float, float] = (0.9, 0.7)
    extra: dict = field(default_factory=dict)


def test_dotted_overrides_reach_nested_sections():
    r = override(Run(), ["trainer.epochs=3", "mix.span=[0.1,0.2]", "name=big"])
    assert (r.trainer.epochs, r.mix.span, r.name) == (3, (0.1, 0.2), "big")


def test_a_number_yaml_reads_as_a_string_becomes_the_fields_type():
    assert override(Run(), ["trainer.lr=3e-3"]).trainer.lr == pytest.approx(3e-3)


def test_an_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'trainer.rate'; trainer takes: epochs, label, lr"):
        override(Run(), ["trainer.rate=2"])


def test_a_flat_key_of_a_section_is_pointed_to_its_dotted_path():
    with pytest.raises(ConfigError, match="did you mean trainer.epochs"):
        override(Run(), ["epochs=2"])


def test_a_key_a_schedule_overwrites_is_refused():
    with pytest.raises(ConfigError, match="'mix.presence' is overwritten.*schedule"):
        override(Run(), ["mix.presence=0.2"])


def test_free_form_mapping_fields_take_any_key():
    assert override(Run(), ["extra.k=1"]).extra == {"k": 1}


def test_an_item_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides(["trainer.lr"])


def test_from_dict_round_trips_to_dict():
    r = override(Run(), ["trainer.label=a"])
    assert from_dict(Run, to_dict(r)) == r


def test_from_dict_refuses_a_section_that_is_not_a_mapping():
    with pytest.raises(ConfigError, match="trainer"):
        from_dict(Run, {"trainer": 3})


def test_load_yaml_names_the_file_and_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("trainer: {epochs: 2, colour: red}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown setting 'trainer.colour'"):
        load_yaml(p, Run)
    p.write_text("trainer: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(p, Run)
