"""The interlocks of a flexion-distraction table, as the suite tries them: what "nothing
moves" means on the inclinometer, the over-travel trip timed from the acknowledged ENABLE
to the status read that shows it (the domain file's bench procedure), and the obstruction
read from the obstacle's load cell and the inclinometer.

The refusals themselves are the device's (FDC-1 exceptions and LAST_REJECT); the
evidence that nothing moved, or how far the section backed off, is the reference
inclinometer's, never the table's encoder (which is under test).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from drivers.fdc1 import Holding, Phase
from verification.analysis import crossing_below
from verification.budget import estimates
from verification.kinematics import Estimate, quantisation, rest_angle
from verification.measurement import Measurement, Precondition, UncertaintyTerm
from verification.status_watch import StatusWatch
from verification.steps import QUIET_S

#: the section counts as still when no inclinometer axis moved beyond this (deg): ES-HOLD's
#: "no motion beyond 0.2°" (the domain file's), the one figure for "nothing moves" here
STILL_DEG = 0.2
#: an over-travel trip, an obstruction, a STOP's return: table s waited beyond the limit
TRIP_WAIT_S = 1.0
#: IL-OBSTRUCT: the force on the obstacle below this counts as released (the domain file's 10 N)
OBSTACLE_RELEASED_N = 10.0
#: ... within this of the peak (s), and the back-off is read this long after the peak
OBSTRUCT_WINDOW_S = 1.0
#: table s recorded after the obstruction was reported (the back-off and the release)
AFTER_OBSTRUCTION_S = 1.5
#: the obstacle's gauge must show more than this for the section to have met it (N)
CONTACT_N = 2.0
#: table s the section dwells at its stand in the over-travel procedure
STAND_DWELL_S = 1.0
LIMIT_REGISTERS = (Holding.ANGLE_LIMIT, Holding.LATERAL_LIMIT, Holding.FORCE_LIMIT)


def excursion(cap) -> float:
    """The largest motion of either inclinometer axis over a capture, from its first samples."""
    if len(cap.t) < 2:
        return float("nan")
    head = max(1, min(len(cap.t) // 20, 10))
    return float(max(np.max(np.abs(cap.x - np.mean(cap.x[:head]))), np.max(np.abs(cap.y - np.mean(cap.y[:head])))))


def still_while(bench, action, quiet_s: float = QUIET_S) -> tuple[float, list]:
    """Run `action()` with the inclinometer captured for `quiet_s` table s after it; returns
    the section's largest motion (deg) and what `action` returned (in a list)."""
    holder: list = []
    out: list = []
    with bench.capture(holder):
        out.append(action())
        bench.sleep(quiet_s)
    return excursion(holder[0]), out


def limits_now(bench) -> list[int]:
    """ANGLE_LIMIT, LATERAL_LIMIT and FORCE_LIMIT as the table holds them (registers)."""
    return [bench.ctrl.read_holding(r)[0] for r in LIMIT_REGISTERS]


def write_limits_disabled(bench, angle_deg=None, lateral_deg=None, force_n=None, *, raw: list[int] | None = None,
                          enable: bool = True) -> None:
    """Limits are taken only while not ENABLED: de-energise, write, energise again (unless
    `enable` is False). `raw`: the three registers as `limits_now` gave them."""
    c = bench.ctrl
    c.disable()
    bench.wait(lambda s: not s.enabled, 10, "drives de-energised")
    if raw is not None:
        for reg, value in zip(LIMIT_REGISTERS, raw):
            c.write_holding(reg, value)
    else:
        c.set_limits(angle_deg, lateral_deg, force_n, testing_interlock=True)
    if enable:
        c.enable()


# ---------------------------------------------------------------- IL-TRAVEL: the bench procedure

