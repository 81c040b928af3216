"""Every register read of the emulated controller is a state the controller could be in.

A client decides from what it reads: a suite waiting for AT_TARGET holds once it reads 1.
So the discrete inputs and the status registers must agree with each other, and with the
settings and the wiring, at every instant — above all in the first cycle after a command,
where a value the emulator derived from state it had not yet brought up to date showed
PHASE 1 (ramp up) with AT_TARGET 1 at 0 N of a 300 N target right after START.

One scenario — ENABLE, START, a new TARGET while holding, STOP, ESTOP, RESET, a heartbeat
that stops, a mains cut and its return, the patient's switch, ENABLE 0, an intermittent
treatment to its end, the patient pulling past FORCE_LIMIT — read through the driver's
status snapshot (both reads in one segment: one round trip, one instant of the table):
* from the emulator as its own process (`rig emulate`, as a rig uses it) at time scale 1
  and 10: a burst of snapshots right after each command, back to back, and every
  snapshot read while waiting for the next step;
* from a table served in this process on a clock the test moves: a snapshot at the very
  instant of each command, before any cycle has run, and then one after every 1 ms
  controller cycle — every state the registers pass through.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest

from drivers.controller import ControllerStatus, TractionController
from drivers.patient_simulator import PatientSimulator
from drivers.stimulus import StimulusModule
from drivers.tcm1 import (
    RUNNING_PHASES,
    SET_FORCE_REGISTER,
    Coil,
    FaultCode,
    Holding,
    Phase,
    StimulusCoil,
    at_target_tolerance_n,
)
from drivers.units import dn_to_n
from rigs.rig import EmulatorProcess
from tests.emulated import served_table

pytestmark = pytest.mark.timeout(60)

#: snapshots read back to back right after each command
BURST = 5
#: the controller's cycle (table s): how far the manual clock moves between two snapshots
CYCLE_S = 1e-3
#: ACTUAL_FORCE is rounded to 0.1 N: a reading may sit this far from the cell's value
REGISTER_HALF_STEP_N = 0.05
RESIDUAL_N = 15.0  # the lumbar table's RESIDUAL_FORCE


class Bench:
    """One emulated table: what the test has written and wired, and every snapshot checked.
    How the table's time goes by between two snapshots is the subclass's."""

    def __init__(self, ctrl: TractionController, stim: StimulusModule) -> None:
        assert ctrl.pipelined, "the emulator answers a snapshot's two reads sent together"
        self.ctrl, self.stim = ctrl, stim
        self.holding = {reg: 0 for reg in Holding}
        self.relays = {relay: False for relay in StimulusCoil}
        self.context = "at power-on"
        self.snapshots = 0
        self._uptime = -1.0

    def between_burst_reads(self) -> None:
        """After one snapshot of a burst, before the next."""

    def between_polls(self) -> None:
        """After one snapshot while waiting, before the next."""

    def waiting_for(self, table_s: float):
        """A callable that says whether `table_s` of table time may still pass."""
        raise NotImplementedError

    def pull(self, newtons: float) -> None:
        """The patient pulls back with `newtons`, at once."""
        raise NotImplementedError

    # -- what the test does -----------------------------------------------------------
    def write(self, start: Holding, values: list[int]) -> None:
        self.ctrl.write_holdings(start, values)
        for i, value in enumerate(values):
            self.holding[Holding(start + i)] = value

    def coil(self, coil: Coil, value: bool = True) -> None:
        self.ctrl.write_coil(coil, value)

    def relay(self, relay: StimulusCoil, on: bool) -> None:
        self.stim.set(relay, on)
        self.relays[relay] = on

    def after(self, what: str, command) -> list[ControllerStatus]:
        """Do `command`, then read BURST snapshots back to back; each must be possible."""
        self.context = f"right after {what}"
        command()
        burst = []
        for i in range(BURST):
            if i:
                self.between_burst_reads()
            burst.append(self.read())
        self.context = f"after {what}"
        return burst

    def until(self, predicate, what: str, table_s: float) -> ControllerStatus:
        """The first snapshot for which `predicate` holds (each one read is checked), within
        `table_s` of table time (and a wall-clock margin for a loaded machine)."""
        more = self.waiting_for(table_s)
        while more():
            status = self.read()
            if predicate(status):
                return status
            self.between_polls()
        raise AssertionError(f"{what}: not within {table_s} s of table time ({self.context})")

    # -- what the test checks ---------------------------------------------------------
    def read(self) -> ControllerStatus:
        status = self.ctrl.status()
        self.snapshots += 1
        problems = self.impossible(status)
        assert not problems, f"{self.context}, a state no controller can be in: {'; '.join(problems)}\n{status}"
        return status

    def set_force_n(self, phase: Phase) -> float:
        reg = SET_FORCE_REGISTER.get(phase)
        return dn_to_n(self.holding[reg]) if reg is not None else 0.0

    def impossible(self, s: ControllerStatus) -> list[str]:
        """What in one snapshot contradicts the rest of it, the settings or the wiring."""
        problems: list[str] = []

        def need(holds: bool, text: str) -> None:
            if not holds:
                problems.append(text)

        mains_cut = self.relays[StimulusCoil.MAINS_CUT]
        connected = not self.relays[StimulusCoil.PATIENT_SWITCH_UNPLUG]
        latch = s.estop_latched or s.overforce_tripped or s.watchdog_tripped or s.fault_code != FaultCode.NONE
        need(s.running == (s.phase in RUNNING_PHASES), f"RUNNING {s.running:d} in PHASE {s.phase:d}")
        need(s.fault == (s.fault_code != FaultCode.NONE), f"FAULT {s.fault:d} with FAULT_CODE {s.fault_code:d}")
        need(s.ready == (not mains_cut and s.patient_switch_connected and not latch),
             f"READY {s.ready:d} with mains {'cut' if mains_cut else 'on'}, switch connected "
             f"{s.patient_switch_connected:d}, latched {latch:d}")
        need(s.patient_switch_connected == connected, f"PATIENT_SWITCH_CONNECTED {s.patient_switch_connected:d}")
        need(s.patient_switch_pressed == (connected and self.relays[StimulusCoil.PATIENT_SWITCH]),
             f"PATIENT_SWITCH_PRESSED {s.patient_switch_pressed:d}")
        need(not s.patient_switch_pressed or s.estop_latched, "the switch pressed without ESTOP_LATCHED")
        need(not (s.estop_latched or s.overforce_tripped or s.watchdog_tripped) or s.fault,
             "a latch without its FAULT_CODE")
        need(not (s.enabled and mains_cut), "ENABLED with the mains cut")
        need(s.enabled or s.phase in (Phase.IDLE, Phase.EMERGENCY_RELEASE), f"PHASE {s.phase:d} while not ENABLED")
        need(not (s.running and s.fault), f"a treatment running (PHASE {s.phase:d}) with FAULT_CODE {s.fault_code:d}")
        need(s.phase != Phase.EMERGENCY_RELEASE or s.fault, "an emergency release with no FAULT_CODE")
        set_n = self.set_force_n(s.phase)
        band, off = at_target_tolerance_n(set_n), abs(s.force_n - set_n)
        if s.at_target:
            need(s.enabled and s.running and off <= band + REGISTER_HALF_STEP_N,
                 f"AT_TARGET 1 at {s.force_n:g} N in PHASE {s.phase:d}, whose set force is {set_n:g} N")
        elif s.enabled and s.running:
            need(off >= band - REGISTER_HALF_STEP_N,
                 f"AT_TARGET 0 at {s.force_n:g} N in PHASE {s.phase:d}, whose set force is {set_n:g} N")
        need(s.uptime_s >= self._uptime, f"UPTIME_MS went back from {self._uptime:g} s to {s.uptime_s:g} s")
        self._uptime = s.uptime_s
        return problems


class ProcessBench(Bench):
    """`rig emulate` on the wall clock at time scale `k`: bursts back to back."""

    def __init__(self, emu: EmulatorProcess, k: float) -> None:
        ep = emu.endpoints
        self.k = k
        self.patient = PatientSimulator(ep.patient_simulator.host, ep.patient_simulator.port).connect()
        super().__init__(TractionController(host=ep.controller.host, port=ep.controller.port, timeout_s=2.0).connect(),
                         StimulusModule(ep.stimulus.host, ep.stimulus.port, timeout_s=2.0).connect())

    def between_polls(self) -> None:
        time.sleep(0.002)

    def waiting_for(self, table_s: float):
        deadline = time.monotonic() + table_s / self.k + 5.0  # a margin for a loaded machine
        return lambda: time.monotonic() < deadline

    def pull(self, newtons: float) -> None:
        self.patient.pull(newtons)

    def close(self) -> None:
        for device in (self.ctrl, self.stim, self.patient):
            device.close()


class CycleBench(Bench):
    """A table served in this process on a manual clock: the first snapshot at the
    command's own instant, then one every controller cycle."""

    def __init__(self, served) -> None:
        self.served = served
        super().__init__(served.controller, served.stimulus)

    def between_burst_reads(self) -> None:
        self.served.advance(CYCLE_S)

    def between_polls(self) -> None:
        self.served.advance(CYCLE_S)

    def waiting_for(self, table_s: float):
        end = self.served.clock.t + table_s
        return lambda: self.served.clock.t <= end

    def pull(self, newtons: float) -> None:
        self.served.loop.call(setattr, self.served.table.mechanics, "external_target_n", newtons)


