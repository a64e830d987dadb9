"""Impulse-response banks for distance-based target speech extraction.

* :mod:`voxa.tse.sim.rooms`: shoebox rooms with the randomized image method (pyroomacoustics);
* :mod:`voxa.tse.sim.presets`: the paper's simulated sets D1-D3, built in parallel and resumably;
* :mod:`voxa.tse.sim.realbank`: banks of measured responses (AIR, BUT ReverbDB, any list).

Importing this package does not import pyroomacoustics; the simulation functions do.
"""

from __future__ import annotations

from voxa.tse.sim.presets import PRESETS, BuildReport, build_bank, make_plan
from voxa.tse.sim.realbank import RealItem, build_air_bank, build_real_bank, load_air_items, load_butreverb
from voxa.tse.sim.rooms import random_position, sabine_absorption, simulate_rirs

__all__ = [
    "PRESETS",
    "BuildReport",
    "RealItem",
    "build_air_bank",
    "build_bank",
    "build_real_bank",
    "load_air_items",
    "load_butreverb",
    "make_plan",
    "random_position",
    "sabine_absorption",
    "simulate_rirs",
]
