"""Max-force and start/reset interlocks: refusals the device must make, and nothing
moving when it makes them (checked with the gauge, not the controller's word).

Each check states what it relies on (`Precondition`): RESET refused with force present
is judged only while the gauge shows force above the residual at the RESET write; a
START refused "with a latch set" only when the controller shows that latch; "nothing
moves" only on a table at rest before. Where that does not hold, the check is N/A with
the reason: another requirement's defect took away what it needed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from drivers.controller import CommandRefused, IllegalValue, refusal_of
from drivers.tcm1 import FaultCode, Holding, Phase, RejectReason, StimulusCoil
from fixtures.operator import OPERATOR_DID_IT
from verification.bench import POLL_WALL_S
from verification.emergency import first_trigger_kept
from verification.measurement import Measurement, Precondition
from verification.overforce import TripWatch, analyse_overforce_trip, pull_rates, record_overforce_trip
from verification.steps import (AFTER_TRIP_S, HOLD_FRACTION, JUST_ABOVE_N, LIMIT_LOWER_FRACTION, LIMIT_RUNNING_FRACTION,
                                OPERATOR_AFTER_TRIP_S, QUIET_S, RESET_SETTLE_S, SERIES_BEFORE_S, TRIP_WAIT_S)

pytestmark = [pytest.mark.protocol("TCM-1")]  # the traction suites (fixtures/plugin.py select_protocol)



def gauge_peak_while(bench, action) -> tuple[float, Precondition]:
    """Peak gauge force during `action()` and QUIET_S table seconds after it, and whether
    the table was at rest before (what "nothing moves" relies on)."""
    rest = bench.gauge.read()
    holder: list = []
    with bench.capture(holder):
        action()
        bench.sleep(QUIET_S)
    peak = float(np.nanmax(holder[0].force_n)) if len(holder[0]) else float("nan")
    at_rest = Precondition("the table at rest before (gauge below the residual force)", rest < bench.residual_n,
                           f"gauge {rest:.3g} N before, residual {bench.residual_n:g} N")
    return peak, at_rest


def boolean(recorder, req, name, ok: bool, preconditions=(), **conditions):
    recorder.record(Measurement(name, req, bool(ok), conditions=conditions, preconditions=list(preconditions)))


def shows(what: str, held: bool, st) -> Precondition:
    """A state the controller must show before a refusal can be judged against it."""
    return Precondition(f"the controller shows {what}", held,
                        f"ready={st.ready} enabled={st.enabled} estop_latched={st.estop_latched} "
                        f"switch_pressed={st.patient_switch_pressed} switch_connected={st.patient_switch_connected}")


@pytest.fixture
def force_limit(bench, spec):
    """Set FORCE_LIMIT (only possible while disabled), restore the rated value after."""
    ctrl = bench.ctrl

    def set_limit(newtons):
        ctrl.disable()
        bench.wait(lambda s: not s.enabled, 10, "drive disabled")
        ctrl.set_force_limit(newtons, testing_interlock=True)
        ctrl.enable()

    yield set_limit
    bench.make_safe()
    bench.wait(lambda s: not s.enabled or s.force_n <= bench.residual_n, 10, "released")
    ctrl.disable()
    bench.wait(lambda s: not s.enabled, 10, "drive disabled")
    ctrl.set_force_limit(spec.rated_force_n)


@pytest.mark.requirement("IL-SETPOINT")
def test_setpoint_above_force_limit_refused(bench, spec, recorder, force_limit):
    req = spec.requirement("IL-SETPOINT")
    limit = spec.plan.overforce_limit_n
    force_limit(limit)
    # TARGET_FORCE 0 N first: the START below must have nothing to pull to unless the refused
    # write was taken (a setting left by an earlier test would make a compliant table move)
    bench.ctrl.write_holding(Holding.TARGET_FORCE, 0)
    before = bench.ctrl.read_holding(Holding.TARGET_FORCE)[0]
    err = refusal_of(bench.ctrl.set_target_force, limit + 10.0, testing_interlock=True)
    boolean(recorder, req, "single write above FORCE_LIMIT refused with 03", isinstance(err, IllegalValue)
            and err.reason is RejectReason.OUT_OF_RANGE, limit_n=limit, setpoint_n=limit + 10.0)
    err = refusal_of(bench.ctrl.write_holdings, Holding.TARGET_FORCE, [int((limit + 10.0) * 10), 100])
    boolean(recorder, req, "multiple write above FORCE_LIMIT refused", isinstance(err, IllegalValue))
    # the corner: one register step (0.1 N) above the limit the table holds — a range check in
    # whole newtons, or with a margin, takes it; 10 N above does not tell
    step_dn = bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0] + 1
    err = refusal_of(bench.ctrl.write_holding, Holding.TARGET_FORCE, step_dn)
    boolean(recorder, req, "single write one register step (0.1 N) above FORCE_LIMIT refused with 03",
            isinstance(err, IllegalValue) and err.reason is RejectReason.OUT_OF_RANGE, limit_n=limit,
            setpoint_n=step_dn / 10.0, reason=str(getattr(err, "reason", None)))
    after = bench.ctrl.read_holding(Holding.TARGET_FORCE)[0]
    boolean(recorder, req, "TARGET_FORCE unchanged", after == before, before_dn=before, after_dn=after)
    peak, at_rest = gauge_peak_while(bench, lambda: refusal_of(bench.ctrl.start))
    boolean(recorder, req, "nothing moves (gauge peak below residual)", peak < bench.residual_n, [at_rest], peak_n=peak)


def _limit_write(bench, recorder, req, newtons: float, state: str, direction: str,
                 preconditions=()) -> None:
    """A FORCE_LIMIT write the lock must refuse (04, LAST_REJECT 4) and leave unchanged."""
    before = bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0]
    err = refusal_of(bench.ctrl.set_force_limit, newtons, testing_interlock=True)
    after = bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0]
    conditions = {"state": state, "direction": direction, "limit_n": before / 10.0, "written_n": newtons}
    boolean(recorder, req, f"FORCE_LIMIT write refused with 04 ({state}, {direction})", isinstance(err, CommandRefused)
            and err.reason is RejectReason.ENABLED, preconditions, reason=str(getattr(err, "reason", None)),
            **conditions)
    boolean(recorder, req, f"FORCE_LIMIT unchanged ({state}, {direction})", after == before, preconditions,
            after_n=after / 10.0, **conditions)


@pytest.mark.requirement("IL-LIMIT-LOCK")
def test_force_limit_locked_while_enabled(bench, spec, recorder, force_limit):
    """FORCE_LIMIT written while the drive is enabled, lower and higher than the limit it
    holds, idle and while a treatment runs: each must be refused. A lock that guards only
    decreases, or only the idle drive, is right at the one point an idle lowering tries."""
    req = spec.requirement("IL-LIMIT-LOCK")
    limit = spec.plan.overforce_limit_n
    force_limit(limit)  # set while disabled, then enabled again: below the rated force, so a higher one fits
    lower, higher = LIMIT_LOWER_FRACTION * limit, spec.rated_force_n
    _limit_write(bench, recorder, req, lower, "enabled, idle", "lower")
    _limit_write(bench, recorder, req, higher, "enabled, idle", "higher")
    bench.configure(LIMIT_RUNNING_FRACTION * limit, spec.max_ramp_rate_n_s)
    bench.ctrl.start()
    st = bench.ctrl.status()
    running = Precondition("a treatment running (PHASE 1-4) at the writes", st.running,
                           f"phase {st.phase.name}, running={st.running}")
    _limit_write(bench, recorder, req, lower, "treatment running", "lower", [running])
    _limit_write(bench, recorder, req, higher, "treatment running", "higher", [running])
    bench.ctrl.stop()
    bench.wait(bench.released, 10, "released after the treatment")


@pytest.mark.requirement("IL-LIMIT-LOCK")
def test_residual_force_read_only(bench, spec, recorder):
    """RESIDUAL_FORCE is read-only (04, LAST_REJECT 6): it is what RESET and every release
    check compare with, so a table that lets it be raised from outside weakens them all.
    A table that took the write gets its own value back at once."""
    req = spec.requirement("IL-LIMIT-LOCK")
    before = bench.ctrl.read_holding(Holding.RESIDUAL_FORCE)[0]
    raised = 2 * before if before else 100
    err = refusal_of(bench.ctrl.write_holding, Holding.RESIDUAL_FORCE, raised)
    after = bench.ctrl.read_holding(Holding.RESIDUAL_FORCE)[0]
    if after != before:
        bench.ctrl.write_holding(Holding.RESIDUAL_FORCE, before)  # the defective table's own value, restored
    boolean(recorder, req, "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)",
            isinstance(err, CommandRefused) and err.reason is RejectReason.READ_ONLY,
            residual_n=before / 10.0, written_n=raised / 10.0, reason=str(getattr(err, "reason", None)))
    boolean(recorder, req, "RESIDUAL_FORCE unchanged", after == before, residual_n=before / 10.0,
            after_n=after / 10.0)


@pytest.mark.requirement("IL-SETPOINT")
def test_start_refused_with_target_above_lowered_limit(bench, spec, recorder, force_limit):
    """The contract's fourth START refusal (LAST_REJECT 1): a TARGET_FORCE taken while the
    limit was higher, then FORCE_LIMIT lowered below it. The setpoint write itself cannot
    reach that state, so only this order tries the check START makes."""
    req = spec.requirement("IL-SETPOINT")
    setting = min(spec.plan.emergency.forces_n)
    bench.configure(setting, spec.max_ramp_rate_n_s)
    lowered = max(setting / 2.0, bench.residual_n + 1.0)
    force_limit(lowered)
    target = bench.ctrl.read_holding(Holding.TARGET_FORCE)[0] / 10.0
    st = bench.ctrl.status()
    above = Precondition("TARGET_FORCE above the lowered FORCE_LIMIT, drive enabled", target > lowered and st.enabled,
                         f"TARGET_FORCE {target:g} N, FORCE_LIMIT {lowered:g} N, enabled={st.enabled}")
    errors = []
    peak, at_rest = gauge_peak_while(bench, lambda: errors.append(refusal_of(bench.ctrl.start)))
    err = errors[0]
    boolean(recorder, req, "START refused with TARGET_FORCE above FORCE_LIMIT (LAST_REJECT 1)",
            isinstance(err, CommandRefused) and err.reason is RejectReason.OUT_OF_RANGE, [above],
            target_n=target, limit_n=lowered, reason=str(getattr(err, "reason", None)))
    boolean(recorder, req, "nothing moves (target above FORCE_LIMIT)", peak < bench.residual_n, [above, at_rest],
            peak_n=peak)


def _trip_watchdog(bench, spec) -> Precondition:
    """The heartbeat paused until the controller latches WATCHDOG_TRIPPED (the table at
    rest, so nothing is released), then fed again: the latch must outlive the beats."""
    wd = spec.plan.watchdog_s
    bench.keeper.pause()
    try:
        # a late watchdog is WD-TIME's finding, not this one's: wait well past the period
        st, tripped = bench.poll_until(lambda s: s.watchdog_tripped, 3 * wd + 1.0)
    finally:
        bench.keeper.resume()
    return Precondition("the watchdog tripped with the heartbeat paused", tripped,
                        f"WATCHDOG_TRIPPED={st.watchdog_tripped} within {3 * wd + 1.0:g} s of table time "
                        f"(period {wd:g} s)")


def _trip_overforce(bench, spec, rig, force_limit, setting: float) -> Precondition:
    """OVERFORCE_TRIPPED latched by a snag of the emulated patient simulator (what
    test_overforce_trip does), the pull let go and the table released; then the START
    setting again. A rig that cannot pull from outside cannot establish the latch."""
    if rig.patient_simulator is None:
        return Precondition("the rig can take the force over FORCE_LIMIT (patient simulator)", False,
                            "no patient simulator on this rig; on a bench the operator-assisted over-force test "
                            "(test_overforce_trip_pulled_by_operator) leaves the latch to try")
    limit, _ = hold_below_limit(bench, spec, force_limit)
    try:
        rig.patient_simulator.pull(0.4 * limit, 20.0 * limit)
        TripWatch(bench.ctrl).wait(TRIP_WAIT_S / bench.k + 0.5)
    finally:
        rig.patient_simulator.pull(0.0)
    _, released = bench.poll_until(bench.released, 10.0)
    bench.configure(setting, spec.max_ramp_rate_n_s)
    return Precondition("the table released after the trip", released, "force at or below the residual, phase IDLE"
                        if released else "the force did not fall to the residual within 10 s of table time")


def _reset_with_estop_held(bench) -> Precondition:
    """The e-stop button pressed and kept pressed, then RESET: the contract accepts it
    (no force, switch not pressed) and the cause still present latches again at once."""
    bench.relay(StimulusCoil.ESTOP_BUTTON, True)
    latched = bench.ctrl.status().estop_latched
    err = refusal_of(bench.ctrl.reset)
    return Precondition("the e-stop latched by the held button, then RESET accepted", latched and err is None,
                        f"ESTOP_LATCHED={latched} before the RESET; RESET "
                        + ("accepted" if err is None else f"refused ({err})"))


def _reset_with_mains_cut(bench, recorder, req) -> list[Precondition]:
    """The mains cut at rest (a power loss: FAULT_CODE 7, the drive de-energised), RESET
    while it is still cut, then the mains back. The cause was present at the RESET, so the
    latch must be back at once and outlive the mains' return: ENABLE (and so START)
    refused until another RESET. A power-fail input read on its edge only clears it."""
    bench.relay(StimulusCoil.MAINS_CUT, True)
    try:
        st, lost = bench.poll_until(lambda s: s.fault_code is FaultCode.POWER_LOSS and not s.enabled, 1.0)
        err = refusal_of(bench.ctrl.reset)
        after = bench.ctrl.status()
    finally:
        bench.relay(StimulusCoil.MAINS_CUT, False)
    set_up = Precondition("the mains cut latched a power loss, then RESET accepted with the mains still cut",
                          lost and err is None,
                          f"FAULT_CODE {st.fault_code.name}, enabled={st.enabled} before the RESET; RESET "
                          + ("accepted" if err is None else f"refused ({err})"))
    boolean(recorder, req, "a RESET with the mains still cut latches again at once",
            after.fault_code is FaultCode.POWER_LOSS, [set_up],
            condition="mains cut through RESET", fault_after_reset=after.fault_code.name)
    err = refusal_of(bench.ctrl.enable)
    boolean(recorder, req, "ENABLE refused after the mains returns (no RESET since)", isinstance(err, CommandRefused),
            [set_up], condition="mains cut through RESET", reason=str(getattr(err, "reason", None)))
    return [set_up]


START_CONDITIONS = ["switch unplugged", "e-stop latched", "switch pressed", "not enabled", "watchdog tripped",
                    "over-force tripped", "e-stop held through RESET", "mains cut through RESET"]


@pytest.mark.requirement("IL-START")
@pytest.mark.parametrize("condition", START_CONDITIONS)
def test_start_refused(bench, spec, recorder, condition, request, rig):
    """START with each condition of the contract that must refuse it: the patient switch
    unplugged (LAST_REJECT 2), each latch (3: e-stop, switch, watchdog, over-force, and
    the e-stop latched again by RESET while its button is held, the power loss latched again
    by RESET while the mains is still cut), the drive not enabled."""
    req = spec.requirement("IL-START")
    setting = min(spec.plan.emergency.forces_n)
    bench.configure(setting, spec.max_ramp_rate_n_s)
    set_up: list[Precondition] = []
    if condition == "switch unplugged":
        bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, True)
    elif condition == "e-stop latched":
        bench.ctrl.emergency_stop()
    elif condition == "switch pressed":
        bench.relay(StimulusCoil.PATIENT_SWITCH, True)
    elif condition == "watchdog tripped":
        set_up.append(_trip_watchdog(bench, spec))
    elif condition == "over-force tripped":
        set_up.append(_trip_overforce(bench, spec, rig, request.getfixturevalue("force_limit"), setting))
    elif condition == "e-stop held through RESET":
        set_up.append(_reset_with_estop_held(bench))
    elif condition == "mains cut through RESET":
        set_up += _reset_with_mains_cut(bench, recorder, req)
    else:
        bench.ctrl.disable()
        bench.wait(lambda s: not s.enabled, 10, "drive disabled")
    st = bench.ctrl.status()
    shown = {"switch unplugged": ("the patient switch unplugged", not st.patient_switch_connected),
             "e-stop latched": ("ESTOP_LATCHED", st.estop_latched),
             "switch pressed": ("the patient switch pressed", st.patient_switch_pressed),
             "not enabled": ("the drive not enabled", not st.enabled),
             "watchdog tripped": ("WATCHDOG_TRIPPED, the drive enabled", st.watchdog_tripped and st.enabled),
             "over-force tripped": ("OVERFORCE_TRIPPED, the drive enabled", st.overforce_tripped and st.enabled),
             "e-stop held through RESET": ("the drive enabled", st.enabled),
             "mains cut through RESET": ("the patient switch connected, not pressed",
                                         st.patient_switch_connected and not st.patient_switch_pressed)}[condition]
    if condition == "e-stop held through RESET" and set_up[0].held:
        # the contract's own line: "a cause still present (e-stop button held) latches again at once"
        boolean(recorder, req, "a RESET with the e-stop button held latches again at once", st.estop_latched,
                set_up, condition=condition)
    errors = []
    peak, at_rest = gauge_peak_while(bench, lambda: errors.append(refusal_of(bench.ctrl.start)))
    err = errors[0]
    established = [*set_up, shows(*shown, st)]  # without it, a START that moves the table is another requirement's finding
    boolean(recorder, req, f"START refused ({condition})", isinstance(err, CommandRefused), established,
            condition=condition, reason=str(getattr(err, "reason", None)))
    boolean(recorder, req, f"nothing moves ({condition})", peak < bench.residual_n, [*established, at_rest],
            condition=condition, peak_n=peak)


@pytest.mark.requirement("IL-RESET")
def test_reset_refused_with_switch_pressed(bench, spec, recorder):
    """RESET's second refusal (LAST_REJECT 3): the patient switch pressed, no force. A
    table that takes the RESET and latches again at once has still cleared the patient's
    stop for an instant; the contract refuses it outright."""
    req = spec.requirement("IL-RESET")
    bench.relay(StimulusCoil.PATIENT_SWITCH, True)
    try:
        st = bench.ctrl.status()
        pressed = shows("the patient switch pressed and ESTOP_LATCHED", st.patient_switch_pressed and st.estop_latched,
                        st)
        no_force = Precondition("no force present (a refusal for force would be IL-RESET's other check)",
                                st.force_n <= bench.residual_n,
                                f"ACTUAL_FORCE {st.force_n:.3g} N, residual {bench.residual_n:g} N")
        err = refusal_of(bench.ctrl.reset)
        after = bench.ctrl.status()
        boolean(recorder, req, "RESET refused with the patient switch pressed (LAST_REJECT 3)",
                isinstance(err, CommandRefused) and err.reason is RejectReason.LATCHED, [pressed, no_force],
                reason=str(getattr(err, "reason", None)))
        boolean(recorder, req, "e-stop latch kept (switch pressed)", after.estop_latched, [pressed, no_force],
                reason=str(getattr(err, "reason", None)))
    finally:
        bench.relay(StimulusCoil.PATIENT_SWITCH, False)


def _attempt(bench, fn) -> tuple[object, int, int]:
    """A command's refusal (or None) with the instants its write was sent and acknowledged."""
    sent = time.perf_counter_ns()
    err = refusal_of(fn)
    return err, sent, time.perf_counter_ns()


