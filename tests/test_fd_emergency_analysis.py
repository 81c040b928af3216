"""The flexion-distraction emergency-stop and obstruction analysis on synthetic traces
(verification/fd_emergency.py, verification/fd_interlock.py) and the traction pieces it
shares (verification/emergency.py, verification/release.py): known stops, creeps,
returns and releases, judged against the specification's limits. Seeded noise, no
timing asserts, no table."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from verification.bench import Capture
from verification.emergency import stats_of, with_attempts, worst_of_trials
from verification.fd_emergency import (RETURN_KEY, analyse_stop, cruise_precondition, mean_reading, move_index,
                                       return_measurement, speed_at, stop_measurements, time_into_move, trial_dwells,
                                       trial_table_s)
from verification.fd_interlock import OBSTACLE_RELEASED_N, analyse_obstruction, excursion, obstruction_measurements
from verification.measurement import Measurement, Precondition, Verdict
from verification.release import RISE_KEY, residual_release, trial_trigger_force
from verification.spec import load_spec

RATE = 500.0  # inclinometer samples per table second
NOISE = 0.001  # deg (1 σ), a MEMS inclinometer's


@pytest.fixture(scope="module")
def spec():
    return load_spec("flexion-distraction")


def stop_trace(speed=20.0, decel=400.0, reaction=0.01, creep=0.0, at=10.0, before=0.5, after=6.0, seed=1,
               never_stops=False):
    """The section cruising at `speed`, the trigger at t = 0, a reaction, a constant
    deceleration to rest, then held (or creeping at `creep` deg/s)."""
    rng = np.random.default_rng(seed)
    t = np.arange(-before, after, 1 / RATE)
    a = np.empty_like(t)
    stop_t = reaction + speed / decel
    travel = speed * reaction + speed ** 2 / (2 * decel)
    for i, x in enumerate(t):
        if x <= reaction or never_stops:
            a[i] = at + speed * x
        elif x <= stop_t:
            d = x - reaction
            a[i] = at + speed * reaction + speed * d - decel * d * d / 2
        else:
            a[i] = at + travel + creep * (x - stop_t)
    return t, a + rng.normal(0, NOISE, len(t)), stop_t, travel


def judge(spec, a, speed=20.0):
    return stop_measurements(spec, a, "trial", {}, timing=[], angle=[],
                             cruise=cruise_precondition(a.speed, speed))


def test_a_known_stop_is_found_within_its_uncertainty(spec):
    t, a, stop_t, travel = stop_trace()
    r = analyse_stop(t, a, at_rest_deg_s=0.5, hold_window_s=5.0, resolution_deg=0.001)
    assert abs(r.speed.value - 20.0) < 0.2
    assert abs(r.time.value - stop_t) <= r.time.expanded() + 0.01
    assert abs(r.travel.value - travel) <= r.travel.expanded() + 0.01
    assert r.hold.value < 0.01
    assert r.hold_window_s == pytest.approx(5.0)
    time_m, travel_m, hold_m = judge(spec, r)
    assert [m.verdict for m in (time_m, travel_m, hold_m)] == [Verdict.PASS] * 3
    assert (time_m.requirement.id, travel_m.requirement.id, hold_m.requirement.id) == ("ES-TIME", "ES-TRAVEL",
                                                                                        "ES-HOLD")


def test_a_stop_that_overruns_fails_travel_and_time(spec):
    t, a, stop_t, travel = stop_trace(decel=100.0, reaction=0.05)  # 0.25 s, 3 deg
    r = analyse_stop(t, a, at_rest_deg_s=0.5, hold_window_s=5.0)
    time_m, travel_m, _ = judge(spec, r)
    assert time_m.verdict is Verdict.FAIL and travel_m.verdict is Verdict.FAIL
    assert travel_m.value == pytest.approx(travel, abs=0.05)


def test_a_section_that_never_stops_is_a_fail_not_na_and_its_hold_is_na(spec):
    t, a, _, _ = stop_trace(never_stops=True, after=2.0)
    r = analyse_stop(t, a, at_rest_deg_s=0.5, hold_window_s=5.0)
    assert math.isinf(r.time.value) and math.isinf(r.travel.value)
    time_m, travel_m, hold_m = judge(spec, r)
    assert [m.verdict for m in (time_m, travel_m)] == [Verdict.FAIL] * 2
    # a hold follows a stop: without one it is ES-TIME's finding, said so
    assert hold_m.verdict is Verdict.NOT_APPLICABLE and "ES-TIME" in hold_m.not_applicable


def test_a_creeping_brake_fails_the_hold_only(spec):
    t, a, _, _ = stop_trace(creep=0.06)  # 0.3 deg over the 5 s window
    r = analyse_stop(t, a, at_rest_deg_s=0.5, hold_window_s=5.0)
    time_m, travel_m, hold_m = judge(spec, r)
    assert time_m.verdict is Verdict.PASS and travel_m.verdict is Verdict.PASS
    assert hold_m.verdict is Verdict.FAIL
    assert r.hold_rate.value == pytest.approx(0.06, rel=0.1)


def test_a_trial_struck_off_cruise_is_na_for_time_and_travel_but_the_hold_is_judged(spec):
    t, a, _, _ = stop_trace(speed=5.0, creep=0.06)
    r = analyse_stop(t, a, at_rest_deg_s=0.5, hold_window_s=5.0)
    time_m, travel_m, hold_m = judge(spec, r, speed=20.0)
    assert time_m.verdict is Verdict.NOT_APPLICABLE and travel_m.verdict is Verdict.NOT_APPLICABLE
    assert "SPEED 20" in time_m.not_applicable
    assert hold_m.verdict is Verdict.FAIL


def test_speed_at_the_trigger_leaves_out_the_uncertain_samples():
    t, a, _, _ = stop_trace(reaction=0.0)
    # samples right after t = 0 already decelerate; 0.02 s either side are left out
    assert speed_at(t, a, 0.0, 0.02).value == pytest.approx(20.0, abs=0.3)


def test_return_after_reset(spec):
    rest = mean_reading([10.0, 10.001, 9.999], 0.001)
    still = return_measurement(spec, rest, mean_reading([10.0, 10.0, 10.001], 0.001), "r", {}, [])
    back = return_measurement(spec, rest, mean_reading([7.5, 7.5, 7.5], 0.001), "r", {}, [])
    assert still.quantity == RETURN_KEY and still.verdict is Verdict.PASS
    assert back.verdict is Verdict.FAIL and back.value == pytest.approx(2.5, abs=0.01)
    na = return_measurement(spec, rest, mean_reading([7.5] * 3, 0.001), "r", {},
                            [Precondition("RESET accepted", False, "refused")])
    assert na.verdict is Verdict.NOT_APPLICABLE


def test_time_into_a_trapezoidal_move():
    # 20 deg at 20 deg/s, 40 deg/s²: 0.5 s and 5 deg of ramp, cruise from 5 to 15 deg
    assert time_into_move(0.5, 20, 20, 40) == pytest.approx(0.75)
    assert time_into_move(0.1, 20, 20, 40) == pytest.approx(math.sqrt(2 * 2 / 40))
    # triangular: 4 deg never reaches 20 deg/s; half way at sqrt(depth / accel)
    assert time_into_move(0.5, 4, 20, 40) == pytest.approx(math.sqrt(4 / 40))


def test_which_move_a_trigger_strikes_and_the_watchdogs_dwell(spec):
    assert move_index("estop_coil", "flexion", "moving_out") == 0
    assert move_index("estop_coil", "lateral_right", "moving_back") == 3
    # the watchdog needs a dwell before the move: a first move is struck one cycle later
    assert move_index("watchdog", "flexion", "moving_out") == 2
    assert move_index("watchdog", "lateral_left", "moving_out") == 4
    assert move_index("watchdog", "lateral_right", "moving_out") == 2
    pause, rest = trial_dwells(spec, "watchdog", "flexion", "moving_back", 20, 20, 40)
    assert pause + time_into_move(0.5, 20, 20, 40) > spec.plan.watchdog_s and rest < 1
    pause, rest = trial_dwells(spec, "watchdog", "flexion", "moving_out", 20, 20, 40)
    assert rest > pause
    assert trial_dwells(spec, "estop_coil", "flexion", "moving_out", 20, 20, 40) == (0.2, 0.2)
    assert trial_table_s(spec, "watchdog", "flexion", "moving_out", 50) > trial_table_s(
        spec, "estop_coil", "flexion", "moving_out", 50)


def test_stats_with_sd_and_the_traction_keys_unchanged():
    plain = stats_of([1.0, 2.0, 3.0])
    assert set(plain) == {"trials", "max", "min", "mean", "p95", "never_reached"}
    spread = stats_of([1.0, 2.0, 3.0, float("inf")], sd=True)
    assert spread["sd"] == pytest.approx(1.0) and spread["never_reached"] == 1 and spread["max"] == math.inf


def test_worst_of_trials(spec):
    req = spec.requirement("ES-TIME")
    ms = [Measurement(f"t{i}", req, v, "s", None, 0.2) for i, v in enumerate([0.05, 0.25, 0.07])]
    s = worst_of_trials("estop_coil", req, ms, sd=True)
    assert s.value == 0.25 and s.verdict is Verdict.FAIL and s.conditions["sd"] > 0 and s.conditions["summary"]
    na = [Measurement("t", req, 0.05, "s", None, 0.2, preconditions=[Precondition("x", False, "no")])]
    assert worst_of_trials("estop_coil", req, na).verdict is Verdict.NOT_APPLICABLE
    latch = spec.requirement("ES-LATCH")
    s = worst_of_trials("watchdog", latch, [Measurement("a", latch, True), Measurement("b", latch, False)])
    assert s.verdict is Verdict.FAIL and s.conditions["failed"] == 1


def test_with_attempts_repeats_while_a_reason_is_named():
    runs, told = iter([1, 2, 3, 4]), []
    assert with_attempts(lambda: next(runs), lambda n: "loose" if n < 2 else "", told.append) == 2
    assert told == ["loose"]
    runs = iter([1, 2, 3, 4])
    assert with_attempts(lambda: next(runs), lambda n: "always", told.append, attempts=3) == 3


def _force_capture(f0=250.0, fall_s=0.2, rise=0.0, seed=2):
    rng = np.random.default_rng(seed)
    t = np.arange(-0.5, 4.0, 0.001)
    f = np.where(t < 0, f0, np.maximum(f0 * (1 - t / fall_s), 0.5))
    f = f + np.where((t > 0) & (t < 0.02), rise, 0.0) + rng.normal(0, 0.05, len(t))
    cap = Capture(t, f, SimpleNamespace(time_base="instrument"), 0)
    cap.mapping_half_width_s = 0.0
    return cap


def _bench():
    gauge = SimpleNamespace(resolution_n=0.01, calibration=SimpleNamespace(expanded_uncertainty_n=0.5,
                                                                            coverage_factor=2.0))
    return SimpleNamespace(k=10.0, rig=SimpleNamespace(config=SimpleNamespace(gauge=gauge)))


@pytest.mark.parametrize("rise, verdict", [(0.0, Verdict.PASS), (20.0, Verdict.FAIL)])
def test_es_release_as_traction(spec, rise, verdict):
    cap = _force_capture(rise=rise)
    at = trial_trigger_force(cap, 1e-4, 10.0)
    below, risen = residual_release(spec, _bench(), cap, at, 1e-4, "trial", {}, "ES-RELEASE", fastest_n_s=100.0,
                                    timing=[])
    assert below.requirement.id == "ES-RELEASE" and below.quantity is None
    assert below.value == pytest.approx(0.2 * (1 - 10 / 250), abs=0.005) and below.verdict is Verdict.PASS
    assert risen.quantity == RISE_KEY and risen.verdict is verdict


def obstruction_trace(peak=90.0, backoff=2.0, seed=3):
    """The section meets the obstacle at 10 deg at 5 deg/s, the force climbing to `peak`,
    stops and backs off `backoff` deg at once, the force falling to 0 as it leaves."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 4.0, 1 / RATE)
    stiffness = 50.0
    meet, press = 1.0, peak / stiffness
    hit = meet + press / 5.0
    a = np.where(t < meet, 10.0 - 5.0 * (meet - t), 10.0)
    a = np.where((t >= meet) & (t < hit), 10.0 + 5.0 * (t - meet), a)
    a = np.where(t >= hit, 10.0 + press - np.minimum((t - hit) * 10.0, backoff), a)
    f = np.clip((a - 10.0) * stiffness, 0.0, None)
    return t, a + rng.normal(0, NOISE, len(t)), t, f + rng.normal(0, 0.05, len(t))


