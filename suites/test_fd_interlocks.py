"""The interlocks of a flexion-distraction table (FDC-1): the depth limits, the limits'
lock while enabled, the refusals of START and RESET and their order, the over-travel trip
and the obstruction. A refusal is the controller's answer (exception and LAST_REJECT);
"nothing moves" is the reference inclinometer's (verification/fd_interlock.py).

Each check states what it relies on (`Precondition`): a START refused "with a latch
set" is judged only when the controller shows that latch, "nothing moves" only on a
section at rest before; where that does not hold, the check is N/A with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.fdc1 import FaultCode, Holding, Phase, RejectReason
from drivers.modbus_controller import CommandRefused, IllegalValue, refusal_of
from drivers.tcm1 import StimulusCoil
from drivers.units import deg_to_ddeg, ddeg_to_deg
from verification.fd_interlock import (AFTER_OBSTRUCTION_S, LIMIT_REGISTERS, SERIES_AFTER_S, SERIES_BEFORE_S,
                                       STILL_DEG, TRIP_WAIT_S, analyse_obstruction, gauge_terms, limits_now, obstruction_measurements,
                                       stand_off_neutral, still_while, time_enable_trip, write_limits_disabled)
from verification.emergency import first_trigger_kept
from verification.measurement import Measurement, Precondition

pytestmark = [pytest.mark.protocol("FDC-1")]


def is_refusal(err, kind, reason: RejectReason) -> bool:
    return isinstance(err, kind) and err.reason is reason


def boolean(recorder, req, name, ok: bool, preconditions=(), **conditions):
    recorder.record(Measurement(name, req, bool(ok), conditions=conditions, preconditions=list(preconditions)))


def still(recorder, req, name, moved: float, preconditions=(), **conditions):
    boolean(recorder, req, name, bool(np.isfinite(moved) and moved <= STILL_DEG), preconditions,
            moved_deg=moved, still_within_deg=STILL_DEG, **conditions)


def shows(what: str, held: bool, st) -> Precondition:
    return Precondition(f"the controller shows {what}", held,
                        f"ready={st.ready} enabled={st.enabled} estop_latched={st.estop_latched} "
                        f"switch_pressed={st.patient_switch_pressed} switch_connected={st.patient_switch_connected} "
                        f"watchdog={st.watchdog_tripped} overtravel={st.overtravel_tripped} phase={st.phase.name}")


def reason_of(err) -> str:
    return str(getattr(err, "reason", None))


@pytest.fixture
def fd_limits(fd_bench):
    """Set the limits (only possible while not ENABLED); the table's own values restored after."""
    bench = fd_bench
    saved = limits_now(bench)
    yield lambda **kw: write_limits_disabled(bench, **kw)
    bench.make_safe()
    bench.poll_until(lambda s: s.phase in (Phase.IDLE, Phase.EMERGENCY_STOPPED), 10.0)
    write_limits_disabled(bench, raw=saved, enable=False)
    bench.prepare()


# ---------------------------------------------------------------- IL-DEPTH

