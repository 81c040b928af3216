"""Emergency stops of a flexion-distraction table: one trial, as the suite runs it, and
what it is judged by (ES-TIME, ES-TRAVEL, ES-HOLD, ES-RELEASE, ES-LATCH).

A trial runs a treatment whose moving phase (out or back, flexion or lateral to one side)
the trigger strikes at mid-move at the plan's speed, with the distraction held; pulls the
trigger (an SIO-1 relay, the ESTOP coil, or the heartbeat stopped); captures the
inclinometer and the distraction gauge through the stop, the release and the hold window;
then tries the restart the latch must refuse, RESET, and watches the section for an
automatic return before anything else is commanded.

What is shared with the traction release rather than restated: the relays of each
trigger and the repetition of a trial whose trigger instant is known too loosely
(verification/emergency.py), the watchdog trip bracketed by status reads
(`time_watchdog_trip`), the release below the residual and the rise after the trigger
(verification/release.py), the stop's time, travel and drift from the angle trace
(verification/kinematics.py).

Angles in degrees, times in table seconds from the trigger, forces in N.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from drivers.errors import RigError
from drivers.fdc1 import FaultCode, Phase
from drivers.modbus_controller import CommandRefused
from verification.analysis import fit_line
from verification.bench import BenchTimeout, Capture, TableBench
from verification.budget import estimates
from verification.emergency import RELAY, WatchdogTrip, time_watchdog_trip, trigger_too_loose
from verification.kinematics import Estimate, angle_at, drift, quantisation, rest_angle, stop, time_to_rest
from verification.measurement import Measurement, Precondition, UncertaintyTerm
from verification.release import residual_release, trial_trigger_force

REQUIREMENTS = ("ES-TIME", "ES-TRAVEL", "ES-HOLD", "ES-RELEASE", "ES-LATCH")
#: ES-HOLD's further quantity: no automatic return after RESET
RETURN_KEY = "return"
#: each motion's inclinometer axis (X pitch: flexion; Y roll: lateral) and the side's sign
AXIS = {"flexion": ("x", 1), "lateral_left": ("y", 1), "lateral_right": ("y", -1)}
MODE = {"flexion": "flexion", "lateral_left": "lateral", "lateral_right": "lateral"}
#: a trial is judged when the section moved at least this share of SPEED at the trigger
#: (struck at cruise, as the plan means); below it the trial is repeated, then N/A. A
#: table whose cruise is slow by up to FD-SPEED's tolerance (10 %) is still judged here
CRUISE_SHARE = 0.8
#: table s of inclinometer samples before the trigger the speed there is fitted to
SPEED_FIT_S = 0.05
#: the speed smoothing that finds where the section came to rest (kinematics.time_to_rest)
STOP_SMOOTH_S = 0.02
#: table s after RESET the section is watched for an automatic return (a return at the
#: contract's ACCEL has moved 5° by then, at any SPEED above 10 °/s; a slow one 0.5° per
#: 1 °/s; "RESET moves nothing" is at once)
RETURN_WATCH_S = 0.5


def axis_of(motion: str) -> tuple[str, int]:
    try:
        return AXIS[motion]
    except KeyError:
        raise ValueError(f"motion {motion!r}: known {', '.join(AXIS)}") from None


# ---------------------------------------------------------------- the stop, from the angle trace

@dataclass(frozen=True)
class StopAnalysis:
    """One stop read from the inclinometer trace (t = 0 the trigger)."""

    speed: Estimate  # deg/s at the trigger, signed (the slope of the SPEED_FIT_S before it)
    time: Estimate  # to rest (inf: still moving when the capture ended)
    travel: Estimate  # |angle at rest − angle at the trigger| (inf: never at rest)
    at_trigger: Estimate
    at_rest: Estimate | None
    hold: Estimate  # largest |angle − angle at rest| over the hold window (ES-HOLD)
    hold_rate: Estimate  # the fitted drift rate over it, deg/s (a creeping brake's signature)
    hold_from_s: float
    hold_window_s: float  # the window judged (shorter than planned only when the stop came late)


def speed_at(t: np.ndarray, a: np.ndarray, instant: float, unsure_s: float = 0.0) -> Estimate:
    """The section's speed at an instant: the slope of a line through the samples of the
    SPEED_FIT_S ending `unsure_s` before it (samples inside the trigger's uncertainty may
    already hold the stop)."""
    end = instant - max(0.0, unsure_s)
    sel = (t >= end - SPEED_FIT_S) & (t <= end)
    if sel.sum() < 3:
        return Estimate(float("nan"))
    f = fit_line(t[sel], a[sel])
    return Estimate(float(f.slope), (UncertaintyTerm("slope fit (standard error)", f.slope_std),))


def analyse_stop(t: np.ndarray, a: np.ndarray, *, at_rest_deg_s: float, hold_window_s: float,
                 resolution_deg: float = 0.0, trigger_half_width_s: float = 0.0) -> StopAnalysis:
    """ES-TIME, ES-TRAVEL and ES-HOLD of one trial's angle trace (one axis, t = 0 the
    trigger, `trigger_half_width_s` table s). A section that never comes to rest within the
    trace has an infinite time and travel (FAIL, never N/A: not stopping is what ES-TIME
    and ES-TRAVEL judge), and its hold is judged over the trace's last window (it moved)."""
    t, a = np.asarray(t, float), np.asarray(a, float)
    speed = speed_at(t, a, 0.0, trigger_half_width_s)
    ttr = time_to_rest(t, a, 0.0, at_rest_deg_s, STOP_SMOOTH_S, resolution_deg=resolution_deg)
    at_trigger = angle_at(t, a, 0.0, resolution_deg=resolution_deg, half_width_s=trigger_half_width_s)
    rested_s = ttr.value + STOP_SMOOTH_S
    at_rest = None
    if math.isfinite(ttr.value) and np.sum((t >= rested_s) & (t <= rested_s + 0.2)) >= 2:
        s = stop(t, a, 0.0, at_rest_deg_s=at_rest_deg_s, smooth_s=STOP_SMOOTH_S, resolution_deg=resolution_deg,
                 trigger_half_width_s=trigger_half_width_s)
        time, travel, at_rest = s.time, s.travel, s.at_rest
    else:
        time = Estimate(float("inf"), ttr.budget)
        travel = Estimate(float("inf"))
    end = float(t[-1])
    start = min(rested_s, end - hold_window_s) if math.isfinite(rested_s) else end - hold_window_s
    start = max(start, 0.0)
    window = min(hold_window_s, end - start)
    d = drift(t, a, start, window, resolution_deg=resolution_deg)
    return StopAnalysis(speed, time, travel, at_trigger, at_rest, d.excursion, d.rate, start, window)


