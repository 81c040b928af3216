"""The measurements of one emergency release, whatever triggered it.

Shared by the emergency-release suite (relays, coils, the watchdog) and the operator
checks (the red button pressed by hand), so a release is judged the same way however
its trigger instant was known: only that instant and its half-width differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from suites.analysis import crossing_below, fall_time, last_rise_end_time
from suites.measurement import Measurement, Precondition, UncertaintyTerm

RELEASE_REQUIREMENTS = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP")
NORISE_SMOOTH_S = 0.005  # the force's noise averaged out before finding where it stopped rising
#: a rise after a trigger counts beyond max(2 % of the force held at the trigger, 5 N): the
#: no-rise tolerance of shared/domain/traction-safety-reference.md
RISE_FRACTION, RISE_MIN_N = 0.02, 5.0
#: ER-NORISE's further quantity (the specification's `also:` key): how much the force rose
RISE_KEY = "rise"
RISE_WINDOW_S = 3.0  # table s after the trigger in which the force may not rise (the residual time)
TRIGGER_FIT_S = 0.010  # table s of gauge samples before the trigger the force at it is fitted to


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


def trigger_force(t: np.ndarray, f: np.ndarray, unsure_s: float = 0.0) -> TriggerForce:
    """The force held at the trigger: the value at t = 0 of a straight line through the
    gauge samples of the TRIGGER_FIT_S that end `unsure_s` (table s: the half-width of the
    trigger instant) before it — the force the table was holding, or ramping to, when it
    was triggered. A mean over the window would lag a ramp by half the window (1 N at
    200 N/s) and count that much of the ramp as a rise after the trigger; samples inside
    the trigger's uncertainty may already hold the table's reaction (a mains cut's
    freewheel falls 2000 N/s) and would bend the line down, so they are left out."""
    end = -max(0.0, unsure_s)
    before = (t >= end - TRIGGER_FIT_S) & (t <= end)
    n = int(before.sum())
    if n < 3:
        return TriggerForce(float(np.interp(0.0, t, f)), 0.0, 0.0, 0.0, n)
    tt, ff = t[before], f[before]
    slope, intercept = np.polyfit(tt, ff, 1)
    scatter = float(np.std(ff - (slope * tt + intercept), ddof=2)) if n > 3 else 0.0
    # the standard error of the fitted line at t = 0 (its end, or beyond it: extrapolated)
    sxx = float(np.sum((tt - tt.mean()) ** 2))
    at_zero = scatter * float(np.sqrt(1.0 / n + tt.mean() ** 2 / sxx)) if sxx > 0 else scatter
    return TriggerForce(float(intercept), float(slope), at_zero, scatter, n)


def force_at_trigger(t: np.ndarray, f: np.ndarray, unsure_s: float = 0.0) -> float:
    return trigger_force(t, f, unsure_s).force_n


def rise_after_trigger(spec, bench, cap, f0: float, trigger_half_width_s: float, name: str, conditions: dict,
                       preconditions: list[Precondition]) -> Measurement:
    """ER-NORISE's amount: the largest gauge force in the RISE_WINDOW_S after the trigger
    minus the force held at the trigger (`trigger_force`), in newtons.

    The largest raw sample, not a smoothed one: smoothing would shave a short jump's top,
    which is the very thing measured; the sample's own noise, which can only have lifted
    it, is a budget line instead. The budget: gauge resolution (two readings); the largest
    sample's noise (up to 3 σ above the force); the fitted force at the trigger (its noise);
    the trigger instant and the gauge clock mapping, each × the force's slope at the
    trigger (at a hold nothing, on a ramp the ramp rate × their half-widths); and the
    calibration's share of the rise (an offset cancels in a difference of two readings)."""
    req = spec.requirement("ER-NORISE")
    t, f = cap.t, cap.force
    unsure = trigger_half_width_s * bench.k  # the trigger instant's half-width, table s
    fit = trigger_force(t, f, unsure)
    # from the earliest the trigger can have been: a rise right after an early trigger counts
    after = (t >= -unsure) & (t <= RISE_WINDOW_S)
    if after.any():
        i = int(np.argmax(np.where(after, f, -np.inf)))
        peak_n, peak_s = float(f[i]), float(t[i])
    else:
        peak_n, peak_s = float("nan"), float("nan")
    rise = peak_n - f0
    g = bench.rig.config.gauge
    slope = abs(fit.slope_n_s)
    terms = [
        UncertaintyTerm.rectangular("gauge resolution (two readings)", np.sqrt(2.0) * g.resolution_n / 2.0),
        UncertaintyTerm.rectangular("noise of the largest sample (up to 3 σ above the force)", 3.0 * fit.noise_n),
        UncertaintyTerm(f"force at the trigger: noise of the line through {fit.samples} samples", fit.standard_n),
        UncertaintyTerm.rectangular(f"force at the trigger: trigger instant × K × the slope there ({fit.slope_n_s:.3g} N/s)",
                                    slope * unsure),
        UncertaintyTerm.rectangular("force at the trigger: gauge clock mapping × K × the slope there",
                                    slope * cap.mapping_half_width_s * bench.k),
        UncertaintyTerm.expanded("gauge calibration, its share of the rise",
                                 g.calibration.expanded_uncertainty_n * abs(rise) / max(abs(f0), 1.0) if np.isfinite(rise)
                                 else 0.0, g.calibration.coverage_factor),
    ]
    lo, hi = req.limits(RISE_KEY, residual=spec.residual_force_n, force=f0)
    cond = {**conditions, "peak_n": peak_n, "peak_after_trigger_s": peak_s, "slope_at_trigger_n_s": fit.slope_n_s}
    return Measurement(name, req, rise if np.isfinite(rise) else float("inf"), "N", lo, hi, terms, conditions=cond,
                       annotations={"trigger_s": 0.0}, preconditions=preconditions, quantity=RISE_KEY)


def release_measurements(spec, bench, cap, f0: float, trigger_half_width_s: float, name: str,
                         conditions: dict, trigger: str | None = None) -> list[Measurement]:
    """ER-NORISE (how long, then how much the force rose), ER-HALF, ER-RESIDUAL and ER-SNAP
    of a capture whose t = 0 is the trigger.

    `trigger_half_width_s` is in wall seconds (how well the trigger instant is known) and
    `trigger` says how it was known (default: an acknowledged write); the fall time is a
    difference of two gauge instants and carries no trigger term."""
    residual = spec.residual_force_n
    t, f = cap.t, cap.force
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
            out.append(rise_after_trigger(spec, bench, cap, f0, trigger_half_width_s, name, conditions,
                                          preconditions[rid]))
    return out
