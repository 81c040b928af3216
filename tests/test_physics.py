"""Physics sanity of the emulated table, stepped offline (no wall clock): ramp slope,
settling, overshoot, release shape, power loss, determinism, and the fault hooks."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.errors import ConfigError
from drivers.tcm1 import Coil, Holding, Phase, StimulusCoil
from rigs.emulator.faults import CATALOGUE
from rigs.emulator.table import EmulatedTable
from tests.emulated import ManualClock
from tests.emulated import run_for as run


def table(kind="lumbar", seed=1, faults=None) -> EmulatedTable:
    return EmulatedTable(kind, seed, faults=faults, clock=ManualClock())




def treat(t: EmulatedTable, target_n: float, up: float, down: float = 100.0):
    c = t.controller
    c.write_holding(Holding.TARGET_FORCE, [int(target_n * 10), int(up * 10), int(down * 10)])
    c.write_coils(Coil.ENABLE, [True])
    c.write_coils(Coil.START, [True])


@pytest.mark.parametrize("kind, target, rate", [("lumbar", 600.0, 50.0), ("lumbar", 300.0, 20.0), ("cervical", 150.0, 15.0)])
def test_ramp_slope_matches_command(kind, target, rate):
    t = table(kind)
    treat(t, target, rate)
    times, f = run(t, target / rate + 3.0)
    linear = (f > 0.2 * target) & (f < 0.8 * target)
    slope = np.polyfit(times[linear], f[linear], 1)[0]
    assert slope == pytest.approx(rate, rel=0.02)


def test_settles_at_target_without_overshoot():
    t = table()
    treat(t, 500.0, 50.0)
    times, f = run(t, 14.0)
    assert f.max() <= 500.0 * 1.02
    settled = f[times > 12.0]
    assert abs(settled.mean() - 500.0) < 0.02 * 500.0  # within the controller's cell error
    assert settled.std() < 1.0
    assert t.controller.st.phase is Phase.HOLD


def test_emergency_release_shape():
    t = table()
    treat(t, 600.0, 100.0)
    run(t, 8.0)
    f0 = t.mechanics.s.force
    t.controller.write_coils(Coil.ESTOP, [True])
    times, f = run(t, 2.0)
    times -= times[0]
    assert f.max() <= f0 + 1.0  # no rise above the force held at the trigger
    t50 = times[np.argmax(f < 0.5 * f0)]
    t90, t10 = times[np.argmax(f < 0.9 * f0)], times[np.argmax(f < 0.1 * f0)]
    t_res = times[np.argmax(f < 15.0)]
    assert t50 < 0.5 and t_res < 3.0  # fast ...
    assert t10 - t90 >= 0.05  # ... but not a snap
    assert np.all(np.diff(f[times > 0.05]) <= 0.5)  # falls monotonically after the lag


def test_power_loss_brake_releases():
    t = table()
    treat(t, 400.0, 100.0)
    run(t, 6.0)
    t.set_relay(StimulusCoil.MAINS_CUT, True)
    times, f = run(t, 3.0)
    assert f[-1] < 15.0


def test_same_seed_same_table_other_seed_other_table():
    a, b, c = table(seed=5), table(seed=5), table(seed=6)
    for x in (a, b, c):
        treat(x, 300.0, 50.0)
    fa, fb, fc = run(a, 3.0)[1], run(b, 3.0)[1], run(c, 3.0)[1]
    assert np.array_equal(fa, fb)
    assert not np.array_equal(fa, fc)


# ---------------------------------------------------------------- fault hooks
def release_figures(faults):
    t = table(faults=faults)
    treat(t, 500.0, 100.0)
    run(t, 7.0)
    f0 = t.mechanics.s.force
    t.controller.write_coils(Coil.ESTOP, [True])
    times, f = run(t, 4.0)
    times -= times[0]
    below = lambda level: times[np.argmax(f < level)] if (f < level).any() else np.inf  # noqa: E731
    return f0, below(0.5 * f0), below(0.1 * f0) - below(0.9 * f0), below(15.0)


def test_fault_slow_release_is_slow():
    _, t50, _, t_res = release_figures(["slow-release"])
    assert t50 > 0.5 and t_res > 3.0


def test_fault_snap_release_snaps():
    _, _, fall, _ = release_figures(["snap-release"])
    assert fall < 0.05


def test_fault_gain_error_hidden_from_the_cell():
    t = table(faults=["gain-error"])
    treat(t, 600.0, 100.0)
    run(t, 10.0)
    s = t.mechanics.s
    assert s.cell == pytest.approx(600.0, abs=3.0)  # the controller believes it is right
    assert s.force > 640.0  # the patient gets more


def test_fault_brake_holds():
    t = table(faults=["brake-holds"])
    treat(t, 400.0, 100.0)
    run(t, 6.0)
    t.set_relay(StimulusCoil.MAINS_CUT, True)
    run(t, 3.0)
    assert t.mechanics.s.force > 350.0


def test_fault_no_watchdog():
    t = table(faults=["no-watchdog"])
    t.controller.write_holding(Holding.WATCHDOG_MS, [200])
    t.controller.write_coils(Coil.ENABLE, [True])
    run(t, 1.0)
    assert not t.controller.st.watchdog_tripped


def test_unknown_fault_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        table(faults=["no-such-fault"])
    assert "no-such-fault" in str(err.value) and "slow-release" in str(err.value)


def test_every_fault_names_requirements():
    for entry in CATALOGUE.values():
        assert entry.requirements and entry.summary


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_defect_changes_the_table(name):
    """A defect that changes nothing could never be caught: each must differ from nominal."""
    nominal, broken = table(), table(faults=[name])
    assert (broken.params != nominal.params) or (broken.defects != nominal.defects), name


def test_fault_overshoot_overshoots():
    t = table(faults=["overshoot"])
    treat(t, 200.0, 50.0)
    _, f = run(t, 8.0)
    assert f.max() > 212.0
    assert t.controller.st.phase is Phase.HOLD


def test_fault_sporadic_slow_release_every_fourth():
    t = table(faults=["sporadic-slow-release"])
    halves = []
    for _ in range(4):
        t.controller.write_coils(Coil.RESET, [True])
        treat(t, 300.0, 200.0)
        run(t, 3.0)
        f0 = t.mechanics.s.force
        t.controller.write_coils(Coil.ESTOP, [True])
        times, f = run(t, 4.0)
        halves.append(times[np.argmax(f < 0.5 * f0)] - times[0])
    assert max(halves[:3]) < 0.2 and halves[3] > 0.5


def test_fault_estop_no_latch():
    t = table(faults=["estop-no-latch"])
    treat(t, 200.0, 100.0)
    run(t, 3.0)
    t.controller.write_coils(Coil.ESTOP, [True])
    run(t, 1.0)
    assert t.mechanics.s.force < 15.0 and not t.controller.latched
    t.controller.write_coils(Coil.START, [True])  # accepted: the defect
    assert t.controller.st.phase is Phase.RAMP_UP
