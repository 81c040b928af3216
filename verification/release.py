"""The measurements of one emergency release, whatever triggered it.

Shared by the emergency-release suite (relays, coils, the watchdog) and the operator
checks (the red button pressed by hand), so a release is judged the same way however
its trigger instant was known: only that instant and its half-width differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verification.analysis import crossing_below, fall_time, last_rise_end_time
from verification.measurement import Measurement, Precondition, UncertaintyTerm

RELEASE_REQUIREMENTS = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP")
NORISE_SMOOTH_S = 0.005  # the force's noise averaged out before finding where it stopped rising
#: a rise after a trigger counts beyond max(2 % of the force held at the trigger, 5 N): the
#: no-rise tolerance of shared/domain/traction-safety-reference.md
RISE_FRACTION, RISE_MIN_N = 0.02, 5.0
#: ER-NORISE's further quantity (the specification's `also:` key): how much the force rose
RISE_KEY = "rise"
RISE_WINDOW_S = 3.0  # table s after the trigger in which the force may not rise (the residual time)
TRIGGER_FIT_S = 0.050  # table s of gauge samples before the trigger the force at it is fitted to
TRIGGER_FIT_MIN_SAMPLES = 8  # ... and at least this many (a streamed gauge samples every 4 ms)
#: the course before a trigger may run this much faster than the fastest commanded ramp
#: (plus its own slope noise) before it is taken for the table's reaction, not its course
COURSE_MARGIN = 1.25


def trigger_unsure_s(cap, half_width_s: float, k: float) -> float:
    """How far from t = 0 (table s) a gauge sample can lie and still be on either side of
    the trigger: the trigger instant's half-width plus the gauge clock mapping's, both × K.
    Only samples beyond it are known to be before (or after) the trigger."""
    return (half_width_s + float(getattr(cap, "mapping_half_width_s", 0.0) or 0.0)) * k


def rise_tolerance(f0: float) -> float:
    return max(RISE_FRACTION * abs(f0), RISE_MIN_N)


def release_preconditions(t: np.ndarray, f: np.ndarray, f0: float, residual: float) -> dict[str, list[Precondition]]:
    """What each release measurement relies on, as observed in this capture.

    All four need the gauge to have sampled through the trigger and a force at the
    trigger worth releasing. The 90 → 10 % fall time (ER-SNAP) needs a release that
    reached 10 %: a table that never released has no fall to be sudden (ER-HALF and
    ER-RESIDUAL are its findings). ER-NORISE needs nothing more: a force that held after
    the trigger did not rise."""
    before, after = t[t < 0.0], t[t >= 0.0]
    sampled = Precondition("the gauge sampled through the trigger", bool(len(before) and len(after) > 10),
                           f"{len(before)} samples before the trigger, {len(after)} after")
    present = Precondition("force above the residual force at the trigger", bool(f0 > residual),
                           f"{f0:.4g} N at the trigger, residual {residual:g} N")
    common = [sampled, present]
    post = f[t >= 0.0]
    low = crossing_below(t, f, 0.1 * f0, 0.0)
    complete = Precondition("the force fell below 10 % of the force at the trigger (a release to time)",
                            bool(np.isfinite(low)),
                            f"lowest {float(np.min(post)) if len(post) else float('nan'):.4g} N, 10 % is {0.1 * f0:.4g} N")
    return {"ER-NORISE": common, "ER-HALF": common, "ER-RESIDUAL": common, "ER-SNAP": common + [complete]}


@dataclass(frozen=True)
class TriggerForce:
    """The gauge's force at the trigger instant and what it rests on."""

    force_n: float
    slope_n_s: float  # the force's rate of change at the trigger (a ramp, or 0 at a hold)
    standard_n: float  # the fitted value's noise (standard uncertainty)
    noise_n: float  # the gauge samples' scatter about the line: one sample's noise
    samples: int
    slope_std_n_s: float = 0.0  # the fitted slope's standard error
    window_s: tuple[float, float] = (0.0, 0.0)  # the samples' span, table s
    earlier_noise_n: float = float("nan")  # the scatter about a line of the stretch before the window
    unsure_s: float = 0.0  # table s either side of t = 0 the trigger may lie (`trigger_unsure_s`): left out

    def course(self, t: np.ndarray) -> np.ndarray:
        """The pre-trigger course carried on to instants `t` (the fitted line)."""
        return self.force_n + self.slope_n_s * t

    def on_course(self, fastest_n_s: float) -> bool:
        """Whether the fitted samples follow a course the table was commanded, not already its
        reaction to the trigger (a release is far faster than any ramp)."""
        if not np.isfinite(self.force_n) or abs(self.slope_n_s) > COURSE_MARGIN * fastest_n_s + 4 * self.slope_std_n_s:
            return False
        # a knee in the window (the release begun in it) scatters the samples about the line
        # far beyond the gauge's own noise just before: that is no course either
        return not (np.isfinite(self.earlier_noise_n) and self.noise_n > 3.0 * self.earlier_noise_n + 0.05)