def cruise_precondition(speed: Estimate, set_speed: float) -> Precondition:
    """The trial struck the section moving at cruise (what the plan's rated-speed stop means)."""
    v = abs(speed.value)
    return Precondition(f"the section moving at ≥ {CRUISE_SHARE:.0%} of SPEED at the trigger (inclinometer)",
                        bool(np.isfinite(v) and v >= CRUISE_SHARE * set_speed),
                        f"{v:.3g} °/s at the trigger, SPEED {set_speed:g} °/s")


def stop_measurements(spec, a: StopAnalysis, name: str, conditions: dict, *, timing: list[UncertaintyTerm],
                      angle: list[UncertaintyTerm], cruise: Precondition, series: dict | None = None
                      ) -> list[Measurement]:
    """ES-TIME, ES-TRAVEL and ES-HOLD (drift) of one trial. `timing`: the suite's timing
    terms in table s (the trigger instant and the inclinometer clock mapping, × K);
    `angle`: the inclinometer's terms for a difference of two angles (its calibration's
    share). ES-TIME and ES-TRAVEL rest on a stop from cruise; ES-HOLD on nothing: a
    section that creeps after any stop has a worn brake."""
    cond = {**conditions, "speed_at_trigger_deg_s": a.speed.value, "angle_at_trigger_deg": a.at_trigger.value,
            "angle_at_rest_deg": a.at_rest.value if a.at_rest is not None else None,
            "hold_from_s": a.hold_from_s, "hold_window_s": a.hold_window_s,
            "hold_rate_deg_s": a.hold_rate.value}
    ann = {"trigger_s": 0.0, **({"at_rest_s": a.time.value} if math.isfinite(a.time.value) else {})}
    out = []
    req = spec.requirement("ES-TIME")
    lo, hi = req.limits()
    out.append(Measurement(name, req, a.time.value, "s", lo, hi, [*a.time.budget, *timing], conditions=cond,
                           annotations=ann, series=series or {}, preconditions=[cruise]))
    req = spec.requirement("ES-TRAVEL")
    lo, hi = req.limits()
    out.append(Measurement(name, req, a.travel.value, "deg", lo, hi, [*a.travel.budget, *angle], conditions=cond,
                           annotations=ann, preconditions=[cruise]))
    req = spec.requirement("ES-HOLD")
    lo, hi = req.limits()
    # a hold is judged from where the section came to rest; one that never did has ES-TIME's
    # FAIL (a brake creeping faster than the at-rest speed never comes to rest either)
    rested = Precondition("the section came to rest after the trigger (a hold follows a stop)",
                          a.at_rest is not None, "at rest" if a.at_rest is not None
                          else "still moving when the capture ended (ES-TIME's finding)")
    out.append(Measurement(name, req, a.hold.value, "deg", lo, hi, list(a.hold.budget), conditions=cond,
                           annotations={**ann, "hold_from_s": a.hold_from_s}, preconditions=[rested]))
    return out


