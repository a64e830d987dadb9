"""Impulse-response simulation (D1-D3), real banks (AIR, BUT ReverbDB layout) and ``voxa tse``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxa.cli.main import main
from voxa.errors import CorpusError, VoxaError
from voxa.tse.bank import RirBank
from voxa.tse.sim import (
    RealItem,
    build_air_bank,
    build_bank,
    build_real_bank,
    load_butreverb,
    random_position,
    sabine_absorption,
    simulate_rirs,
)
from voxa.tse.sim.presets import make_plan, split_counts
from voxa.tse.sim.realbank import split_positions

RATE = 8000
# small, dry D3 rooms keep the image-source count (and the test time) down
D3_FAST = {"speakers": 3, "rt60_range": (0.2, 0.25)}


def _build(preset: str, out: Path, size: int, **kw) -> object:
    kw.setdefault("workers", 1)
    kw.setdefault("shard_size", 4)
    return build_bank(preset, out, size=size, rate=RATE, progress=False, **kw)


def _responses(bank: RirBank) -> dict[str, np.ndarray]:
    return {r["id"]: bank.load(r["id"]).numpy() for r in bank.rows}


def _same_bank(a: Path, b: Path) -> None:
    ba, bb = RirBank(a), RirBank(b)
    strip = [{k: v for k, v in r.items()} for r in ba.rows]
    assert strip == bb.rows
    ra, rb = _responses(ba), _responses(bb)
    assert ra.keys() == rb.keys()
    assert all(np.array_equal(ra[k], rb[k]) for k in ra)


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("banks")
    out = {"D1": root / "d1", "D2": root / "d2", "D3": root / "d3"}
    _build("D1", out["D1"], 30)
    _build("D2", out["D2"], None, mics=3, speakers=5)
    _build("D3", out["D3"], 4, **D3_FAST)
    return out


# ---------------------------------------------------------------- rooms


def test_inverse_sabine_impossible_rt60_is_one_clear_error() -> None:
    with pytest.raises(VoxaError, match="cannot reach RT60 0.05") as e:
        sabine_absorption([7, 8, 3], 0.05)
    assert "\n" not in str(e.value)
    with pytest.raises(VoxaError):
        simulate_rirs([7, 8, 3], 0.05, [3.5, 4, 1.1], [[1, 1, 1.5]], RATE)
    absorption, order = sabine_absorption([7, 8, 3], 0.2)
    assert 0 < absorption <= 1 and order > 0


def test_random_position_respects_margins_and_rejects_tiny_rooms() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = random_position(rng, [4, 5, 2.5])
        assert np.all(p[:2] >= 0.5) and p[0] <= 3.5 and p[1] <= 4.5 and 1.2 <= p[2] <= 2.0
    with pytest.raises(VoxaError, match="no point"):
        random_position(rng, [0.8, 5, 2.5])


def _t30(h: np.ndarray, rate: int) -> float:
    """RT60 by Schroeder backward integration: the -5 to -35 dB decay extrapolated to 60 dB."""
    edc = np.cumsum(h[::-1].astype(np.float64) ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-30)
    t = np.arange(len(h)) / rate
    fit = (edc_db <= -5) & (edc_db >= -35)
    slope = np.polyfit(t[fit], edc_db[fit], 1)[0]
    return -60.0 / slope


def test_direct_path_arrives_at_distance_over_c_and_rt60_matches() -> None:
    mic = np.array([3.5, 4.0, 1.1])
    srcs = np.array([[1.0, 1.2, 1.6], [6.2, 7.1, 1.9]])
    rate = 16000
    hs = simulate_rirs([7, 8, 3], 0.3, mic, srcs, rate, seed=3)
    for h, s in zip(hs, srcs):
        assert h.dtype == np.float32 and np.isfinite(h).all()
        d = np.linalg.norm(s - mic)
        # the first strong arrival (a corner's coinciding reflections can outgrow the direct path)
        onset = int(np.nonzero(np.abs(h) >= 0.3 * np.abs(h).max())[0][0])
        peak = onset + int(np.argmax(np.abs(h[onset:onset + 4])))
        assert abs(peak - d / 343.0 * rate) <= 2
        assert abs(_t30(h, rate) - 0.3) <= 0.3 * 0.3
        # physical scale: pyroomacoustics' direct path is 1 / d (spherical spreading), not normalised
        assert 0.5 < float(np.abs(h[peak])) * d < 1.5


def test_simulation_seed_controls_the_random_images() -> None:
    args = ([7, 8, 3], 0.2, [3.5, 4, 1.1], [[1, 1, 1.5]], RATE)
    a, b, c = (simulate_rirs(*args, seed=s)[0] for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    state = np.random.get_state()[1].copy()
    simulate_rirs(*args, seed=5)
    assert np.array_equal(np.random.get_state()[1], state)  # the caller's numpy stream is untouched


# ---------------------------------------------------------------- presets


def test_split_counts_give_every_split_one_item_when_possible() -> None:
    assert split_counts(10000, (0.9, 0.02, 0.08)) == [9000, 200, 800]
    assert split_counts(3, (0.9, 0.02, 0.08)) == [1, 1, 1]
    assert split_counts(30, (0.9, 0.02, 0.08)) == [27, 1, 2]
    assert make_plan("D2").params == {"mics": 100, "speakers": 2000}
    assert len(make_plan("D2", size=200000)) == 200000
    assert make_plan("D2", size=30).params == {"mics": 3, "speakers": 10}
    assert make_plan("D2", size=100, mics=5).params == {"mics": 5, "speakers": 20}
    assert make_plan("D2", size=100, speakers=25).params == {"mics": 4, "speakers": 25}
    with pytest.raises(VoxaError, match="bad parameters"):
        make_plan("D1", size=10, mics=3)


def _check_geometry(rows: list[dict], mic_z: tuple[float, float] | None) -> None:
    for r in rows:
        dim, mic, src = (np.array(r[k]) for k in ("room_dim", "mic", "src"))
        assert r["distance"] == pytest.approx(float(np.linalg.norm(mic - src)), abs=1e-5)
        assert np.all(src[:2] >= 0.5 - 1e-9) and np.all(src[:2] <= dim[:2] - 0.5 + 1e-9)
        assert 1.2 - 1e-9 <= src[2] <= 2.0 + 1e-9
        assert src[2] <= dim[2] - 0.5 + 1e-9
        if mic_z is not None:
            assert np.all(mic[:2] >= 0.5 - 1e-9) and np.all(mic[:2] <= dim[:2] - 0.5 + 1e-9)
            assert mic_z[0] - 1e-9 <= mic[2] <= mic_z[1] + 1e-9


def test_d1_bank(banks: dict[str, Path]) -> None:
    b = RirBank(banks["D1"])
    assert len(b) == 30 and b.bank_rate == RATE and b.meta["preset"] == "D1"
    assert [len(b.split(s)) for s in ("train", "valid", "test")] == [27, 1, 2]
    assert {r["group"] for r in b.rows} == {"D1-room0-mic0"}
    assert all(r["room_dim"] == [7.0, 8.0, 3.0] and r["mic"] == [3.5, 4.0, 1.1] and r["rt60"] == 0.2
               and r["preset"] == "D1" for r in b.rows)
    _check_geometry(b.rows, None)
    assert len({r["id"] for r in b.rows}) == 30
    h = b.load(b.rows[0]["id"])
    assert h.ndim == 1 and h.shape[0] == b.rows[0]["length"]


def test_d2_bank_splits_by_microphone(banks: dict[str, Path]) -> None:
    b = RirBank(banks["D2"])
    assert len(b) == 15 and b.meta["split_by"] == "microphone"
    splits_of_group: dict[str, set[str]] = {}
    for r in b.rows:
        splits_of_group.setdefault(r["group"], set()).add(r["split"])
    assert sorted(splits_of_group) == ["D2-room0-mic000", "D2-room0-mic001", "D2-room0-mic002"]
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert sorted(next(iter(s)) for s in splits_of_group.values()) == ["test", "train", "valid"]
    assert all(len(v) == 5 for s in ("train", "valid", "test") for v in b.groups(s).values())
    assert len({tuple(r["mic"]) for r in b.rows}) == 3
    _check_geometry(b.rows, (1.0, 1.5))


def test_d3_bank_splits_by_room(banks: dict[str, Path]) -> None:
    b = RirBank(banks["D3"])
    assert len(b) == 12 and b.meta["dropped_rooms"] == 0
    rooms: dict[int, set[str]] = {}
    for r in b.rows:
        rooms.setdefault(r["room_id"], set()).add(r["split"])
        assert r["group"] == f"D3-room{r['room_id']:05d}-mic0"
        assert 0.2 <= r["rt60"] <= 0.25
        assert all(lo <= v <= hi for v, lo, hi in zip(r["room_dim"], (4, 5, 2.5), (8, 10, 3.0)))
    assert len(rooms) == 4 and all(len(s) == 1 for s in rooms.values())
    assert {next(iter(s)) for s in rooms.values()} == {"train", "valid", "test"}
    _check_geometry(b.rows, (1.0, 1.5))


def test_d3_counts_rooms_that_cannot_reach_their_rt60(tmp_path: Path) -> None:
    plan = make_plan("D3", size=6, speakers=2, rt60_range=(0.05, 0.06))
    assert plan.dropped_rooms == 6 and len(plan) == 0
    plan = make_plan("D3", size=20, speakers=2, rt60_range=(0.08, 0.12))
    assert 0 < plan.dropped_rooms < 20 and len(plan) == 2 * (20 - plan.dropped_rooms)
    assert len(set(plan.room_id.tolist())) == 20 - plan.dropped_rooms
    with pytest.raises(VoxaError, match="6 rooms dropped"):
        build_bank("D3", tmp_path / "none", size=6, speakers=2, rt60_range=(0.05, 0.06), progress=False)


def test_same_seed_same_bank_other_seed_other_bank(banks: dict[str, Path], tmp_path: Path) -> None:
    _build("D1", tmp_path / "again", 30)
    _same_bank(banks["D1"], tmp_path / "again")
    _build("D1", tmp_path / "other", 30, seed=1)
    a, b = RirBank(banks["D1"]), RirBank(tmp_path / "other")
    assert [r["src"] for r in a.rows] != [r["src"] for r in b.rows]
    assert not np.array_equal(a.load(a.rows[0]["id"]).numpy(), b.load(b.rows[0]["id"]).numpy())


def test_resume_recomputes_only_the_missing_shard(tmp_path: Path) -> None:
    out = tmp_path / "bank"
    first = _build("D1", out, 12)
    assert first.shards == 3 and first.computed == 12
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("rirs-*.safetensors")}
    reference = _responses(RirBank(out))
    rows_before = (out / "rirs.jsonl").read_text()
    (out / "rirs-00001.rows.jsonl").unlink()
    again = _build("D1", out, 12)
    assert again.computed == 4 and again.skipped_shards == 2
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("rirs-*.safetensors")}
    assert {k for k in before if before[k] != after[k]} == {"rirs-00001.safetensors"}
    assert (out / "rirs.jsonl").read_text() == rows_before
    got = _responses(RirBank(out))
    assert all(np.array_equal(reference[k], got[k]) for k in reference)
    with pytest.raises(VoxaError, match="other settings"):
        _build("D1", out, 12, seed=7)


def test_parallel_build_equals_serial(banks: dict[str, Path], tmp_path: Path) -> None:
    # D3 with shards that cut rooms in two (shard 4, 3 speakers per room) and several rooms per shard
    _build("D3", tmp_path / "par", 4, workers=2, **D3_FAST)
    _same_bank(banks["D3"], tmp_path / "par")


# ---------------------------------------------------------------- real banks


def test_split_positions_keeps_two_positions_per_split() -> None:
    assert split_positions(3, (0.75, 0, 0.25)) == [3, 0, 0]
    assert split_positions(5, (0.75, 0, 0.25)) == [3, 0, 2]
    assert split_positions(6, (0.75, 0, 0.25)) == [4, 0, 2]
    assert split_positions(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert split_positions(4, (0.25, 0.25, 0.5)) == [2, 0, 2]


def test_air_bank(shared_data_dir: Path, tmp_path: Path) -> None:
    root = shared_data_dir / "air"
    if not (root / "AIR_1_4").is_dir():
        pytest.skip(f"AIR 1.4 not present under {root}")
    b = RirBank(build_air_bank(root, tmp_path / "air", rate=RATE))
    assert b.bank_rate == RATE and b.meta["r_spk"] == 0.1
    assert len(b) == 68  # the binaural responses; the 18 phone mock-ups have no distance
    assert all("phone" not in r["id"] and r["distance"] > 0 for r in b.rows)
    assert {r["room"] for r in b.rows} == {"booth", "office", "meeting", "lecture"}
    split_of: dict[tuple[str, str], set[str]] = {}
    for r in b.rows:
        split_of.setdefault((r["room"], r["position"]), set()).add(r["split"])
        assert r["group"] == f"air-{r['room']}-ch{r['extra']['channel']}-head{r['extra']['head']}"
    assert len(split_of) == 17 and all(len(s) == 1 for s in split_of.values())
    assert {r["split"] for r in b.rows} == {"train", "test"}
    # every test group can mix two talkers at different distances
    for rows in b.groups("test").values():
        assert len({r["distance"] for r in rows}) >= 2
    booth = next(r for r in b.rows if r["id"] == "air-air_binaural_booth_0_0_1")
    assert booth["distance"] == 0.5
    # 48 kHz resampled: about 0.68 s of response at the working rate
    assert booth["length"] == pytest.approx(0.6826 * RATE, abs=2)


def _fake_but(root: Path) -> None:
    """A tiny BUT ReverbDB tree: one room, 3 loudspeaker positions x 2 microphones, plus a repeated
    session (ignored), a repeated sweep (ignored) and a microphone given by coordinates only."""
    rate = 16000
    spk_xyz = {"SpkID01": (1.0, 1.0, 1.5), "SpkID02": (2.0, 4.0, 1.5), "SpkID03": (5.0, 2.0, 1.5)}
    mic_xyz = {"01": (3.0, 3.0, 1.0), "02": (4.0, 3.5, 1.2)}
    for spk, sp in spk_xyz.items():
        for session in (f"{spk}_20170906_S", f"{spk}_20170910_T"):
            sdir = root / "VUT_FIT_Q301" / "MicID01" / session
            (sdir).mkdir(parents=True, exist_ok=True)
            (sdir / "spk_meta.txt").write_text(
                f"$EnvSpkDepth\t{sp[0]}\n$EnvSpkWidth\t{sp[1]}\n$EnvSpkHeight\t{sp[2]}\n")
            for mic, mp in mic_xyz.items():
                mdir = sdir / mic
                (mdir / "RIR").mkdir(parents=True)
                d = float(np.linalg.norm(np.subtract(sp, mp)))
                lines = [f"$EnvMicID\t{int(mic)}", f"$EnvMic{int(mic)}Depth\t{mp[0]}",
                         f"$EnvMic{int(mic)}Width\t{mp[1]}", f"$EnvMic{int(mic)}Height\t{mp[2]}",
                         f"$EnvMic{int(mic)}RelRT60\t0.45"]
                if mic == "01":
                    lines.append(f"$EnvMic{int(mic)}RelDistance\t{d:.4f}")
                (mdir / "mic_meta.txt").write_text("\n".join(lines) + "\n")
                h = np.zeros(rate // 4, dtype=np.float32)
                h[int(d / 343 * rate)] = 0.5 if session.endswith("_S") else 0.25
                for v in ("v00", "v01"):
                    sf.write(mdir / "RIR" / f"IR_sweep_15s_45Hzto22kHz_FS16kHz.{v}.wav", h, rate,
                             subtype="FLOAT")


def test_butreverb_fake_layout_loads(tmp_path: Path) -> None:
    _fake_but(tmp_path / "but")
    items = load_butreverb(tmp_path / "but")
    assert len(items) == 6
    assert {it.group for it in items} == {"but-VUT_FIT_Q301-MicID01-mic01", "but-VUT_FIT_Q301-MicID01-mic02"}
    for it in items:
        assert it.rate == 16000 and it.extra["rt60"] == 0.45
        true = float(np.linalg.norm(np.subtract(it.extra["src"], it.extra["mic"])))
        assert it.distance == pytest.approx(true, abs=1e-3)
        assert float(np.max(it.rir)) == 0.5  # the dedicated _S session, not the later one
    by_speaker = load_butreverb(tmp_path / "but", group_by="speaker")
    assert len({it.group for it in by_speaker}) == 3
    b = RirBank(build_real_bank(items, tmp_path / "bank", rate=RATE, name="BUT", fractions=(0.4, 0, 0.6),
                                min_positions=1))
    assert len(b) == 6 and b.bank_rate == RATE
    split_of: dict[str, set[str]] = {}
    for r in b.rows:
        split_of.setdefault(r["position"], set()).add(r["split"])
    assert len(split_of) == 3 and all(len(s) == 1 for s in split_of.values())
    assert load_butreverb(tmp_path / "but", rooms=["VUT_FIT_Q301"]) and True
    with pytest.raises(CorpusError, match="no BUT ReverbDB"):
        load_butreverb(tmp_path / "but", rooms=["VUT_FIT_L207"])


def test_real_bank_accepts_plain_tuples_and_rejects_missing_distances(tmp_path: Path) -> None:
    h = np.zeros(800, dtype=np.float32)
    h[10] = 1
    items = [(h, 16000, 1.0 + k, "roomA-mic0", {"room": "roomA"}) for k in range(4)]
    b = RirBank(build_real_bank(items, tmp_path / "b", rate=RATE, fractions=(0.5, 0, 0.5)))
    assert [len(b.split(s)) for s in ("train", "valid", "test")] == [2, 0, 2]
    assert b.rows[0]["length"] == 400
    with pytest.raises(VoxaError, match="distance"):
        build_real_bank([RealItem(h, 16000, float("nan"), "g", {})], tmp_path / "c")


# ---------------------------------------------------------------- CLI


def test_cli_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = main(["tse", "simulate", "--preset", "D1", "--size", "20", "--rate", "8000", "--workers", "1",
               "--quiet", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "20 RIRs" in text and "per 1,000 RIRs" in text
    assert json.loads((out / "bank.json").read_text())["complete"] is True
    with pytest.raises(SystemExit) as e:
        main(["tse", "simulate", "--preset", "D9", "--out", str(tmp_path / "bad")])
    assert e.value.code != 0
    assert main(["tse", "realbank", "--corpus", "air", str(tmp_path / "nowhere"), "--out",
                 str(tmp_path / "x")]) != 0
