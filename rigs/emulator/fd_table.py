"""One emulated flexion-distraction table: FDC-1 controller, section, distraction winch,
SIO-1 relays and the bench's obstacle, on one clock.

As the traction table (rigs/emulator/table.py) it advances lazily to the clock's present
on every access. It is what the bench's instruments measure: an `AngleSource` for the
tilt inclinometer (the section's true angles, past ones from the kept plan), a
`ForceSource` for the distraction gauges (the winch's true strap force), and through
`ObstacleLoadCell` a second ForceSource, the force the section presses on the obstacle.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from drivers.tcm1 import StimulusCoil
from rigs.emulator.clock import TableClock
from rigs.emulator.controller import ControllerModel
from rigs.emulator.faults import Defects, catalogue
from rigs.emulator.fd_controller import FdController
from rigs.emulator.fd_params import FdParams
from rigs.emulator.obstacle import DEFAULT_OBSTACLE_ANGLE_DEG, Obstacle
from rigs.emulator.physics import Mechanics


class FlexionDistractionTable:
    def __init__(self, seed: int = 0, time_scale: float = 1.0, params: FdParams | None = None,
                 obstacle_angle_deg: float = DEFAULT_OBSTACLE_ANGLE_DEG, clock: TableClock | None = None,
                 winch_defects: Defects | None = None, faults=(), wear: float = 0.0) -> None:
        """`params`: the table's numbers, its defects among them (FdParams); `winch_defects`:
        the distraction winch's, as the traction table's defects name them (its release,
        its over-force trip); `faults`: named defects of the kind's catalogue
        (rigs/emulator/fd_faults.py) switched on in both; `wear`: the winch's release valve
        slower by this fraction."""
        self.kind = "flexion-distraction"
        self.seed = seed
        self.faults = list(faults)
        self.defects = winch_defects or Defects()
        params = params or FdParams.for_seed(seed)
        if wear:
            params = replace(params, release_wear=float(wear))
        self.params = catalogue(self.kind).apply(self.faults, params, self.defects)
        winch_params = self.params.winch(seed)
        self.rng = np.random.default_rng([seed, 0xC0DE])
        self.mechanics = Mechanics(winch_params, self.rng)
        winch = ControllerModel(winch_params, self.mechanics, self.defects)
        self.obstacle = Obstacle(obstacle_angle_deg, self.params.obstacle_stiffness_n_per_deg)
        self.controller = FdController(self.params, winch, self.obstacle)
        self.clock = clock or TableClock(time_scale)
        self.obstacle_cell = ObstacleLoadCell(self)

    # -- ForceSource (the distraction) and AngleSource (the section) --------------------
    def sync(self, exact: bool = True) -> float:
        self.advance_to(self.clock.now(), exact)
        return self.controller.now

    def force_at(self, times: np.ndarray) -> np.ndarray:
        return self.mechanics.force_at(times)

    def angles_at(self, times: np.ndarray) -> np.ndarray:
        return self.controller.section.angles_at(times)

    def history_start(self) -> float:
        return max(self.mechanics.history.oldest, self.controller.section.oldest)

    # -- time ------------------------------------------------------------------------
    def advance_to(self, t: float, exact: bool = True) -> None:
        self.controller.advance_to(t, exact)

    def advance_by(self, seconds: float) -> None:
        """Offline stepping for tests: the clock is not consulted."""
        self.advance_to(self.controller.now + seconds)

    # -- stimulus module -------------------------------------------------------------
    def set_relay(self, relay: StimulusCoil, on: bool) -> None:
        self.controller.set_relay(relay, on)

    @property
    def relays(self) -> dict[StimulusCoil, bool]:
        return self.controller.relays


class ObstacleLoadCell:
    """The obstacle's padded load cell as a ForceSource: the contact force of the section
    on it, in table time, for the obstacle gauges."""

    def __init__(self, table: FlexionDistractionTable) -> None:
        self.table = table
        self.clock = table.clock

    def sync(self) -> float:
        return self.table.sync()

    def force_at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        return self.table.obstacle.contact_at(times, self.table.angles_at(times))

    def history_start(self) -> float:
        return self.table.history_start()
