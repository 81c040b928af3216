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
    def __init__(self, controller: TractionController, period_table_s: float, time_scale: float = 1.0) -> None:
        if period_table_s <= 0:
            raise ValueError("the watchdog period must be > 0 s")
        self.controller = controller
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
            with self.controller._lock:
                if not self._running.is_set():
                    continue
                try:
                    self._beat()
                except Exception:  # noqa: BLE001 — a missed beat is what the watchdog is for
                    self.errors += 1

    def _beat(self) -> None:
        sent = time.perf_counter_ns()
        self.last_ack_ns = self.controller.heartbeat()
        self.last_rtt_s = (self.last_ack_ns - sent) / 1e9

    def pause(self) -> int:
        """Stop feeding; returns the perf_counter_ns of the last acknowledged heartbeat."""
        with self.controller._lock:
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
