"""The defects that live only in part of the parameter space (issue 23), stepped offline on
the emulated table (no wall clock): each is shown present where the catalogue says it
lives and absent just outside it, against a nominal table run through the same steps —
a defect present everywhere would be caught by any single sample and teach the plan
nothing, one absent everywhere could never be caught."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.tcm1 import Coil, Holding, Phase, StimulusCoil
from rigs.emulator.controller import Refused
from rigs.emulator.faults import CATALOGUE
from rigs.emulator.table import EmulatedTable
from tests.emulated import ManualClock
from tests.emulated import run_for as run

PARTIAL = ["late-watchdog", "watchdog-fixed-period", "rest-level-low", "fast-ramp-to-lower-setting",
           "overshoot-high-force", "low-force-offset", "timer-drift-long", "slow-release-high-force",
           "mains-cut-coast", "switch-ignored-in-ramp-to-rest", "reset-with-switch-pressed",
           "reset-clears-held-estop", "start-after-watchdog-trip", "reset-clears-mains-latch", "residual-writable",
           "fault-code-overwritten", "setpoint-limit-off-by-one", "limit-writable-while-running",
           "limit-raise-while-enabled", "reset-threshold-doubled"]


def table(faults=None, seed=2) -> EmulatedTable:
    return EmulatedTable("lumbar", seed, faults=faults, clock=ManualClock())




def treat(t: EmulatedTable, target_n: float, up: float = 200.0, down: float = 200.0, *, start: bool = True) -> None:
    c = t.controller
    c.write_holding(Holding.TARGET_FORCE, [int(round(target_n * 10)), int(up * 10), int(down * 10)])
    c.write_coils(Coil.ENABLE, [True])
    if start:
        c.write_coils(Coil.START, [True])


def hold_at(t: EmulatedTable, target_n: float, up: float = 200.0) -> float:
    """Ramp to target and settle; the true force held."""
    treat(t, target_n, up)
    t.advance_by(target_n / up + 4.0)
    assert t.controller.st.phase is Phase.HOLD
    return t.mechanics.s.force


def both(name: str):
    return table(), table([name])


def test_every_partial_defect_is_registered_and_mapped():
    for name in PARTIAL:
        assert name in CATALOGUE, name
        assert CATALOGUE[name].requirements, name
    assert CATALOGUE["timer-drift-long"].profile == "full"
    assert all(CATALOGUE[n].profile == "quick" for n in PARTIAL if n != "timer-drift-long")


# ---------------------------------------------------------------- watchdog
def trip_after(t: EmulatedTable, period_ms: int) -> float:
    """Table seconds from the last heartbeat (the WATCHDOG_MS write, then ENABLE) to the trip."""
    c = t.controller
    c.write_holding(Holding.WATCHDOG_MS, [period_ms])
    c.write_coils(Coil.ENABLE, [True])
    beat = t.mechanics.s.t
    for _ in range(20_000):
        t.advance_by(0.001)
        if c.st.watchdog_tripped:
            return t.mechanics.s.t - beat
    return np.inf


@pytest.mark.parametrize("period_ms", [500, 3000])
def test_late_watchdog_trips_at_twice_the_period(period_ms):
    nominal, broken = both("late-watchdog")
    assert trip_after(nominal, period_ms) == pytest.approx(period_ms / 1000, abs=0.002)
    assert trip_after(broken, period_ms) == pytest.approx(2 * period_ms / 1000, abs=0.002)


def test_watchdog_fixed_period_is_right_only_at_five_seconds():
    assert trip_after(table(["watchdog-fixed-period"]), 5000) == pytest.approx(5.0, abs=0.002)  # absent there
    assert trip_after(table(["watchdog-fixed-period"]), 3000) == pytest.approx(5.0, abs=0.002)  # the plan's 3 s
    assert trip_after(table(), 3000) == pytest.approx(3.0, abs=0.002)
    broken = table(["watchdog-fixed-period"])
    broken.controller.write_holding(Holding.WATCHDOG_MS, [0])  # 0 still disables
    broken.controller.write_coils(Coil.ENABLE, [True])
    broken.advance_by(8.0)
    assert not broken.controller.st.watchdog_tripped
    assert broken.controller.h(Holding.WATCHDOG_MS) == 0


# ---------------------------------------------------------------- levels and ramps
def intermittent_levels(t: EmulatedTable, hold_n: float, rest_n: float) -> tuple[float, float]:
    """Mean true force in the last second of the first hold and of the first rest."""
    c = t.controller
    treat(t, hold_n, up=100.0, down=100.0, start=False)
    c.write_holding(Holding.MODE, [1, 60, 40, int(rest_n * 10)])  # MODE, HOLD 6 s, REST 4 s, REST_FORCE
    c.write_coils(Coil.START, [True])
    hold_mean = rest_mean = None
    for _ in range(40_000):
        phase_before = c.st.phase
        t.advance_by(0.001)
        if phase_before is Phase.HOLD and c.st.phase is Phase.RAMP_TO_REST and hold_mean is None:
            hold_mean = float(np.mean(t.force_at(t.mechanics.s.t - np.linspace(1.0, 0.01, 100))))
        if phase_before is Phase.REST and c.st.phase is Phase.RAMP_UP:
            rest_mean = float(np.mean(t.force_at(t.mechanics.s.t - np.linspace(1.0, 0.01, 100))))
            break
    assert hold_mean is not None and rest_mean is not None
    return hold_mean, rest_mean


def test_rest_level_low_only_at_rest():
    nominal = intermittent_levels(table(), 250.0, 125.0)
    hold, rest = intermittent_levels(table(["rest-level-low"]), 250.0, 125.0)
    assert hold == pytest.approx(nominal[0], abs=1.0)  # the hold level is right
    assert rest == pytest.approx(nominal[1] - 16.0, abs=1.0)
    assert abs(nominal[1] - 125.0) < 3.0


def slope_to(t: EmulatedTable, start_n: float, target_n: float, how: str) -> float:
    """Least-squares slope (N/s) of the true force in the middle of a ramp from a hold at
    start_n to target_n: `start` (START to the new target) or `stop` (STOP release)."""
    c = t.controller
    treat(t, start_n, up=200.0, down=20.0)
    t.advance_by(start_n / 200.0 + 4.0)
    if how == "start":
        c.write_holding(Holding.TARGET_FORCE, [int(target_n * 10)])
        c.write_coils(Coil.START, [True])
    else:
        c.write_coils(Coil.STOP, [True])
    times, f = run(t, abs(start_n - target_n) / 20.0 * 1.5 + 1.0, dt=0.01)
    lo, hi = sorted((start_n, target_n))
    span = hi - lo
    mid = (f > lo + 0.2 * span) & (f < hi - 0.2 * span)
    return float(np.polyfit(times[mid], f[mid], 1)[0])


def test_fast_ramp_to_lower_setting_only_on_a_start_downward():
    nominal, broken = both("fast-ramp-to-lower-setting")
    assert slope_to(nominal, 400.0, 150.0, "start") == pytest.approx(-20.0, rel=0.03)
    assert slope_to(broken, 400.0, 150.0, "start") == pytest.approx(-26.0, rel=0.03)
    assert slope_to(table(["fast-ramp-to-lower-setting"]), 300.0, 0.0, "stop") == pytest.approx(-20.0, rel=0.03)
    rising = table(["fast-ramp-to-lower-setting"])  # progressive: right
    treat(rising, 400.0, up=25.0, down=20.0)
    times, f = run(rising, 12.0, dt=0.01)
    mid = (f > 80.0) & (f < 240.0)
    assert np.polyfit(times[mid], f[mid], 1)[0] == pytest.approx(25.0, rel=0.03)


@pytest.mark.parametrize("setting, overshoot", [(300.0, False), (450.0, False), (800.0, True)])
def test_overshoot_high_force_only_above_500_n(setting, overshoot):
    t = table(["overshoot-high-force"])
    treat(t, setting, up=50.0, down=50.0)
    _, f = run(t, setting / 50.0 + 6.0, dt=0.005)
    peak = f.max() - setting
    if overshoot:
        assert peak == pytest.approx(0.08 * setting, abs=6.0)
    else:
        assert peak < 0.02 * setting
    assert t.controller.st.phase is Phase.HOLD


@pytest.mark.parametrize("setting, high", [(30.0, True), (45.0, True), (60.0, False), (200.0, False)])
def test_low_force_offset_only_below_50_n(setting, high):
    nominal, broken = both("low-force-offset")
    f_nominal, f_broken = hold_at(nominal, setting), hold_at(broken, setting)
    assert f_broken - f_nominal == pytest.approx(12.0 if high else 0.0, abs=0.5)
    # the mechanism is the set point, not the cell: the controller's cell agrees with the force
    assert broken.mechanics.s.cell == pytest.approx(f_broken, abs=1.5)


# ---------------------------------------------------------------- treatment timer
def release_begins(t: EmulatedTable, treatment_s: int) -> float:
    """Table seconds from START to the start of the regressive release (to the 0.1 s)."""
    c = t.controller
    c.write_holding(Holding.TREATMENT_TIME, [treatment_s])
    treat(t, 200.0, up=100.0, down=100.0)
    started = t.mechanics.s.t
    t.advance_by(treatment_s - 1.0)  # a slow timer ends late, never early
    for _ in range(int(treatment_s * 0.2 * 10) + 20):
        t.advance_by(0.1)
        if c.st.phase is Phase.RELEASING:
            return c.st.phase_started - started
    return np.inf


@pytest.mark.parametrize("treatment_s, late_s", [(45, 0.0), (600, 24.0), (1800, 120.0)])
def test_timer_drift_only_in_long_sessions(treatment_s, late_s):
    took = release_begins(table(["timer-drift-long"]), treatment_s)
    assert took - treatment_s == pytest.approx(late_s, abs=0.2)
    assert abs(took - treatment_s) <= 30.0 or treatment_s == 1800  # 45 s and 600 s pass TT-TIME's ±30 s


def test_nominal_timer_is_right_in_a_long_session():
    assert release_begins(table(), 1800) == pytest.approx(1800.0, abs=0.2)


# ---------------------------------------------------------------- emergency release
def release_times(t: EmulatedTable, setting: float) -> tuple[float, float, float]:
    """(force at the trigger, time to 50 %, time to the 15 N residual) of an ESTOP from a hold."""
    f0 = hold_at(t, setting)
    t.controller.write_coils(Coil.ESTOP, [True])
    times, f = run(t, 5.0)
    times -= times[0]
    below = lambda level: times[np.argmax(f < level)] if (f < level).any() else np.inf  # noqa: E731
    return f0, below(0.5 * f0), below(15.0)


def test_slow_release_only_from_above_300_n():
    _, half, residual = release_times(table(["slow-release-high-force"]), 400.0)
    assert half > 0.5 and residual > 3.0  # ER-HALF and ER-RESIDUAL fail
    _, half, residual = release_times(table(["slow-release-high-force"]), 150.0)
    _, half_n, residual_n = release_times(table(), 150.0)
    assert half == pytest.approx(half_n, abs=0.002) and residual == pytest.approx(residual_n, abs=0.002)
    assert half < 0.2 and residual < 1.0


def mains_cut_rise(t: EmulatedTable, in_ramp: bool) -> float:
    """Largest true force after a mains cut minus the force at the cut."""
    treat(t, 400.0, up=50.0, down=50.0)
    t.advance_by(4.0 if in_ramp else 13.0)
    assert t.controller.st.phase is (Phase.RAMP_UP if in_ramp else Phase.HOLD)
    f0 = t.mechanics.s.force
    t.set_relay(StimulusCoil.MAINS_CUT, True)
    _, f = run(t, 1.0)
    assert f[-1] < 15.0  # it still releases
    return float(f.max() - f0)


def test_mains_cut_coast_only_in_a_progressive_ramp():
    assert mains_cut_rise(table(), True) < 1.0
    assert mains_cut_rise(table(["mains-cut-coast"]), True) > 20.0  # ER-NORISE.rise: max(2 %, 5 N) is 5 N here
    assert mains_cut_rise(table(["mains-cut-coast"]), False) < 1.0


def press_in(name: str | None, phase: Phase) -> EmulatedTable:
    """An intermittent treatment (hold 250 N, rest 125 N), the patient switch pressed in `phase`."""
    t = table([name] if name else None)
    c = t.controller
    treat(t, 250.0, up=100.0, down=50.0, start=False)
    c.write_holding(Holding.MODE, [1, 30, 30, 1250])
    c.write_coils(Coil.START, [True])
    for _ in range(20_000):
        t.advance_by(0.001)
        if c.st.phase is phase and t.mechanics.s.t - c.st.phase_started > 0.5:
            break
    assert c.st.phase is phase
    t.set_relay(StimulusCoil.PATIENT_SWITCH, True)
    t.advance_by(3.0)
    return t


def test_switch_ignored_only_in_the_ramp_to_rest():
    assert press_in("switch-ignored-in-ramp-to-rest", Phase.RAMP_TO_REST).mechanics.s.force > 100.0
    for phase in (Phase.RAMP_UP, Phase.HOLD, Phase.REST):
        assert press_in("switch-ignored-in-ramp-to-rest", phase).mechanics.s.force < 15.0, phase
    assert press_in(None, Phase.RAMP_TO_REST).mechanics.s.force < 15.0


# ---------------------------------------------------------------- refusals and latches
def test_reset_with_switch_pressed_accepted_but_force_check_kept():
    nominal, broken = both("reset-with-switch-pressed")
    for t in (nominal, broken):
        t.controller.write_coils(Coil.ENABLE, [True])
        t.set_relay(StimulusCoil.PATIENT_SWITCH, True)
        t.advance_by(0.1)
    with pytest.raises(Refused) as err:
        nominal.controller.write_coils(Coil.RESET, [True])
    assert err.value.code == 0x04 and int(err.value.reason) == 3
    broken.controller.write_coils(Coil.RESET, [True])  # accepted: the defect
    assert broken.controller.st.estop_latched  # the pressed switch latches again at once
    # the other refusal of RESET is intact: force present
    held = table(["reset-with-switch-pressed"])
    hold_at(held, 200.0)
    with pytest.raises(Refused) as err:
        held.controller.write_coils(Coil.RESET, [True])
    assert int(err.value.reason) == 5


def test_reset_clears_held_estop_then_start_accepted():
    nominal, broken = both("reset-clears-held-estop")
    for t in (nominal, broken):
        treat(t, 150.0, start=False)
        t.set_relay(StimulusCoil.ESTOP_BUTTON, True)
        t.advance_by(0.1)
        assert t.controller.st.estop_latched
        t.controller.write_coils(Coil.RESET, [True])
    assert nominal.controller.st.estop_latched  # a cause still present latches again at once
    with pytest.raises(Refused):
        nominal.controller.write_coils(Coil.START, [True])
    assert not broken.controller.st.estop_latched
    broken.controller.write_coils(Coil.START, [True])  # accepted with the button held: the defect
    assert broken.controller.st.phase is Phase.RAMP_UP
    # absent outside its part: RESET after the button is let go is right on both
    t = table(["reset-clears-held-estop"])
    treat(t, 150.0, start=False)
    t.set_relay(StimulusCoil.ESTOP_BUTTON, True)
    t.set_relay(StimulusCoil.ESTOP_BUTTON, False)
    with pytest.raises(Refused):
        t.controller.write_coils(Coil.START, [True])  # still latched: no RESET yet
    t.controller.write_coils(Coil.RESET, [True])
    t.controller.write_coils(Coil.START, [True])


def test_start_after_watchdog_trip_only_that_latch():
    nominal, broken = both("start-after-watchdog-trip")
    for t in (nominal, broken):
        trip_after(t, 500)
        assert t.controller.st.watchdog_tripped
        t.controller.write_holding(Holding.TARGET_FORCE, [1500])
    with pytest.raises(Refused) as err:
        nominal.controller.write_coils(Coil.START, [True])
    assert int(err.value.reason) == 3
    broken.controller.write_coils(Coil.START, [True])  # accepted: the defect
    assert broken.controller.st.phase is Phase.RAMP_UP
    # the other latches still refuse START on the defective table
    for latch in ("estop", "overforce"):
        t = table(["start-after-watchdog-trip"])
        treat(t, 150.0, start=False)
        if latch == "estop":
            t.controller.write_coils(Coil.ESTOP, [True])
        else:
            t.controller.st.overforce_tripped = True  # as _check_overforce leaves it
        with pytest.raises(Refused) as err:
            t.controller.write_coils(Coil.START, [True])
        assert int(err.value.reason) == 3, latch


# ---------------------------------------------------------------- contract items and corners (issue 23, map)
def refusal(fn, *args):
    """The emulator's refusal of a write (code, LAST_REJECT), or None when it took it."""
    try:
        fn(*args)
    except Refused as err:
        return err.code, int(err.reason)
    return None


