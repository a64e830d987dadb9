import pytest

from voxa.data.manifest import Record
from voxa.data.select import select
from voxa.errors import ConfigError, ManifestError
from voxa.tasks.recipe import load_recipe
from voxa.tasks.trials import make_trials, read_trials, write_trials
from voxa.utils.config import apply_overrides


def _recs():
    return [Record(id=f"{s}-{i}", path="x.wav", speaker=s, extra={"take": i})
            for s in ("a", "b", "c") for i in range(4)]


def test_make_trials_all_targets_and_equal_nontargets():
    t = make_trials(_recs(), seed=1)
    tgt = [x for x in t if x.target]
    non = [x for x in t if not x.target]
    assert len(tgt) == 3 * 6 and len(non) == len(tgt)
    assert all(x.enroll.split("-")[0] == x.test.split("-")[0] for x in tgt)
    assert all(x.enroll.split("-")[0] != x.test.split("-")[0] for x in non)


def test_make_trials_is_seeded():
    assert make_trials(_recs(), seed=3) == make_trials(_recs(), seed=3)
    assert make_trials(_recs(), seed=3) != make_trials(_recs(), seed=4)


def test_trials_roundtrip(tmp_path):
    t = make_trials(_recs())
    write_trials(tmp_path / "trials", t)
    assert read_trials(tmp_path / "trials") == t


def test_bad_trials_line(tmp_path):
    (tmp_path / "t").write_text("a b target\na b maybe\n")
    with pytest.raises(ManifestError, match="t:2"):
        read_trials(tmp_path / "t")


def test_select_range_and_per_speaker():
    r = _recs()
    assert len(select(r, {"range": {"extra.take": [0, 1]}})) == 6
    last = select(r, {"per_speaker": [3, 4]})
    assert [x.id for x in last] == ["a-3", "b-3", "c-3"]
    assert len(select(r, {"where": {"speaker": ["a", "b"]}})) == 8


def test_select_unknown_key():
    with pytest.raises(ConfigError, match="unknown selection"):
        select(_recs(), {"filter": {}})


def test_overrides_parse_yaml_values():
    d = apply_overrides({"gmm": {"n_components": 8}}, ["gmm.n_components=64", "gmm.top_c=null"])
    assert d["gmm"] == {"n_components": 64, "top_c": None}


def test_recipe_errors_name_the_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("task: speaker-identification\n")
    with pytest.raises(ConfigError, match="r.yaml: recipe lacks 'corpus'"):
        load_recipe(p)
    p.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(p)


def test_shipped_recipes_parse():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "recipes"
    files = sorted(f for f in root.glob("*/*.yaml") if f.parent.name != "tse")
    assert files
    for f in files:
        assert load_recipe(f)["task"]


def test_shipped_tse_presets_parse():
    from voxa.tasks.tse import preset, preset_names

    assert {"paper", "cpu", "tiny"} <= set(preset_names())
    assert preset("paper").model_config["n_dq"] == 4 and preset("paper").trainer.batch_size == 14


def test_a_recipe_setting_its_task_does_not_take_is_refused():
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "fsdd" / "speaker_gmm_ubm.yaml"
    with pytest.raises(ConfigError, match="unknown setting 'colour'.*it takes"):
        load_recipe(recipe, ["colour=1"])
    with pytest.raises(ConfigError, match="unknown setting 'gmm.colour'"):
        load_recipe(recipe, ["gmm.colour=1"])