def stand_off_neutral(bench, motion: str, stand_deg: float, speed_deg_s: float) -> object:
    """The section stopped off neutral on a motion's side (its emergency stop during the
    dwell at `stand_deg`), then RESET: where the domain file's procedure starts."""
    from verification.fd_emergency import MODE, MOVE_INDEX
    mode = MODE[motion]
    bench.configure(mode, stand_deg, speed_deg_s, pause_s=STAND_DWELL_S, rest_s=STAND_DWELL_S, cycles=1)
    bench.ctrl.start()
    dwells = MOVE_INDEX[(motion, "moving_out")] // 2 + 1  # the pause at the side: the first, or the second
    seen, last = 0, None
    deadline = time.perf_counter() + bench.travel_s(2 * stand_deg * 2, speed_deg_s) / bench.k + 2.0
    while True:
        st = bench.ctrl.status()
        if st.phase is Phase.PAUSE_AT_DEPTH and last is not Phase.PAUSE_AT_DEPTH:
            seen += 1
            if seen == dwells:
                break
        if time.perf_counter() > deadline:
            from verification.bench import BenchTimeout
            raise BenchTimeout(f"the {motion} pause at {stand_deg:g}° not reached (phase {st.phase.name})")
        last = st.phase
        time.sleep(0.0005)
    bench.ctrl.emergency_stop()
    bench.sleep(0.2)
    bench.ctrl.reset()
    return bench.ctrl.status()


@dataclass(frozen=True)
class TripTime:
    """Over-travel trip after an acknowledged ENABLE, bracketed by status reads."""

    delay_s: float  # table s (inf: never reported within the wait)
    trigger_half_s: float  # wall
    trip_half_s: float  # wall
    reads: int

    def measurement(self, req, name: str, k: float, conditions: dict, preconditions: list) -> Measurement:
        lo, hi = req.limits()
        return Measurement(name, req, self.delay_s, "s", lo, hi,
                           [UncertaintyTerm.rectangular("ENABLE's instant (write round trip) × K", self.trigger_half_s * k),
                            UncertaintyTerm.rectangular("trip instant (between two status reads) × K",
                                                        self.trip_half_s * k)],
                           conditions={**conditions, "status_reads": self.reads}, preconditions=preconditions)


def time_enable_trip(bench, wait_table_s: float) -> TripTime:
    """ENABLE written (its instant the midpoint of send and acknowledgement), then status
    reads back to back until OVERTRAVEL_TRIPPED shows; the trip bracketed as
    verification/status_watch.py states, never before the ENABLE was sent."""
    watch = StatusWatch(bench.ctrl, "overtravel_tripped")
    sent = time.perf_counter_ns()
    ack = bench.ctrl.enable()
    trigger_ns, trigger_half = (sent + ack) // 2, (ack - sent) / 2e9
    watch.until(ack + int(wait_table_s / bench.k * 1e9))
    b = watch.bracket()
    if not b.seen:
        return TripTime(float("inf"), trigger_half, 0.0, len(watch.reads))
    mid = b.midpoint_ns(sent)
    return TripTime(bench.table_s(trigger_ns, mid), trigger_half, b.half_width_s(sent), len(watch.reads))


# ---------------------------------------------------------------- IL-OBSTRUCT

#: The window around the peak (table s before, after) an obstruction's series keep: the
#: move into the obstacle, the stop, the back-off and the force falling off the load cell.
SERIES_BEFORE_S, SERIES_AFTER_S = 1.0, 1.5