def test_reset_clears_mains_latch_only_when_reset_while_cut():
    nominal, broken = both("reset-clears-mains-latch")
    for t in (nominal, broken):
        treat(t, 150.0, start=False)
        t.set_relay(StimulusCoil.MAINS_CUT, True)
        t.advance_by(0.1)
        assert int(t.controller.st.fault_code) == 7 and not t.controller.st.enabled
        t.controller.write_coils(Coil.RESET, [True])  # accepted: no force, switch not pressed
    assert int(nominal.controller.st.fault_code) == 7  # the cause still present latches again at once
    assert int(broken.controller.st.fault_code) == 0  # the defect
    for t in (nominal, broken):
        t.set_relay(StimulusCoil.MAINS_CUT, False)
        t.advance_by(0.1)
    assert refusal(nominal.controller.write_coils, Coil.ENABLE, [True]) == (0x04, 3)
    assert refusal(broken.controller.write_coils, Coil.ENABLE, [True]) is None
    broken.controller.write_coils(Coil.START, [True])  # without another RESET: the hazard
    assert broken.controller.st.phase is Phase.RAMP_UP
    # absent outside its part: the mains back before the RESET (every mains-cut trial) latches as it should
    t = table(["reset-clears-mains-latch"])
    treat(t, 150.0, start=False)
    t.set_relay(StimulusCoil.MAINS_CUT, True)
    t.set_relay(StimulusCoil.MAINS_CUT, False)
    assert refusal(t.controller.write_coils, Coil.ENABLE, [True]) == (0x04, 3)
    t.controller.write_coils(Coil.RESET, [True])
    t.controller.write_coils(Coil.ENABLE, [True])
    assert t.controller.st.enabled