def trigger_force(t: np.ndarray, f: np.ndarray, unsure_s: float = 0.0) -> TriggerForce:
    """The force held at the trigger: the value at t = 0 of a straight line through the
    gauge samples of the TRIGGER_FIT_S (at least TRIGGER_FIT_MIN_SAMPLES samples) that end
    `unsure_s` (`trigger_unsure_s`) before it — the force the table was holding, or ramping
    to, when it was triggered. A mean over the window would lag a ramp by half the window
    (1 N at 200 N/s) and count that much of the ramp as a rise after the trigger; samples
    inside the trigger's uncertainty may already hold the table's reaction (a mains cut's
    freewheel falls 2000 N/s, a snap falls at once) and would bend the line down, so they
    are left out — and the force is never read off the trace at t = 0 itself, which on a
    gauge streaming every 4 ms may lie inside the release."""
    end = -max(0.0, unsure_s)
    idx = np.flatnonzero(t <= end)
    if idx.size < 3:
        return TriggerForce(float("nan"), 0.0, 0.0, 0.0, int(idx.size), unsure_s=unsure_s)
    window = idx[t[idx] >= end - TRIGGER_FIT_S]
    if window.size < TRIGGER_FIT_MIN_SAMPLES:
        window = idx[-TRIGGER_FIT_MIN_SAMPLES:]
    tt, ff = t[window], f[window]
    n = len(tt)
    slope, intercept = np.polyfit(tt, ff, 1)
    scatter = float(np.std(ff - (slope * tt + intercept), ddof=2)) if n > 3 else 0.0
    # the standard error of the fitted line at t = 0 (its end, or beyond it: extrapolated)
    sxx = float(np.sum((tt - tt.mean()) ** 2))
    at_zero = scatter * float(np.sqrt(1.0 / n + tt.mean() ** 2 / sxx)) if sxx > 0 else scatter
    slope_std = scatter / float(np.sqrt(sxx)) if sxx > 0 else 0.0
    earlier = idx[(t[idx] < tt[0]) & (t[idx] >= tt[0] - 2 * (tt[-1] - tt[0]))]
    earlier_noise = float("nan")
    if earlier.size >= 8:
        te, fe = t[earlier], f[earlier]
        earlier_noise = float(np.std(fe - np.polyval(np.polyfit(te, fe, 1), te), ddof=2))
    return TriggerForce(float(intercept), float(slope), at_zero, scatter, n, slope_std, (float(tt[0]), float(tt[-1])),
                        earlier_noise, unsure_s)


def force_at_trigger(t: np.ndarray, f: np.ndarray, unsure_s: float = 0.0) -> float:
    return trigger_force(t, f, unsure_s).force_n


def trial_trigger_force(cap, trigger_half_width_s: float, k: float) -> TriggerForce:
    """The force at the trigger of one capture whose t = 0 is the trigger, known to
    `trigger_half_width_s` wall seconds: fitted once per trial, then carried to every
    measurement of the release that rests on it (the force at the trigger, the rise, the
    course before the trigger)."""
    return trigger_force(cap.t, cap.force, trigger_unsure_s(cap, trigger_half_width_s, k))