@dataclass(frozen=True)
class Obstruction:
    peak: Estimate  # N, the largest force on the obstacle
    peak_s: float  # table s of the peak
    backoff: Estimate  # deg back towards neutral, OBSTRUCT_WINDOW_S after the peak
    release_s: float  # table s from the peak until below OBSTACLE_RELEASED_N (inf: never)
    release_terms: tuple[UncertaintyTerm, ...]
    met: bool  # the obstacle's gauge showed contact
    angle_at_peak: float
    # the obstacle gauge's trace around the peak (its own time base, so its own series):
    # the release is read on it, and the report draws it under the angle
    force_series: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def analyse_obstruction(t: np.ndarray, a: np.ndarray, ft: np.ndarray, ff: np.ndarray, side: int,
                        resolution_deg: float = 0.0) -> Obstruction:
    """The obstruction of one move into the obstacle: the peak force on its load cell (the
    largest raw sample: smoothing would shave it), how far the section stood back towards
    neutral `OBSTRUCT_WINDOW_S` after the peak (`side`: the sign of the obstacle's side),
    and how long the obstacle's force took to fall below OBSTACLE_RELEASED_N after it."""
    t, a, ft, ff = (np.asarray(x, float) for x in (t, a, ft, ff))
    if not len(ff):
        return Obstruction(Estimate(float("nan")), float("nan"), Estimate(float("nan")), float("inf"), (), False,
                           float("nan"))
    i = int(np.argmax(ff))
    peak_s, peak = float(ft[i]), float(ff[i])
    period = float(np.median(np.diff(ft))) if len(ft) > 1 else 0.0
    steep = float(np.max(np.abs(np.diff(ff[max(i - 2, 0):i + 3])))) if len(ff) > 1 else 0.0
    peak_est = Estimate(peak, (UncertaintyTerm.rectangular("peak between two samples (the force's step there)",
                                                           steep / 2),))
    at_peak = float(np.interp(peak_s, t, a)) if len(t) else float("nan")
    later = peak_s + OBSTRUCT_WINDOW_S
    try:
        rested = rest_angle(t, a, later - 0.1, 0.1, resolution_deg)
        back = Estimate(side * (at_peak - rested.value), (*rested.budget, *quantisation(resolution_deg,
                                                                                       "inclinometer resolution (at the peak)")))
    except ValueError:  # the trace ends before: no back-off seen
        back = Estimate(float("-inf"))
    below = crossing_below(ft, ff, OBSTACLE_RELEASED_N, peak_s)
    release = below - peak_s if math.isfinite(below) else float("inf")
    terms = (UncertaintyTerm.rectangular("two gauge samples (the peak, the crossing)", 2 * period),)
    near = (ft >= peak_s - SERIES_BEFORE_S) & (ft <= peak_s + SERIES_AFTER_S)
    return Obstruction(peak_est, peak_s, back, release, terms, bool(peak > CONTACT_N), at_peak,
                       {"t_s": ft[near], "obstacle_force_n": ff[near]})


def obstruction_measurements(spec, o: Obstruction, name: str, conditions: dict, *, gauge_terms: list,
                             angle_terms: list, backoff_deg: float, series: dict) -> list[Measurement]:
    """IL-OBSTRUCT's three quantities of one move into the obstacle. The peak is drawn on
    `series` (the angle around it); the release on the obstacle gauge's force, which the
    report draws under the angle of the same trial (it has its own sample times)."""
    req = spec.requirement("IL-OBSTRUCT")
    met = Precondition("the section met the obstacle (its load cell showed contact)", o.met,
                       f"peak {o.peak.value:.3g} N on the obstacle's gauge (contact above {CONTACT_N:g} N)")
    cond = {**conditions, "peak_at_s": o.peak_s, "angle_at_peak_deg": o.angle_at_peak, "backoff_stated_deg": backoff_deg}
    ann = {"peak_s": o.peak_s}
    lo, hi = req.limits(backoff=backoff_deg)
    out = [Measurement(name, req, o.peak.value, "N", lo, hi, [*o.peak.budget, *gauge_terms], conditions=cond,
                       annotations=ann, series=series, preconditions=[met])]
    lo, hi = req.limits("backoff", backoff=backoff_deg)
    out.append(Measurement(name, req, o.backoff.value, "deg", lo, hi, [*o.backoff.budget, *angle_terms],
                           conditions=cond, annotations=ann, quantity="backoff", preconditions=[met]))
    lo, hi = req.limits("release", backoff=backoff_deg)
    out.append(Measurement(name, req, o.release_s, "s", lo, hi, list(o.release_terms), conditions=cond,
                           annotations=ann, series=o.force_series, quantity="release", preconditions=[met]))
    return out