def return_measurement(spec, at_rest: Estimate, after_reset: Estimate, name: str, conditions: dict,
                       preconditions: list[Precondition]) -> Measurement:
    """ES-HOLD's `return`: |angle RETURN_WATCH_S after RESET (nothing else commanded) − angle
    at rest before it|, both read from the inclinometer."""
    req = spec.requirement("ES-HOLD")
    lo, hi = req.limits(RETURN_KEY)
    d = after_reset.minus(at_rest, "before RESET")
    return Measurement(name, req, abs(d.value), "deg", lo, hi, list(d.budget), quantity=RETURN_KEY,
                       conditions={**conditions, "before_reset_deg": at_rest.value,
                                   "after_reset_deg": after_reset.value, "watched_s": RETURN_WATCH_S},
                       preconditions=preconditions)


def mean_reading(values: list[float], resolution_deg: float) -> Estimate:
    """The mean of a few immediate inclinometer readings, with its noise and quantisation."""
    arr = np.asarray(values, float)
    sd = float(np.std(arr, ddof=1)) / math.sqrt(len(arr)) if len(arr) > 1 else 0.0
    return Estimate(float(np.mean(arr)), (UncertaintyTerm("noise of the mean", sd), *quantisation(resolution_deg)))


# ---------------------------------------------------------------- one trial

#: table s the section dwells at the depth and at neutral in a trial
TRIAL_DWELL_S = 0.2
#: table s the watchdog's last beat must come after the dwell before the struck move began
#: (the dwell seen by a status read, the keeper paused KEEPER_PAUSE_LEAD_S before the beat)
WATCHDOG_BEAT_AFTER_S = 0.3
#: table s of trace kept after the hold window (the drift's smoothing reaches past its end)
AFTER_HOLD_S = 0.3
#: immediate inclinometer readings averaged for an angle before and after RESET
READINGS = 3
#: the moves of a trial's treatment in order, by (mode's first side, phase): flexion is
#: out, back; lateral is out left, back, out right, back (FDC-1 MODE 1)
MOVE_INDEX = {("flexion", "moving_out"): 0, ("flexion", "moving_back"): 1,
              ("lateral_left", "moving_out"): 0, ("lateral_left", "moving_back"): 1,
              ("lateral_right", "moving_out"): 2, ("lateral_right", "moving_back"): 3}
MOVES_PER_CYCLE = {"flexion": 2, "lateral": 4}
MOVING = {"moving_out": Phase.MOVING_OUT, "moving_back": Phase.MOVING_BACK}
#: the dwell before each moving phase (the watchdog's heartbeat stops in it)
DWELL_BEFORE = {"moving_out": Phase.REST_AT_NEUTRAL, "moving_back": Phase.PAUSE_AT_DEPTH}