@pytest.mark.requirement("IL-RESET")
def test_reset_refused_with_force_present(bench, spec, recorder):
    """RESET is tried twice with force present: holding a treatment, and at once after an
    emergency stop. "Force present" is what the gauge shows at the write (the controller's
    own cell is under test); a table whose release is so fast that the force is gone by the
    second write cannot be asked that question, and the check says so instead of failing."""
    req = spec.requirement("IL-RESET")
    setting = max(spec.plan.emergency.forces_n)
    bench.configure(setting, spec.plan.emergency.setup_ramp_n_s, spec.plan.emergency.setup_ramp_n_s)
    bench.ctrl.start()
    bench.wait_phase(Phase.HOLD, setting / spec.plan.emergency.setup_ramp_n_s + 10)
    holder: list = []
    t0 = time.perf_counter_ns()
    with bench.capture(holder):
        bench.sleep(0.05)
        err1, sent1, ack1 = _attempt(bench, bench.ctrl.reset)
        bench.ctrl.emergency_stop()
        latched = bench.ctrl.status().estop_latched
        err2, sent2, ack2 = _attempt(bench, bench.ctrl.reset)  # at once: the release has only begun
        st = bench.ctrl.status()
        bench.sleep(0.05)
    cap = bench.to_table(holder[0], t0)
    residual = bench.residual_n

    def force_present(sent: int, ack: int) -> Precondition:
        # the device decided somewhere in [send, ack]; the force falls after an e-stop, so
        # it was present for that decision if the gauge still shows it at the acknowledgement
        lo = float(np.interp(bench.table_s(t0, ack), cap.t, cap.force)) if len(cap.t) else float("nan")
        hi = float(np.interp(bench.table_s(t0, sent), cap.t, cap.force)) if len(cap.t) else float("nan")
        return Precondition("force above the residual force through the RESET write (gauge)", bool(lo > residual),
                            f"gauge {hi:.4g} N at the write, {lo:.4g} N at its acknowledgement; residual {residual:g} N")

    present1, present2 = force_present(sent1, ack1), force_present(sent2, ack2)
    boolean(recorder, req, "RESET refused during a treatment (force present)", isinstance(err1, CommandRefused)
            and err1.reason is RejectReason.FORCE_PRESENT, [present1], reason=str(getattr(err1, "reason", None)))
    refused_now = isinstance(err2, CommandRefused) and err2.reason is RejectReason.FORCE_PRESENT
    boolean(recorder, req, "RESET refused right after an emergency stop", refused_now, [present2],
            force_n=st.force_n, reason=str(getattr(err2, "reason", None)))
    boolean(recorder, req, "e-stop latch kept", st.estop_latched,
            [Precondition("the ESTOP latched", latched, f"ESTOP_LATCHED={latched} right after the ESTOP write"),
             present2,
             Precondition("RESET was refused (only a refused RESET must leave the latch)", refused_now,
                          f"RESET {'refused' if refused_now else 'accepted'}" + (f" ({err2})" if err2 else ""))])