def rise_after_trigger(spec, bench, cap, at: TriggerForce, trigger_half_width_s: float, name: str, conditions: dict,
                       preconditions: list[Precondition], requirement: str = "ER-NORISE") -> Measurement:
    """ER-NORISE's amount (or that of `requirement`, whose `also:` key RISE_KEY states the
    same rise: a flexion-distraction table's ES-RELEASE): the largest gauge force in the RISE_WINDOW_S after the trigger
    minus the force held at the trigger (`at`, `trial_trigger_force`), in newtons.

    The largest raw sample, not a smoothed one: smoothing would shave a short jump's top,
    which is the very thing measured; the sample's own noise, which can only have lifted
    it, is a budget line instead. The budget: gauge resolution (two readings); the largest
    sample's noise (up to 3 σ above the force); the fitted force at the trigger (its noise);
    the trigger instant and the gauge clock mapping, each × the force's slope at the
    trigger (at a hold nothing, on a ramp the ramp rate × their half-widths); and the
    calibration's share of the rise (an offset cancels in a difference of two readings)."""
    req = spec.requirement(requirement)
    t, f = cap.t, cap.force
    fit, f0 = at, at.force_n
    unsure = at.unsure_s  # table s either side of t = 0
    # from the earliest the trigger can have been: a rise right after an early trigger counts.
    # A sample within `unsure` of t = 0 may still be before the trigger: there the table may
    # have been on its course (a ramp up goes on rising, one down was higher a moment ago),
    # so such a sample counts only by how far it is above both the force at the trigger and
    # that course; beyond it, above the force at the trigger
    after = (t >= -unsure) & (t <= RISE_WINDOW_S)
    if after.any() and np.isfinite(f0):
        reference = np.where(t <= unsure, np.maximum(f0, fit.course(t)), f0)
        excess = np.where(after, f - reference, -np.inf)
        i = int(np.argmax(excess))
        peak_n, peak_s, rise = float(f[i]), float(t[i]), float(excess[i])
    else:
        peak_n, peak_s, rise = float("nan"), float("nan"), float("nan")
    g = bench.rig.config.gauge
    slope = abs(fit.slope_n_s)
    terms = [
        UncertaintyTerm.rectangular("gauge resolution (two readings)", np.sqrt(2.0) * g.resolution_n / 2.0),
        UncertaintyTerm.rectangular("noise of the largest sample (up to 3 σ above the force)", 3.0 * fit.noise_n),
        UncertaintyTerm(f"force at the trigger: noise of the line through {fit.samples} samples", fit.standard_n),
        UncertaintyTerm.rectangular(f"force at the trigger: trigger instant × K × the slope there ({fit.slope_n_s:.3g} N/s)",
                                    slope * trigger_half_width_s * bench.k),
        UncertaintyTerm.rectangular("force at the trigger: gauge clock mapping × K × the slope there",
                                    slope * cap.mapping_half_width_s * bench.k),
        UncertaintyTerm.expanded("gauge calibration, its share of the rise",
                                 g.calibration.expanded_uncertainty_n * abs(rise) / max(abs(f0), 1.0) if np.isfinite(rise)
                                 else 0.0, g.calibration.coverage_factor),
    ]
    lo, hi = req.limits(RISE_KEY, residual=spec.residual_force_n, force=f0)
    cond = {**conditions, "peak_n": peak_n, "peak_after_trigger_s": peak_s, "slope_at_trigger_n_s": fit.slope_n_s,
            "either_side_of_the_trigger_s": unsure}
    return Measurement(name, req, rise if np.isfinite(rise) else float("inf"), "N", lo, hi, terms, conditions=cond,
                       annotations={"trigger_s": 0.0}, preconditions=preconditions, quantity=RISE_KEY)


def course_precondition(fit: TriggerForce, fastest_n_s: float) -> Precondition:
    """The force at the trigger rests on gauge samples placed before the trigger: they must
    show the table's commanded course, not its reaction. A stream whose instants are off
    (or a reaction before the earliest the trigger can have been) puts the release into
    them: the force at the trigger, and any rise or half-force measured against it, could
    not be told apart from the release itself, and is not a number."""
    unsure = fit.unsure_s
    start, end = fit.window_s
    return Precondition(
        "the gauge samples before the trigger (beyond its ± uncertainty) follow the table's commanded course, "
        "not its release", fit.on_course(fastest_n_s),
        f"{fit.samples} samples from {start * 1e3:.1f} to {end * 1e3:.1f} ms fall or rise at {fit.slope_n_s:.4g} N/s "
        f"(± {fit.slope_std_n_s:.2g}), scattered by {fit.noise_n:.3g} N about it ({fit.earlier_noise_n:.3g} N before); "
        f"the fastest commanded ramp was {fastest_n_s:g} N/s; the trigger is known to ± {unsure * 1e3:.1f} ms table time")


