"""The cycle count's reading of an angle trace (verification/excursions.py) on seeded
synthetic traces: lateral flexion passing neutral without a rest at the slowest speed (the
moves' segmentation reads it as one move), flexion cycles, a missing side, noise at the
band's edge."""

from __future__ import annotations

import numpy as np

from verification.excursions import excursions
from verification.kinematics import cycle_count, segment


def _trace(points: list[tuple[float, float]], rate_hz: float = 50.0, noise: float = 0.002, seed: int = 3):
    """Piecewise-linear angle through (t, deg) corners, sampled and with seeded noise."""
    ts = np.arange(points[0][0], points[-1][0], 1 / rate_hz)
    a = np.interp(ts, [p[0] for p in points], [p[1] for p in points])
    return ts, a + np.random.default_rng(seed).normal(0.0, noise, len(ts))


def test_lateral_through_neutral_without_a_rest_at_the_slowest_speed_is_one_cycle():
    # 0 → +3 → 0 → −3 → 0 at 0.1 °/s, no pause and no rest: the stop at neutral lasts milliseconds
    ts, a = _trace([(0, 0), (5, 0), (35, 3), (65, 0), (95, -3), (125, 0), (130, 0)])
    moves = segment(ts, a, still_deg_s=0.03, smooth_s=0.5)
    assert len(moves.moves) == 3  # out, across neutral to the other side as one move, back
    assert cycle_count(moves, "lateral", 1.5) == 0  # which is why the count reads excursions
    assert cycle_count(excursions(ts, a, 1.5), "lateral", 1.5) == 1


def test_flexion_cycles_and_a_missing_side_are_counted_as_they_are():
    corners = [(0, 0)]
    for k in range(3):  # three flexion cycles to 10° with a pause and a rest
        b = 1 + 6 * k
        corners += [(b, 0), (b + 1, 10), (b + 3, 10), (b + 4, 0)]
    corners.append((20, 0))
    ts, a = _trace(corners)
    assert cycle_count(excursions(ts, a, 5.0), "flexion", 5.0) == 3
    ts, a = _trace([(0, 0), (1, 0), (2, 8), (3, 8), (4, 0), (5, 0), (6, 8), (7, 0), (8, 0)])
    assert cycle_count(excursions(ts, a, 4.0), "lateral", 4.0) == 0  # the left side twice, the right never


def test_noise_at_the_bands_edge_is_not_an_excursion():
    ts = np.arange(0, 10, 0.01)
    a = np.where((ts > 4.0) & (ts < 4.02), 1.6, 0.0)  # two samples beyond the band
    assert [d.level.value for d in excursions(ts, a, 1.5).dwells] == [0.0]
    levels = [d.level.value for d in excursions(*_trace([(0, 0), (1, 0), (2, -6), (3, -6), (4, 0), (5, 0)]), 3.0).dwells]
    assert len(levels) == 3 and levels[0] == 0.0 and levels[2] == 0.0 and -6.1 < levels[1] < -5.9


def test_a_slow_crossing_of_the_band_in_noise_is_one_excursion():
    """At the slowest SPEED the section spends seconds within the noise of the band's edge
    (1° deep, 0.1 °/s, the inclinometer at 1 kHz): noise crossing the edge back and forth
    for longer than a blip is still one excursion out and one back — the count is 1, not 2
    (a nominal table's FD-CYCLES FAIL, seen once in three runs)."""
    corners = [(0, 0), (1, 0), (11, 1), (12, 1), (22, 0), (24, 0)]
    for seed in range(5):
        ts, a = _trace(corners, rate_hz=1000.0, noise=0.01, seed=seed)
        assert cycle_count(excursions(ts, a, 0.5), "flexion", 0.5) == 1, seed
