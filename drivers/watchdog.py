"""Keeps the controller's communication watchdog fed while the framework is alive.

The controller releases the table by itself when heartbeats stop (WATCHDOG_MS), which
covers the exit paths code cannot: SIGKILL, a crash of the interpreter, a pulled
cable. While the rig is open this thread writes HEARTBEAT well inside the period; a
suite that tests the watchdog pauses it.
"""

from __future__ import annotations

import threading
import time

from drivers.controller import TractionController


class HeartbeatKeeper:
    def __init__(self, controller: TractionController, period_table_s: float, time_scale: float = 1.0,
                 link: TractionController | None = None) -> None:
        """`link`: a connection of its own for the beats (Modbus TCP). On the test's link a
        beat waits for the link's lock, and a test polling the table back to back can hold
        that lock for longer than the period on a loaded host: the watchdog then trips in
        the middle of a test that has nothing to do with it."""
        if period_table_s <= 0:
            raise ValueError("the watchdog period must be > 0 s")
        self.controller = controller
        self.link = link or controller
        self.period_table_s = period_table_s
        # a sixth of the period in wall seconds: five beats may be lost to a busy
        # machine before a trip
        self.interval_wall_s = period_table_s / time_scale / 6.0
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_ack_ns = 0
        self.last_rtt_s = 0.0  # write round trip of the last beat: bounds when it acted
        self.errors = 0
        self.beats = 0
        self.max_gap_s = 0.0  # longest wall time between two acknowledged beats while feeding
        self.max_rtt_s = 0.0  # longest beat round trip: a gap made of it is the device's (or link's), not ours

    def arm(self) -> None:
        """Set WATCHDOG_MS on the device and start feeding it."""
        self.controller.set_watchdog(self.period_table_s)
        self._beat()
        self._running.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_wall_s):
            # the check and the beat under the link's lock, so pause() is exact
            with self.link._lock:
                if not self._running.is_set():
                    continue
                try:
                    self._beat()
                except Exception:  # noqa: BLE001 — a missed beat is what the watchdog is for
                    self.errors += 1

    def _beat(self) -> None:
        sent = time.perf_counter_ns()
        ack = self.link.heartbeat()
        if self._running.is_set() and self.last_ack_ns:
            self.max_gap_s = max(self.max_gap_s, (ack - self.last_ack_ns) / 1e9)
        self.last_ack_ns, self.last_rtt_s = ack, (ack - sent) / 1e9
        self.max_rtt_s = max(self.max_rtt_s, self.last_rtt_s)
        self.beats += 1

    def pause(self) -> int:
        """Stop feeding; returns the perf_counter_ns of the last acknowledged heartbeat."""
        with self.link._lock:
            self._running.clear()
            return self.last_ack_ns

    def resume(self) -> None:
        self._beat()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
