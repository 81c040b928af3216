"""Ramps: progressive and regressive slopes by least squares over the linear part,
overshoot and settling (RA-*); intermittent hold/rest levels and durations (IM-*);
treatment time (TT-TIME)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from drivers.tcm1 import Phase
from verification.analysis import envelope, final_descent_start, flat_plateaus, ramp_fit
from verification.measurement import Measurement, Precondition, UncertaintyTerm, Verdict
from verification.steps import AFTER_LOWER_START_S, AFTER_RAMP_S, AFTER_TREATMENT_S, LOWER_FRACTION

pytestmark = [pytest.mark.protocol("TCM-1")]  # the traction suites (fixtures/plugin.py select_protocol)


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


#: the ramp cases of the plan (Specification.plan.ramp_cases): the slowest and the fastest
#: rate to ramp_force_n, and the fastest to ramp_high_force_n
RAMP_CASES = ("slow", "fast", "fast-high")


def _level(t, f, until: float, span: float) -> float:
    sel = (t > until - span) & (t < until)
    return float(np.mean(f[sel])) if sel.any() else float("nan")


@pytest.mark.requirement("RA-RATE", "RA-OVERSHOOT", "RA-SETTLE")
@pytest.mark.parametrize("case", RAMP_CASES)
def test_ramp(bench, spec, recorder, case):
    """Each case ramps up to its force, down to a lower setting (START with a target below
    the present force: the controller's regressive ramp to a setting, a path of its own
    besides the STOP release), then releases with STOP. Each of the three slopes is judged
    (RA-RATE), the overshoot past the setting on the way up and the undershoot on the way
    down (RA-OVERSHOOT), and the settling after both (RA-SETTLE)."""
    cases = spec.plan.ramp_cases()
    if case not in cases:
        pytest.skip(f"specification {spec.name}'s plan has no {case} ramp case (plan.ramp_high_force_n)")
    rate, setting = cases[case]
    lower = LOWER_FRACTION * setting
    plan = spec.plan
    holder: list = []
    t0 = time.perf_counter_ns()
    bench.context(requirement="RA-RATE", trigger=None, phase="ramp_up", force_n=setting, trial=RAMP_CASES.index(case) + 1,
                  trials=len(cases))
    with bench.capture(holder):
        bench.configure(setting, rate, rate)
        start_ns = bench.ctrl.start()
        # a table that never settles into its hold is a finding (RA-SETTLE), not a broken test
        _, held_up = bench.poll_until(lambda s: s.phase is Phase.HOLD, setting / rate * 1.5 + 5 + plan.settle_s)
        bench.sleep(plan.settle_s)
        bench.configure(lower, rate, rate)
        down_ns = bench.ctrl.start()
        bench.sleep(AFTER_LOWER_START_S)  # past the START's own round trip: the phase read next is the new ramp's
        _, held_down = bench.poll_until(lambda s: s.phase is Phase.HOLD, (setting - lower) / rate * 1.5 + 5 + plan.settle_s)
        bench.sleep(plan.settle_s)
        stop_ns = bench.ctrl.stop()
        bench.wait(lambda s: s.phase is Phase.IDLE, lower / rate * 1.5 + 5, "end of the regressive ramp")
        bench.sleep(AFTER_RAMP_S)
    cap = bench.to_table(holder[0], t0)
    t, f = cap.t, cap.force
    t_start, t_down, t_stop = (bench.table_s(t0, ns) for ns in (start_ns, down_ns, stop_ns))
    first, second, third = t < t_down, (t >= t_down) & (t < t_stop), t >= t_stop
    # each slope between the levels the force really held before and after it (the gauge's),
    # not the settings: a table that holds 25 N off its settings (FA-STATIC's finding) or
    # releases to 25 N (ER-RESIDUAL's) ramps at its rate all the same, and a fit between the
    # settings would reach into the flat beyond the ramp and blame RA-RATE for it
    level_start = _level(t, f, t_start, t_start - float(t[0]) + 1e-9) if len(t) and t[0] < t_start else 0.0
    level_hi = _level(t, f, t_down, plan.settle_s * 0.5)
    level_lo = _level(t, f, t_stop, plan.settle_s * 0.5)
    level_end = _level(t, f, float(t[-1]) + 1e-9, AFTER_RAMP_S * 0.5) if len(t) else float("nan")
    up = ramp_fit(t[first], f[first], level_start, level_hi)
    to_lower = ramp_fit(t[second], f[second], level_hi, level_lo)
    release = ramp_fit(t[third], f[third], level_lo, level_end)
    cond = {"rate_n_s": rate, "setting_n": setting, "case": case}
    series = {"t_s": t, "force_n": f}
    req = spec.requirement("RA-RATE")
    lo, hi = req.limits(rate=rate, setting=setting)
    slopes = (("progressive", up, 1.0, setting, "progressive"),
              ("to lower setting", to_lower, -1.0, lower, "regressive ramp to a lower setting"),
              ("regressive", release, -1.0, lower, "regressive (STOP)"))
    for direction, fit, sign, level, what in slopes:
        recorder.record(Measurement(f"{what} slope error", req, abs(sign * fit.slope - rate), "N/s", lo, hi,
                                    slope_budget(fit, rate, bench, level),
                                    conditions={**cond, "direction": direction, "slope_n_s": fit.slope, "points": fit.n},
                                    series=series if direction == "progressive" else {},
                                    annotations={"start_s": t_start, "down_s": t_down, "stop_s": t_stop},
                                    preconditions=[fit_points(fit, what)]))
    # past the setting and back: the overshoot after the progressive ramp, the undershoot
    # after the ramp to the lower setting, and the settling after each
    ramps = (("progressive", up, level_hi, setting, first, held_up, 1.0),
             ("to lower setting", to_lower, level_lo, lower, second, held_down, -1.0))
    for direction, fit, level, target, segment, held, sign in ramps:
        ramp_end = fit.time_at(level)
        after = segment & (t >= ramp_end)
        past = float(np.max(sign * (f[after] - level))) if after.any() else float("nan")
        settled = segment & (t > float(t[segment][-1]) - plan.settle_s * 0.5) if segment.any() else segment
        noise = float(np.std(f[settled])) if settled.any() else 0.0
        req = spec.requirement("RA-OVERSHOOT")
        lo, hi = req.limits(setting=target)
        word = "overshoot" if sign > 0 else "undershoot"
        label = "progressive ramp" if sign > 0 else "ramp down to the lower setting"
        dcond = {**cond, "direction": direction, "target_n": target, "settled_n": level}
        recorder.record(Measurement(f"{word} after the {label}", req, max(0.0, past), "N", lo, hi,
                                    bench.force_terms_of(noise, 1), conditions={**dcond, "past_setting_n": past},
                                    preconditions=[fit_points(fit, direction)]))
        band = spec.requirement("FA-STATIC").limits(setting=target)[1]
        outside = np.nonzero(after & (np.abs(f - level) > band))[0]
        settle = float(t[outside[-1]] - ramp_end) if outside.size else 0.0
        if not held:
            settle = float("inf")  # the controller never reached its hold: nothing settled
        req = spec.requirement("RA-SETTLE")
        lo, hi = req.limits(setting=target)
        slope = abs(fit.slope) if np.isfinite(fit.slope) and fit.slope else 1e-9
        recorder.record(Measurement(f"settling after the {label}", req, max(settle, 0.0), "s", lo, hi,
                                    [UncertaintyTerm.rectangular("gauge sample period", cap.period),
                                     UncertaintyTerm("ramp-end corner", fit.slope_std / slope * abs(target - (0.0 if sign > 0 else level_hi)) / slope)],
                                    conditions={**dcond, "band_n": band}, preconditions=[fit_points(fit, direction)]))


#: a session with more plateaus than this records, per requirement and phase, the worst
#: plateau with the statistics of all (a 30-minute session has ~200 of them)
EACH_PLATEAU_UP_TO = 12
SERIES_POINTS = 20000  # a long session's trace in the record: its envelope
FLAT_FRACTION = 0.25  # a plateau's slope stays below this fraction of the ramp rate


def _phase_at(log: list[tuple[float, Phase]], t: float) -> Phase | None:
    """The phase the controller reported at table second `t` (the last change before it)."""
    current = None
    for when, phase in log:
        if when > t:
            break
        current = phase
    return current


@pytest.mark.requirement("IM-TIMING", "IM-LEVELS", "TT-TIME")
def test_intermittent_treatment(bench, spec, recorder, treatment):
    """One session of the plan (plan.sessions): its hold and rest durations (IM-TIMING) and
    levels (IM-LEVELS), and the treatment time (TT-TIME); a static session (MODE 0) holds
    until its TREATMENT_TIME and is judged on TT-TIME alone.

    The plateaus are found where the gauge force is flat, at whatever level, and named
    hold or rest by the phase the controller reported meanwhile; only then is each level
    judged against its setting, so a rest 16 N low is IM-LEVELS' FAIL, never a reason to
    find no plateau (the controller's word names a plateau; the gauge measures it)."""
    im = spec.plan.intermittent
    hold_n, rest_n = spec.plan.levels_of(treatment)
    static = treatment.mode == "static"  # a static session holds until TREATMENT_TIME: TT-TIME only
    treatment_s = treatment.treatment_s
    rate = spec.max_ramp_rate_n_s
    holder: list = []
    changes: list[tuple[int, Phase]] = []

    def releasing(st) -> bool:
        if not changes or changes[-1][1] is not st.phase:
            changes.append((st.host_ns, st.phase))
        return st.phase is Phase.RELEASING

    bench.context(requirement="IM-TIMING", trigger=None, phase="hold", force_n=hold_n, trial=1, trials=1)
    t0 = time.perf_counter_ns()
    with bench.capture(holder):
        bench.configure(hold_n, rate, rate, intermittent=not static, rest_n=rest_n,
                        hold_s=im.hold_s, rest_s=im.rest_s, treatment_s=treatment_s)
        start_ns = bench.ctrl.start()
        bench.wait(releasing, treatment_s * 1.1 + 60, "the final release (phase RELEASING)")
        bench.wait(lambda s: s.phase is Phase.IDLE, hold_n / rate * 2 + 5, "end of treatment")
        bench.sleep(AFTER_TREATMENT_S)
    cap = bench.to_table(holder[0], t0)
    t, f = cap.t - bench.table_s(t0, start_ns), cap.force  # table seconds since START
    log = [(bench.table_s(start_ns, ns), phase) for ns, phase in changes]
    band = max(0.02 * hold_n, 2.0)
    found = flat_plateaus(t, f, FLAT_FRACTION * rate, band, min(im.hold_s, im.rest_s) * 0.3)
    named = []
    for p in found:
        phase = _phase_at(log, (p.start + p.end) / 2)
        if p.start > 0.0 and phase in (Phase.HOLD, Phase.REST):
            named.append((p, phase is Phase.HOLD))
    timing, levels, tt = (spec.requirement(r) for r in ("IM-TIMING", "IM-LEVELS", "TT-TIME"))
    st, sf = envelope(t, f, SERIES_POINTS)
    series = {"t_s": st, "force_n": sf}
    cond = {"treatment_s": treatment_s, "hold_set_n": hold_n, "rest_set_n": None if static else rest_n,
            "profile": treatment.profile, "mode": treatment.mode}
    # the last plateau is cut short by the end of the treatment: durations only of the others
    full = [] if static else named[:-1]
    # the treatment ends where the final release begins: at the end of the last hold or
    # rest, or at the top of a ramp it interrupted; within a ramp down to the rest level
    # the gauge cannot tell where the release took over, and the budget says so
    final_release, release_half = final_descent_start(t, f, rate, spec.residual_force_n + band,
                                                      rest_n + band if rest_n > 0 and not static else None)
    period = cap.period
    found_any = Precondition("a flat hold or rest in the gauge trace (the force's slope below "
                             f"{FLAT_FRACTION * rate:.3g} N/s for {min(im.hold_s, im.rest_s) * 0.3:.3g} s)",
                             bool(full), f"{len(full)} complete plateaus, {len(found)} flat stretches in all")
    if not full and not static:  # nothing to time or level: said as such, for both requirements
        for req, unit in ((timing, "s"), (levels, "N")):
            recorder.record(Measurement("hold and rest plateaus", req, None, unit, conditions=cond,
                                        series=series if req is timing else {}, preconditions=[found_any]))
    found_ms: dict[tuple[str, bool], list[Measurement]] = {}
    for i, (p, is_hold) in enumerate(full):
        word = "hold" if is_hold else "rest"
        set_s, set_n = (im.hold_s, hold_n) if is_hold else (im.rest_s, rest_n)
        lo, hi = timing.limits(setting=set_s)
        since = named[i - 1][0].end if i else float(t[0])
        m = Measurement(
            f"{word} {i + 1} duration error", timing, abs((p.end - p.start) - set_s), "s", lo, hi,
            [UncertaintyTerm.rectangular("corner detection (2 sample periods)", 2 * period)],
            conditions={**cond, "phase": word, "set_s": set_s, "measured_s": p.end - p.start},
            annotations={"start_s": p.start, "end_s": p.end},
            preconditions=[one_sided(t, f, p, band, since, named[i + 1][0].start)])
        found_ms.setdefault(("IM-TIMING", is_hold), []).append(m)
        lo, hi = levels.limits(setting=set_n)
        m = Measurement(
            f"{word} {i + 1} level error", levels, abs(p.mean - set_n), "N", lo, hi, bench.force_terms_of(p.std, p.n),
            conditions={**cond, "phase": word, "set_n": set_n, "mean_n": p.mean})
        found_ms.setdefault(("IM-LEVELS", is_hold), []).append(m)
    every = sum(len(v) for v in found_ms.values()) <= 2 * EACH_PLATEAU_UP_TO
    first = True
    for (rid, is_hold), ms in found_ms.items():
        for m in (ms if every else [worst_of(ms, f"{'hold' if is_hold else 'rest'}: worst of {len(ms)} plateaus")]):
            if first and rid == "IM-TIMING":
                m.series, first = series, False
            recorder.record(m)
    # treatment time: START to the start of the final regressive release (the end of the
    # last plateau); how far that release goes is ER-RESIDUAL's and FA-STATIC's business
    lo, hi = tt.limits(setting=treatment_s)
    recorder.record(Measurement(
        "treatment time error", tt, abs(final_release - treatment_s) if np.isfinite(final_release) else None, "s",
        lo, hi,
        [UncertaintyTerm.rectangular("corner detection", 2 * period),
         UncertaintyTerm.rectangular("where the release took over from a ramp down to the rest level", release_half),
         UncertaintyTerm.rectangular("START instant (write round trip) × K", 1e-3 * bench.k)],
        conditions={**cond, "set_s": treatment_s, "measured_s": final_release},
        series=series if not found_ms else {},
        preconditions=[Precondition("a final release in the gauge trace (the force fell below the residual force)",
                                    bool(np.isfinite(final_release)),
                                    f"lowest force at the end {float(f[-1]) if len(f) else float('nan'):.4g} N")],
    ))


def worst_of(ms: list[Measurement], name: str) -> Measurement:
    """The worst judged plateau of a long session, carrying the statistics of all of them."""
    judged = [m for m in ms if not m.not_applicable] or ms
    worst = min(judged, key=lambda m: (m.verdict is Verdict.PASS, m.margin))
    values = np.asarray([float(m.value) for m in judged if m.value is not None])
    stats = {"plateaus": len(ms), "not_applicable": len(ms) - len([m for m in ms if not m.not_applicable]),
             "min": float(values.min()) if values.size else None, "max": float(values.max()) if values.size else None,
             "mean": float(values.mean()) if values.size else None}
    return Measurement(name, worst.requirement, worst.value, worst.unit, worst.lower, worst.upper, worst.budget,
                       conditions={**worst.conditions, "summary": True, "worst": worst.name, **stats},
                       annotations=worst.annotations, preconditions=worst.preconditions)