def test_an_obstruction_within_the_limits(spec):
    t, a, ft, ff = obstruction_trace()
    o = analyse_obstruction(t, a, ft, ff, side=1, resolution_deg=0.001)
    assert o.met and o.peak.value == pytest.approx(90.0, abs=1.0)
    assert o.backoff.value == pytest.approx(2.0, abs=0.02)
    assert 0 < o.release_s < 1.0
    ms = obstruction_measurements(spec, o, "o", {}, gauge_terms=[], angle_terms=[], backoff_deg=2.0, series={})
    assert [m.quantity for m in ms] == [None, "backoff", "release"]
    assert all(m.verdict is Verdict.PASS for m in ms)


def test_an_obstruction_pressed_too_hard_and_not_backed_off(spec):
    t, a, ft, ff = obstruction_trace(peak=200.0, backoff=0.5)
    o = analyse_obstruction(t, a, ft, ff, side=1)
    ms = obstruction_measurements(spec, o, "o", {}, gauge_terms=[], angle_terms=[], backoff_deg=2.0, series={})
    assert ms[0].verdict is Verdict.FAIL and ms[1].verdict is Verdict.FAIL


def test_no_contact_is_na_and_the_release_level_is_the_domain_files():
    assert OBSTACLE_RELEASED_N == 10.0
    t = np.arange(0.0, 2.0, 0.002)
    o = analyse_obstruction(t, np.zeros_like(t), t, np.zeros_like(t), side=1)
    assert not o.met


def test_excursion_of_a_still_and_a_moved_section():
    t = np.arange(0.0, 1.0, 0.002)
    still = SimpleNamespace(t=t, x=np.full_like(t, 3.0), y=np.zeros_like(t))
    moved = SimpleNamespace(t=t, x=3.0 + 0.5 * t, y=np.zeros_like(t))
    assert excursion(still) == pytest.approx(0.0)
    assert excursion(moved) == pytest.approx(0.5, abs=0.01)
