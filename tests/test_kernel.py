"""The compiled, batched controller cycle (rigs/emulator/kernel.py) against the rules it
stands in for (rigs/emulator/rules.py: compiled in the batches, run by Python in the
controller's own cycles).

Reference: the same table with every 1 ms cycle run by the Python controller
(`ControllerModel.step`), which is how the emulator worked before the kernel. The
batched table must give the same trajectory, bit for bit, and the same ground-truth
events, for the nominal table and every defect of the catalogue, through treatments,
every emergency trigger, a watchdog trip, an over-force trip by an external pull,
treatment time, STOP and a mains cut; advanced at irregular instants (whole cycles,
partial steps for writes) as requests arrive in a real run.
"""

from __future__ import annotations

import numpy as np
import pytest

from drivers.tcm1 import Coil, Holding, StimulusCoil
from rigs.emulator import kernel
from rigs.emulator.controller import ControllerModel, Refused
from rigs.emulator.faults import CATALOGUE
from rigs.emulator.table import EmulatedTable
from tests.emulated import ManualClock

PATTERN = (0.001, 0.0023, 0.0004, 0.010, 0.0017, 0.05)  # table seconds between syncs


class Script:
    """Drives one table through a scenario, recording what an observer could see."""

    def __init__(self, table: EmulatedTable) -> None:
        self.t, self.c, self.clock = table, table.controller, table.clock
        self.rows: list[tuple] = []
        self.refusals: list[str] = []
        self.i = 0

    def w(self, fn, *args) -> None:
        try:
            fn(*args)
        except Refused as refusal:
            self.refusals.append(str(refusal))

    def run(self, seconds: float) -> None:
        end = self.clock.t + seconds
        while self.clock.t < end - 1e-12:
            self.clock.t = min(end, self.clock.t + PATTERN[self.i % len(PATTERN)])
            self.i += 1
            self.t.sync(exact=self.i % 3 == 0)
            s, st = self.t.mechanics.s, self.c.st
            self.rows.append((s.t, s.force, s.cell, s.x, int(st.phase), int(st.fault_code), st.reference))

    def beat(self) -> None:
        self.w(self.c.write_holding, Holding.HEARTBEAT, [self.i & 0xFFFF])

    def restart(self) -> None:
        self.beat()
        self.w(self.c.write_coils, Coil.RESET, [True])
        self.w(self.c.write_coils, Coil.ENABLE, [True])
        self.w(self.c.write_coils, Coil.START, [True])


def scenario(faults: list[str] | None, kind: str = "lumbar") -> tuple[np.ndarray, list, list]:
    table = EmulatedTable(kind, 3, faults=faults, clock=ManualClock())
    s, c = Script(table), table.controller
    s.w(c.write_holding, Holding.WATCHDOG_MS, [3000])
    s.w(c.write_holding, Holding.TARGET_FORCE, [3000, 800, 1000, 1, 15, 10, 1500])  # intermittent
    s.w(c.write_coils, Coil.ENABLE, [True])
    s.w(c.write_coils, Coil.START, [True])
    for _ in range(5):
        s.run(1.0)
        s.beat()
    s.w(c.write_coils, Coil.ESTOP, [True])
    s.run(1.5)
    s.w(c.write_holding, Holding.TARGET_FORCE, [2500, 2000, 2000, 0])  # static from here
    for relay in (StimulusCoil.PATIENT_SWITCH, StimulusCoil.ESTOP_BUTTON, StimulusCoil.PATIENT_SWITCH_UNPLUG,
                  StimulusCoil.MAINS_CUT):
        s.restart()
        s.run(2.0)
        table.set_relay(relay, True)
        s.run(1.5)
        table.set_relay(relay, False)
        s.run(0.3)
    s.restart()
    s.run(5.0)  # no beats: the watchdog
    s.restart()
    s.run(1.5)
    table.mechanics.external_rate_n_s = 0.0
    table.mechanics.external_target_n = 300.0  # a snag: over FORCE_LIMIT? (rated by default)
    s.run(1.0)
    table.mechanics.external_target_n = 0.0
    s.w(c.write_coils, Coil.ENABLE, [False])
    s.run(1.5)
    s.w(c.write_holding, Holding.FORCE_LIMIT, [2600])
    s.restart()
    s.run(1.5)
    table.mechanics.external_rate_n_s = 400.0
    table.mechanics.external_target_n = 120.0  # pushed past FORCE_LIMIT from outside
    s.run(1.0)
    s.beat()
    table.mechanics.external_target_n = 0.0
    s.run(0.5)
    s.w(c.write_holding, Holding.TREATMENT_TIME, [2])
    s.restart()
    for _ in range(3):
        s.run(1.0)
        s.beat()
    s.w(c.write_holding, Holding.TREATMENT_TIME, [0])
    s.w(c.write_coils, Coil.START, [True])
    s.run(0.8)
    s.w(c.write_coils, Coil.STOP, [True])
    s.run(1.2)
    return np.array(s.rows), list(c.events), s.refusals


