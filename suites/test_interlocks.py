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

from drivers.controller import CommandRefused, IllegalValue
from drivers.tcm1 import Holding, Phase, RejectReason, StimulusCoil
from suites.analysis import crossing_above
from suites.measurement import Measurement, Precondition, UncertaintyTerm

QUIET_S = 1.0  # table seconds in which nothing may move after a refusal


def refused(fn, *args, **kwargs):
    """The device's refusal, or None when it accepted the command."""
    try:
        fn(*args, **kwargs)
    except (CommandRefused, IllegalValue) as exc:
        return exc
    return None


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
    before = bench.ctrl.read_holding(Holding.TARGET_FORCE)[0]
    err = refused(bench.ctrl.set_target_force, limit + 10.0, testing_interlock=True)
    boolean(recorder, req, "single write above FORCE_LIMIT refused with 03", isinstance(err, IllegalValue)
            and err.reason is RejectReason.OUT_OF_RANGE, limit_n=limit, setpoint_n=limit + 10.0)
    err = refused(bench.ctrl.write_holdings, Holding.TARGET_FORCE, [int((limit + 10.0) * 10), 100])
    boolean(recorder, req, "multiple write above FORCE_LIMIT refused", isinstance(err, IllegalValue))
    after = bench.ctrl.read_holding(Holding.TARGET_FORCE)[0]
    boolean(recorder, req, "TARGET_FORCE unchanged", after == before, before_dn=before, after_dn=after)
    peak, at_rest = gauge_peak_while(bench, lambda: refused(bench.ctrl.start))
    boolean(recorder, req, "nothing moves (gauge peak below residual)", peak < bench.residual_n, [at_rest], peak_n=peak)


@pytest.mark.requirement("IL-LIMIT-LOCK")
def test_force_limit_locked_while_enabled(bench, spec, recorder):
    req = spec.requirement("IL-LIMIT-LOCK")
    before = bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0]
    err = refused(bench.ctrl.set_force_limit, spec.plan.overforce_limit_n, testing_interlock=True)
    boolean(recorder, req, "FORCE_LIMIT write refused with 04 (enabled)", isinstance(err, CommandRefused)
            and err.reason is RejectReason.ENABLED, reason=str(getattr(err, "reason", None)))
    boolean(recorder, req, "FORCE_LIMIT unchanged", bench.ctrl.read_holding(Holding.FORCE_LIMIT)[0] == before)


@pytest.mark.requirement("IL-START")
@pytest.mark.parametrize("condition", ["switch unplugged", "e-stop latched", "switch pressed", "not enabled"])
def test_start_refused(bench, spec, recorder, condition):
    req = spec.requirement("IL-START")
    setting = min(spec.plan.emergency.forces_n)
    bench.configure(setting, spec.max_ramp_rate_n_s)
    if condition == "switch unplugged":
        bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, True)
    elif condition == "e-stop latched":
        bench.ctrl.emergency_stop()
    elif condition == "switch pressed":
        bench.relay(StimulusCoil.PATIENT_SWITCH, True)
    else:
        bench.ctrl.disable()
        bench.wait(lambda s: not s.enabled, 10, "drive disabled")
    st = bench.ctrl.status()
    shown = {"switch unplugged": ("the patient switch unplugged", not st.patient_switch_connected),
             "e-stop latched": ("ESTOP_LATCHED", st.estop_latched),
             "switch pressed": ("the patient switch pressed", st.patient_switch_pressed),
             "not enabled": ("the drive not enabled", not st.enabled)}[condition]
    errors = []
    peak, at_rest = gauge_peak_while(bench, lambda: errors.append(refused(bench.ctrl.start)))
    err = errors[0]
    established = shows(*shown, st)  # without it, a START that moves the table is another requirement's finding
    boolean(recorder, req, f"START refused ({condition})", isinstance(err, CommandRefused), [established],
            condition=condition, reason=str(getattr(err, "reason", None)))
    boolean(recorder, req, f"nothing moves ({condition})", peak < bench.residual_n, [established, at_rest],
            condition=condition, peak_n=peak)