@pytest.mark.requirement("IL-RESET")
def test_reset_refused_just_above_the_residual(bench, spec, recorder):
    """RESET's force check at its corner: a hold a few newtons above RESIDUAL_FORCE. A
    threshold set too high (twice the residual, a hysteresis band) still refuses at the
    treatment forces test_reset_refused_with_force_present tries; only here does it clear
    a latch with force on the patient. Judged when both the gauge and the controller's
    own cell show the force above the residual (the contract's rule is on ACTUAL_FORCE;
    a cell that disagrees with the gauge is FA-CELL's finding)."""
    req = spec.requirement("IL-RESET")
    residual = bench.residual_n
    setting = residual + JUST_ABOVE_N
    rate = spec.plan.emergency.setup_ramp_n_s
    bench.configure(setting, rate)
    bench.ctrl.start()
    bench.wait_phase(Phase.HOLD, setting / rate + 10)
    bench.sleep(RESET_SETTLE_S)
    gauge_before, st = bench.gauge.read(), bench.ctrl.status()
    err = refusal_of(bench.ctrl.reset)
    gauge_after = bench.gauge.read()
    present = Precondition("force above the residual through the RESET write (gauge and ACTUAL_FORCE)",
                           min(gauge_before, gauge_after) > residual and st.force_n > residual,
                           f"gauge {gauge_before:.4g} N before, {gauge_after:.4g} N after; ACTUAL_FORCE "
                           f"{st.force_n:.4g} N; residual {residual:g} N")
    boolean(recorder, req, "RESET refused just above the residual force", isinstance(err, CommandRefused)
            and err.reason is RejectReason.FORCE_PRESENT, [present], force_n=setting, residual_n=residual,
            gauge_n=gauge_before, reason=str(getattr(err, "reason", None)))
    bench.ctrl.stop()
    bench.wait(bench.released, 10, "released after the hold")