def test_residual_writable_only_that_register():
    nominal, broken = both("residual-writable")
    assert refusal(nominal.controller.write_holding, Holding.RESIDUAL_FORCE, [300]) == (0x04, 6)
    assert nominal.controller.h(Holding.RESIDUAL_FORCE) == 150
    assert refusal(broken.controller.write_holding, Holding.RESIDUAL_FORCE, [300]) is None
    assert broken.controller.h(Holding.RESIDUAL_FORCE) == 300
    # the raised residual is what RESET then compares with: 25 N on the patient passes it
    hold_at(broken, 25.0)
    broken.controller.write_coils(Coil.RESET, [True])
    # the other registers' rules are intact (FORCE_LIMIT still locked while enabled)
    assert refusal(broken.controller.write_holding, Holding.FORCE_LIMIT, [3000]) == (0x04, 4)


def test_fault_code_overwritten_only_by_a_second_trigger():
    nominal, broken = both("fault-code-overwritten")
    for t in (nominal, broken):
        treat(t, 150.0, start=False)
        t.controller.write_coils(Coil.ESTOP, [True])
        t.advance_by(0.1)
        assert int(t.controller.st.fault_code) == 2  # one trigger: right on both
        t.set_relay(StimulusCoil.PATIENT_SWITCH, True)
        t.advance_by(0.1)
    assert int(nominal.controller.st.fault_code) == 2  # the first trigger kept
    assert int(broken.controller.st.fault_code) == 3  # overwritten: the defect
    for t in (nominal, broken):  # RESET clears it on both
        t.set_relay(StimulusCoil.PATIENT_SWITCH, False)
        t.controller.write_coils(Coil.RESET, [True])
        assert int(t.controller.st.fault_code) == 0


