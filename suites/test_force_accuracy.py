"""Static force accuracy at >= 8 setpoints across the table's range (FA-STATIC), and the
controller's own load cell against the reference gauge (FA-CELL), a requirement of its
own: the cell is under test, never the evidence for the force.

Each setpoint is approached from below (a rising staircase); the plan's falling setpoints
are approached from above after it, since a force loop with friction or a one-sided
integrator settles on a different force from each side."""

from __future__ import annotations

import time

import numpy as np
import pytest

from verification.analysis import settled_slice
from verification.measurement import Measurement, UncertaintyTerm
from verification.steps import CELL_WINDOW_S

pytestmark = [pytest.mark.protocol("TCM-1")]  # the traction suites (fixtures/plugin.py select_protocol)



@pytest.fixture
def staircase(bench, spec):
    """Step through the setpoints with START from the present force; gauge throughout."""
    plan = spec.plan
    rate = spec.max_ramp_rate_n_s
    steps = []
    holder: list = []
    t0_ns = time.perf_counter_ns()
    with bench.capture(holder):
        present = 0.0
        rising = sorted(plan.setpoints_n)
        falling = sorted(plan.falling_setpoints_n, reverse=True)
        settings = [(s, "rising") for s in rising] + [(s, "falling") for s in falling]
        for n, (setting, approach) in enumerate(settings):
            bench.context(requirement="FA-STATIC", trigger=None, phase="hold", force_n=setting, trial=n + 1,
                          trials=len(settings))
            bench.configure(setting, rate, rate)
            bench.ctrl.start()
            # the specification allows settle_s after the ramp (RA-SETTLE): judge the force
            # after that, not inside it — a table that settles in time must not fail here
            bench.sleep(abs(setting - present) / rate + plan.settle_s)
            # the gauge is compared over the window as it really ran, not over the span of
            # the controller reads: on a loaded host one read can take the whole window
            cell = []
            begin_ns = time.perf_counter_ns()
            end = begin_ns + int(CELL_WINDOW_S / bench.k * 1e9)
            while time.perf_counter_ns() < end or len(cell) < 2:
                cell.append(bench.ctrl.status().force_n)
            steps.append((setting, approach, np.array(cell), (begin_ns, time.perf_counter_ns())))
            present = setting
        bench.ctrl.stop()
    capture = bench.to_table(holder[0], t0_ns)
    return steps, capture


@pytest.mark.requirement("FA-STATIC", "FA-CELL")
def test_static_force_accuracy(recorder, staircase, bench, spec):
    steps, cap = staircase
    fa, fc = spec.requirement("FA-STATIC"), spec.requirement("FA-CELL")
    rated, residual = spec.rated_force_n, spec.residual_force_n
    for setting, approach, cell, (begin_ns, end_ns) in steps:
        lo_t = (begin_ns - cap.ref_ns) / 1e9 * bench.k
        hi_t = (end_ns - cap.ref_ns) / 1e9 * bench.k
        window = (cap.t >= lo_t) & (cap.t <= hi_t)
        t, f = cap.t[window], cap.force[window]
        assert len(f) >= 10, f"too few gauge samples at {setting} N (gauge streaming?)"
        settled = settled_slice(t, f)
        gauge_mean = float(np.mean(f[settled]))
        samples = f[settled]
        series = {"t_s": t, "force_n": f}
        cond = {"setting_n": setting, "approach": approach, "samples": int(len(samples))}
        where = f"{setting:g} N" + (" (from above)" if approach == "falling" else "")
        v = dict(setting=setting, rated=rated, residual=residual)
        low, high = fa.limits(**v)
        recorder.record(Measurement(
            f"static error at {where}", fa, abs(gauge_mean - setting), "N", low, high,
            bench.force_terms(samples), conditions={**cond, "gauge_mean_n": gauge_mean}, series=series,
        ))
        cell_mean = float(np.mean(cell))
        low, high = fc.limits(**v)
        budget = bench.force_terms(samples) + [
            UncertaintyTerm.rectangular("controller register resolution (0.1 N)", 0.05),
            UncertaintyTerm("controller noise of the mean", float(np.std(cell)) / max(len(cell), 1) ** 0.5),
        ]
        recorder.record(Measurement(
            f"load cell vs gauge at {where}", fc, abs(cell_mean - gauge_mean), "N", low, high, budget,
            conditions={**cond, "cell_mean_n": cell_mean, "gauge_mean_n": gauge_mean, "cell_reads": int(len(cell))},
        ))