def _reference(faults, kind="lumbar"):
    """The reference run: no cycle is handed to the kernel's batches."""
    mp = pytest.MonkeyPatch()
    mp.setattr(ControllerModel, "_quiet_inputs", lambda self: None)
    try:
        return scenario(faults, kind)
    finally:
        mp.undo()


@pytest.mark.parametrize("name", [None, *sorted(CATALOGUE)], ids=lambda n: n or "nominal")
def test_batched_cycles_equal_one_python_cycle_per_millisecond(name):
    faults = [name] if name else None
    ref_rows, ref_events, ref_refusals = _reference(faults)
    rows, events, refusals = scenario(faults)
    assert rows.shape == ref_rows.shape
    assert np.array_equal(rows, ref_rows), f"first difference at row {np.argmax(np.any(rows != ref_rows, axis=1))}"
    assert events == ref_events
    assert refusals == ref_refusals


def test_batched_cycles_equal_python_cycles_on_a_cervical_table():
    ref_rows, ref_events, _ = _reference(None, "cervical")
    rows, events, _ = scenario(None, "cervical")
    assert np.array_equal(rows, ref_rows) and events == ref_events


def test_the_scenario_reaches_every_trigger():
    """The equivalence above means something only if the scenario provokes the rules."""
    _, events, _ = scenario(None)
    names = {e for _, e in events}
    for expected in ("emergency:estop-coil", "emergency:switch-pressed", "emergency:estop-button",
                     "emergency:switch-unplugged", "emergency:power-loss", "emergency:watchdog",
                     "emergency:overforce", "truth:half", "truth:residual", "released"):
        assert expected in names, (expected, sorted(names))


def test_quiet_stretches_run_in_the_kernel():
    """A minute of hold at time scale 10, read every 10 ms of wall time: a handful of Python
    cycles (the phase changes), everything else in batches."""
    table = EmulatedTable("lumbar", 1, clock=ManualClock())
    c = table.controller
    c.write_holding(Holding.TARGET_FORCE, [3000, 1000, 1000])
    c.write_coils(Coil.ENABLE, [True])
    c.write_coils(Coil.START, [True])
    python_cycles = []
    original = c.step
    c.step = lambda h: (python_cycles.append(h), original(h))
    for _ in range(600):
        table.clock.t += 0.1
        table.sync(exact=False)
    assert table.mechanics.history.n > 59_000  # every 1 ms cycle ran
    assert len(python_cycles) < 20, len(python_cycles)


def test_the_cell_noise_is_the_tables_seeded_generator():
    """Drawn in blocks from the table's own generator, one value a cycle whatever path runs it."""
    a = EmulatedTable("lumbar", 7, clock=ManualClock())
    b = EmulatedTable("lumbar", 7, clock=ManualClock())
    n = 2 * a.mechanics.NOISE_BLOCK + 17  # across block refills
    a.advance_by(n * a.params.dt + 1e-9)
    expected = np.random.default_rng([7, 0xC0DE]).standard_normal(n) * b.params.cell_noise_n
    offset = b.params.cell_offset_n  # the cell reads offset + noise at no force
    assert np.allclose(a.mechanics.s.cell, offset + expected[-1], rtol=0, atol=1e-12)


def test_history_windows_are_contiguous_views():
    table = EmulatedTable("lumbar", 1, clock=ManualClock())
    h = table.mechanics.history
    table.advance_by(h.size * 1.5e-3)
    t, f = h.window()
    assert len(t) == h.size and t.base is h.t and f.base is h.f  # a view, no copy per gauge query
    assert np.all(np.diff(t) > 0)
    assert h.oldest == t[0] and t[-1] == table.mechanics.s.t


def test_warm_up_loads_every_kernel_function():
    kernel.warm_up()
    for fn in (kernel.run_quiet, kernel.mech_step):
        assert fn.signatures, fn