@dataclass
class FdTrial:
    index: int
    trigger: str
    motion: str
    phase: str
    force_n: float
    depth_deg: float
    speed_deg_s: float
    t: np.ndarray  # inclinometer instants on the motion's axis, table s from the trigger
    a: np.ndarray  # the motion's angle, deg
    force: Capture  # the distraction gauge, table s from the trigger
    half_width_s: float  # wall s: how well the trigger instant is known
    phase_seen: str
    released: bool  # the distraction below the residual within its allowance (what RESET needs)
    restart_refused: bool
    enable_refused: bool | None  # after a power loss only: ENABLE refused until RESET
    reset_accepted: bool
    before_reset: Estimate | None
    after_reset: Estimate | None
    restarted: bool  # the table took a START or ENABLE after the stop (something was commanded)
    mapping_half_width_s: float  # wall s, the inclinometer clock's mapping
    period_s: float
    rig_failure: Exception | None = None
    watchdog: WatchdogTrip | None = None
    acted: bool = True  # the table showed the emergency stop (PHASE 7) or a fault after the trigger


def trial_dwells(spec, trigger: str, motion: str, phase: str, depth: float, speed: float,
                 accel: float) -> tuple[float, float]:
    """PAUSE_TIME and REST_TIME of a trial. The watchdog's dwell before the struck move is
    long enough for its last beat to fall in it `watchdog_s` before the strike (the trip is
    timed from that beat); every other dwell is TRIAL_DWELL_S."""
    if trigger != "watchdog":
        return TRIAL_DWELL_S, TRIAL_DWELL_S
    into = time_into_move(spec.plan.emergency.at_fraction, depth, speed, accel)
    long = max(TRIAL_DWELL_S, round(spec.plan.watchdog_s - into + WATCHDOG_BEAT_AFTER_S, 1))
    return (long, TRIAL_DWELL_S) if phase == "moving_back" else (TRIAL_DWELL_S, long)


def move_index(trigger: str, motion: str, phase: str) -> int:
    """Which move of the trial's treatment the trigger strikes (0 the first). The
    watchdog's heartbeat stops in the dwell before it, so a first move that follows only
    the distraction's ramp is struck one cycle later."""
    k = MOVE_INDEX[(motion, phase)]
    if trigger == "watchdog" and k == 0:
        k += MOVES_PER_CYCLE[MODE[motion]]
    return k


def time_into_move(fraction: float, depth: float, speed: float, accel: float) -> float:
    """Table s from the start of a trapezoidal move (FDC-1) until it covered `fraction` of
    `depth` at SPEED `speed` and ACCEL `accel`."""
    x = fraction * depth
    ramp = speed * speed / (2 * accel)
    if 2 * ramp >= depth:  # triangular: no cruise
        return math.sqrt(2 * x / accel) if x <= depth / 2 else 2 * math.sqrt(depth / accel) - math.sqrt(
            2 * (depth - x) / accel)
    if x <= ramp:
        return math.sqrt(2 * x / accel)
    return speed / accel + (x - ramp) / speed


class StrikeMissed(BenchTimeout):
    """The treatment ended without the status reads seeing the section in the move to
    strike (a loaded host's reads stalled through it): the trial is run again."""


#: table s before the watchdog trial's own last beat that the heartbeat keeper is paused
#: (its beats come a tenth of the period apart: one of them would otherwise time the trip)
KEEPER_PAUSE_LEAD_S = 0.1