@pytest.mark.requirement("IL-DEPTH")
def test_fd_depth_above_limit_refused(fd_bench, spec, recorder, fd_limits):
    """FLEXION_DEPTH and LATERAL_DEPTH written above the limits the table holds (one
    register step above — the corner — and well above): 03, LAST_REJECT 1, not taken. Then
    a depth taken under a higher limit, the limit lowered below it: START refused with
    LAST_REJECT 1, and the section stays at neutral."""
    bench, req, il = fd_bench, spec.requirement("IL-DEPTH"), spec.plan.interlocks
    fd_limits(angle_deg=il.angle_limit_deg, lateral_deg=il.lateral_limit_deg)
    speed = spec.rated_speed_deg_s
    for reg, mode, limit in ((Holding.FLEXION_DEPTH, "flexion", il.angle_limit_deg),
                             (Holding.LATERAL_DEPTH, "lateral", il.lateral_limit_deg)):
        bench.configure(mode, limit / 2, speed, cycles=1)
        before = bench.ctrl.read_holding(reg)[0]
        for above in il.above_limit_deg:
            written = limit + above
            err = refusal_of(bench.ctrl.write_holding, reg, deg_to_ddeg(written))
            after = bench.ctrl.read_holding(reg)[0]
            boolean(recorder, req, f"{reg.name} {above:g}° above the limit refused with 03 (LAST_REJECT 1)",
                    is_refusal(err, IllegalValue, RejectReason.OUT_OF_RANGE), limit_deg=limit, written_deg=written,
                    reason=reason_of(err))
            boolean(recorder, req, f"{reg.name} unchanged after {above:g}° above the limit", after == before,
                    before_deg=ddeg_to_deg(before), after_deg=ddeg_to_deg(after))
    # a multiple write (FC 16) of both depths, the flexion one above its limit: all or nothing
    # (as TCM-1), so the lateral depth within its limit is not taken either
    before = bench.ctrl.read_holding(Holding.FLEXION_DEPTH, 2)
    lateral = il.lateral_limit_deg / 4
    written = [deg_to_ddeg(il.angle_limit_deg + max(il.above_limit_deg)), deg_to_ddeg(lateral)]
    if written[1] == before[1]:
        lateral = il.lateral_limit_deg / 3
        written[1] = deg_to_ddeg(lateral)
    err = refusal_of(bench.ctrl.write_holdings, Holding.FLEXION_DEPTH, written)
    after = bench.ctrl.read_holding(Holding.FLEXION_DEPTH, 2)
    boolean(recorder, req, "multiple write of both depths, flexion above its limit: refused with 03, neither taken",
            is_refusal(err, IllegalValue, RejectReason.OUT_OF_RANGE) and list(after) == list(before),
            write="multiple (FC 16)", written_deg=[ddeg_to_deg(v) for v in written],
            before_deg=[ddeg_to_deg(v) for v in before], after_deg=[ddeg_to_deg(v) for v in after],
            reason=reason_of(err))
    # a depth taken under the limit, the limit then lowered below it (allowed while not ENABLED)
    for mode, limit in (("flexion", il.angle_limit_deg), ("lateral", il.lateral_limit_deg)):
        depth = limit
        lowered = il.overtravel_limit_deg
        fd_limits(angle_deg=il.angle_limit_deg, lateral_deg=il.lateral_limit_deg)
        bench.configure(mode, depth, speed, cycles=1)
        fd_limits(**({"angle_deg": lowered} if mode == "flexion" else {"lateral_deg": lowered}))
        st = bench.ctrl.status()
        set_up = Precondition(f"the {mode} depth above the lowered limit, drives enabled, idle",
                              st.enabled and st.phase is Phase.IDLE and not st.latched,
                              f"depth {depth:g}°, limit {lowered:g}°, enabled={st.enabled}, phase {st.phase.name}")
        moved, (err,) = still_while(bench, lambda: refusal_of(bench.ctrl.start))
        boolean(recorder, req, f"START refused with the {mode} depth above a lowered limit (LAST_REJECT 1)",
                is_refusal(err, CommandRefused, RejectReason.OUT_OF_RANGE), [set_up], mode=mode, depth_deg=depth,
                limit_deg=lowered, reason=reason_of(err))
        still(recorder, req, f"the section stays at neutral ({mode} depth above the limit)", moved, [set_up], mode=mode)
        if err is None:
            bench.make_safe()
            bench.prepare()


# ---------------------------------------------------------------- IL-LIMIT-LOCK