@pytest.mark.requirement("ER-LATCH")
def test_fault_code_keeps_the_first_trigger(bench, spec, recorder):
    """FAULT_CODE names the first trigger until RESET: an e-stop, then the patient switch
    pressed while it is latched, must still read e-stop (2) — what stopped the table is
    what the operator and the service log are told. RESET (the switch let go, no force)
    then clears it."""
    first_trigger_kept(bench, recorder, spec.requirement("ER-LATCH"), settled=lambda s: s.phase is Phase.IDLE)


# ---------------------------------------------------------------- IL-OVERFORCE
# Two ways to take the force over FORCE_LIMIT, one analysis: the emulated table's patient
# simulator snags the harness (faster than the force loop can pay out), or a person at
# the bench pulls it (or tightens a come-along) — on every real bench, and on any rig
# with --operator-overforce. Both time the gauge crossing FORCE_LIMIT to the trip the
# controller reports, bracketed by status reads (`TripWatch`, `analyse_overforce_trip`),
# and judge it with the same budget and decision rule (`record_overforce_trip`).

def hold_below_limit(bench, spec, force_limit) -> tuple[float, float]:
    """FORCE_LIMIT set to the plan's over-force limit, the table holding HOLD_FRACTION of it."""
    limit = spec.plan.overforce_limit_n
    force_limit(limit)
    hold = HOLD_FRACTION * limit
    bench.configure(hold, spec.max_ramp_rate_n_s)
    bench.ctrl.start()
    bench.wait_phase(Phase.HOLD, hold / spec.max_ramp_rate_n_s + 10)
    return limit, hold