def _strike_point(bench, trigger: str, motion: str, phase: str, depth: float, speed: float, fraction: float,
                  dwell_s: float, timeout_s: float) -> tuple[str, int | None]:
    """Wait until the trigger is to be pulled: for a relay or coil, the section past
    `fraction` of the struck move (the encoder read back to back only places the trigger;
    the inclinometer judges); for the watchdog, the dwell before that move entered — then
    the host instant the section is planned to be there (from the dwell's entry, its length
    and the trapezoid) is returned too. Returns the PHASE seen there."""
    k = move_index(trigger, motion, phase)
    moving = MOVING[phase]
    seen_moves, last = 0, None
    seen: list[str] = []  # what the table went through, for the line when the move is missed
    deadline = time.perf_counter() + timeout_s / bench.k + 2.0
    gap_ns, previous_ns = 0, None  # the longest wait between two reads: a stalled host, said in the line
    while True:
        st = bench.ctrl.status()
        if previous_ns is not None:
            gap_ns = max(gap_ns, st.host_ns - previous_ns)
        previous_ns = st.host_ns
        if st.phase != last:
            seen.append(f"{st.phase.name} (cycle {st.cycle_count}, {bench.encoder(st, motion):.1f}°)")
        if st.phase in (Phase.MOVING_OUT, Phase.MOVING_BACK) and st.phase != last:
            seen_moves += 1
        if trigger == "watchdog":
            if st.phase is DWELL_BEFORE[phase] and seen_moves == k:  # the dwell before move k
                into = dwell_s + time_into_move(fraction, depth, speed, bench.identity.accel_deg_s2)
                return st.phase.name, st.host_ns + int(into / bench.k * 1e9)
        elif st.phase is moving and st.cycle_count == k // MOVES_PER_CYCLE[MODE[motion]]:
            # the move by its phase, cycle and side (not by counting moves: a loaded host's
            # read can miss a short dwell between two)
            signed = bench.encoder(st, motion) * axis_of(motion)[1]
            angle = abs(signed)
            past = angle >= fraction * depth if phase == "moving_out" else angle <= (1 - fraction) * depth
            if past and signed > 0:
                return st.phase.name, None
        if st.phase in (Phase.EMERGENCY_STOPPED, Phase.IDLE) and last not in (None, Phase.IDLE):
            raise StrikeMissed(f"the treatment ended ({st.phase.name}, FAULT_CODE {st.fault_code.name}) before "
                               f"move {k + 1} ({motion} {phase}) was struck; seen: " + ", ".join(seen[-12:])
                               + f"; the longest gap between two status reads {gap_ns / 1e9 * bench.k:.2f} s of table "
                               "time (a host stall there hides whatever the table did)")
        if time.perf_counter() > deadline:
            raise BenchTimeout(f"move {k + 1} ({motion} {phase}) not reached within {timeout_s:g} s of table time "
                               f"(phase {st.phase.name})")
        last = st.phase
        time.sleep(0.0005)


def _until(ns: int) -> None:
    while time.perf_counter_ns() < ns:
        time.sleep(0.0002)


def _last_beat(bench, strike_ns: int, wd: float) -> tuple[int, float]:
    """The watchdog trial's last heartbeat, sent by the suite `wd` table s before the strike:
    the keeper paused just before, so the trip is due at the strike. Returns the beat's
    acknowledgement (ns) and its round trip (wall s)."""
    beat_at = strike_ns - int(wd / bench.k * 1e9)
    _until(beat_at - int(KEEPER_PAUSE_LEAD_S / bench.k * 1e9))
    bench.keeper.pause()
    _until(beat_at)
    sent = time.perf_counter_ns()
    ack = bench.ctrl.heartbeat()
    return ack, (ack - sent) / 1e9


def _readings(bench, motion: str) -> Estimate:
    axis, _ = axis_of(motion)
    values = [getattr(bench.tilt.read(), f"{axis}_deg") for _ in range(READINGS)]
    return mean_reading(values, bench.tilt_config.resolution_deg)


def _reset(bench, table_timeout_s: float) -> bool:
    """RESET, tried again while refused for a force still present (up to the timeout)."""
    deadline = time.perf_counter() + table_timeout_s / bench.k + 0.5
    while True:
        try:
            bench.ctrl.reset()
            return True
        except CommandRefused:
            if time.perf_counter() > deadline:
                return False
            time.sleep(0.005)


