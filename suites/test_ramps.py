"""Ramps: progressive and regressive slopes by least squares over the linear part,
overshoot and settling (RA-*); intermittent hold/rest levels and durations (IM-*);
treatment time (TT-TIME)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from drivers.tcm1 import Phase
from suites.analysis import plateaus, ramp_fit
from suites.measurement import Measurement, Precondition, UncertaintyTerm


def fit_points(fit, what: str) -> Precondition:
    return Precondition(f"gauge samples on the straight part of the {what} ramp (20 to 80 %)", fit.n >= 3,
                        f"{fit.n} samples")


def one_sided(t, f, p, band: float, since: float, until: float) -> Precondition:
    """A plateau's duration is placed by the corners of the ramps into and out of it; that
    relies on each ramp coming from one side of the level. A force that overshoots the
    level beyond the plateau band before settling (RA-OVERSHOOT's finding) has no such
    corner, and the plateau's duration is not judged. The ramps are the stretches from
    the previous plateau (`since`) to this one, and from this one to the next (`until`)."""
    def both_sides(sel) -> bool:
        seg = f[sel]
        return bool(len(seg)) and float(np.max(seg)) > p.mean + band and float(np.min(seg)) < p.mean - band
    before = both_sides((t >= since) & (t < p.start))
    after = both_sides((t > p.end) & (t <= until))
    where = " and ".join(w for w, bad in (("before it", before), ("after it", after)) if bad) or "neither side"
    return Precondition(f"ramps into and out of the plateau from one side of its level (±{band:.3g} N)",
                        not (before or after), f"the force crossed the level beyond the band {where}")


def slope_budget(fit, rate, bench, level_n) -> list[UncertaintyTerm]:
    cal = bench.rig.config.gauge.calibration
    return [
        UncertaintyTerm("least-squares slope", fit.slope_std),
        UncertaintyTerm.expanded("gauge calibration (relative)", rate * cal.expanded_uncertainty_n / max(level_n, 1.0), cal.coverage_factor),
    ]


@pytest.mark.requirement("RA-RATE", "RA-OVERSHOOT", "RA-SETTLE")
@pytest.mark.parametrize("index", [0, 1, 2], ids=["slow", "medium", "fast"])
def test_ramp(bench, spec, recorder, index):
    rates = sorted(spec.plan.ramp_rates_n_s)
    if index >= len(rates):
        pytest.skip("the specification lists fewer ramp rates")
    rate = rates[index] if index < 2 else rates[-1]
    setting = spec.plan.ramp_force_n
    plan = spec.plan
    holder: list = []
    t0 = time.perf_counter_ns()
    bench.context(requirement="RA-RATE", trigger=None, phase="ramp_up", force_n=setting, trial=index + 1,
                  trials=len(rates))
    with bench.capture(holder):
        bench.configure(setting, rate, rate)
        start_ns = bench.ctrl.start()
        # a table that never settles into its hold is a finding (RA-SETTLE), not a broken test
        _, held = bench.poll_until(lambda s: s.phase is Phase.HOLD, setting / rate * 1.5 + 5 + plan.settle_s)
        bench.sleep(plan.settle_s)
        stop_ns = bench.ctrl.stop()
        bench.wait(lambda s: s.phase is Phase.IDLE, setting / rate * 1.5 + 5, "end of the regressive ramp")
        bench.sleep(0.3)
    cap = bench.to_table(holder[0], t0)
    t, f = cap.t, cap.force
    t_start, t_stop = bench.table_s(t0, start_ns), bench.table_s(t0, stop_ns)
    rising = t < t_stop
    up = ramp_fit(t[rising], f[rising], 0.0, setting)
    hold = (t > t_stop - plan.settle_s * 0.5) & (t < t_stop)
    level = float(np.mean(f[hold]))
    down = ramp_fit(t[~rising], f[~rising], level, 0.0)
    cond = {"rate_n_s": rate, "setting_n": setting}
    series = {"t_s": t, "force_n": f}
    req = spec.requirement("RA-RATE")
    lo, hi = req.limits(rate=rate, setting=setting)
    recorder.record(Measurement("progressive slope error", req, abs(up.slope - rate), "N/s", lo, hi,
                                slope_budget(up, rate, bench, setting),
                                conditions={**cond, "direction": "progressive", "slope_n_s": up.slope, "points": up.n},
                                series=series, annotations={"start_s": t_start, "stop_s": t_stop},
                                preconditions=[fit_points(up, "progressive")]))
    recorder.record(Measurement("regressive slope error", req, abs(-down.slope - rate), "N/s", lo, hi,
                                slope_budget(down, rate, bench, setting),
                                conditions={**cond, "direction": "regressive", "slope_n_s": down.slope, "points": down.n},
                                preconditions=[fit_points(down, "regressive")]))
    # overshoot and settling after the progressive ramp
    ramp_end = up.time_at(level)
    after = (t >= ramp_end) & (t < t_stop)
    peak = float(np.max(f[after])) if after.any() else float("nan")
    req = spec.requirement("RA-OVERSHOOT")
    lo, hi = req.limits(setting=setting)
    noise = float(np.std(f[hold]))
    budget = bench.force_terms_of(noise, 1)
    recorder.record(Measurement("overshoot", req, max(0.0, peak - level), "N", lo, hi, budget,
                                conditions={**cond, "peak_n": peak, "settled_n": level},
                                preconditions=[fit_points(up, "progressive")]))
    band = spec.requirement("FA-STATIC").limits(setting=setting)[1]
    outside = np.nonzero(after & (np.abs(f - level) > band))[0]
    settle = float(t[outside[-1]] - ramp_end) if outside.size else 0.0
    if not held:
        settle = float("inf")  # the controller never reached its hold: nothing settled
    req = spec.requirement("RA-SETTLE")
    lo, hi = req.limits(setting=setting)
    recorder.record(Measurement("settling time", req, max(settle, 0.0), "s", lo, hi,
                                [UncertaintyTerm.rectangular("gauge sample period", cap.period),
                                 UncertaintyTerm("ramp-end corner", up.slope_std / max(up.slope, 1e-9) * setting / max(up.slope, 1e-9))],
                                conditions={**cond, "band_n": band}, preconditions=[fit_points(up, "progressive")]))


@pytest.mark.requirement("IM-TIMING", "IM-LEVELS", "TT-TIME")
def test_intermittent_treatment(bench, spec, recorder):
    im = spec.plan.intermittent
    rate = spec.max_ramp_rate_n_s
    holder: list = []
    t0 = time.perf_counter_ns()
    with bench.capture(holder):
        bench.configure(im.hold_force_n, rate, rate, intermittent=True, rest_n=im.rest_force_n,
                        hold_s=im.hold_s, rest_s=im.rest_s, treatment_s=im.treatment_s)
        start_ns = bench.ctrl.start()
        bench.wait_phase(Phase.RELEASING, im.treatment_s + 30)
        bench.wait(lambda s: s.phase is Phase.IDLE, im.hold_force_n / rate * 2 + 5, "end of treatment")
        bench.sleep(0.5)
    cap = bench.to_table(holder[0], t0)
    t, f = cap.t - bench.table_s(t0, start_ns), cap.force  # table seconds since START
    band_h = max(0.02 * im.hold_force_n, 2.0)
    flat = plateaus(t, f, [im.hold_force_n, im.rest_force_n], band_h, min(im.hold_s, im.rest_s) * 0.3)
    series = {"t_s": t, "force_n": f}
    timing, levels, tt = (spec.requirement(r) for r in ("IM-TIMING", "IM-LEVELS", "TT-TIME"))
    final_release = flat[-1].end if flat else float("nan")
    full = flat[:-1]  # the last plateau is cut short by the end of the treatment
    period = cap.period
    cycles = Precondition("the force reached the hold and rest levels (at least 3 complete plateaus)", len(full) >= 3,
                          f"{len(full)} complete plateaus within ±{band_h:.3g} N of {im.hold_force_n:g} / {im.rest_force_n:g} N")
    if not cycles.held:  # nothing to time or level: said as such, for both requirements
        for req, unit in ((timing, "s"), (levels, "N")):
            recorder.record(Measurement("hold and rest plateaus", req, None, unit, conditions={"plateaus": len(full)},
                                        series=series if req is timing else {}, preconditions=[cycles]))
    for i, p in enumerate(full):
        is_hold = p.level == im.hold_force_n
        set_s = im.hold_s if is_hold else im.rest_s
        lo, hi = timing.limits(setting=set_s)
        recorder.record(Measurement(
            f"{'hold' if is_hold else 'rest'} {i + 1} duration error", timing, abs((p.end - p.start) - set_s), "s", lo, hi,
            [UncertaintyTerm.rectangular("corner detection (2 sample periods)", 2 * period)],
            conditions={"phase": "hold" if is_hold else "rest", "set_s": set_s, "measured_s": p.end - p.start},
            series=series if i == 0 else {},
            annotations={"start_s": p.start, "end_s": p.end},
            preconditions=[one_sided(t, f, p, band_h, flat[i - 1].end if i else float(t[0]), flat[i + 1].start)],
        ))
        lo, hi = levels.limits(setting=p.level)
        recorder.record(Measurement(
            f"{'hold' if is_hold else 'rest'} {i + 1} level error", levels, abs(p.mean - p.level), "N", lo, hi,
            bench.force_terms_of(p.std, p.n),
            conditions={"set_n": p.level, "mean_n": p.mean},
        ))
    # treatment time: START to the start of the final regressive release (the end of the
    # last plateau); how far that release goes is ER-RESIDUAL's and FA-STATIC's business
    lo, hi = tt.limits(setting=im.treatment_s)
    recorder.record(Measurement(
        "treatment time error", tt, abs(final_release - im.treatment_s) if flat else None, "s", lo, hi,
        [UncertaintyTerm.rectangular("corner detection", 2 * period),
         UncertaintyTerm.rectangular("START instant (write round trip) × K", 1e-3 * bench.k)],
        conditions={"set_s": im.treatment_s, "measured_s": final_release},
        preconditions=[Precondition("a plateau before the final release", bool(flat), f"{len(flat)} plateaus")],
    ))