def release_measurements(spec, bench, cap, at: TriggerForce, trigger_half_width_s: float, name: str,
                         conditions: dict, trigger: str | None = None,
                         fastest_n_s: float | None = None) -> list[Measurement]:
    """ER-NORISE (how long, then how much the force rose), ER-HALF, ER-RESIDUAL and ER-SNAP
    of a capture whose t = 0 is the trigger, against the force held at it (`at`: the
    trial's `trial_trigger_force`).

    `trigger_half_width_s` is in wall seconds (how well the trigger instant is known) and
    `trigger` says how it was known (default: an acknowledged write); the fall time is a
    difference of two gauge instants and carries no trigger term."""
    residual = spec.residual_force_n
    t, f = cap.t, cap.force
    f0 = at.force_n
    budget = bench.timing_terms(cap, trigger_half_width_s, *([trigger] if trigger else []))
    fall_budget = [UncertaintyTerm.rectangular("two gauge crossings (sample period each)", 2 * cap.period)]
    # where a rise stopped is found on the force smoothed over 5 ms: up to that window off
    rise_budget = budget + [UncertaintyTerm.rectangular("end of the rise on the 5 ms-smoothed force", NORISE_SMOOTH_S)]
    values = {
        "ER-NORISE": last_rise_end_time(t, f, 0.0, 3.0, rise_tolerance(f0), smooth_s=NORISE_SMOOTH_S, start_level=f0),
        "ER-HALF": crossing_below(t, f, 0.5 * f0, 0.0),
        "ER-RESIDUAL": crossing_below(t, f, residual, 0.0),
        "ER-SNAP": fall_time(t, f, f0, 0.0),
    }
    annotations = {"trigger_s": 0.0, **{k: v for k, v in values.items() if np.isfinite(v)}}
    preconditions = release_preconditions(t, f, f0, residual)
    # what the force at the trigger rests on: ER-NORISE (both) and ER-HALF judge against it;
    # ER-RESIDUAL's level and ER-SNAP's fall need no instant before the trigger
    fastest = fastest_n_s or max(spec.max_ramp_rate_n_s, spec.plan.emergency.setup_ramp_n_s)
    on_course = course_precondition(at, fastest)
    for rid in ("ER-NORISE", "ER-HALF"):
        preconditions[rid] = preconditions[rid] + [on_course]
    out = []
    for rid, value in values.items():
        req = spec.requirement(rid)
        lo, hi = req.limits(residual=residual, force=f0)
        terms = {"ER-SNAP": fall_budget, "ER-NORISE": rise_budget}.get(rid, budget)
        out.append(Measurement(name, req, value, "s", lo, hi, terms,
                               conditions=conditions, annotations=annotations,
                               series={"t_s": t, "force_n": f} if rid == "ER-HALF" else {},
                               preconditions=preconditions[rid]))
        if rid == "ER-NORISE":
            out.append(rise_after_trigger(spec, bench, cap, at, trigger_half_width_s, name, conditions,
                                          preconditions[rid]))
    return out


def residual_release(spec, bench, cap, at: TriggerForce, trigger_half_width_s: float, name: str, conditions: dict,
                     requirement: str, fastest_n_s: float, timing: list[UncertaintyTerm] | None = None
                     ) -> list[Measurement]:
    """A release judged as one requirement with two quantities — the time from the trigger
    until the force is below the residual (its own) and how much it rose in the
    RISE_WINDOW_S after it (`also:` RISE_KEY) — as a flexion-distraction table's
    ES-RELEASE states "as traction ER-*": the same crossing as ER-RESIDUAL, the same rise
    and course checks as ER-NORISE, on a capture whose t = 0 is the trigger. `timing`:
    the crossing's budget (default the bench's timing terms of the gauge capture)."""
    residual = spec.residual_force_n
    t, f = cap.t, cap.force
    f0 = at.force_n
    req = spec.requirement(requirement)
    pre = release_preconditions(t, f, f0, residual)
    lo, hi = req.limits(residual=residual, force=f0)
    value = crossing_below(t, f, residual, 0.0)
    budget = timing if timing is not None else bench.timing_terms(cap, trigger_half_width_s)
    annotations = {"trigger_s": 0.0, **({"below_residual_s": value} if np.isfinite(value) else {})}
    below = Measurement(name, req, value, "s", lo, hi, budget, conditions=conditions, annotations=annotations,
                        series={"t_s": t, "force_n": f}, preconditions=pre["ER-RESIDUAL"])
    rise = rise_after_trigger(spec, bench, cap, at, trigger_half_width_s, name, conditions,
                              pre["ER-NORISE"] + [course_precondition(at, fastest_n_s)], requirement=requirement)
    return [below, rise]
