"""verification/kinematics.py on synthetic inclinometer traces: trapezoidal moves as FDC-1
makes them, sampled at 100 Hz with seeded noise and a MEMS inclinometer's quantisation.
Each analysis finds the nominal figures within its own stated uncertainty, and each
catches the defect it is there for: a stop that overruns by 0.5°, one side of lateral
flexion short, a brake that creeps, a slow cruise, an overshooting speed, a long pause,
a missing cycle, a slow emergency stop."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from verification import kinematics as kin
from verification.measurement import expanded_uncertainty

RATE_HZ = 100.0
NOISE_DEG = 0.004  # MEMS inclinometer noise (σ)
RESOLUTION_DEG = 0.0035  # Murata SCA100T-class count
ACCEL = 40.0  # FDC-1 ACCEL of the emulated table (deg/s²)


# ---------------------------------------------------------------- synthetic traces

def move_shape(d: float, v: float, acc: float):
    """(duration, pos(τ)) of a trapezoidal move by d degrees (triangular when short)."""
    size, sign = abs(d), 1.0 if d >= 0 else -1.0
    if size < v * v / acc:
        vp = (size * acc) ** 0.5
        ta, tc = vp / acc, 0.0
    else:
        vp, ta = v, v / acc
        tc = (size - v * ta) / v
    total = 2 * ta + tc

    def pos(tau):
        tau = np.clip(tau, 0, total)
        x = np.where(tau < ta, 0.5 * acc * tau ** 2,
                     np.where(tau < ta + tc, 0.5 * acc * ta ** 2 + vp * (tau - ta), size - 0.5 * acc * (total - tau) ** 2))
        return sign * x

    return total, pos


@dataclass
class Trace:
    """A piecewise trajectory built step by step; the truth of each step kept."""

    t_now: float = 0.0
    angle: float = 0.0
    pieces: list = field(default_factory=list)  # (t0, t1, f(t) -> angle)
    move_ends: list = field(default_factory=list)  # (t, angle) where each move came to rest
    move_starts: list = field(default_factory=list)

    def dwell(self, seconds: float, creep_deg_s: float = 0.0) -> "Trace":
        t0, a0 = self.t_now, self.angle
        self.pieces.append((t0, t0 + seconds, lambda t: a0 + creep_deg_s * (t - t0)))
        self.t_now += seconds
        self.angle += creep_deg_s * seconds
        return self

    def move(self, to: float, speed: float, accel: float = ACCEL, overshoot_deg_s: float = 0.0) -> "Trace":
        t0, a0 = self.t_now, self.angle
        total, pos = move_shape(to - a0, speed, accel)
        if overshoot_deg_s:  # a speed loop that overshoots after the acceleration, for 0.3 s
            ta, sign = speed / accel, 1.0 if to >= a0 else -1.0
            base = pos

            def pos(tau, base=base, ta=ta, sign=sign):  # noqa: F811 — the overshoot on top
                bump = np.clip(tau - ta, 0, 0.3)
                extra = overshoot_deg_s * (bump - np.clip(tau - total + ta + 0.3, 0, 0.3))
                return base(tau) + sign * extra
        self.move_starts.append((t0, a0))
        self.pieces.append((t0, t0 + total, lambda t: a0 + pos(t - t0)))
        self.t_now += total
        self.angle = to
        self.move_ends.append((self.t_now, to))
        return self

    def emergency(self, to: float, speed: float, at_fraction: float, decel: float) -> float:
        """A move towards `to` stopped at `at_fraction` of its travel by a deceleration
        `decel`; returns the trigger instant (the section then rests)."""
        t0, a0 = self.t_now, self.angle
        total, pos = move_shape(to - a0, speed, ACCEL)
        taus = np.linspace(0, total, 20001)
        xs = np.abs(pos(taus))
        tau_trig = float(taus[np.searchsorted(xs, at_fraction * abs(to - a0))])
        v_trig = float(np.gradient(pos(taus), taus)[np.searchsorted(taus, tau_trig)])
        stop_s = abs(v_trig) / decel
        a_trig = a0 + float(pos(np.array(tau_trig)))

        def f(t, t0=t0, tau_trig=tau_trig, a_trig=a_trig, v=v_trig, stop_s=stop_s):
            tau = t - t0
            d = np.clip(tau - tau_trig, 0, stop_s)
            return np.where(tau < tau_trig, a0 + pos(tau), a_trig + v * d - np.sign(v) * 0.5 * decel * d ** 2)

        end = t0 + tau_trig + stop_s
        self.pieces.append((t0, end, f))
        self.angle = float(f(np.array(end)))
        self.t_now = end
        return t0 + tau_trig

    def sample(self, seed: int, noise: float = NOISE_DEG, resolution: float = RESOLUTION_DEG, tail_s: float = 0.0):
        rng = np.random.default_rng(seed)
        t = np.arange(0.0, self.t_now + tail_s, 1 / RATE_HZ) + rng.uniform(0, 1 / RATE_HZ)
        a = np.full_like(t, self.angle)
        for t0, t1, f in self.pieces:
            sel = (t >= t0) & (t < t1)
            a[sel] = f(t[sel])
        a = a + rng.normal(0, noise, len(t))
        if resolution:
            a = np.round(a / resolution) * resolution
        return t, a


def flexion(depth: float, speed: float, pause: float, rest: float, cycles: int, *, lead: float = 1.0,
            end_error: float = 0.0, pause_error: float = 0.0) -> Trace:
    tr = Trace().dwell(lead)
    for _ in range(cycles):
        tr.move(depth + end_error, speed).dwell(pause + pause_error).move(0.0, speed).dwell(rest)
    return tr.dwell(lead)


def lateral(depth: float, speed: float, pause: float, rest: float, cycles: int, *, right_short: float = 0.0) -> Trace:
    tr = Trace().dwell(1.0)
    for _ in range(cycles):
        tr.move(depth, speed).dwell(pause).move(0.0, speed).dwell(rest)
        tr.move(-(depth - right_short), speed).dwell(pause).move(0.0, speed).dwell(rest)
    return tr.dwell(1.0)


def U(e: kin.Estimate) -> float:
    return expanded_uncertainty(list(e.budget))


def within(e: kin.Estimate, truth: float, floor: float = 0.0) -> bool:
    """The truth lies within three standard uncertainties of the estimate (1.5 × U at
    k = 2: a fixed seed must not fail on the 5 % a k = 2 interval leaves out), plus a
    floor for a bias the analysis states it does not budget."""
    return abs(e.value - truth) <= 1.5 * U(e) + floor


SEEDS = (1, 2, 3)


# ---------------------------------------------------------------- segmentation, end angles (FD-DEPTH, FD-NEUTRAL)

@pytest.mark.parametrize("seed", SEEDS)
def test_moves_and_dwells_of_a_flexion_treatment(seed):
    tr = flexion(10.0, 20.0, pause=2.0, rest=1.0, cycles=3)
    t, a = tr.sample(seed)
    seg = kin.segment(t, a, still_deg_s=2.0, resolution_deg=RESOLUTION_DEG)
    assert len(seg.moves) == 6 and len(seg.dwells) == 7
    assert [m.direction for m in seg.moves] == [1, -1] * 3
    for k, (_, truth) in enumerate(tr.move_ends):
        end = seg.end_angle(k)
        assert within(end, truth), (k, end.value, truth, U(end))
        assert U(end) < 0.5 / 4  # a test uncertainty ratio of 4 against FD-DEPTH's 0.5°
    assert kin.cycle_count(seg, "flexion") == 3


@pytest.mark.parametrize("seed", SEEDS)
def test_a_move_that_overruns_its_depth_by_half_a_degree_is_seen(seed):
    nominal = kin.segment(*flexion(3.0, 20.0, 1.0, 1.0, 1).sample(seed), still_deg_s=2.0, resolution_deg=RESOLUTION_DEG)
    over = kin.segment(*flexion(3.0, 20.0, 1.0, 1.0, 1, end_error=0.5).sample(seed), still_deg_s=2.0,
                       resolution_deg=RESOLUTION_DEG)
    error_nominal = nominal.end_angle(0).value - 3.0
    error_over = over.end_angle(0)
    assert abs(error_nominal) < 0.02
    assert error_over.value - 3.0 == pytest.approx(0.5, abs=0.02)
    # FD-DEPTH at 3°: limit max(0.5°, 5 %) = 0.5°; a 0.6° overrun is outside even with U subtracted
    worse = kin.segment(*flexion(3.0, 20.0, 1.0, 1.0, 1, end_error=0.6).sample(seed), still_deg_s=2.0,
                        resolution_deg=RESOLUTION_DEG).end_angle(0)
    assert worse.value - 3.0 - U(worse) > 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_one_side_of_lateral_flexion_short(seed):
    good = kin.segment(*lateral(15.0, 20.0, 1.0, 0.5, 2).sample(seed), still_deg_s=2.0, resolution_deg=RESOLUTION_DEG)
    short = kin.segment(*lateral(15.0, 20.0, 1.0, 0.5, 2, right_short=1.5).sample(seed), still_deg_s=2.0,
                        resolution_deg=RESOLUTION_DEG)
    for seg, right in ((good, -15.0), (short, -13.5)):
        ends = [seg.end_angle(k) for k in range(len(seg.moves))]
        assert len(ends) == 8
        lefts, rights = ends[0::4], ends[2::4]
        assert all(within(e, 15.0) for e in lefts)
        assert all(within(e, right) for e in rights), [e.value for e in rights]
        neutral = ends[1::2]
        assert all(abs(e.value) < 0.02 for e in neutral)  # FD-NEUTRAL
        assert kin.cycle_count(seg, "lateral") == 2
    # FD-DEPTH at 15°: 0.75° limit; 1.5° short is outside it, beyond the uncertainty
    worst = min(short.end_angle(k).value for k in range(2, 8, 4))
    assert abs(worst - (-15.0)) > 0.75 + 0.1


def test_the_slowest_speed_segments_with_a_low_threshold():
    tr = flexion(1.0, 0.1, pause=1.0, rest=1.0, cycles=1, lead=2.0)
    t, a = tr.sample(7)
    seg = kin.segment(t, a, still_deg_s=0.03, smooth_s=0.5, resolution_deg=RESOLUTION_DEG)
    assert len(seg.moves) == 2
    speed = kin.cruise_speed(seg.moves[0])
    assert within(speed, 0.1) and U(speed) < 0.01 / 4  # FD-SPEED's 10 % at 0.1 °/s, with a TUR of 4
    assert within(seg.end_angle(0), 1.0) and within(seg.end_angle(1), 0.0)
    (kind, pause), = kin.dwell_durations(seg)
    assert kind == "pause" and within(pause, 1.0, floor=0.05)


# ---------------------------------------------------------------- speed (FD-SPEED)

@pytest.mark.parametrize("seed", SEEDS)
def test_cruise_speed_is_the_fitted_slope_and_a_slow_drive_is_caught(seed):
    nominal = kin.segment(*flexion(20.0, 20.0, 1.0, 1.0, 1).sample(seed), still_deg_s=2.0)
    slow = kin.segment(*flexion(20.0, 17.0, 1.0, 1.0, 1).sample(seed), still_deg_s=2.0)
    out, back = (kin.cruise_speed(m) for m in nominal.moves)
    assert within(out, 20.0) and within(back, -20.0)
    assert U(out) < 2.0 / 4
    caught = kin.cruise_speed(slow.moves[0])
    assert abs(caught.value - 20.0) - U(caught) > 0.10 * 20.0  # FD-SPEED: outside ±10 %


@pytest.mark.parametrize("seed", SEEDS)
def test_peak_speed_sees_an_overshoot_the_cruise_slope_hides(seed):
    tr = Trace().dwell(1.0).move(20.0, 20.0, overshoot_deg_s=2.0).dwell(1.0)
    t, a = tr.sample(seed)
    seg = kin.segment(t, a, still_deg_s=2.0)
    peak = kin.peak_speed(t, a, seg.moves[0])
    assert peak.value == pytest.approx(22.0, abs=0.3)
    assert peak.value - U(peak) > 20.0 + 0.02 * 20.0  # FD-SPEED.above-rated: caught
    plain = Trace().dwell(1.0).move(20.0, 20.0).dwell(1.0)
    t, a = plain.sample(seed)
    calm = kin.peak_speed(t, a, kin.segment(t, a, still_deg_s=2.0).moves[0])
    assert calm.value + U(calm) < 20.0 + 0.02 * 20.0


# ---------------------------------------------------------------- pause and rest (FD-TIMING)

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pause, rest", [(2.0, 1.0), (4.0, 0.5), (0.0, 1.0), (1.0, 0.0)])
def test_pause_and_rest_durations_from_the_dwell_boundaries(seed, pause, rest):
    tr = flexion(10.0, 20.0, pause, rest, cycles=2)
    t, a = tr.sample(seed)
    seg = kin.segment(t, a, still_deg_s=2.0, resolution_deg=RESOLUTION_DEG)
    found = kin.dwell_durations(seg)
    assert [k for k, _ in found] == ["pause", "rest", "pause"]
    for kind, d in found:
        truth = pause if kind == "pause" else rest
        assert abs(d.value - truth) <= max(U(d), 0.02) + 0.02, (kind, d.value, truth, U(d))
        assert U(d) < 0.2 / 4  # FD-TIMING's 0.2 s floor, a TUR of 4
    assert kin.cycle_count(seg, "flexion") == 2


@pytest.mark.parametrize("seed", SEEDS)
def test_a_pause_a_quarter_second_long_is_caught(seed):
    tr = flexion(10.0, 20.0, 2.0, 1.0, 1, pause_error=0.25)
    seg = kin.segment(*tr.sample(seed), still_deg_s=2.0)
    (kind, pause), = kin.dwell_durations(seg)
    assert kind == "pause"
    assert abs(pause.value - 2.0) - U(pause) > max(0.01 * 2.0, 0.2)  # FD-TIMING: outside ±0.2 s


def test_lateral_without_rest_passes_through_neutral():
    """REST_TIME 0 in lateral flexion: the section stops at neutral and goes on to the other
    side in the same direction: a dwell of about 0 s, not one long move."""
    tr = lateral(8.0, 10.0, pause=1.0, rest=0.0, cycles=1)
    t, a = tr.sample(11)
    seg = kin.segment(t, a, still_deg_s=1.0)
    assert len(seg.moves) == 4
    kinds = kin.dwell_durations(seg)
    assert [k for k, _ in kinds] == ["pause", "rest", "pause"]
    assert abs(kinds[1][1].value) < 0.05
    assert kin.cycle_count(seg, "lateral") == 1


def test_a_missing_cycle_is_counted():
    three = kin.segment(*flexion(6.0, 12.0, 0.5, 0.5, 3).sample(5), still_deg_s=1.0)
    two = kin.segment(*flexion(6.0, 12.0, 0.5, 0.5, 2).sample(5), still_deg_s=1.0)
    assert kin.cycle_count(three, "flexion") == 3 and kin.cycle_count(two, "flexion") == 2
    half = Trace().dwell(1.0).move(6.0, 12.0).dwell(1.0)  # out and never back: not a cycle
    assert kin.cycle_count(kin.segment(*half.sample(5), still_deg_s=1.0), "flexion") == 0
    one_side = Trace().dwell(1.0).move(8.0, 10.0).dwell(0.5).move(0.0, 10.0).dwell(1.0)  # lateral, left only
    assert kin.cycle_count(kin.segment(*one_side.sample(5), still_deg_s=1.0), "lateral") == 0


# ---------------------------------------------------------------- an emergency stop (ES-TIME, ES-TRAVEL, ES-HOLD)

def stop_trace(decel: float, seed: int, overrun: float = 0.0, creep: float = 0.0):
    tr = Trace().dwell(1.0)
    trigger = tr.emergency(20.0, 20.0, 0.5, decel)
    if overrun:
        tr.move(tr.angle + overrun, 5.0, accel=200.0)
    rest_at = tr.t_now
    tr.dwell(6.0, creep_deg_s=creep)
    t, a = tr.sample(seed)
    return t, a, trigger, rest_at


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decel", [400.0, 100.0])
def test_stop_time_and_travel(seed, decel):
    t, a, trigger, rest_at = stop_trace(decel, seed)
    s = kin.stop(t, a, trigger, resolution_deg=RESOLUTION_DEG, trigger_half_width_s=0.001)
    # at rest when the speed falls below 0.5 °/s: 0.5/decel before it stops
    assert within(s.time, rest_at - trigger - 0.5 / decel)
    assert within(s.travel, 20.0 ** 2 / (2 * decel))  # v²/2a
    assert U(s.travel) < 1.5 / 4 and U(s.time) < 0.2 / 4


@pytest.mark.parametrize("seed", SEEDS)
def test_a_stop_that_overruns_by_half_a_degree_and_a_slow_one(seed):
    nominal = kin.stop(*stop_trace(400.0, seed)[:3])
    over = kin.stop(*stop_trace(400.0, seed, overrun=0.5)[:3])
    assert over.travel.value - nominal.travel.value == pytest.approx(0.5, abs=0.05)
    assert over.travel.value - U(over.travel) > nominal.travel.value + U(nominal.travel)
    slow = kin.stop(*stop_trace(50.0, seed)[:3])  # 0.4 s, 4° from 20 °/s
    assert slow.time.value - U(slow.time) > 0.2  # ES-TIME caught
    assert slow.travel.value - U(slow.travel) > 1.5  # ES-TRAVEL caught


@pytest.mark.parametrize("seed", SEEDS)
def test_a_creeping_brake_is_caught_over_the_hold_window(seed):
    t, a, trigger, rest_at = stop_trace(400.0, seed)
    held = kin.drift(t, a, rest_at + 0.1, 5.0, resolution_deg=RESOLUTION_DEG)
    assert held.excursion.value + U(held.excursion) < 0.2 / 2  # ES-HOLD passes with room
    assert within(held.rate, 0.0)
    t, a, trigger, rest_at = stop_trace(400.0, seed, creep=0.06)  # 0.3° in 5 s
    creeping = kin.drift(t, a, rest_at + 0.1, 5.0, resolution_deg=RESOLUTION_DEG)
    assert creeping.excursion.value - U(creeping.excursion) > 0.2  # ES-HOLD caught
    assert creeping.rate.value == pytest.approx(0.06, abs=0.005)


def test_the_angle_at_a_trigger_does_not_lag_a_moving_section():
    tr = Trace().dwell(1.0).move(20.0, 20.0).dwell(1.0)
    t, a = tr.sample(3, noise=0.0, resolution=0.0)
    instant = 1.0 + 0.5 + 0.25  # in the cruise: 5° + 5° = 10° at 20 °/s
    at = kin.angle_at(t, a, instant, half_width_s=0.001)
    assert at.value == pytest.approx(10.0, abs=1e-6)
    assert U(at) == pytest.approx(2 * 20.0 * 0.001 / 3 ** 0.5, rel=0.01)  # the instant's half-width at 20 °/s


def test_estimates_feed_a_measurement():
    from verification.measurement import Measurement, Verdict
    from verification.spec import load_spec

    spec = load_spec("flexion-distraction")
    s = kin.stop(*stop_trace(400.0, 1)[:3], resolution_deg=RESOLUTION_DEG)
    req = spec.requirement("ES-TRAVEL")
    m = Measurement("stop travel", req, s.travel.value, "deg", *req.limits(), budget=list(s.travel.budget))
    assert m.verdict == Verdict.PASS and m.tur > 4


def test_too_short_a_trace_is_one_clear_error():
    with pytest.raises(ValueError, match="too few"):
        kin.segment(np.arange(5.0), np.zeros(5), still_deg_s=1.0)