def run_trial(bench, spec, trigger: str, motion: str, phase: str, force: float, index: int) -> FdTrial:
    """One emergency stop (module docstring): the trigger at mid-move, the capture through
    the stop, the release and the hold window, the restart refused, RESET, the watch for
    an automatic return, and the table brought back (`bench.prepare`)."""
    em = spec.plan.emergency
    mode = MODE[motion]
    depth = em.flexion_depth_deg if mode == "flexion" else em.lateral_depth_deg
    speed = spec.emergency_speed_deg_s
    wd = spec.plan.watchdog_s
    pause, rest = trial_dwells(spec, trigger, motion, phase, depth, speed, bench.identity.accel_deg_s2)
    dwell = pause if phase == "moving_back" else rest  # the one before the struck move
    rate = spec.plan.distraction_rate_n_s
    k = move_index(trigger, motion, phase)
    cycles = k // MOVES_PER_CYCLE[mode] + 2
    bench.configure(mode, depth, speed, pause_s=pause, rest_s=rest, cycles=cycles, distraction_n=force,
                    distraction_rate_n_s=rate)
    per_move = 2 * depth / speed + pause + rest + 2.0
    reach_s = force / rate + (k + 1) * per_move + 5.0
    hold_until = 2 * (spec.requirement("ES-TIME").limits()[1] or 0.2) + em.hold_window_s + AFTER_HOLD_S
    release_limit = spec.requirement("ES-RELEASE").limits(residual=bench.residual_n, force=force)[1] or 3.0
    holder: list = []
    watchdog = None
    with bench.capture(holder):
        bench.ctrl.start()
        try:
            seen, strike_ns = _strike_point(bench, trigger, motion, phase, depth, speed, em.at_fraction, dwell,
                                            reach_s)
        except StrikeMissed:
            bench.make_safe()
            bench.prepare()
            raise
        if trigger == "watchdog":
            last_beat, rtt = _last_beat(bench, strike_ns, wd)
            watchdog = time_watchdog_trip(bench, last_beat, 2 * wd + 1.0, rtt_s=rtt)
            if watchdog.trip_ns is not None:
                trigger_ns, half_width = watchdog.trip_ns, watchdog.trip_half_s
            else:  # never tripped: the stop it owed counts from when the trip was due
                trigger_ns = watchdog.beat_ns + int(wd / bench.k * 1e9)
                half_width = watchdog.beat_half_s + 1e-3 / bench.k
        elif trigger == "estop_coil":
            trigger_ns, half_width = bench.coil_trigger(bench.ctrl.emergency_stop)
        else:
            trigger_ns, half_width = bench.relay(RELAY[trigger], True)
        # a defective table may never release: that is a measurement, not an error
        acted: list[bool] = []  # whether the table showed the emergency stop (PHASE 7) or a fault

        def released_yet(s) -> bool:
            acted.append(s.phase is Phase.EMERGENCY_STOPPED or s.fault_code is not FaultCode.NONE)
            return s.force_n <= bench.residual_n

        _, released = bench.poll_until(released_yet, 2 * release_limit + 1.0)
        left = hold_until - bench.table_s(trigger_ns, time.perf_counter_ns())
        bench.sleep(left)
    cap = holder[0]
    shift = bench.table_s(cap.ref_ns, trigger_ns)
    t = cap.t - shift
    a = cap.angle(motion)
    f = cap.force
    fcap = Capture(f.t - shift, f.force, f.trace, trigger_ns)
    fcap.mapping_half_width_s = getattr(f, "mapping_half_width_s", 0.0)
    # remove the cause, then a restart must be refused until RESET
    if trigger in RELAY:
        bench.relay(RELAY[trigger], False)
    else:
        bench.keeper.resume()
    refused = bench.start_refused()
    enable_refused = None
    if trigger == "mains_cut":
        try:
            bench.ctrl.enable()
            enable_refused = False
        except CommandRefused:
            enable_refused = True
    restarted = not refused or enable_refused is False
    before = after = None
    reset_ok, rig_failure = True, None
    try:
        if restarted or not released:
            bench.make_safe()
        before = _readings(bench, motion)
        reset_ok = _reset(bench, 2 * release_limit + 1.0)
        if reset_ok:
            bench.sleep(RETURN_WATCH_S)
            after = _readings(bench, motion)
        bench.prepare()
    except (CommandRefused, BenchTimeout):  # the table's answer: it cannot be brought back (ES-LATCH FAIL)
        reset_ok = False
    except RigError as exc:  # a link or a relay of the rig failed: judged nowhere, the test breaks off
        rig_failure = exc
    return FdTrial(index, trigger, motion, phase, force, depth, speed, t, a, fcap, half_width, seen, released,
                   refused, enable_refused, reset_ok, before, after, restarted, cap.mapping_half_width_s, cap.period,
                   rig_failure, watchdog, any(acted))