def _attempt(bench, fn) -> tuple[object, int, int]:
    """A command's refusal (or None) with the instants its write was sent and acknowledged."""
    sent = time.perf_counter_ns()
    err = refused(fn)
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


@pytest.mark.requirement("IL-OVERFORCE")
@pytest.mark.emulator_only
@pytest.mark.destructive
def test_overforce_trip(bench, spec, recorder, force_limit, rig):
    req = spec.requirement("IL-OVERFORCE")
    if rig.patient_simulator is None:
        pytest.skip("this rig cannot pull on the harness from outside (no patient simulator)")
    limit = spec.plan.overforce_limit_n
    force_limit(limit)
    hold = 0.8 * limit
    bench.configure(hold, spec.max_ramp_rate_n_s)
    bench.ctrl.start()
    bench.wait_phase(Phase.HOLD, hold / spec.max_ramp_rate_n_s + 10)
    holder: list = []
    t0 = time.perf_counter_ns()
    pull_rate = 20.0 * limit  # N/s: a snag: faster than the force loop can pay out
    reads: list[tuple[int, int, bool]] = []  # (sent ns, reply ns, OVERFORCE_TRIPPED) while waiting for the trip
    try:
        with bench.capture(holder):
            bench.sleep(0.3)
            rig.patient_simulator.pull(0.4 * limit, pull_rate)
            deadline = time.perf_counter() + 2.0 / bench.k + 0.5
            while time.perf_counter() < deadline:
                st = bench.ctrl.status()
                reads.append((st.sent_ns, st.host_ns, st.overforce_tripped))
                if st.overforce_tripped:
                    break
            bench.sleep(1.0)
    finally:
        rig.patient_simulator.pull(0.0)
    cap = bench.to_table(holder[0], t0)
    cross = crossing_above(cap.t, cap.force, limit)
    # the trip instant: after the device sampled the last read that did not show it (no
    # earlier than that read was sent) and before the first read that did came back —
    # a reply the loaded host picked up late must not push the trip later
    first = next((i for i, (_, _, tripped) in enumerate(reads) if tripped), None)
    if first is None or not np.isfinite(cross):
        trip, half = float("inf"), 0.0
    else:
        seen = bench.table_s(t0, reads[first][1])
        # tripped at the first read: it may have come before that read was even sent
        before = bench.table_s(t0, reads[first - 1][0]) if first > 0 else min(cross, bench.table_s(t0, reads[0][0]))
        trip, half = (seen + before) / 2, (seen - before) / 2
    st = bench.ctrl.status()
    lo, hi = req.limits()
    peak = float(np.max(cap.force)) if len(cap.force) else float("nan")
    over = Precondition("the pull took the gauge force over FORCE_LIMIT", bool(np.isfinite(cross)),
                        f"gauge peak {peak:.4g} N, FORCE_LIMIT {limit:g} N")
    recorder.record(Measurement(
        "gauge crossing FORCE_LIMIT to the trip", req, trip - cross if np.isfinite(trip) else float("inf"), "s", lo, hi,
        [UncertaintyTerm.rectangular("trip seen between two status reads", half),
         UncertaintyTerm.rectangular("gauge sample period (crossing)", cap.period),
         UncertaintyTerm.rectangular("gauge clock mapping × K", getattr(cap, "mapping_half_width_s", 0.0) * bench.k)],
        conditions={"limit_n": limit, "pull_rate_n_s": pull_rate, "latched": st.overforce_tripped, "peak_n": peak},
        series={"t_s": cap.t, "force_n": cap.force},
        annotations={"cross_s": cross, **({"trip_s": trip} if np.isfinite(trip) else {})},
        preconditions=[over],
    ))
    if over.held:
        assert st.overforce_tripped and st.fault_code.name == "OVERFORCE", "the over-force trip did not latch"
