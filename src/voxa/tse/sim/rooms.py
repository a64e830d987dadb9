"""Shoebox rooms with the randomized image method (pyroomacoustics), as the paper's D1-D3 use.

Responses keep their physical scale (no normalisation: pyroomacoustics gives the direct path an
amplitude of ``1 / d``, so farther talkers are quieter, a cue the distance model may use) and start
at the moment of emission: the direct path of a source at distance ``d`` peaks at ``d / c`` seconds.
pyroomacoustics delays every response by half its fractional-delay filter; that global delay is
removed here so that the time of arrival is the geometry and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from voxa.errors import VoxaError

__all__ = ["SPEED_OF_SOUND", "position_bounds", "random_position", "sabine_absorption", "simulate_rirs"]

#: pyroomacoustics' default speed of sound (m/s), used for every simulated bank
SPEED_OF_SOUND = 343.0


def _dim(room_dim: Sequence[float]) -> list[float]:
    dim = [float(x) for x in room_dim]
    if len(dim) != 3 or min(dim) <= 0:
        raise VoxaError(f"room dimensions must be three positive lengths in metres, got {list(room_dim)}")
    return dim


def sabine_absorption(room_dim: Sequence[float], rt60: float) -> tuple[float, int]:
    """Wall energy absorption and image-source order that give ``rt60`` by Sabine's formula.

    Args:
        room_dim: ``[x, y, z]`` in metres.
        rt60: wanted reverberation time in seconds.

    Returns:
        ``(absorption, max_order)`` for :class:`pyroomacoustics.ShoeBox`.

    Raises:
        VoxaError: the room cannot be that dry (absorption would exceed 1) or ``rt60`` is not positive.
    """
    import pyroomacoustics as pra

    dim = _dim(room_dim)
    if not rt60 > 0:
        raise VoxaError(f"RT60 must be positive, got {rt60}")
    try:
        absorption, max_order = pra.inverse_sabine(float(rt60), dim, c=SPEED_OF_SOUND)
    except ValueError:
        raise VoxaError(f"a {dim[0]:g} x {dim[1]:g} x {dim[2]:g} m room cannot reach RT60 {rt60:g} s "
                        f"(it would need wall absorption above 1; ask for a longer RT60 or a bigger room)"
                        ) from None
    return float(absorption), int(max_order)


def random_position(rng: np.random.Generator, room_dim: Sequence[float], wall_margin: float = 0.5,
                    z_range: tuple[float, float] = (1.2, 2.0)) -> np.ndarray:
    """A point uniformly drawn at least ``wall_margin`` from every wall, its height in ``z_range``.

    Raises:
        VoxaError: the room leaves no such point (too small for the margin or the height range).
    """
    lo, hi = position_bounds(room_dim, wall_margin, z_range)
    return rng.uniform(lo, hi)


def position_bounds(room_dim: Sequence[float], wall_margin: float = 0.5,
                    z_range: tuple[float, float] = (1.2, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the box :func:`random_position` draws from.

    Raises:
        VoxaError: the box is empty.
    """
    dim = np.asarray(_dim(room_dim))
    lo = np.array([wall_margin, wall_margin, max(wall_margin, z_range[0])])
    hi = np.array([dim[0] - wall_margin, dim[1] - wall_margin, min(dim[2] - wall_margin, z_range[1])])
    if np.any(hi < lo):
        raise VoxaError(f"a {dim[0]:g} x {dim[1]:g} x {dim[2]:g} m room has no point {wall_margin:g} m from "
                        f"the walls at height {z_range[0]:g}-{z_range[1]:g} m")
    return lo, hi


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed pyroomacoustics' randomness for one simulation, then put the previous state back.

    pyroomacoustics 0.10 draws the random image displacements from its own package-global generator
    (``pra.random``); older releases drew from numpy's global one. Both are seeded, and both are
    restored so that callers' random streams are not disturbed. One thread: pyroomacoustics' threaded
    response builder sums image contributions in a scheduling-dependent order, which would make the
    same seed give responses that differ in the last bits.
    """
    import pyroomacoustics as pra

    np_state = np.random.get_state()
    pra_gen = getattr(getattr(pra, "random", None), "generator", None)
    pra_rng = getattr(pra_gen, "_rng", None) if pra_gen is not None else None
    threads = pra.constants.get("num_threads")
    pra.constants.set("num_threads", 1)
    if seed is not None:
        s = int(seed) % 2**32  # numpy's legacy seed and libroom's both take unsigned integers
        np.random.seed(s)
        if pra_gen is not None:
            pra.random.seed(numpy=s, libroom=s)
    try:
        yield
    finally:
        pra.constants.set("num_threads", threads)
        np.random.set_state(np_state)
        if pra_gen is not None and seed is not None:
            pra_gen._rng = pra_rng


def _trim(h: np.ndarray, floor_db: float) -> np.ndarray:
    peak = float(np.max(np.abs(h))) if h.size else 0.0
    if peak == 0.0:
        return h
    keep = np.nonzero(np.abs(h) >= peak * 10.0 ** (floor_db / 20.0))[0]
    return h[: int(keep[-1]) + 1]


def simulate_rirs(room_dim: Sequence[float], rt60: float, mic: Sequence[float],
                  sources: Sequence[Sequence[float]] | np.ndarray, rate: int, use_rand_ism: bool = True,
                  max_rand_disp: float = 0.08, seed: int | None = None,
                  trim_db: float = -80.0) -> list[np.ndarray]:
    """Responses from every source to one microphone in a shoebox room.

    Args:
        room_dim: ``[x, y, z]`` in metres.
        rt60: reverberation time in seconds (walls absorb uniformly, by inverse Sabine).
        mic: microphone position, metres.
        sources: source positions, ``[n, 3]`` metres.
        rate: sample rate in Hz.
        use_rand_ism: randomized image method (De Sena et al. 2015), which breaks the sweeping echoes
            of a perfectly regular shoebox; the paper uses it. Only reflections are displaced: the
            direct path stays at the labelled distance.
        max_rand_disp: largest random image displacement per axis, metres.
        seed: seeds the image displacements; the same seed gives bit-identical responses.
        trim_db: the tail after the last sample within this many dB of the peak is cut (it holds
            only the fading end of the image-source sum).

    Returns:
        One float32 response per source, at physical scale, the direct path at ``distance / c``.

    Raises:
        VoxaError: the RT60 is out of reach, or a position lies outside the room.
    """
    import pyroomacoustics as pra

    dim = _dim(room_dim)
    absorption, max_order = sabine_absorption(dim, rt60)
    srcs = np.asarray(sources, dtype=np.float64).reshape(-1, 3)
    m = np.asarray(mic, dtype=np.float64).reshape(3)
    for p in (m, *srcs):
        if np.any(p <= 0) or np.any(p >= dim):
            raise VoxaError(f"position {p.tolist()} is outside the {dim[0]:g} x {dim[1]:g} x {dim[2]:g} m "
                            f"room")
    if len(srcs) == 0:
        return []
    with _seeded(seed):
        room = pra.ShoeBox(dim, fs=int(rate), materials=pra.Material(absorption), max_order=max_order,
                           use_rand_ism=use_rand_ism, max_rand_disp=max_rand_disp)
        room.set_sound_speed(SPEED_OF_SOUND)
        room.add_microphone(m)
        for p in srcs:
            room.add_source(p)
        room.image_source_model()
        if use_rand_ism:
            # pyroomacoustics displaces the order-0 image (the source itself) too; the label is the true
            # distance, so the direct path is put back and only reflections are randomized
            for s in room.sources:
                if getattr(s, "orders", None) is not None and s.images is not None:
                    direct = np.asarray(s.orders) == 0
                    s.images[:, direct] = np.asarray(s.position, dtype=float).reshape(-1, 1)
        room.compute_rir()
    delay = pra.constants.get("frac_delay_length") // 2
    return [_trim(np.asarray(h[delay:], dtype=np.float32), trim_db) for h in room.rir[0]]
