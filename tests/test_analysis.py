"""Signal analysis on synthetic, seeded gauge traces whose true answers are known:
ramp slopes, the settled tail, crossings, release shape, plateaus with their corners."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verification import analysis as a


def trace(points: list[tuple[float, float]], rate_hz: float, noise_n: float, seed: int):
    """A piecewise-linear force profile through (t, F) corners, sampled, with gaussian noise."""
    tp, fp = np.array(points, dtype=float).T
    t = np.arange(tp[0], tp[-1], 1.0 / rate_hz)
    rng = np.random.default_rng(seed)
    return t, np.interp(t, tp, fp) + rng.normal(0.0, noise_n, t.size)


# ---------------------------------------------------------------- ramps
@pytest.mark.parametrize("rate, noise, seed", [(25.0, 0.3, 1), (10.0, 0.5, 2), (50.0, 0.05, 3), (3.0, 0.3, 4)])
def test_ramp_fit_recovers_slope_with_noise(rate, noise, seed):
    end = 200.0
    ramp_s = end / rate
    t, f = trace([(0, 0), (1, 0), (1 + ramp_s, end), (3 + ramp_s, end)], 500.0, noise, seed)
    fit = a.ramp_fit(t, f, 0.0, end)
    assert fit.slope == pytest.approx(rate, rel=0.005)
    assert fit.slope_std < 0.005 * rate
    assert fit.residual_std == pytest.approx(noise, rel=0.15)
    # the 20 … 80 % part of the ramp: 60 % of its samples
    assert fit.n == pytest.approx(0.6 * ramp_s * 500.0, rel=0.03)
    # the fitted line puts the ramp's start where it was (1 s)
    assert fit.time_at(0.0) == pytest.approx(1.0, abs=0.02)


def test_ramp_fit_regressive_ramp():
    t, f = trace([(0, 300), (2, 300), (12, 50), (14, 50)], 500.0, 0.3, 5)
    fit = a.ramp_fit(t, f, 300.0, 50.0)
    assert fit.slope == pytest.approx(-25.0, rel=0.005)


def test_ramp_fit_takes_the_first_pass_through_the_band_only():
    # up at 20 N/s, hold, down at 50 N/s through the same band: the up ramp is measured
    t, f = trace([(0, 0), (10, 200), (15, 200), (19, 0), (20, 0)], 500.0, 0.2, 6)
    assert a.ramp_fit(t, f, 0.0, 200.0).slope == pytest.approx(20.0, rel=0.005)


def test_ramp_fit_without_a_ramp_is_nan():
    t = np.linspace(0, 1, 100)
    fit = a.ramp_fit(t, np.full_like(t, 5.0), 0.0, 200.0)
    assert math.isnan(fit.slope) and fit.n == 0


def test_fit_line_exact():
    t = np.linspace(0, 2, 50)
    fit = a.fit_line(t, 3.0 * t - 1.0)
    assert fit.slope == pytest.approx(3.0) and fit.intercept == pytest.approx(-1.0)
    assert fit.time_at(5.0) == pytest.approx(2.0)
    assert fit.residual_std == pytest.approx(0.0, abs=1e-9)


# ---------------------------------------------------------------- settled tail
def test_settled_slice_finds_the_flat_tail_after_a_ramp():
    rate, corner, noise = 50.0, 4.0, 0.2
    t, f = trace([(0, 0), (corner, 200), (12, 200)], 500.0, noise, 7)
    sl = a.settled_slice(t, f)
    start = t[sl.start]
    # the tail starts where the ramp enters the ±4σ band (≈ 0.8 N below 200 N: 16 ms early)
    assert corner - 4 * 4 * noise / rate <= start <= corner + 0.05
    assert sl.stop == len(f)
    assert float(np.mean(f[sl])) == pytest.approx(200.0, abs=0.05)
    assert not np.any(f[sl] < 190.0)  # nothing of the ramp


def test_settled_slice_minimum_band_and_short_traces():
    # noiseless: the band is the 0.3 N floor, the tail starts within 0.3 N of the level
    t, f = trace([(0, 0), (2, 100), (5, 100)], 100.0, 0.0, 0)
    sl = a.settled_slice(t, f)
    assert t[sl.start] == pytest.approx(2.0 - 0.3 / 50.0, abs=0.011)
    # too few samples: the whole trace
    assert a.settled_slice(t[:10], f[:10]) == slice(0, 10)
    # whatever the trace, the slice is a tail of at least min_samples
    ramp = np.linspace(0, 100, 200)
    sl = a.settled_slice(np.arange(200.0), ramp, min_samples=20)
    assert sl.stop == 200 and sl.stop - sl.start >= 20


# ---------------------------------------------------------------- crossings
def test_crossing_below_interpolates_exactly_on_a_linear_fall():
    t = np.arange(0.0, 10.0, 0.1)
    f = 100.0 - 10.0 * t
    assert a.crossing_below(t, f, 55.0) == pytest.approx(4.5, abs=1e-9)  # on a sample
    assert a.crossing_below(t, f, 54.7) == pytest.approx(4.53, abs=1e-9)  # between samples
    assert a.crossing_below(t, f, 99.99) == pytest.approx(0.001, abs=1e-9)
    assert a.crossing_below(t, f, -50.0) == math.inf  # never
    assert a.crossing_below(t, f, 200.0) == 0.0  # below from the start: the first sample


def test_crossing_below_after_an_instant():
    # falls, rises again, falls again: `after` picks the second fall
    t = np.arange(0.0, 6.0, 0.01)
    f = np.interp(t, [0, 1, 2, 3, 5, 6], [100, 100, 0, 100, 0, 0])
    assert a.crossing_below(t, f, 50.0) == pytest.approx(1.5, abs=1e-9)
    assert a.crossing_below(t, f, 50.0, after=2.5) == pytest.approx(4.0, abs=1e-9)
    assert a.crossing_above(t, f, 50.0, after=2.0) == pytest.approx(2.5, abs=1e-9)


def test_first_time_and_sample_period():
    t = np.arange(0.0, 1.0, 0.002)
    assert a.first_time(t, t > 0.5) == pytest.approx(0.502)
    assert a.first_time(t, t > 5) == math.inf
    assert a.sample_period(t) == pytest.approx(0.002)
    assert math.isnan(a.sample_period(t[:1]))


# ---------------------------------------------------------------- release shape
@pytest.mark.parametrize("tau", [0.02, 0.1, 0.5])
def test_fall_time_of_an_exponential_decay_is_tau_ln9(tau):
    dt, f0, t0 = 0.0005, 400.0, 0.2
    t = np.arange(0.0, t0 + 8 * tau, dt)
    rng = np.random.default_rng(8)
    f = np.where(t < t0, f0, f0 * np.exp(-(t - t0) / tau)) + rng.normal(0, 0.02, t.size)
    assert a.fall_time(t, f, f0, after=t0) == pytest.approx(tau * math.log(9.0), abs=dt)


def test_fall_time_of_a_release_that_never_ends_is_infinite():
    t = np.arange(0.0, 1.0, 0.001)
    f = np.where(t < 0.5, 100.0, 60.0)  # stuck at 60 %
    assert a.fall_time(t, f, 100.0, after=0.5) == math.inf


def test_last_rise_end_time():
    # still rising 30 ms after the trigger at 1.0 s, then released
    dt = 0.0005
    t = np.arange(0.0, 1.5, dt)
    f = np.interp(t, [0, 1.03, 1.2, 1.5], [0, 103, 5, 5]) + np.random.default_rng(9).normal(0, 0.05, t.size)
    # within the 5 ms smoothing window (the peak is asymmetric: slow rise, fast fall); the
    # ER-NORISE budget carries that window as a term of its own
    assert a.last_rise_end_time(t, f, after=1.0, until=1.5, rise_tolerance_n=2.0, start_level=100.0) == \
        pytest.approx(0.030, abs=0.005)
    # a force already falling at the trigger never rose after it
    assert a.last_rise_end_time(t, f, after=1.1, until=1.5, rise_tolerance_n=2.0) == 0.0
    assert a.last_rise_end_time(t, f, after=2.0, until=3.0, rise_tolerance_n=2.0) == math.inf


def test_a_force_gone_at_once_never_rose():
    """An instant release: after the trigger only the noise of the floor is left."""
    t = np.arange(-0.1, 1.0, 0.001)
    f = np.where(t < -0.0005, 300.0, 0.0) + np.random.default_rng(3).normal(0, 0.05, t.size)
    assert a.last_rise_end_time(t, f, after=0.0, until=1.0, rise_tolerance_n=6.0, start_level=300.0) == 0.0


def test_a_force_that_held_did_not_rise():
    """A table that ignored the trigger and held: no rise, whatever the noise of the hold."""
    t = np.arange(-0.1, 3.0, 0.001)
    f = 250.0 + np.random.default_rng(5).normal(0, 0.3, t.size)
    assert a.last_rise_end_time(t, f, after=0.0, until=3.0, rise_tolerance_n=5.0, start_level=250.0) == 0.0


def test_a_force_that_kept_pulling_is_timed_to_the_top_of_its_rise():
    """The ramp went on after the trigger (an ignored unplug during a ramp up), then held."""
    t = np.arange(-0.1, 3.0, 0.001)
    f = np.interp(t, [-0.1, 0.0, 2.0, 3.0], [145, 150, 250, 250]) + np.random.default_rng(6).normal(0, 0.05, t.size)
    assert a.last_rise_end_time(t, f, after=0.0, until=3.0, rise_tolerance_n=5.0, start_level=150.0) == \
        pytest.approx(2.0, abs=0.01)


def test_a_treatment_that_went_down_and_pulled_back_up_rose_again():
    """An ignored stop switch in the hold: the program goes on to its rest force and pulls back
    up — a further increase after the trigger, though never above the force at the trigger."""
    t = np.arange(-0.1, 3.0, 0.001)
    f = np.interp(t, [-0.1, 0.4, 1.0, 1.6, 2.2, 3.0], [150, 150, 75, 75, 150, 150])
    f = f + np.random.default_rng(7).normal(0, 0.05, t.size)
    assert a.last_rise_end_time(t, f, after=0.0, until=3.0, rise_tolerance_n=5.0, start_level=150.0) == \
        pytest.approx(2.2, abs=0.01)


def test_a_rise_within_the_tolerance_is_not_a_rise():
    t = np.arange(-0.1, 1.0, 0.001)
    f = np.interp(t, [-0.1, 0.0, 0.02, 0.3, 1.0], [300, 300, 303, 0, 0])  # 3 N within max(2 %, 5 N) = 6 N
    assert a.last_rise_end_time(t, f, after=0.0, until=1.0, rise_tolerance_n=6.0, start_level=300.0) == 0.0


# ------------------------------------------------------------ intermittent sessions
def intermittent_trace(hold: float, rest: float, *, rate: float = 50.0, hold_s: float = 8.0, rest_s: float = 4.0,
                       end_s: float = 45.0, noise: float = 0.3, seed: int = 2, dt: float = 0.001):
    """A table's intermittent session as a gauge sees it: ramp up, hold, ramp to rest, rest, …
    until `end_s`, then the release at `rate` from wherever the force is."""
    segs, now, force = [], 0.0, 0.0

    def ramp(to):
        nonlocal now, force
        d = abs(to - force) / rate
        segs.append(("ramp", now, now + d, force, to))
        now, force = now + d, to

    def flat(s):
        nonlocal now
        segs.append(("flat", now, now + s, force, force))
        now += s

    ramp(hold)
    while now < end_s:
        flat(min(hold_s, end_s - now))
        if now >= end_s:
            break
        ramp(rest)
        if now >= end_s:
            break
        flat(min(rest_s, end_s - now))
        if now >= end_s:
            break
        ramp(hold)
    t = np.arange(-1.0, now + force / rate + 2.0, dt)
    f = np.zeros_like(t)
    for _, a, b, fa, fb in segs:
        sel = (t >= a) & (t < b)
        f[sel] = fa + (fb - fa) * (t[sel] - a) / max(b - a, 1e-12)
    after = t >= now
    f[after] = np.maximum(force - rate * (t[after] - now), 0.0)
    return t, f + np.random.default_rng(seed).normal(0.0, noise, t.size), now


def test_flat_plateaus_find_a_rest_level_that_is_off_its_setting():
    """Issue 23: plateaus found only near the set levels hid a rest 16 N low (IM-LEVELS was
    NOT RUN). Found by flatness, the rest is a plateau at its own level."""
    from verification.analysis import flat_plateaus

    t, f, _ = intermittent_trace(250.0, 125.0 - 16.0)
    found = [p for p in flat_plateaus(t, f, 12.5, 5.0, 1.2) if p.start > 0 and p.mean > 15]
    means = [round(p.mean) for p in found]
    assert means[:4] == [250, 109, 250, 109]
    hold = found[0]
    assert hold.end - hold.start == pytest.approx(8.0, abs=0.02)
    assert found[1].end - found[1].start == pytest.approx(4.0, abs=0.02)


def test_final_descent_starts_at_the_top_of_an_interrupted_ramp():
    """A treatment that ends while the force ramps up to the hold: the release begins at the
    top of that ramp, not at the end of the last plateau (a TT-TIME error of 6 s before)."""
    from verification.analysis import final_descent_start

    t, f = trace([(-1, 0), (0, 0), (12, 600), (20, 600), (26, 300), (30, 300), (33, 450), (42, 0), (44, 0)],
                 1000.0, 0.3, 5)
    start, half = final_descent_start(t, f, 50.0, 20.0, 305.0)
    assert start == pytest.approx(33.0, abs=0.15) and half == 0.0


def test_final_descent_after_a_hold_is_known_only_to_the_rest_level():
    """Ending in a hold, or during the ramp down to the rest level at the release's own
    pace: the gauge cannot tell them apart, and the half-width says so."""
    from verification.analysis import final_descent_start

    t, f = trace([(-1, 0), (0, 0), (5, 250), (13, 250), (18, 0), (20, 0)], 1000.0, 0.3, 6)
    start, half = final_descent_start(t, f, 50.0, 20.0, 130.0)
    assert start - half == pytest.approx(13.0, abs=0.15)  # the hold's end
    assert start + half == pytest.approx(13.0 + 120.0 / 50.0, abs=0.15)  # the force passing the rest level