def _limit_writes(bench, recorder, req, state: str, preconditions=()) -> None:
    for reg in LIMIT_REGISTERS:
        before = bench.ctrl.read_holding(reg)[0]
        for direction, value in (("lower", max(1, before // 2)), ("higher", before + 1)):
            err = refusal_of(bench.ctrl.write_holding, reg, value)
            after = bench.ctrl.read_holding(reg)[0]
            cond = {"register": reg.name, "state": state, "direction": direction, "held": before, "written": value}
            boolean(recorder, req, f"{reg.name} write refused with 04, LAST_REJECT 4 ({state}, {direction})",
                    is_refusal(err, CommandRefused, RejectReason.ENABLED), preconditions, reason=reason_of(err), **cond)
            boolean(recorder, req, f"{reg.name} unchanged ({state}, {direction})", after == before, preconditions,
                    after=after, **cond)


@pytest.mark.requirement("IL-LIMIT-LOCK")
def test_fd_limits_locked_while_enabled(fd_bench, spec, recorder, fd_limits):
    """ANGLE_LIMIT, LATERAL_LIMIT and FORCE_LIMIT written while ENABLED, lower and higher,
    idle and while a treatment runs: each refused (04, LAST_REJECT 4) and not taken;
    RESIDUAL_FORCE refused always (LAST_REJECT 6)."""
    bench, req, il = fd_bench, spec.requirement("IL-LIMIT-LOCK"), spec.plan.interlocks
    # each below its rating, so a higher value is in range and only the lock can refuse it
    fd_limits(angle_deg=il.angle_limit_deg, lateral_deg=il.lateral_limit_deg, force_n=max(spec.plan.emergency.forces_n))
    _limit_writes(bench, recorder, req, "enabled, idle")
    bench.configure("flexion", il.angle_limit_deg / 2, spec.rated_speed_deg_s / 4, pause_s=2.0, cycles=1)
    bench.ctrl.start()
    st = bench.ctrl.status()
    running = Precondition("a treatment running at the writes", st.running, f"phase {st.phase.name}")
    _limit_writes(bench, recorder, req, "treatment running", [running])
    before = bench.ctrl.read_holding(Holding.RESIDUAL_FORCE)[0]
    err = refusal_of(bench.ctrl.write_holding, Holding.RESIDUAL_FORCE, 2 * before if before else 100)
    after = bench.ctrl.read_holding(Holding.RESIDUAL_FORCE)[0]
    boolean(recorder, req, "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)",
            is_refusal(err, CommandRefused, RejectReason.READ_ONLY), reason=reason_of(err))
    boolean(recorder, req, "RESIDUAL_FORCE unchanged", after == before, before=before, after=after)
    bench.ctrl.stop()
    bench.wait_idle(bench.travel_s(il.angle_limit_deg, spec.rated_speed_deg_s / 4) + 5)


# ---------------------------------------------------------------- IL-START

#: each case: the condition(s) set up, and the LAST_REJECT the contract's order names first
START_CASES = {
    "not enabled": RejectReason.NOT_READY,
    "switch unplugged": RejectReason.NOT_READY,
    "e-stop latched": RejectReason.LATCHED,
    "e-stop button held": RejectReason.LATCHED,
    "switch pressed": RejectReason.LATCHED,
    "watchdog tripped": RejectReason.LATCHED,
    "over-travel tripped": RejectReason.LATCHED,
    "obstruction tripped": RejectReason.LATCHED,
    "over-force tripped": RejectReason.LATCHED,
    "power loss, mains back": RejectReason.NOT_READY,  # the drives de-energised by it: not enabled comes first
    "depth over limit": RejectReason.OUT_OF_RANGE,
    "distraction over limit": RejectReason.OUT_OF_RANGE,
    # the order: not enabled (2) before latched (3) before out of range (1)
    "not enabled + latched": RejectReason.NOT_READY,
    "switch unplugged + latched": RejectReason.NOT_READY,
    "latched + depth over limit": RejectReason.LATCHED,
}


def _trip_watchdog(bench, spec) -> Precondition:
    wd = spec.plan.watchdog_s
    bench.keeper.pause()
    try:
        st, tripped = bench.poll_until(lambda s: s.watchdog_tripped, 3 * wd + 1.0)
    finally:
        bench.keeper.resume()
    return Precondition("the watchdog tripped with the heartbeat paused", tripped,
                        f"WATCHDOG_TRIPPED={st.watchdog_tripped} within {3 * wd + 1.0:g} s of table time")


def _overtravel(bench, spec) -> Precondition:
    """The domain file's procedure: stand off neutral, RESET, de-energise, lower the limit
    below where the section stands, energise: latched at once."""
    il = spec.plan.interlocks
    stand_off_neutral(bench, "flexion", il.overtravel_stand_deg, spec.rated_speed_deg_s)
    write_limits_disabled(bench, angle_deg=il.overtravel_limit_deg)
    st, tripped = bench.poll_until(lambda s: s.overtravel_tripped, TRIP_WAIT_S)
    return Precondition("over-travel latched by energising beyond a lowered limit", tripped,
                        f"OVERTRAVEL_TRIPPED={st.overtravel_tripped}")


def _obstruction(bench, spec, rig) -> Precondition:
    """OBSTRUCTION_TRIPPED latched by a move into the emulated bench's obstacle (the slide
    then withdrawn, the table released). A bench without the slide cannot set it up here:
    IL-OBSTRUCT's own test (an operator step) tries the section against it."""
    obstacle = rig.config.obstacle
    if obstacle is None or not rig.config.is_emulated:
        return Precondition("the rig's obstacle slide can latch an obstruction", False,
                            "no obstacle slide on this rig" if obstacle is None
                            else "a real bench: the obstacle is placed by hand in test_fd_obstruction_placed_by_operator")
    speed = min(spec.plan.obstruction.speeds_deg_s)
    depth = abs(obstacle.angle_deg) + spec.plan.obstruction.beyond_deg
    bench.configure(obstacle.axis, depth, speed, cycles=1)
    bench.relay(StimulusCoil.OBSTACLE, True)
    try:
        bench.ctrl.start()
        st, tripped = bench.poll_until(lambda s: s.obstruction_tripped, bench.travel_s(depth, speed))
        bench.sleep(1.0)  # the back-off
    finally:
        bench.relay(StimulusCoil.OBSTACLE, False)
    return Precondition("an obstruction latched by the obstacle slide", tripped,
                        f"OBSTRUCTION_TRIPPED={st.obstruction_tripped}, phase {st.phase.name}")


def _overforce(bench, spec, rig, fd_limits) -> Precondition:
    """OVERFORCE_TRIPPED latched by the emulated patient simulator pulling the held
    distraction over a lowered FORCE_LIMIT (a snag, as the traction over-force test pulls),
    the pull let go and the table released. A bench without the simulator cannot pull from
    outside here: the latch is then not established, and the check is N/A saying so."""
    if rig.patient_simulator is None:
        return Precondition("the rig can take the distraction over FORCE_LIMIT (patient simulator)", False,
                            "no patient simulator on this rig (emulator only)")
    force = min(spec.plan.emergency.forces_n)
    limit = 2.0 * force  # well below the rated force: the table's own distraction never reaches it
    fd_limits(force_n=limit)
    rate = spec.plan.distraction_rate_n_s
    bench.configure("flexion", spec.plan.emergency.flexion_depth_deg, spec.emergency_speed_deg_s / 4, pause_s=1.0,
                    cycles=1, distraction_n=force, distraction_rate_n_s=rate)
    bench.ctrl.start()
    bench.wait(lambda s: s.force_n >= 0.9 * force, force / rate + 5, "the distraction held")
    try:
        rig.patient_simulator.pull(1.5 * limit, 20.0 * limit)
        st, tripped = bench.poll_until(lambda s: s.overforce_tripped, TRIP_WAIT_S)
    finally:
        rig.patient_simulator.pull(0.0)
    # stopped, not idle: PHASE stays EMERGENCY_STOPPED until RESET, the release is the protocol's rule
    _, released = bench.poll_until(lambda s: s.released(bench.residual_n), 10.0)
    return Precondition("an over-force latched by a pull over FORCE_LIMIT, the table released after it",
                        tripped and released, f"OVERFORCE_TRIPPED={st.overforce_tripped} (FORCE_LIMIT {limit:g} N), "
                        f"released={released}")


def _power_loss(bench) -> Precondition:
    """The mains cut at rest (FAULT_CODE 7, the drives de-energised), then back."""
    bench.relay(StimulusCoil.MAINS_CUT, True)
    try:
        st, lost = bench.poll_until(lambda s: s.fault_code is FaultCode.POWER_LOSS and not s.enabled, 1.0)
    finally:
        bench.relay(StimulusCoil.MAINS_CUT, False)
    return Precondition("a power loss latched by the mains cut", lost, f"FAULT_CODE {st.fault_code.name}, "
                        f"enabled={st.enabled}")


@pytest.mark.requirement("IL-START")
@pytest.mark.parametrize("condition", list(START_CASES))
def test_fd_start_refused(fd_bench, spec, recorder, condition, fd_limits, rig):
    """START with each cause of the contract that must refuse it, and with several at once
    (LAST_REJECT names the first in the contract's order); the section does not move."""
    bench, req, il = fd_bench, spec.requirement("IL-START"), spec.plan.interlocks
    expected = START_CASES[condition]
    bench.configure("flexion", il.angle_limit_deg / 2, spec.rated_speed_deg_s, cycles=1)
    set_up: list[Precondition] = []
    parts = condition.split(" + ")
    # the depth over a lowered limit first: the limit is written de-energised, and a latch set
    # before would refuse the ENABLE after it
    for part in sorted(parts, key=lambda p: not p.endswith("over limit")):
        if part == "depth over limit":
            bench.configure("flexion", il.angle_limit_deg, spec.rated_speed_deg_s, cycles=1)
            fd_limits(angle_deg=il.overtravel_limit_deg)
        elif part == "distraction over limit":  # taken under the table's limit, the limit then lowered below it
            force = max(spec.plan.emergency.forces_n)
            bench.configure("flexion", il.angle_limit_deg / 2, spec.rated_speed_deg_s, cycles=1, distraction_n=force,
                            distraction_rate_n_s=spec.plan.distraction_rate_n_s)
            fd_limits(force_n=force / 2)
        elif part == "switch unplugged":
            bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, True)
        elif part in ("e-stop latched", "latched"):
            bench.ctrl.emergency_stop()
        elif part == "e-stop button held":
            bench.relay(StimulusCoil.ESTOP_BUTTON, True)
        elif part == "switch pressed":
            bench.relay(StimulusCoil.PATIENT_SWITCH, True)
        elif part == "watchdog tripped":
            set_up.append(_trip_watchdog(bench, spec))
        elif part == "over-travel tripped":
            set_up.append(_overtravel(bench, spec))
        elif part == "obstruction tripped":
            set_up.append(_obstruction(bench, spec, rig))
        elif part == "over-force tripped":
            set_up.append(_overforce(bench, spec, rig, fd_limits))
        elif part == "power loss, mains back":
            set_up.append(_power_loss(bench))
    if "not enabled" in parts:
        bench.ctrl.disable()
        bench.wait(lambda s: not s.enabled, 10, "drives de-energised")
    st = bench.ctrl.status()
    held = {"not enabled": ("the drives not enabled", not st.enabled),
            "switch unplugged": ("the patient switch unplugged", not st.patient_switch_connected),
            "e-stop latched": ("ESTOP_LATCHED", st.estop_latched), "latched": ("ESTOP_LATCHED", st.estop_latched),
            "e-stop button held": ("ESTOP_LATCHED", st.estop_latched),
            "switch pressed": ("the patient switch pressed", st.patient_switch_pressed),
            "watchdog tripped": ("WATCHDOG_TRIPPED", st.watchdog_tripped),
            "over-travel tripped": ("OVERTRAVEL_TRIPPED", st.overtravel_tripped),
            "obstruction tripped": ("OBSTRUCTION_TRIPPED", st.obstruction_tripped),
            "over-force tripped": ("OVERFORCE_TRIPPED", st.overforce_tripped),
            "power loss, mains back": ("FAULT_CODE 7 (power loss), the mains back",
                                       st.fault_code is FaultCode.POWER_LOSS and not st.enabled),
            "distraction over limit": ("DISTRACTION_FORCE above FORCE_LIMIT, the drives enabled",
                                       bench.ctrl.read_holding(Holding.DISTRACTION_FORCE)[0]
                                       > bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0] and st.enabled),
            "depth over limit": ("FLEXION_DEPTH above ANGLE_LIMIT, the drives enabled",
                                 bench.ctrl.read_holding(Holding.FLEXION_DEPTH)[0]
                                 > bench.ctrl.read_holding(Holding.ANGLE_LIMIT)[0] and st.enabled)}
    established = [*set_up, *(shows(*held[p], st) for p in parts)]
    try:
        moved, (err,) = still_while(bench, lambda: refusal_of(bench.ctrl.start))
    finally:
        bench.stim.release_all()
    boolean(recorder, req, f"START refused ({condition}), LAST_REJECT {int(expected)} ({expected.name})",
            is_refusal(err, CommandRefused, expected), established, condition=condition,
            expected=expected.name, reason=reason_of(err))
    still(recorder, req, f"nothing moves ({condition})", moved, established, condition=condition)


# ---------------------------------------------------------------- IL-RESET

@pytest.mark.requirement("ES-LATCH")
def test_fd_fault_code_keeps_the_first_trigger(fd_bench, spec, recorder):
    """FAULT_CODE names the first trigger until RESET (as TCM-1): an e-stop, then the
    patient switch pressed while it is latched, must still read e-stop (2) — what stopped
    the table is what the operator and the service log are told. RESET (the switch let
    go, no force) then clears it."""
    first_trigger_kept(fd_bench, recorder, spec.requirement("ES-LATCH"))


@pytest.mark.requirement("IL-RESET")
def test_fd_reset(fd_bench, spec, recorder):
    """RESET refused with distraction force present (LAST_REJECT 5) and with the patient
    switch pressed (3), the latch kept; a cause still present (the e-stop button held)
    latches again at once; and an accepted RESET after a stop mid-move moves nothing."""
    bench, req, em = fd_bench, spec.requirement("IL-RESET"), spec.plan.emergency
    speed, depth = spec.emergency_speed_deg_s, em.flexion_depth_deg
    force = min(em.forces_n)
    # force present: a treatment holding the distraction
    bench.configure("flexion", depth, speed / 4, pause_s=1.0, cycles=1, distraction_n=force,
                    distraction_rate_n_s=spec.plan.distraction_rate_n_s)
    bench.ctrl.start()
    bench.wait(lambda s: s.phase in (Phase.MOVING_OUT, Phase.PAUSE_AT_DEPTH), force / spec.plan.distraction_rate_n_s + 5,
               "the distraction held")
    gauge = bench.gauge.read()
    st = bench.ctrl.status()
    err = refusal_of(bench.ctrl.reset)
    present = Precondition("distraction above the residual at the RESET (gauge and ACTUAL_FORCE)",
                           gauge > bench.residual_n and st.force_n > bench.residual_n,
                           f"gauge {gauge:.4g} N, ACTUAL_FORCE {st.force_n:.4g} N, residual {bench.residual_n:g} N")
    boolean(recorder, req, "RESET refused with force present (LAST_REJECT 5)",
            is_refusal(err, CommandRefused, RejectReason.FORCE_PRESENT), [present], reason=reason_of(err))
    bench.ctrl.emergency_stop()
    err = refusal_of(bench.ctrl.reset)
    st = bench.ctrl.status()
    if st.force_n > bench.residual_n:
        boolean(recorder, req, "RESET refused right after an emergency stop (force present), latch kept",
                is_refusal(err, CommandRefused, RejectReason.FORCE_PRESENT) and st.estop_latched,
                reason=reason_of(err), force_n=st.force_n)
    bench.poll_until(lambda s: s.force_n <= bench.residual_n, 7.0)
    bench.prepare()
    # the patient switch pressed, no force
    bench.relay(StimulusCoil.PATIENT_SWITCH, True)
    try:
        st = bench.ctrl.status()
        pressed = shows("the patient switch pressed and ESTOP_LATCHED", st.patient_switch_pressed and st.estop_latched,
                        st)
        err = refusal_of(bench.ctrl.reset)
        after = bench.ctrl.status()
        boolean(recorder, req, "RESET refused with the patient switch pressed (LAST_REJECT 3)",
                is_refusal(err, CommandRefused, RejectReason.LATCHED), [pressed], reason=reason_of(err))
        boolean(recorder, req, "e-stop latch kept (switch pressed)", after.estop_latched, [pressed])
    finally:
        bench.relay(StimulusCoil.PATIENT_SWITCH, False)
    bench.prepare()
    # a cause still present: the e-stop button held through RESET
    bench.relay(StimulusCoil.ESTOP_BUTTON, True)
    try:
        latched = bench.ctrl.status().estop_latched
        err = refusal_of(bench.ctrl.reset)
        after = bench.ctrl.status()
        set_up = Precondition("the e-stop latched by the held button, then RESET accepted", latched and err is None,
                              f"ESTOP_LATCHED={latched}; RESET " + ("accepted" if err is None else f"refused ({err})"))
        boolean(recorder, req, "a RESET with the e-stop button held latches again at once", after.estop_latched,
                [set_up], fault_code=after.fault_code.name)
    finally:
        bench.relay(StimulusCoil.ESTOP_BUTTON, False)
    bench.prepare()
    # RESET moves nothing: stopped mid-move off neutral, then RESET
    bench.configure("flexion", depth, speed, pause_s=0.5, cycles=1)
    bench.ctrl.start()
    st = bench.wait(lambda s: s.phase is Phase.MOVING_OUT and s.flexion_deg >= depth / 2, 10, "mid-move")
    bench.ctrl.emergency_stop()
    bench.sleep(0.5)
    st = bench.ctrl.status()
    stopped = Precondition("the section stopped off neutral by the e-stop", st.estop_latched and not st.at_neutral,
                           f"ESTOP_LATCHED={st.estop_latched}, encoder {st.flexion_deg:.3g}°")
    moved, (err,) = still_while(bench, lambda: refusal_of(bench.ctrl.reset))
    accepted = Precondition("RESET accepted (no force, switch not pressed)", err is None,
                            "accepted" if err is None else f"refused ({err})")
    still(recorder, req, "RESET moves nothing (the section stays where it stopped)", moved, [stopped, accepted],
          encoder_deg=st.flexion_deg)
    bench.prepare()


# ---------------------------------------------------------------- IL-TRAVEL

@pytest.mark.requirement("IL-TRAVEL")
@pytest.mark.parametrize("motion", ["flexion", "lateral_left", "lateral_right"])
def test_fd_overtravel_trip(fd_bench, spec, recorder, motion, fd_limits):
    """The domain file's bench procedure, on each motion's side: the section stopped off
    neutral, RESET, de-energised, its limit lowered below where it stands, energised: the
    trip must follow within the limit of the acknowledged ENABLE (FDC-1: at once)."""
    bench, req, il = fd_bench, spec.requirement("IL-TRAVEL"), spec.plan.interlocks
    if motion not in il.overtravel_motions:
        pytest.skip(f"{motion} is not in specification {spec.name}'s over-travel motions")
    stand, lowered = il.overtravel_stand_deg, il.overtravel_limit_deg
    stand_off_neutral(bench, motion, stand, spec.rated_speed_deg_s)
    write_limits_disabled(bench, **({"angle_deg": lowered} if motion == "flexion" else {"lateral_deg": lowered}),
                          enable=False)
    # where the section stands when it is energised, not before: a section that moved by
    # itself after the RESET (ES-HOLD.return's finding) is not beyond the limit any more
    reading = bench.tilt.read()
    where = reading.x_deg if motion == "flexion" else reading.y_deg
    beyond = Precondition("the section stands beyond the lowered limit, de-energised, nothing latched",
                          abs(where) > lowered and not bench.ctrl.status().latched,
                          f"inclinometer {where:.3g}°, limit {lowered:g}°")
    trip = time_enable_trip(bench, 2 * (req.limits()[1] or 0.1) + TRIP_WAIT_S)
    recorder.record(trip.measurement(req, f"over-travel trip after ENABLE beyond the limit ({motion})", bench.k,
                                     {"motion": motion, "stand_deg": where, "limit_deg": lowered}, [beyond]))


# ---------------------------------------------------------------- IL-OBSTRUCT

def _obstruction_trials(bench, spec, recorder, profile: str, place, withdraw) -> None:
    """Moves into the obstacle at each speed and distraction of the plan; `place()` puts
    the padded load cell in the section's path, `withdraw()` takes it out."""
    ob, obstacle = spec.plan.obstruction, bench.rig.config.obstacle
    mode = obstacle.axis
    side = 1 if obstacle.angle_deg > 0 else -1
    depth = abs(obstacle.angle_deg) + ob.beyond_deg
    backoff = bench.identity.backoff_deg
    for speed, force in ob.cases():
        for n in range(ob.trials_for(profile)):
            bench.configure(mode, depth, speed, pause_s=1.0, rest_s=1.0, cycles=1, distraction_n=force,
                            distraction_rate_n_s=spec.plan.distraction_rate_n_s)
            place()
            holder: list = []
            try:
                with bench.capture(holder, obstacle=True):
                    bench.ctrl.start()
                    st, tripped = bench.poll_until(lambda s: s.obstruction_tripped or s.phase is Phase.IDLE,
                                                   force / spec.plan.distraction_rate_n_s
                                                   + 4 * bench.travel_s(depth, speed))
                    bench.sleep(AFTER_OBSTRUCTION_S)
            finally:
                withdraw()
            cap = holder[0]
            a = cap.angle(mode)
            o = analyse_obstruction(cap.t, a, cap.obstacle.t, cap.obstacle.force, side,
                                    bench.tilt_config.resolution_deg)
            cond = {"speed_deg_s": speed, "distraction_n": force, "trial": n + 1, "obstacle_deg": obstacle.angle_deg,
                    "depth_deg": depth, "reported_obstruction": bool(st.obstruction_tripped)}
            near = cap.between(o.peak_s - SERIES_BEFORE_S, o.peak_s + SERIES_AFTER_S) if np.isfinite(o.peak_s) else cap.between(0, 0)
            series = {"t_s": cap.t[near], "angle_deg": a[near]}
            for m in obstruction_measurements(spec, o, f"obstruction at {speed:g} °/s, {force:g} N (trial {n + 1})",
                                              cond, gauge_terms=gauge_terms(obstacle.gauge),
                                              angle_terms=bench.angle_terms(calibration=False), backoff_deg=backoff,
                                              series=series):
                recorder.record(m)
            bench.make_safe()
            bench.poll_until(lambda s: s.force_n <= bench.residual_n, 7.0)
            bench.prepare()


@pytest.mark.requirement("IL-OBSTRUCT")
def test_fd_obstruction(fd_bench, spec, recorder, rig, profile):
    """The emulated bench's obstacle slide (SIO-1 OBSTACLE) holds the padded load cell in
    the section's path at the bench's obstacle angle; the section moves into it at each
    speed of the plan: the force on it, the back-off and the release are judged."""
    if rig.config.obstacle is None:
        pytest.skip("this rig has no obstacle (rig file obstacle:): IL-OBSTRUCT is NOT RUN — add the bench's "
                    "obstacle slide and its load cell to run it")
    if not rig.config.is_emulated:
        pytest.skip("a real bench: the padded load cell is placed by the operator "
                    "(test_fd_obstruction_placed_by_operator)")
    _obstruction_trials(fd_bench, spec, recorder, profile, lambda: fd_bench.relay(StimulusCoil.OBSTACLE, True),
                        lambda: fd_bench.relay(StimulusCoil.OBSTACLE, False))


@pytest.mark.requirement("IL-OBSTRUCT")
@pytest.mark.operator(prompts=2)  # place the load cell, remove it: once for every move into it
@pytest.mark.destructive
def test_fd_obstruction_placed_by_operator(rig, fd_bench, spec, recorder, operator, profile):
    """IL-OBSTRUCT on a real bench: the person at the bench places the padded load cell in
    the section's path at the bench's obstacle angle (and takes it away after), the moves
    judged exactly as on the emulator."""
    if rig.config.obstacle is None:
        pytest.skip("this rig has no obstacle (rig file obstacle:): IL-OBSTRUCT is NOT RUN — add the bench's "
                    "obstacle load cell to run it")
    if rig.config.is_emulated:
        pytest.skip("the emulated bench's obstacle slide places it: test_fd_obstruction")
    obstacle = rig.config.obstacle
    n = len(spec.plan.obstruction.cases()) * spec.plan.obstruction.trials_for(profile)
    operator.done("IL-OBSTRUCT", "place-load-cell",
                  f"PLACE the padded load cell in the caudal section's path at {obstacle.angle_deg:g}° "
                  f"({obstacle.axis}), firmly held, where it stays for {n} moves into it. Keep clear of the "
                  "section: it will press on it and back off each time.\nType done when it is in place.")
    try:
        _obstruction_trials(fd_bench, spec, recorder, profile, lambda: None, lambda: None)
    finally:
        operator.done("IL-OBSTRUCT", "remove-load-cell",
                      "REMOVE the padded load cell from the section's path.\nType done when it is out of the way.")
