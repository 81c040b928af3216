"""Signal analysis on synthetic, seeded gauge traces whose true answers are known:
ramp slopes, the settled tail, crossings, release shape, plateaus with their corners."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suites import analysis as a


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


def test_last_maximum_time():
    # still rising 30 ms after the trigger at 1.0 s, then released
    dt = 0.0005
    t = np.arange(0.0, 1.5, dt)
    f = np.interp(t, [0, 1.03, 1.2, 1.5], [0, 103, 5, 5]) + np.random.default_rng(9).normal(0, 0.05, t.size)
    # within half the 5 ms smoothing window (the peak is asymmetric: slow rise, fast fall)
    assert a.last_maximum_time(t, f, after=1.0, until=1.5) == pytest.approx(0.030, abs=0.0025)
    # a force already falling at the trigger: its maximum is the trigger itself
    assert a.last_maximum_time(t, f, after=1.1, until=1.5) == pytest.approx(0.0, abs=0.006)
    assert a.last_maximum_time(t, f, after=2.0, until=3.0) == math.inf


def test_smooth_keeps_length_and_mean():
    f = np.random.default_rng(10).normal(5.0, 1.0, 1000)
    s = a.smooth(f, 10)
    assert s.shape == f.shape
    assert float(np.std(s[20:-20])) < 0.5 * float(np.std(f))
    assert a.smooth(f, 1) is f


# ---------------------------------------------------------------- plateaus
def intermittent(hold_s, rest_s, hold_n, rest_n, rate, cycles):
    """Progressive ramp, (hold, ramp to rest, rest, ramp up) × cycles, last hold, release."""
    pts, t = [(0.0, 0.0)], 0.0
    holds, rests = [], []

    def to(dt, force):
        nonlocal t
        t += dt
        pts.append((t, force))

    to(hold_n / rate, hold_n)
    for _ in range(cycles):
        holds.append((t, t + hold_s))
        to(hold_s, hold_n)
        to((hold_n - rest_n) / rate, rest_n)
        rests.append((t, t + rest_s))
        to(rest_s, rest_n)
        to((hold_n - rest_n) / rate, hold_n)
    holds.append((t, t + hold_s))
    to(hold_s, hold_n)
    to(hold_n / rate, 0.0)
    to(1.0, 0.0)
    return pts, holds, rests


@pytest.mark.parametrize(
    "rate, noise, band, seed",
    [(50.0, 0.05, 3.0, 11), (50.0, 0.3, 5.0, 12), (25.0, 0.3, 3.0, 13), (10.0, 0.2, 5.0, 14)],
)
def test_plateaus_recover_hold_and_rest_times(rate, noise, band, seed):
    hold_s, rest_s, hold_n, rest_n = 8.0, 4.0, 250.0, 125.0
    pts, holds, rests = intermittent(hold_s, rest_s, hold_n, rest_n, rate, cycles=3)
    t, f = trace(pts, 500.0, noise, seed)
    # min_duration longer than a ramp takes to cross a band (2·band/rate)
    found = a.plateaus(t, f, [hold_n, rest_n], band=band, min_duration=max(1.0, 4 * band / rate))
    assert [p.level for p in found] == [hold_n, rest_n] * 3 + [hold_n]
    truth = [x for pair in zip(holds, rests) for x in pair] + holds[len(rests):]
    for p, (start, end) in zip(found, truth):
        set_s = hold_s if p.level == hold_n else rest_s
        assert p.end - p.start == pytest.approx(set_s, rel=0.01)  # IM-TIMING resolution
        assert p.start == pytest.approx(start, abs=0.01 * set_s)
        assert p.end == pytest.approx(end, abs=0.01 * set_s)
        # the level of a plateau is not pulled by the ramp ends inside the band
        assert p.mean == pytest.approx(p.level, abs=max(0.1, 4 * noise / math.sqrt(p.n)))
        assert p.std == pytest.approx(noise, rel=0.2, abs=0.02)


def test_plateaus_ignore_short_visits_and_other_levels():
    # a 0.5 s dwell at 125 N is too short; 180 N is not a level asked for
    t, f = trace([(0, 0), (2, 125), (2.5, 125), (3, 180), (6, 180), (8, 250), (12, 250), (14, 0)], 200.0, 0.1, 15)
    found = a.plateaus(t, f, [250.0, 125.0], band=3.0, min_duration=1.0)
    assert len(found) == 1 and found[0].level == 250.0
    assert found[0].end - found[0].start == pytest.approx(4.0, rel=0.01)