@contextmanager
def process_bench(k: float):
    emu = EmulatorProcess.start("lumbar", seed=4, time_scale=k)
    bench = None
    try:
        bench = ProcessBench(emu, k)
        yield bench
    finally:
        if bench is not None:
            bench.close()
        emu.stop()


@pytest.mark.parametrize("k", [1.0, 10.0], ids=lambda k: f"K={k:g}")
def test_every_read_after_every_command_is_a_possible_state(k):
    with process_bench(k) as bench:
        scenario(bench)


def test_every_cycle_after_every_command_is_a_possible_state():
    with served_table("lumbar", seed=4) as served:
        scenario(CycleBench(served))


def scenario(b: Bench) -> None:
    b.read()  # at power-on
    # 300 N at 300 dN/s (the reading), down 500 N/s, static; the rated limit
    b.write(Holding.TARGET_FORCE, [3000, 300, 5000, 0])

    s = b.after("ENABLE", lambda: b.coil(Coil.ENABLE, True))[0]
    assert s.enabled and s.ready and s.phase == Phase.IDLE

    s = b.after("START", lambda: b.coil(Coil.START))[0]
    assert s.phase == Phase.RAMP_UP and s.running and not s.at_target, s  # not "arrived" at 0 N of 300 N

    b.after("a faster RAMP_UP_RATE while ramping", lambda: b.write(Holding.RAMP_UP_RATE, [5000]))
    s = b.until(lambda s: s.at_target, "AT_TARGET at 300 N", 5.0)
    assert abs(s.force_n - 300.0) <= 3.0 + REGISTER_HALF_STEP_N, s
    b.until(lambda s: s.phase == Phase.HOLD, "the hold", 5.0)

    s = b.after("TARGET 200 N while holding", lambda: b.write(Holding.TARGET_FORCE, [2000]))[0]
    assert s.running and not s.at_target, s  # ~300 N is not at 200 N
    s = b.until(lambda s: s.at_target, "AT_TARGET at the new 200 N", 5.0)
    assert abs(s.force_n - 200.0) <= 2.0 + REGISTER_HALF_STEP_N, s

    s = b.after("STOP", lambda: b.coil(Coil.STOP))[0]
    assert s.phase == Phase.RELEASING and s.enabled and not s.running and not s.at_target, s
    b.until(lambda s: s.phase == Phase.IDLE, "the end of the release", 3.0)

    b.after("START", lambda: b.coil(Coil.START))
    b.until(lambda s: s.phase == Phase.HOLD, "the hold", 5.0)
    s = b.after("ESTOP", lambda: b.coil(Coil.ESTOP))[0]
    assert s.estop_latched and s.fault_code == FaultCode.ESTOP and s.phase == Phase.EMERGENCY_RELEASE, s
    assert not s.ready and not s.running, s
    s = b.until(lambda s: s.phase == Phase.IDLE, "the end of the emergency release", 3.0)
    assert s.enabled and s.force_n < RESIDUAL_N, s
    s = b.after("RESET", lambda: b.coil(Coil.RESET))[0]
    assert s.ready and s.enabled and not s.fault and not s.estop_latched, s

    # heartbeat loss: the watchdog armed at 200 ms, nobody beats
    b.after("START", lambda: b.coil(Coil.START))
    b.after("WATCHDOG_MS 200", lambda: b.write(Holding.WATCHDOG_MS, [200]))
    s = b.until(lambda s: s.watchdog_tripped, "the watchdog's trip", 2.0)
    assert s.fault_code == FaultCode.WATCHDOG and not s.running and not s.ready, s
    b.until(lambda s: s.phase == Phase.IDLE, "the end of the emergency release", 3.0)
    b.after("WATCHDOG_MS 0", lambda: b.write(Holding.WATCHDOG_MS, [0]))
    s = b.after("RESET", lambda: b.coil(Coil.RESET))[0]
    assert s.ready and not s.fault, s

    # a mains cut during a treatment, and its return
    b.after("START", lambda: b.coil(Coil.START))
    b.until(lambda s: s.force_n > 100.0, "100 N", 3.0)
    s = b.after("a mains cut", lambda: b.relay(StimulusCoil.MAINS_CUT, True))[0]
    assert not s.enabled and s.phase == Phase.IDLE and s.fault_code == FaultCode.POWER_LOSS and not s.ready, s
    # well below RESIDUAL_FORCE: braked once the mains is back, the cell's noise must not take it over
    b.until(lambda s: s.force_n < RESIDUAL_N / 2, "the force's decay without power", 3.0)
    s = b.after("the mains back", lambda: b.relay(StimulusCoil.MAINS_CUT, False))[0]
    assert not s.ready and s.fault_code == FaultCode.POWER_LOSS, s  # latched until RESET
    s = b.after("RESET", lambda: b.coil(Coil.RESET))[0]
    assert s.ready and not s.enabled, s  # a power loss drops ENABLED: write 1 again
    s = b.after("ENABLE", lambda: b.coil(Coil.ENABLE, True))[0]
    assert s.enabled and s.phase == Phase.IDLE, s

    # the patient's switch during a treatment
    b.after("START", lambda: b.coil(Coil.START))
    b.until(lambda s: s.force_n > 100.0, "100 N", 3.0)
    s = b.after("the patient switch pressed", lambda: b.relay(StimulusCoil.PATIENT_SWITCH, True))[0]
    assert s.estop_latched and s.fault_code == FaultCode.PATIENT_SWITCH, s
    assert s.phase == Phase.EMERGENCY_RELEASE, s
    b.after("the patient switch released", lambda: b.relay(StimulusCoil.PATIENT_SWITCH, False))
    b.until(lambda s: s.phase == Phase.IDLE, "the end of the emergency release", 3.0)
    s = b.after("RESET", lambda: b.coil(Coil.RESET))[0]
    assert s.ready and not s.fault, s

    # ENABLE 0 during a treatment: released at RAMP_DOWN_RATE, then de-energised
    b.after("START", lambda: b.coil(Coil.START))
    b.until(lambda s: s.force_n > 100.0, "100 N", 3.0)
    s = b.after("ENABLE 0", lambda: b.coil(Coil.ENABLE, False))[0]
    assert s.phase == Phase.RELEASING and s.enabled, s
    s = b.until(lambda s: not s.enabled, "de-energised", 3.0)
    assert s.phase == Phase.IDLE, s

    # intermittent, with a treatment time: hold 0.5 s at 200 N, rest 0.5 s at 100 N, for 2 s
    b.write(Holding.MODE, [1, 5, 5, 1000])
    b.write(Holding.TREATMENT_TIME, [2])
    b.after("ENABLE", lambda: b.coil(Coil.ENABLE, True))
    b.after("START", lambda: b.coil(Coil.START))
    seen = set()
    s = b.until(lambda s: seen.add(s.phase) or s.phase == Phase.RELEASING, "the treatment's end", 4.0)
    assert {Phase.HOLD, Phase.RAMP_TO_REST, Phase.REST, Phase.RAMP_UP} <= seen, seen
    b.until(lambda s: s.phase == Phase.IDLE, "the end of the release", 3.0)
    b.write(Holding.MODE, [0])
    b.write(Holding.TREATMENT_TIME, [0])

    # the patient pulling back past FORCE_LIMIT (lowered to 250 N while disabled)
    b.after("ENABLE 0", lambda: b.coil(Coil.ENABLE, False))
    b.until(lambda s: not s.enabled, "de-energised", 3.0)
    b.write(Holding.FORCE_LIMIT, [2500])
    b.after("ENABLE", lambda: b.coil(Coil.ENABLE, True))
    b.after("START", lambda: b.coil(Coil.START))
    b.until(lambda s: s.phase == Phase.HOLD, "the hold", 5.0)
    b.pull(80.0)  # at once: faster than the force loop pays out
    s = b.until(lambda s: s.overforce_tripped, "the over-force trip", 2.0)
    assert s.fault_code == FaultCode.OVERFORCE and s.phase == Phase.EMERGENCY_RELEASE and not s.ready, s
    b.pull(0.0)
    b.until(lambda s: s.phase == Phase.IDLE and s.force_n < RESIDUAL_N, "the end of the emergency release", 3.0)
    s = b.after("RESET", lambda: b.coil(Coil.RESET))[0]
    assert s.ready and not s.overforce_tripped and not s.fault, s
    assert b.snapshots > 30 * BURST
