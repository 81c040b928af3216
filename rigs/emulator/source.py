"""What an emulated instrument needs from the table it measures."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rigs.emulator.clock import TableClock


class ForceSource(Protocol):
    """The true traction force of a (emulated) table, in table time.

    `sync()` advances the model to the clock's present and returns that table time;
    `force_at(times)` gives the true cord force (N) at table times no later than the
    last sync and no earlier than `history_start()`.
    """

    clock: TableClock

    def sync(self) -> float: ...

    def force_at(self, times: np.ndarray) -> np.ndarray: ...

    def history_start(self) -> float: ...


class AngleSource(Protocol):
    """The true angles of a (emulated) table's caudal section, in table time.

    As ForceSource: `sync()` advances to the clock's present and returns that table time;
    `angles_at(times)` gives the true angles in degrees, shape (n, 2): column 0 the
    flexion axis (+ lowered), column 1 the lateral axis (+ towards the patient's left),
    at table times no later than the last sync and no earlier than `history_start()`.
    """

    clock: TableClock

    def sync(self) -> float: ...

    def angles_at(self, times: np.ndarray) -> np.ndarray: ...

    def history_start(self) -> float: ...
