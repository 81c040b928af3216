"""The emulated table's clock.

The table may run K times faster than the wall clock (its time scale) so CI can cover
minutes of treatment in seconds. Every time the table keeps (uptime, hold/rest,
watchdog, gauge sample periods) is in this clock; wall time never leaks into the model.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar

#: The wall instant (perf_counter_ns) a read from the network arrived at, while the frames
#: it brought are answered (`one_instant`); None otherwise.
_ARRIVED_NS: ContextVar[int | None] = ContextVar("arrived_ns", default=None)


@contextmanager
def one_instant(arrived_ns: int):
    """Answer everything that arrived together as of the instant it arrived. A status
    snapshot's two reads (discrete inputs, input registers) come in one segment and must
    show one state of the controller: answered each at its own "now", a controller cycle
    could end between them, and the snapshot would pair one cycle's DI with the next
    cycle's IR — a state the controller was never in."""
    token = _ARRIVED_NS.set(arrived_ns)
    try:
        yield
    finally:
        _ARRIVED_NS.reset(token)


class TableClock:
    """Table time in seconds since the emulator started, K times the wall clock."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._t0_ns = time.perf_counter_ns()

    def now(self) -> float:
        """Table time now, or at the arrival of the read being answered (`one_instant`)."""
        wall_ns = _ARRIVED_NS.get()
        if wall_ns is None:
            wall_ns = time.perf_counter_ns()
        return (wall_ns - self._t0_ns) * 1e-9 * self.time_scale

    def wall_ns_at(self, table_t: float) -> int:
        """The perf_counter_ns instant (of this process) at which the table shows table_t."""
        return self._t0_ns + int(table_t / self.time_scale * 1e9)