@pytest.mark.requirement("IL-OVERFORCE")
@pytest.mark.emulator_only
@pytest.mark.destructive
def test_overforce_trip(bench, spec, recorder, force_limit, rig):
    req = spec.requirement("IL-OVERFORCE")
    if rig.patient_simulator is None:
        pytest.skip("this rig cannot pull on the harness from outside (no patient simulator)")
    limit, _ = hold_below_limit(bench, spec, force_limit)
    holder: list = []
    t0 = time.perf_counter_ns()
    pull_rate = 20.0 * limit  # N/s: a snag: faster than the force loop can pay out
    watch = TripWatch(bench.ctrl)
    try:
        with bench.capture(holder):
            bench.sleep(0.3)
            rig.patient_simulator.pull(0.4 * limit, pull_rate)
            watch.wait(TRIP_WAIT_S / bench.k + 0.5)
            bench.sleep(AFTER_TRIP_S)
    finally:
        rig.patient_simulator.pull(0.0)
    cap = bench.to_table(holder[0], t0)
    a = analyse_overforce_trip(bench, cap, t0, watch.reads, limit)
    record_overforce_trip(bench, recorder, req, limit, cap, a, {"pull_rate_n_s": pull_rate})


@pytest.fixture
def person_pulls(rig, request):
    """A person pulls on a rig that cannot pull itself (a real bench), or on any rig when
    asked (--operator-overforce); decided before the table is touched."""
    if rig.patient_simulator is not None and not request.config.getoption("operator_overforce", default=False):
        pytest.skip("the emulated table's patient simulator pulls instead: test_overforce_trip "
                    "(--operator-overforce runs this operator-assisted check too)")


