"""The emulated table's clock.

The table may run K times faster than the wall clock (its time scale) so CI can cover
minutes of treatment in seconds. Every time the table keeps (uptime, hold/rest,
watchdog, gauge sample periods) is in this clock; wall time never leaks into the model.
"""

from __future__ import annotations

import time


class TableClock:
    """Table time in seconds since the emulator started, K times the wall clock."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._t0_ns = time.perf_counter_ns()

    def now(self) -> float:
        return (time.perf_counter_ns() - self._t0_ns) * 1e-9 * self.time_scale

    def wall_ns_at(self, table_t: float) -> int:
        """The perf_counter_ns instant (of this process) at which the table shows table_t."""
        return self._t0_ns + int(table_t / self.time_scale * 1e9)
