"""IL-OBSTRUCT's measurements carry the obstacle gauge's force as well as the angle
(verification/fd_interlock.py): the peak on the angle around it, the release on the force
on the obstacle, so the report draws that force under the angle of the same trial. A
synthetic move into an obstacle at 10°, no rig."""

from __future__ import annotations

import numpy as np
import pytest

from reports import plots
from reports.record import RunRecord
from reports.render import _plotted_series
from verification.fd_interlock import (SERIES_AFTER_S, SERIES_BEFORE_S, analyse_obstruction,
                                       obstruction_measurements)
from verification.spec import load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec("flexion-distraction")


def _trace():
    """The section moving into an obstacle at 10° at 10 °/s, stopped at 11°, backed off 2°;
    the obstacle's load cell (its own sample times) pressed in proportion to the overlap."""
    rng = np.random.default_rng(7)
    t = np.arange(0.0, 6.0, 0.002)
    a = np.where(t < 2.1, 10 * t / 2.1 * 1.1, np.maximum(11.0 - 4.0 * (t - 2.1), 9.0))
    ft = np.arange(0.001, 6.0, 0.0025)
    ff = np.clip((np.interp(ft, t, a) - 10.0) * 80.0, 0.0, None) + rng.normal(0, 0.05, ft.size)
    return t, a, ft, ff


def test_the_release_is_drawn_on_the_obstacle_force_around_the_peak(spec):
    t, a, ft, ff = _trace()
    o = analyse_obstruction(t, a, ft, ff, side=1, resolution_deg=0.001)
    near = (t >= o.peak_s - SERIES_BEFORE_S) & (t <= o.peak_s + SERIES_AFTER_S)
    peak, backoff, release = obstruction_measurements(spec, o, "o", {}, gauge_terms=[], angle_terms=[],
                                                      backoff_deg=2.0, series={"t_s": t[near], "angle_deg": a[near]})
    assert set(peak.series) == {"t_s", "angle_deg"} and not backoff.series
    assert set(release.series) == {"t_s", "obstacle_force_n"}
    ts, fs = release.series["t_s"], release.series["obstacle_force_n"]
    assert ts[0] >= o.peak_s - SERIES_BEFORE_S and ts[-1] <= o.peak_s + SERIES_AFTER_S
    assert ts[0] - (o.peak_s - SERIES_BEFORE_S) < 0.003 and (o.peak_s + SERIES_AFTER_S) - ts[-1] < 0.003
    assert fs.max() == pytest.approx(o.peak.value)  # the peak and the release on the same samples
    assert fs[-1] < 1.0  # the force fell off the obstacle within the window
    assert plots.column_unit("obstacle_force_n") == "N"  # a column the report knows


def test_the_report_draws_the_obstacle_force_under_the_angle(spec, tmp_path):
    t, a, ft, ff = _trace()
    o = analyse_obstruction(t, a, ft, ff, side=1, resolution_deg=0.001)
    ms = obstruction_measurements(spec, o, "o", {}, gauge_terms=[], angle_terms=[], backoff_deg=2.0,
                                  series={"t_s": t, "angle_deg": a})
    rec = RunRecord(tmp_path)
    rels = [rec.save_series(f"IL-OBSTRUCT-{m.quantity}", m.series) if m.series else None for m in ms]
    rec.close()
    trial = [rel for rel in rels if rel]
    assert len(trial) == 2
    peak_plot = _plotted_series(tmp_path, {"series": rels[0], "unit": "N"}, trial)
    assert peak_plot == (rels[0], [rels[2]])  # the angle, the obstacle's force below it
    backoff_plot = _plotted_series(tmp_path, {"series": None, "unit": "deg"}, trial)
    assert backoff_plot == (rels[0], [rels[2]])
