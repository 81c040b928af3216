"""One emulated table: mechanics + TCM-1 controller + SIO-1 relays, on one clock.

The table advances lazily to the clock's present on every access (and on a ticker),
in 1 ms controller cycles plus an exact partial one, so a trigger that arrives "now"
acts at its true instant and everything observable is computed after the model caught
up. The cycles run compiled, in batches (rigs/emulator/kernel.py), so catching up costs
microseconds whatever the time scale.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from drivers.tcm1 import StimulusCoil
from rigs.emulator.clock import TableClock
from rigs.emulator.controller import ControllerModel
from rigs.emulator.faults import Defects, apply_defects
from rigs.emulator.physics import Mechanics, TableParams


class EmulatedTable:
    def __init__(
        self,
        kind: str = "lumbar",
        seed: int = 0,
        time_scale: float = 1.0,
        faults: list[str] | None = None,
        clock: TableClock | None = None,
        wear: float = 0.0,
    ) -> None:
        self.kind = kind
        self.seed = seed
        self.faults = list(faults or [])
        self.defects = Defects()
        params = TableParams.for_kind(kind, seed)
        # a release valve that wears: its release slows by this fraction (a series of runs
        # with a growing wear is the drift the results history must flag before it fails)
        self.wear = float(wear)
        if self.wear:
            params = replace(params, release_tau_s=params.release_tau_s * (1.0 + self.wear))
        self.params = apply_defects(self.faults, params, self.defects)
        self.rng = np.random.default_rng([seed, 0xC0DE])
        self.mechanics = Mechanics(self.params, self.rng)
        self.controller = ControllerModel(self.params, self.mechanics, self.defects)
        self.clock = clock or TableClock(time_scale)

    # -- ForceSource protocol (what the emulated gauges read) ---------------------
    def sync(self, exact: bool = True) -> float:
        """Catch up with the clock. `exact=False` stops at the last whole controller
        cycle: what a real controller's registers show (they update once per cycle),
        and it spares a partial step on every register read."""
        self.advance_to(self.clock.now(), exact)
        return self.mechanics.s.t

    def force_at(self, times: np.ndarray) -> np.ndarray:
        return self.mechanics.force_at(times)

    def history_start(self) -> float:
        return self.mechanics.history.oldest

    # -- time ------------------------------------------------------------------------
    def advance_to(self, t: float, exact: bool = True) -> None:
        self.controller.advance_to(t, exact)

    def advance_by(self, seconds: float) -> None:
        """Offline stepping for tests: the clock is not consulted."""
        self.advance_to(self.mechanics.s.t + seconds)

    # -- stimulus module -------------------------------------------------------------
    def set_relay(self, relay: StimulusCoil, on: bool) -> None:
        self.controller.set_relay(relay, on)

    @property
    def relays(self) -> dict[StimulusCoil, bool]:
        return self.controller.relays