@pytest.mark.parametrize("above_dn, taken", [(1, True), (9, True), (10, False), (100, False)])
def test_setpoint_limit_off_by_one_only_below_one_newton(above_dn, taken):
    nominal, broken = both("setpoint-limit-off-by-one")
    for t in (nominal, broken):
        t.controller.write_holding(Holding.FORCE_LIMIT, [3000])
    assert refusal(nominal.controller.write_holding, Holding.TARGET_FORCE, [3000 + above_dn]) == (0x03, 1)
    got = refusal(broken.controller.write_holding, Holding.TARGET_FORCE, [3000 + above_dn])
    assert (got is None) is taken and (taken or got == (0x03, 1))
    if taken:  # START still checks TARGET_FORCE against FORCE_LIMIT to the register step
        broken.controller.write_coils(Coil.ENABLE, [True])
        assert refusal(broken.controller.write_coils, Coil.START, [True]) == (0x04, 1)


def limit_write(name: str | None, running: bool, value_dn: int):
    """FORCE_LIMIT lowered to 300 N while disabled, the drive enabled (a treatment to 75 N
    started when `running`), then written: the refusal, or None when taken."""
    t = table([name] if name else None)
    c = t.controller
    c.write_holding(Holding.FORCE_LIMIT, [3000])
    treat(t, 75.0, start=running)
    t.advance_by(0.1)
    assert c.running is running
    return refusal(c.write_holding, Holding.FORCE_LIMIT, [value_dn])