def repeat_reason(trial: FdTrial, k: float) -> str:
    """Why a trial is run again ('' when it is judged as it is): its trigger instant known
    too loosely (verification/emergency.py's rule), or the section not at cruise when it
    was struck (the link's timing placed the trigger in a corner of the move)."""
    loose = trigger_too_loose(trial.half_width_s, k)
    if loose or not trial.reset_accepted or trial.rig_failure is not None:
        return loose if trial.reset_accepted and trial.rig_failure is None else ""
    unsure = trial.half_width_s * k
    v = abs(speed_at(trial.t, trial.a, 0.0, unsure).value)
    if not (np.isfinite(v) and v >= CRUISE_SHARE * trial.speed_deg_s):
        return f"the section moved at {v:.3g} °/s at the trigger, not at cruise ({trial.speed_deg_s:g} °/s)"
    return ""


def trial_measurements(spec, bench, trial: FdTrial, name: str, conditions: dict) -> list[Measurement]:
    """Every measurement of one trial: ES-TIME, ES-TRAVEL, ES-HOLD (drift and return),
    ES-RELEASE (time below the residual and the rise) and ES-LATCH."""
    em = spec.plan.emergency
    k = bench.k
    resolution = bench.tilt_config.resolution_deg
    unsure = trial.half_width_s * k
    a = analyse_stop(trial.t, trial.a, at_rest_deg_s=em.at_rest_deg_s, hold_window_s=em.hold_window_s,
                     resolution_deg=resolution, trigger_half_width_s=unsure)
    trig = ("trigger instant (watchdog trip between two status reads)" if trial.trigger == "watchdog"
            else "trigger instant (write round trip, relay ≤ 1 ms)")
    timing = [UncertaintyTerm.rectangular("inclinometer sample period", trial.period_s),
              UncertaintyTerm.rectangular(f"{trig} × K", unsure),
              UncertaintyTerm.rectangular("inclinometer-to-host clock mapping × K", trial.mapping_half_width_s * k)]
    cal = bench.tilt_config.calibration
    travel = a.travel.value if math.isfinite(a.travel.value) else 0.0
    angle = [UncertaintyTerm.expanded("inclinometer calibration, its share of the travel",
                                      cal.expanded_uncertainty_deg * travel / max(trial.depth_deg, 1.0),
                                      cal.coverage_factor),
             UncertaintyTerm.rectangular("the inclinometer clock mapping × K × the speed at the trigger",
                                         abs(a.speed.value) * trial.mapping_half_width_s * k
                                         if np.isfinite(a.speed.value) else 0.0)]
    cruise = cruise_precondition(a.speed, trial.speed_deg_s)
    window = (trial.t >= -1.0) & (trial.t <= a.hold_from_s + a.hold_window_s)
    out = stop_measurements(spec, a, name, conditions, timing=timing, angle=angle, cruise=cruise,
                            series={"t_s": trial.t[window], "angle_deg": trial.a[window]})
    nothing_commanded = Precondition("nothing commanded between the stop and RESET (START refused)",
                                     not trial.restarted, "START refused" if not trial.restarted
                                     else "the table took a START or ENABLE after the stop (ES-LATCH's finding)")
    reset_done = Precondition("RESET accepted", trial.reset_accepted and trial.after_reset is not None,
                              "accepted" if trial.reset_accepted else "refused, or the table could not be reached")
    if trial.before_reset is not None and trial.after_reset is not None:
        out.append(return_measurement(spec, trial.before_reset, trial.after_reset, name, conditions,
                                      [nothing_commanded, reset_done]))
    else:
        out.append(Measurement(name, spec.requirement("ES-HOLD"), None, "deg", quantity=RETURN_KEY,
                               conditions=conditions, preconditions=[nothing_commanded, reset_done]))
    at = trial_trigger_force(trial.force, trial.half_width_s, k)
    gauge_timing = TableBench.timing_terms(bench, trial.force, trial.half_width_s, trig)  # the gauge's, not the tilt's
    out += residual_release(spec, bench, trial.force, at, trial.half_width_s, name,
                            {**conditions, "force_at_trigger_n": at.force_n}, "ES-RELEASE",
                            fastest_n_s=spec.plan.distraction_rate_n_s, timing=gauge_timing)
    latch_ok = trial.restart_refused and trial.reset_accepted and trial.enable_refused is not False
    out.append(Measurement(f"{name}: restart refused until RESET", spec.requirement("ES-LATCH"), latch_ok,
                           conditions={**conditions, "restart_refused": trial.restart_refused,
                                       "enable_refused": trial.enable_refused,
                                       "reset_accepted": trial.reset_accepted},
                           note="" if trial.reset_accepted else "the table could not be brought back to a known state",
                           preconditions=[Precondition("the table acted on the trigger (PHASE 7 or a FAULT_CODE): "
                                                       "a latch follows an emergency stop", trial.acted,
                                                       "shown" if trial.acted else "the treatment went on as if "
                                                       "nothing happened (ES-TIME's and ES-RELEASE's finding)"),
                                          Precondition("the distraction released (a RESET refused for force present "
                                                       "is ES-RELEASE's finding)", trial.released,
                                                       "released" if trial.released
                                                       else "still holding force when the release window ended"),
                                          Precondition("the rig could try the RESET (its links and relays answered)",
                                                       trial.rig_failure is None,
                                                       "answered" if trial.rig_failure is None
                                                       else str(trial.rig_failure).splitlines()[0])]))
    return out


