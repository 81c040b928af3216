"""Test helpers: an emulated table served in-process on a clock the test drives.

In-process serving with a manual clock makes contract and state-machine tests exact
and fast (no wall-clock waits); the separate-process emulator is exercised by the
tests that need its timing (physics at time scale 1 and 10, benchmarks).

Any table kind is served as `rig emulate` serves it: the table built, and the register
map and SIO-1 relays chosen, by its entry in rigs/emulator/process.py EMULATED_KINDS;
the client drivers are the ones drivers/kinds.py registers for that kind. So a contract
test of a new kind needs no helper of its own, and cannot test a map the emulator does
not serve.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from drivers import kinds
from drivers.modbus_controller import ModbusController
from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil
from rigs.emulator.modbus_server import controller_devices, serve_tcp, stimulus_devices
from rigs.emulator.process import EMULATED_KINDS, EmulatorOptions
from rigs.emulator.table import EmulatedTable


def run_for(t: EmulatedTable, seconds: float, dt: float = 0.001):
    """Advance a table on its manual clock in `dt` steps: (times, true cord forces) of each."""
    import numpy as np

    n = int(round(seconds / dt))
    times, forces = np.empty(n), np.empty(n)
    for i in range(n):
        t.advance_by(dt)
        times[i], forces[i] = t.mechanics.s.t, t.mechanics.s.force
    return times, forces


class ManualClock:
    """A table clock that only moves when the test says so."""

    def __init__(self, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall_ns_at(self, table_t: float) -> int:
        return int(table_t / self.time_scale * 1e9)


class LoopThread:
    """An asyncio loop in a daemon thread, for servers under test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        """Run fn in the loop thread (the table is only touched from there)."""

        async def wrapper():
            return fn(*args)

        return self.run(wrapper())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class ServedTable:
    table: EmulatedTable  # or rigs/emulator/fd_table.py FlexionDistractionTable: the kind's
    clock: ManualClock
    loop: LoopThread
    controller: ModbusController  # TractionController or FlexionController: the kind's driver
    stimulus: StimulusModule
    controller_port: int
    stimulus_port: int

    def advance(self, seconds: float) -> None:
        """Move table time forward and let the model catch up (in the server's thread)."""
        self.clock.t += seconds
        self.loop.call(self.table.sync)

    def advance_until(self, predicate, timeout_s: float, step_s: float = 0.01) -> float:
        """Advance table time until predicate(status) holds; return table seconds taken."""
        waited = 0.0
        while waited < timeout_s:
            if predicate(self.controller.status()):
                return waited
            self.advance(step_s)
            waited += step_s
        raise AssertionError(f"condition not reached within {timeout_s} s of table time")


def _on_clock(table, clock: ManualClock):
    """The table as `rig emulate` builds it, moved onto the test's clock: the build takes
    no clock (the emulator's is the wall's), and the table and whatever it lends its
    clock to (a flexion-distraction table's obstacle load cell) read it lazily."""
    own = table.clock
    for part in (table, *vars(table).values()):
        if getattr(part, "clock", None) is own:
            part.clock = clock
    return table


@contextmanager
def served_table(kind: str = "lumbar", seed: int = 1, faults: list[str] | None = None,
                 safety_limit_n: float | None = None, unit_id: int = 1,
                 relays: frozenset[int] | None = None, **options):
    """A `kind` table served over Modbus TCP in this process, with its kind's controller
    driver and a stimulus module connected. `relays`: the SIO-1 coils the bench's module
    has (default: the kind's; e.g. without OBSTACLE for a bench without a slide);
    `options`: further EmulatorOptions (obstacle_angle_deg...)."""
    emulated = EMULATED_KINDS[kind]
    relays = emulated.relays if relays is None else relays
    settings = EmulatorOptions(kind=kind, seed=seed, faults=list(faults or []), unit_id=unit_id, **options)
    settings.check()
    clock = ManualClock()
    loop = LoopThread()
    table = _on_clock(emulated.build(settings), clock)
    driver = kinds.controller_for_table(kind).driver
    servers = []
    try:
        server, cport = loop.run(serve_tcp(controller_devices(table, unit_id, emulated.registers)))
        servers.append(server)
        server2, sport = loop.run(serve_tcp(stimulus_devices(table, unit_id, relays)))
        servers.append(server2)
        ctrl = driver(host="127.0.0.1", port=cport, unit_id=unit_id, timeout_s=2.0,
                      safety_limit_n=safety_limit_n).connect()
        stim = StimulusModule("127.0.0.1", sport, unit_id, timeout_s=2.0,
                              obstacle_slide=int(StimulusCoil.OBSTACLE) in relays).connect()
        try:
            yield ServedTable(table, clock, loop, ctrl, stim, cport, sport)
        finally:
            ctrl.close()
            stim.close()
    finally:
        for server in servers:
            loop.run(server.shutdown())
        loop.stop()


def heartbeats_then_silence(served, start_treatment, period_s: float = 0.5):
    """The watchdog rule both protocols state: WATCHDOG_MS set, a treatment started, ten
    heartbeats 0.6 of a period apart keep it alive, then more than a period of silence.
    Returns (status before the silence, status after it)."""
    ctrl = served.controller
    ctrl.set_watchdog(period_s)
    start_treatment()
    for _ in range(10):
        served.advance(0.6 * period_s)
        ctrl.heartbeat()
    alive = ctrl.status()
    served.advance(1.2 * period_s)
    return alive, ctrl.status()


def identity_refused(driver_class, port: int):
    """What `driver_class` says when it reads the identity of the controller at `port`."""
    other = driver_class(host="127.0.0.1", port=port, timeout_s=2.0).connect()
    try:
        other.identity()
    except Exception as exc:  # noqa: BLE001 — the caller asserts which, and its words
        return exc
    finally:
        other.close()
    return None


def wait_for(predicate, wall_s: float, what: str, poll_s: float = 0.01):
    """The first true value of `predicate`, polled for at most `wall_s`; else a failure naming `what`."""
    deadline = time.perf_counter_ns() + int(wall_s * 1e9)
    while time.perf_counter_ns() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"{what} not within {wall_s} s")