@pytest.mark.parametrize("running", [False, True])
@pytest.mark.parametrize("value_dn", [1500, 8900])
def test_limit_lock_defects_each_in_their_part(running, value_dn):
    assert limit_write(None, running, value_dn) == (0x04, 4)
    higher = value_dn > 3000
    assert (limit_write("limit-writable-while-running", running, value_dn) is None) is running
    assert (limit_write("limit-raise-while-enabled", running, value_dn) is None) is higher
    # disabled, every table takes it (the lock is for an enabled drive only)
    t = table(["limit-raise-while-enabled"])
    assert refusal(t.controller.write_holding, Holding.FORCE_LIMIT, [value_dn]) is None


@pytest.mark.parametrize("held_n, taken", [(20.0, True), (25.0, True), (60.0, False), (200.0, False)])
def test_reset_threshold_doubled_only_below_twice_the_residual(held_n, taken):
    """Held between the residual (15 N) and twice it, the defective table takes the RESET."""
    nominal, broken = both("reset-threshold-doubled")
    hold_at(nominal, held_n)
    hold_at(broken, held_n)
    assert refusal(nominal.controller.write_coils, Coil.RESET, [True]) == (0x04, 5)
    got = refusal(broken.controller.write_coils, Coil.RESET, [True])
    assert (got is None) is taken and (taken or got == (0x04, 5))