@pytest.mark.requirement("IL-OVERFORCE")
@pytest.mark.operator(prompts=3)  # ready, pull, release
@pytest.mark.destructive
def test_overforce_trip_pulled_by_operator(person_pulls, bench, spec, recorder, force_limit, operator):
    """IL-OVERFORCE on a real bench: the person at the bench pulls the harness (or
    tightens a come-along) until the table trips; the gauge times the crossing, the
    controller's flag the trip, judged exactly as the emulated snag (`record_overforce_trip`).

    A person pulls slowly: the force loop pays the cord out to keep the hold (the force
    rises only by the pull rate ÷ the loop's gain), so the force climbs only once the
    winch can give no more — then at the person's rate. So the pull goes on until the
    trip (not to a force), and the analysis converts the gauge's force uncertainty at the
    crossing into time through the measured slope."""
    req = spec.requirement("IL-OVERFORCE")
    limit = spec.plan.overforce_limit_n
    hold = HOLD_FRACTION * limit
    asked, slowest = pull_rates(spec, limit)
    operator.done("IL-OVERFORCE", "ready",
                  f"The table will hold {hold:g} N; the over-force limit is {limit:g} N. Attach the pull to the "
                  "harness now, while it is slack: a second harness or a come-along anchored to the bench, "
                  "pulling away from the table. Keep clear of the cord.\nType done when ready.")
    limit, hold = hold_below_limit(bench, spec, force_limit)
    bench.context(requirement="IL-OVERFORCE", trigger="overforce_pull_by_hand", phase="hold", force_n=hold, trial=1,
                  trials=1)
    watch = TripWatch(bench.ctrl)
    holder: list = []
    t0 = time.perf_counter_ns()
    with bench.capture(holder):
        step = operator.await_action(
            "IL-OVERFORCE", "pull",
            f"PULL the harness steadily away from the table (about {asked:g} N/s, no slower than {slowest:g} N/s; "
            f"or tighten the come-along) until the table trips. It holds {hold:g} N and will first give way "
            "(its force loop pays out cord): keep pulling, do not jerk. Once it gives no more the force rises; "
            f"the table must trip when the gauge passes {limit:g} N. STOP pulling as soon as it trips.\n"
            "Nothing to type: the step ends when the controller reports the trip "
            f"(type done if the gauge went past {limit:g} N and the table did not trip).",
            observed=watch)
        if not watch.tripped:  # done, says the person: the table gets a last chance to report it
            watch.wait(TRIP_WAIT_S / bench.k + 0.5, pause_s=POLL_WALL_S)
        bench.sleep(OPERATOR_AFTER_TRIP_S)
    operator.done("IL-OVERFORCE", "release",
                  "STOP pulling and let the pull off slowly (release the come-along) until the cord is slack: "
                  + ("the table has tripped; it cannot pay out while you pull." if watch.tripped
                     else "the table did not report a trip.") + "\nType done when nothing pulls on the harness.")
    cap = bench.to_table(holder[0], t0)
    a = analyse_overforce_trip(bench, cap, t0, watch.reads, limit)
    anchor = a.cross if a.crossed else float(cap.t[int(np.argmax(cap.force))]) if len(cap.t) else 0.0
    said_done = step.answer == OPERATOR_DID_IT  # the person typed done: the table had not reported a trip
    seen_by = ("operator only (the table never reported it)" if not watch.tripped
               else "controller, after the operator said done" if said_done else "controller")
    paid_out = (watch.first_position_m - watch.trip_position_m
                if watch.first_position_m is not None and watch.trip_position_m is not None else None)
    # who pulled: the one who said done, else (the table ended the step) who let the pull off
    who = step.operator if step.where in ("terminal", "page") else operator.name
    conditions = {"pull_rate_n_s": a.slope_n_s, "pulled_by": "operator", "operator": who,
                  "asked_pull_rate_n_s": asked, "hold_n": hold, "trip_seen_by": seen_by,
                  "paid_out_before_the_trip_m": paid_out, "status_reads": len(watch.reads)}
    note = ""
    if not watch.tripped:
        note = f"the operator {who} said the pull was done; the controller never reported the trip"
    elif said_done:
        note = f"the operator {who} said the pull was done before the controller reported the trip"
    elif a.crossed and np.isfinite(a.slope_n_s) and a.slope_n_s < slowest:
        note = (f"pulled at {a.slope_n_s:.3g} N/s through FORCE_LIMIT, slower than {slowest:g} N/s: part of the "
                "delay may be the controller cell's error that FA-CELL permits")
    record_overforce_trip(bench, recorder, req, limit, cap, a, conditions, note=note,
                          series_from_s=anchor - SERIES_BEFORE_S)