# ---------------------------------------------------------------- its time budget

#: the trapezoid's acceleration a plan estimate assumes (the domain file's default ACCEL;
#: the table states its own, read by the trial itself)
ACCEL_GUESS_DEG_S2 = 40.0


def trial_table_s(spec, trigger: str, motion: str, phase: str, force: float) -> float:
    """Table seconds one trial plans: the distraction's ramp, the moves and dwells up to the
    struck one, the stop, release and hold window, the watch after RESET and the section's
    way back to neutral (verification/budget.py's estimator reads it)."""
    em = spec.plan.emergency
    mode = MODE[motion]
    depth = em.flexion_depth_deg if mode == "flexion" else em.lateral_depth_deg
    speed = spec.emergency_speed_deg_s
    pause, rest = trial_dwells(spec, trigger, motion, phase, depth, speed, ACCEL_GUESS_DEG_S2)
    k = move_index(trigger, motion, phase)
    move = depth / speed + speed / ACCEL_GUESS_DEG_S2
    hold = 2 * (spec.requirement("ES-TIME").limits()[1] or 0.2) + em.hold_window_s + AFTER_HOLD_S
    return force / spec.plan.distraction_rate_n_s + k * move + (k + 1) // 2 * pause + k // 2 * rest \
        + move * em.at_fraction + hold + RETURN_WATCH_S + move



@estimates("test_fd_emergency_stop")
def _fd_emergency_stop(spec, params: dict, profile: str) -> float:
    em = spec.plan.emergency
    if params.get("trigger") not in em.triggers:
        return 0.0
    return sum(trial_table_s(spec, params["trigger"], m, p, f) for m, p, f in em.trial_plan(profile))


__all__ = ["FdTrial", "MOVE_INDEX", "StrikeMissed", "move_index", "repeat_reason", "run_trial", "time_into_move",
           "trial_measurements", "AXIS", "CRUISE_SHARE", "MODE", "REQUIREMENTS", "RETURN_KEY", "RETURN_WATCH_S", "StopAnalysis",
           "analyse_stop", "axis_of", "cruise_precondition", "mean_reading", "rest_angle", "return_measurement",
           "speed_at", "stop_measurements"]
