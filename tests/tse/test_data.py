import json

import numpy as np
import pytest
import torch

from voxa.errors import ConfigError, VoxaError
from voxa.tse.bank import RirBank, write_bank
from voxa.tse.data import (
    MixtureConfig,
    MixtureDataset,
    MixtureSet,
    collate,
    draw_query,
    plot_mixture_geometry,
    speech_pools,
    write_mixture_set,
)

RATE = 8000


def _rir(distance):
    h = np.zeros(400, dtype=np.float32)
    h[int(distance / 343 * RATE)] = 1.0
    return h


def _cfg(**kw):
    base = dict(seconds=1.0, rate=RATE, r_spk=0.5)
    base.update(kw)
    return MixtureConfig(**base)


def test_bank_reader_groups_and_loads(bank):
    assert len(bank) == 40
    assert set(bank.groups("train")) == {"room0-mic0"}
    assert bank.load("r003").shape == (800,)


def test_speech_pools_are_speaker_disjoint(speech):
    pools = speech_pools(speech, (0.5, 0.25, 0.25))
    spk = {k: {r.speaker for r in v} for k, v in pools.items()}
    assert not spk["train"] & spk["test"] and not spk["train"] & spk["valid"]


def test_mixture_is_sum_of_sources_and_target_matches_presence(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=0.5), length=40, seed=3)
    seen_absent = seen_present = False
    for i in range(40):
        it = ds[i]
        assert it["mix"].shape == (RATE,)
        inside = (it["distances"] - it["query"]).abs() <= 0.5 + 1e-6
        assert it["present"] == bool(inside.any())
        if it["present"]:
            seen_present = True
            assert it["target"].abs().sum() > 0
        else:
            seen_absent = True
            assert torch.count_nonzero(it["target"]) == 0
    assert seen_absent and seen_present


def test_two_talkers_in_the_window_give_their_sum(bank, speech):
    # with r_spk wider than the whole bank, every present target is the full mixture
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=1.0, r_spk=10.0), length=3)
    it = ds[0]
    assert torch.allclose(it["target"], it["mix"], atol=1e-6)


def test_source_levels_are_in_range(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(num_talkers=1, presence=1.0), length=10)
    for i in range(10):
        rms_db = 20 * torch.log10(ds[i]["mix"].pow(2).mean().sqrt())
        assert -25.01 <= rms_db <= -19.99


def test_items_are_reproducible_and_epochs_differ(bank, speech):
    a = MixtureDataset(bank, "train", speech, _cfg(), length=5, seed=7)
    b = MixtureDataset(bank, "train", speech, _cfg(), length=5, seed=7)
    assert torch.equal(a[2]["mix"], b[2]["mix"])
    b.set_epoch(1)
    assert not torch.equal(a[2]["mix"], b[2]["mix"])


def test_presence_ratio_is_respected(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=0.7), length=300)
    rate = np.mean([ds[i]["present"] for i in range(300)])
    assert 0.6 < rate < 0.8


def test_min_talker_gap(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(min_talker_gap=1.5), length=30)
    for i in range(30):
        d = ds[i]["distances"]
        assert abs(float(d[0] - d[1])) >= 1.5


def test_absent_query_is_far_from_every_talker():
    rng = np.random.default_rng(0)
    d = np.array([1.0, 2.0])
    for _ in range(200):
        q, present = draw_query(rng, d, False, 0.5, 0.0, 4.0)
        assert not present and np.all(np.abs(d - q) > 0.5)


def test_absent_query_falls_back_when_no_room():
    q, present = draw_query(np.random.default_rng(0), np.array([1.0]), False, 5.0, 0.0, 2.0)
    assert present and abs(q - 1.0) <= 5.0


def test_fixed_set_is_identical_on_rewrite(bank, speech, tmp_path):
    ds = MixtureDataset(bank, "test", speech, _cfg(presence=0.5), length=6, seed=11)
    a = write_mixture_set(ds, 6, tmp_path / "a", progress=False)
    b = write_mixture_set(MixtureDataset(bank, "test", speech, _cfg(presence=0.5), seed=11), 6,
                          tmp_path / "b", progress=False)
    assert (a / "mixtures.jsonl").read_text() == (b / "mixtures.jsonl").read_text()
    assert (a / "mix" / "mix000003.wav").read_bytes() == (b / "mix" / "mix000003.wav").read_bytes()
    s = MixtureSet(a)
    it = s[3]
    assert torch.allclose(it["mix"], ds[3]["mix"], atol=1e-6)
    assert json.loads((a / "mixtures.jsonl").read_text().splitlines()[0])["rate"] == RATE


