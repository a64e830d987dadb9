"""The paper's simulated impulse-response sets D1-D3 (Shi, Yen, Nakadai 2024, section III.A).

* **D1**: one 7 x 8 x 3 m room, RT60 0.2 s, the microphone at (3.5, 4, 1.1); N speaker positions
  (default 10,000) at least 0.5 m from the walls, 1.2-2.0 m high; split 0.9 / 0.02 / 0.08.
* **D2**: the same room; M random microphone positions (default 100; 0.5 m from the walls, 1.0-1.5 m
  high, a table-to-standing device height around D1's 1.1 m) with S speaker positions each
  (default 2,000); split 0.9 / 0.01 / 0.09 **by microphone**: a test microphone position is never
  seen in training, which is what D2 ("random microphone positions") measures, and a mixture's two
  responses always share one microphone, so whole groups go to one split.
* **D3**: R rooms (default 50,000) drawn uniformly from 4 x 5 x 2.5 to 8 x 10 x 3.0 m, RT60 uniform
  in 0.2-0.5 s, one random microphone (as D2) and ten speakers per room; split 0.9 / 0.02 / 0.08 by
  room. A room that cannot reach its RT60 or has no valid position is dropped and counted (with the
  paper's ranges none is: the smallest room needs RT60 >= 0.1 s and leaves room for every position).

A build first draws the whole plan (rooms, positions, splits) from ``seed`` with vectorised numpy,
then simulates it in shards of ``shard_size`` responses. Shard ``k`` is simulated with a seed derived
from ``(preset, seed, k)``, so its responses never depend on which worker ran it or when, a build
split over many processes equals a serial one, and an interrupted build resumes by redoing only the
shards whose rows are missing. Positions are rounded to 0.1 mm before simulation so that the rows
state exactly what was simulated; ``distance`` is the 3-D microphone-source distance in metres.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxa.errors import VoxaError
from voxa.tse.bank import SPLITS, BankWriter
from voxa.tse.sim.rooms import SPEED_OF_SOUND, simulate_rirs

__all__ = ["PRESETS", "BuildReport", "Plan", "build_bank", "plan_d1", "plan_d2", "plan_d3", "make_plan"]

log = logging.getLogger(__name__)

#: speaker positions: this far from every wall, heights in this range (the paper's D1-D3)
WALL_MARGIN = 0.5
SPK_Z = (1.2, 2.0)
#: random microphone heights for D2/D3 (the paper does not say; D1's fixed microphone is at 1.1 m)
MIC_Z = (1.0, 1.5)
D1_ROOM = (7.0, 8.0, 3.0)
D1_MIC = (3.5, 4.0, 1.1)
D1_RT60 = 0.2
D3_DIM_RANGE = ((4.0, 5.0, 2.5), (8.0, 10.0, 3.0))
D3_RT60_RANGE = (0.2, 0.5)
#: half-width of the query window used with these sets in the paper
R_SPK = 0.5
#: mixes into the seed so that D1, D2 and D3 with the same seed draw unrelated positions
_CODES = {"D1": 1, "D2": 2, "D3": 3}


@dataclass
class Plan:
    """Everything a build simulates, one entry per response (arrays of equal length ``n``).

    Attributes:
        preset: ``"D1"``, ``"D2"`` or ``"D3"``.
        index: stable response number (its id is ``{preset}-r{index:07d}``; D3 keeps the number a
            dropped room would have had, so ids do not shift).
        room_id, mic_id: the room and microphone numbers.
        split: ``"train"``/``"valid"``/``"test"`` per response.
        room_dim: ``[n, 3]`` metres; rt60: ``[n]`` seconds; mic, src: ``[n, 3]`` metres.
        params: the resolved preset parameters (stored in the bank's metadata).
        dropped_rooms: rooms left out (D3).
        room_width, mic_width: zero-padding of the numbers in group names.
    """

    preset: str
    index: np.ndarray
    room_id: np.ndarray
    mic_id: np.ndarray
    split: np.ndarray
    room_dim: np.ndarray
    rt60: np.ndarray
    mic: np.ndarray
    src: np.ndarray
    params: dict[str, Any]
    dropped_rooms: int = 0
    room_width: int = 1
    mic_width: int = 1

    def __len__(self) -> int:
        return len(self.index)

    def group(self, i: int) -> str:
        """Entry ``i``'s room-and-microphone group, e.g. ``D1-room0-mic0``, ``D3-room00042-mic0``."""
        return (f"{self.preset}-room{int(self.room_id[i]):0{self.room_width}d}"
                f"-mic{int(self.mic_id[i]):0{self.mic_width}d}")

    def take(self, lo: int, hi: int) -> Plan:
        """Entries ``lo:hi`` (a shard's part of the plan)."""
        sl = slice(lo, hi)
        return Plan(self.preset, self.index[sl], self.room_id[sl], self.mic_id[sl], self.split[sl],
                    self.room_dim[sl], self.rt60[sl], self.mic[sl], self.src[sl], self.params,
                    self.dropped_rooms, self.room_width, self.mic_width)


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Sizes of ``len(fractions)`` parts of ``n`` items, largest remainders, every part >= 1 when
    ``n`` allows (small builds still get a valid and a test part; train is shrunk first).
    """
    f = np.asarray(fractions, dtype=float)
    f = f / f.sum()
    raw = f * n
    counts = np.floor(raw).astype(int)
    for j in np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]:
        counts[j] += 1
    # give every wanted part one item, taken from the biggest part, as long as n allows
    for j in np.argsort(f, kind="stable"):
        if f[j] > 0 and counts[j] == 0 and n >= int((f > 0).sum()):
            counts[int(np.argmax(counts))] -= 1
            counts[j] += 1
    return [int(c) for c in counts]


def _split_labels(n: int, fractions: Sequence[float]) -> np.ndarray:
    """``n`` split names in index order: train first, then valid, then test."""
    counts = split_counts(n, fractions)
    return np.repeat(np.array(SPLITS), counts)


def _rng(preset: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _CODES[preset]]))


def _uniform_in(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """``n`` points uniform in the boxes ``[lo, hi]`` (broadcast), rounded to 0.1 mm inside them."""
    u = rng.random((n, 3))
    return np.clip(np.round(lo + u * (hi - lo), 4), lo, hi)


def _bounds(dim: np.ndarray, z: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    dim = np.atleast_2d(dim)
    lo = np.broadcast_to(np.array([WALL_MARGIN, WALL_MARGIN, max(WALL_MARGIN, z[0])]), dim.shape)
    hi = np.stack([dim[:, 0] - WALL_MARGIN, dim[:, 1] - WALL_MARGIN,
                   np.minimum(dim[:, 2] - WALL_MARGIN, z[1])], axis=1)
    return lo, hi


def plan_d1(n: int = 10000, seed: int = 0) -> Plan:
    """D1: fixed room and microphone, ``n`` speaker positions."""
    if n < 1:
        raise VoxaError(f"D1 needs at least 1 response, got {n}")
    rng = _rng("D1", seed)
    dim = np.array(D1_ROOM)
    lo, hi = _bounds(dim, SPK_Z)
    src = _uniform_in(rng, lo, hi, n)
    return Plan("D1", np.arange(n), np.zeros(n, int), np.zeros(n, int), _split_labels(n, (0.9, 0.02, 0.08)),
                np.tile(dim, (n, 1)), np.full(n, D1_RT60), np.tile(np.array(D1_MIC), (n, 1)), src,
                params={"n": n})


def plan_d2(mics: int = 100, speakers: int = 2000, seed: int = 0) -> Plan:
    """D2: fixed room, ``mics`` random microphones with ``speakers`` positions each, split by mic."""
    if mics < 1 or speakers < 1:
        raise VoxaError(f"D2 needs at least 1 microphone and 1 speaker, got {mics} x {speakers}")
    rng = _rng("D2", seed)
    dim = np.array(D1_ROOM)
    mlo, mhi = _bounds(dim, MIC_Z)
    mic_pos = _uniform_in(rng, mlo, mhi, mics)
    slo, shi = _bounds(dim, SPK_Z)
    n = mics * speakers
    src = _uniform_in(rng, slo, shi, n)
    mic_id = np.repeat(np.arange(mics), speakers)
    return Plan("D2", np.arange(n), np.zeros(n, int), mic_id,
                np.repeat(_split_labels(mics, (0.9, 0.01, 0.09)), speakers), np.tile(dim, (n, 1)),
                np.full(n, D1_RT60), mic_pos[mic_id], src, params={"mics": mics, "speakers": speakers},
                mic_width=max(3, len(str(mics - 1))))


def _reachable(dim: np.ndarray, rt60: np.ndarray) -> np.ndarray:
    """Whether inverse Sabine gives an absorption <= 1 (pyroomacoustics' own formula, vectorised)."""
    x, y, z = dim[:, 0], dim[:, 1], dim[:, 2]
    volume = x * y * z
    surface = 2 * (x * y + x * z + y * z)
    return 24 * math.log(10) * volume / (SPEED_OF_SOUND * surface * rt60) <= 1.0


def plan_d3(rooms: int = 50000, speakers: int = 10, seed: int = 0,
            rt60_range: Sequence[float] = D3_RT60_RANGE,
            dim_range: Sequence[Sequence[float]] = D3_DIM_RANGE) -> Plan:
    """D3: ``rooms`` random rooms and RT60s, one microphone and ``speakers`` positions per room."""
    if rooms < 1 or speakers < 1:
        raise VoxaError(f"D3 needs at least 1 room and 1 speaker, got {rooms} x {speakers}")
    rng = _rng("D3", seed)
    dlo, dhi = (np.asarray(d, dtype=float) for d in dim_range)
    # every room draws the same amount of randomness, so dropping one never shifts the others
    dims = np.round(dlo + rng.random((rooms, 3)) * (dhi - dlo), 3)
    rt60 = np.round(rt60_range[0] + rng.random(rooms) * (rt60_range[1] - rt60_range[0]), 4)
    u_mic = rng.random((rooms, 3))
    u_src = rng.random((rooms, speakers, 3))
    mlo, mhi = _bounds(dims, MIC_Z)
    slo, shi = _bounds(dims, SPK_Z)
    ok = _reachable(dims, rt60) & np.all(mhi >= mlo, axis=1) & np.all(shi >= slo, axis=1)
    mic_pos = np.clip(np.round(mlo + u_mic * (mhi - mlo), 4), mlo, mhi)
    src = np.clip(np.round(slo[:, None] + u_src * (shi - slo)[:, None], 4), slo[:, None], shi[:, None])
    kept = np.nonzero(ok)[0]
    room_split = _split_labels(len(kept), (0.9, 0.02, 0.08))
    n = len(kept) * speakers
    room_id = np.repeat(kept, speakers)
    return Plan("D3", (room_id * speakers + np.tile(np.arange(speakers), len(kept))), room_id,
                np.zeros(n, int), np.repeat(room_split, speakers), dims[room_id], rt60[room_id],
                mic_pos[room_id], src[kept].reshape(n, 3),
                params={"rooms": rooms, "speakers": speakers, "rt60_range": [float(v) for v in rt60_range],
                        "dim_range": [[float(v) for v in d] for d in dim_range]},
                dropped_rooms=int(rooms - len(kept)), room_width=max(5, len(str(rooms - 1))))


def _d2_size(size: int, overrides: dict[str, Any]) -> dict[str, int]:
    # keep the paper's 2,000 positions per microphone as long as that leaves 3 microphones (one per
    # split); small builds shrink the positions instead. A given --mics takes the size as the total.
    if overrides.get("speakers") and not overrides.get("mics"):
        return {"mics": max(1, size // overrides["speakers"])}
    mics = overrides.get("mics") or min(100, max(3, math.ceil(size / 2000)))
    return {"mics": mics, "speakers": max(1, size // mics)}


@dataclass(frozen=True)
class Preset:
    """A preset's planner, what ``size`` means for it, and its bank metadata."""

    name: str
    planner: Callable[..., Plan]
    size_kwargs: Callable[[int, dict[str, Any]], dict[str, Any]]
    description: str
    splits: dict[str, float]
    split_by: str
    defaults: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "D1": Preset("D1", plan_d1, lambda s, _: {"n": s},
                 "fixed 7x8x3 m room, RT60 0.2 s, fixed microphone (3.5, 4, 1.1)",
                 {"train": 0.9, "valid": 0.02, "test": 0.08}, "response", {"n": 10000}),
    "D2": Preset("D2", plan_d2, _d2_size,
                 "fixed 7x8x3 m room, RT60 0.2 s, random microphones with many speakers each",
                 {"train": 0.9, "valid": 0.01, "test": 0.09}, "microphone", {"mics": 100, "speakers": 2000}),
    "D3": Preset("D3", plan_d3, lambda s, _: {"rooms": s},
                 "random rooms 4x5x2.5-8x10x3 m, RT60 0.2-0.5 s, one microphone and ten speakers each",
                 {"train": 0.9, "valid": 0.02, "test": 0.08}, "room", {"rooms": 50000, "speakers": 10}),
}


def make_plan(preset: str, size: int | None = None, seed: int = 0, **overrides: Any) -> Plan:
    """The plan of ``preset``: ``size`` scales it (D1: responses; D2: total responses, see
    :func:`_d2_size`; D3: rooms); ``overrides`` set planner arguments directly (e.g. D2 ``mics``).
    """
    p = _preset(preset)
    kwargs = dict(p.defaults)
    if size is not None and size < 1:
        raise VoxaError(f"--size must be positive, got {size}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if size is not None:
        kwargs.update(p.size_kwargs(int(size), overrides))
    kwargs.update(overrides)
    try:
        return p.planner(seed=seed, **kwargs)
    except TypeError as e:
        raise VoxaError(f"preset {p.name}: bad parameters {sorted(overrides)} ({e})") from None


def _preset(name: str) -> Preset:
    p = PRESETS.get(str(name).upper())
    if p is None:
        raise VoxaError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")
    return p


def _shard_seed(preset: str, seed: int, k: int, j: int) -> int:
    return int(np.random.SeedSequence([int(seed), _CODES[preset], int(k), int(j)]).generate_state(1)[0])


def simulate_shard(plan: Plan, k: int, seed: int, rate: int, use_rand_ism: bool = True,
                   max_rand_disp: float = 0.08) -> tuple[int, list[dict[str, Any]], list[np.ndarray]]:
    """Simulate one shard's part of a plan: ``(k, rows, responses)``.

    Consecutive entries with the same room and microphone are simulated together (one ShoeBox with
    all their sources); setting ``j`` of shard ``k`` is seeded from ``(preset, seed, k, j)``.
    """
    rows: list[dict[str, Any]] = []
    rirs: list[np.ndarray] = []
    n = len(plan)
    lo, j = 0, 0
    while lo < n:
        hi = lo + 1
        while hi < n and plan.room_id[hi] == plan.room_id[lo] and plan.mic_id[hi] == plan.mic_id[lo]:
            hi += 1
        hs = simulate_rirs(plan.room_dim[lo], float(plan.rt60[lo]), plan.mic[lo], plan.src[lo:hi], rate,
                           use_rand_ism=use_rand_ism, max_rand_disp=max_rand_disp,
                           seed=_shard_seed(plan.preset, seed, k, j))
        for i, h in zip(range(lo, hi), hs):
            mic, src = plan.mic[i], plan.src[i]
            rows.append({
                "id": f"{plan.preset}-r{int(plan.index[i]):07d}", "group": plan.group(i),
                "room_id": int(plan.room_id[i]), "mic_id": int(plan.mic_id[i]), "split": str(plan.split[i]),
                "room_dim": [float(v) for v in plan.room_dim[i]], "rt60": float(plan.rt60[i]),
                "mic": [float(v) for v in mic], "src": [float(v) for v in src],
                "distance": round(float(np.linalg.norm(src - mic)), 6), "preset": plan.preset,
            })
            rirs.append(h)
        lo, j = hi, j + 1
    return k, rows, rirs


@dataclass
class BuildReport:
    """What a build did.

    Attributes:
        out: the bank directory.
        preset: the preset name.
        rirs: responses in the bank.
        computed: responses simulated by this run (fewer than ``rirs`` when it resumed).
        shards, skipped_shards: shards in the bank, and those already done before this run.
        seconds: wall time of the simulation part of this run.
        dropped_rooms: rooms left out of the plan (D3).
    """

    out: Path
    preset: str
    rirs: int
    computed: int
    shards: int
    skipped_shards: int
    seconds: float
    dropped_rooms: int

    @property
    def seconds_per_1000(self) -> float | None:
        """Wall seconds per 1,000 simulated responses (``None`` if this run simulated none)."""
        return 1000.0 * self.seconds / self.computed if self.computed else None


def _meta(plan: Plan, preset: Preset, size: int | None, rate: int, seed: int, shard_size: int,
          use_rand_ism: bool, max_rand_disp: float) -> dict[str, Any]:
    return {
        "kind": "simulated", "preset": plan.preset, "description": preset.description, "rate": int(rate),
        "seed": int(seed), "size": size, "params": plan.params, "shard_size": int(shard_size),
        "rirs": len(plan), "dropped_rooms": plan.dropped_rooms, "splits": preset.splits,
        "split_by": preset.split_by, "r_spk": R_SPK, "speed_of_sound": SPEED_OF_SOUND,
        "wall_margin": WALL_MARGIN, "speaker_height": list(SPK_Z), "mic_height": list(MIC_Z),
        "use_rand_ism": bool(use_rand_ism), "max_rand_disp": float(max_rand_disp),
        "distance": "3-D microphone-source distance, metres",
    }


def build_bank(preset: str, out: str | os.PathLike, size: int | None = None, rate: int = 16000, seed: int = 0,
               workers: int | None = None, shard_size: int = 250, progress: bool = True,
               use_rand_ism: bool = True, max_rand_disp: float = 0.08, **overrides: Any) -> BuildReport:
    """Simulate a preset into a bank at ``out`` (resumable, reproducible, parallel).

    Args:
        preset: ``"D1"``, ``"D2"`` or ``"D3"``.
        out: bank directory; an interrupted build in it resumes (same settings required).
        size: scale (D1: responses; D2: total responses, mics = clamp(ceil(size / 2000), 3, 100);
            D3: rooms); ``None`` gives the paper's sizes.
        rate: sample rate in Hz.
        seed: draws the plan and the image randomisation; same seed, same bank.
        workers: processes (default ``os.cpu_count()``); 1 runs in this process.
        shard_size: responses per shard (part of the bank's identity, like ``seed``).
        progress: show a tqdm bar.
        use_rand_ism, max_rand_disp: see :func:`voxa.tse.sim.rooms.simulate_rirs`.
        **overrides: planner arguments (D2 ``mics``/``speakers``, D3 ``speakers``/``rt60_range``/...).

    Returns:
        A :class:`BuildReport` with timing.

    Raises:
        VoxaError: unknown preset, bad size, or ``out`` holds a bank made with other settings.
    """
    from tqdm import tqdm

    p = _preset(preset)
    if shard_size < 1:
        raise VoxaError(f"shard_size must be positive, got {shard_size}")
    plan = make_plan(p.name, size, seed, **overrides)
    if len(plan) == 0:
        raise VoxaError(f"{p.name}: nothing to simulate ({plan.dropped_rooms} rooms dropped: none can reach "
                        f"its RT60 or hold the positions)")
    meta = _meta(plan, p, size, rate, seed, shard_size, use_rand_ism, max_rand_disp)
    writer = BankWriter(out, meta)
    nshards = math.ceil(len(plan) / shard_size)
    done = writer.done_shards()
    todo = [k for k in range(nshards) if f"rirs-{k:05d}" not in done]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))

    def task(k: int) -> tuple[Plan, int, int, int, bool, float]:
        return plan.take(k * shard_size, min((k + 1) * shard_size, len(plan))), k, seed, rate, \
            use_rand_ism, max_rand_disp

    computed = sum(min((k + 1) * shard_size, len(plan)) - k * shard_size for k in todo)
    bar = tqdm(total=computed, desc=f"simulating {p.name}", unit="rir", disable=not progress or not todo)
    t0 = time.perf_counter()
    try:
        if workers == 1:
            for k in todo:
                _, rows, rirs = simulate_shard(*task(k))
                writer.write_shard(k, rows, rirs)
                bar.update(len(rows))
        else:
            _run_pool(workers, todo, task, writer, bar)
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    writer.finish()
    return BuildReport(Path(out), p.name, len(plan), computed, nshards, nshards - len(todo), seconds,
                       plan.dropped_rooms)


def _run_pool(workers: int, todo: list[int], task: Callable[[int], tuple[Any, ...]], writer: BankWriter,
              bar: Any) -> None:
    """Run shards on a process pool, at most ``2 * workers`` in flight so that finished responses
    do not pile up in memory, and write each as it arrives (the rows file marks it done)."""
    pending = list(reversed(todo))
    running: set[Future] = set()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        try:
            while pending or running:
                while pending and len(running) < 2 * workers:
                    running.add(pool.submit(simulate_shard, *task(pending.pop())))
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    k, rows, rirs = f.result()
                    writer.write_shard(k, rows, rirs)
                    bar.update(len(rows))
        except BaseException:
            for f in running:
                f.cancel()
            raise