def gauge_terms(gauge_config, n: int = 1) -> list[UncertaintyTerm]:
    """A force reading's budget on a gauge of the rig file (calibration, resolution)."""
    cal = gauge_config.calibration
    return [UncertaintyTerm.expanded("obstacle gauge calibration", cal.expanded_uncertainty_n, cal.coverage_factor),
            UncertaintyTerm.rectangular("obstacle gauge resolution", gauge_config.resolution_n / 2.0)]


# ---------------------------------------------------------------- the time budget

def _move_s(spec, depth: float, speed: float | None = None) -> float:
    speed = speed or spec.rated_speed_deg_s
    return depth / speed + speed / 40.0  # the domain file's ACCEL (40 °/s²)


@estimates("test_fd_depth_above_limit_refused", "test_fd_limits_locked_while_enabled")
def _fd_registers(spec, params: dict, profile: str) -> float:
    il = spec.plan.interlocks
    return 4 * QUIET_S + 2 * _move_s(spec, il.angle_limit_deg / 2) + 3.0


@estimates("test_fd_start_refused")
def _fd_start(spec, params: dict, profile: str) -> float:
    il = spec.plan.interlocks
    ob = spec.plan.obstruction
    extra = {"watchdog tripped": 3 * spec.plan.watchdog_s + 1.0,
             "over-travel tripped": 4 * _move_s(spec, il.overtravel_stand_deg) + 2 * STAND_DWELL_S,
             "obstruction tripped": 2 * _move_s(spec, 30.0, min(ob.speeds_deg_s)) + 1.0,
             "over-force tripped": (min(spec.plan.emergency.forces_n) / spec.plan.distraction_rate_n_s
                                    + TRIP_WAIT_S + 4.0),  # the distraction taken up, the pull, the release
             "power loss, mains back": 1.0}
    return QUIET_S + extra.get(params.get("condition"), 0.0) + 1.0


@estimates("test_fd_fault_code_keeps_the_first_trigger")
def _fd_first_trigger(spec, params: dict, profile: str) -> float:
    return 2.0 + 1.0 + 1.0  # the latch, the second trigger, the RESET


@estimates("test_fd_reset")
def _fd_reset(spec, params: dict, profile: str) -> float:
    em = spec.plan.emergency
    return min(em.forces_n) / spec.plan.distraction_rate_n_s + 4 * _move_s(spec, em.flexion_depth_deg) + 2 * QUIET_S \
        + 5.0


@estimates("test_fd_overtravel_trip")
def _fd_overtravel(spec, params: dict, profile: str) -> float:
    il = spec.plan.interlocks
    return 4 * _move_s(spec, il.overtravel_stand_deg) + 2 * STAND_DWELL_S + TRIP_WAIT_S + 2.0


def _obstruction_s(spec, profile: str) -> float:
    ob = spec.plan.obstruction
    per = [f / spec.plan.distraction_rate_n_s + 2 * _move_s(spec, 30.0, s) + AFTER_OBSTRUCTION_S + 2.0
           for s, f in ob.cases()]
    return ob.trials_for(profile) * sum(per)


@estimates("test_fd_obstruction")
def _fd_obstruction(spec, params: dict, profile: str) -> float:
    return _obstruction_s(spec, profile)


@estimates("test_fd_obstruction_placed_by_operator")
def _fd_obstruction_by_hand(spec, params: dict, profile: str) -> float:
    return _obstruction_s(spec, profile)


__all__ = ["AFTER_OBSTRUCTION_S", "LIMIT_REGISTERS", "OBSTACLE_RELEASED_N", "Obstruction", "SERIES_AFTER_S",
           "SERIES_BEFORE_S", "STILL_DEG", "TripTime",
           "analyse_obstruction", "excursion", "gauge_terms", "limits_now", "obstruction_measurements",
           "stand_off_neutral", "still_while", "time_enable_trip", "write_limits_disabled"]