def test_fixed_set_refuses_other_settings(bank, speech, tmp_path):
    write_mixture_set(MixtureDataset(bank, "test", speech, _cfg(), seed=1), 2, tmp_path, progress=False)
    with pytest.raises(VoxaError, match="other settings"):
        write_mixture_set(MixtureDataset(bank, "test", speech, _cfg(), seed=2), 2, tmp_path, progress=False)


def test_collate_and_plot(bank, speech, tmp_path, png_plot):
    ds = MixtureDataset(bank, "train", speech, _cfg(), length=4)
    b = collate([ds[i] for i in range(4)])
    assert b["mix"].shape == (4, RATE) and b["present"].dtype == torch.bool
    rows = [{"id": str(i), "query": ds[i]["query"], "present": ds[i]["present"],
             "distances": ds[i]["distances"].tolist()} for i in range(4)]
    png_plot(plot_mixture_geometry(rows, 0.5, tmp_path / "geo.png"), (790, 378))


def test_items_carry_their_sources_which_sum_to_the_mixture(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=1.0, min_talker_gap=1.0), length=4)
    b = collate([ds[i] for i in range(4)])
    assert b["sources"].shape == (4, 2, RATE)
    assert torch.allclose(b["sources"].sum(1), b["mix"], atol=1e-6)
    # a present target is the source(s) at the query
    k = (b["distances"] - b["query"][:, None]).abs().argmin(1)
    assert torch.allclose(b["sources"][torch.arange(4), k], b["target"], atol=1e-6)


def test_bank_split_without_rooms_is_an_error(bank, speech):
    with pytest.raises(VoxaError, match="no room"):
        MixtureDataset(bank, "valid", speech, _cfg())


def test_queries_per_mixture_share_the_mixture_and_aim_at_different_talkers(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=1.0, queries_per_mixture=2, min_talker_gap=1.0),
                        length=8, seed=5)
    assert ds.group_size == 2
    for m in range(4):
        a, b = ds[2 * m], ds[2 * m + 1]
        assert torch.equal(a["mix"], b["mix"]) and a["present"] and b["present"]
        near_a = int(torch.argmin((a["distances"] - a["query"]).abs()))
        near_b = int(torch.argmin((b["distances"] - b["query"]).abs()))
        assert near_a != near_b and not torch.allclose(a["target"], b["target"])


def test_one_query_per_mixture_is_unchanged_by_the_grouping_code(bank, speech):
    one = MixtureDataset(bank, "train", speech, _cfg(presence=0.5), length=4, seed=5)
    two = MixtureDataset(bank, "train", speech, _cfg(presence=0.5, queries_per_mixture=2), length=8, seed=5)
    assert torch.equal(one[1]["mix"], two[2]["mix"]) and one[1]["query"] == two[2]["query"]


def test_nearest_rule_aims_every_query_at_the_nearest_talker(bank, speech):
    ds = MixtureDataset(bank, "train", speech, _cfg(presence=1.0, queries_per_mixture=2, min_talker_gap=1.0),
                        length=8, seed=2)
    ds.set_query_rule("nearest")
    for i in range(8):
        it = ds[i]
        assert int(torch.argmin((it["distances"] - it["query"]).abs())) == int(torch.argmin(it["distances"]))
    with pytest.raises(ConfigError):
        ds.set_query_rule("farthest")


def _two_room_bank(root):
    """Room "wide" has responses 0.5-3.5 m; room "close" only 1.0-1.4 m."""
    rows = []
    for group, dists in (("wide", [0.5, 1.5, 2.5, 3.5]), ("close", [1.0, 1.2, 1.4])):
        for i, d in enumerate(dists):
            rows.append(({"id": f"{group}{i}", "group": group, "room_id": 0, "mic_id": 0, "split": "train",
                          "room_dim": [7, 8, 3], "rt60": 0.2, "mic": [3.5, 4, 1.1], "src": [0, 0, 0],
                          "distance": d}, _rir(d)))
    return RirBank(write_bank(root, {"preset": "test", "rate": RATE}, rows, shard_size=16))


def test_min_talker_gap_leaves_out_rooms_that_cannot_hold_it(speech, tmp_path):
    ds = MixtureDataset(_two_room_bank(tmp_path), "train", speech, _cfg(min_talker_gap=1.0), length=40)
    assert ds.skipped_groups == ["close"] and ds.group_names == ["wide"]
    for i in range(40):
        d = ds[i]["distances"]
        assert abs(float(d[0] - d[1])) >= 1.0


def test_min_talker_gap_no_room_can_hold_is_an_error(speech, tmp_path):
    with pytest.raises(VoxaError, match="min_talker_gap=5.0"):
        MixtureDataset(_two_room_bank(tmp_path), "train", speech, _cfg(min_talker_gap=5.0))
