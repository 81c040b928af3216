"""The measurements of one emergency release, whatever triggered it.

Shared by the emergency-release suite (relays, coils, the watchdog) and the operator
checks (the red button pressed by hand), so a release is judged the same way however
its trigger instant was known: only that instant and its half-width differ.
"""

from __future__ import annotations

import numpy as np

from suites.analysis import crossing_below, fall_time, last_rise_end_time
from suites.measurement import Measurement, Precondition, UncertaintyTerm

RELEASE_REQUIREMENTS = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP")
NORISE_SMOOTH_S = 0.005  # the force's noise averaged out before finding where it stopped rising
#: a rise after a trigger counts beyond max(2 % of the force held at the trigger, 5 N): the
#: no-rise tolerance of shared/domain/traction-safety-reference.md
RISE_FRACTION, RISE_MIN_N = 0.02, 5.0


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


def force_at_trigger(t: np.ndarray, f: np.ndarray) -> float:
    """The force held at the trigger: the last 10 ms before it (the gauge's noise averaged)."""
    before = (t >= -0.01) & (t <= 0.0)
    return float(np.mean(f[before])) if before.any() else float(np.interp(0.0, t, f))


def release_measurements(spec, bench, cap, f0: float, trigger_half_width_s: float, name: str,
                         conditions: dict, trigger: str | None = None) -> list[Measurement]:
    """ER-NORISE, ER-HALF, ER-RESIDUAL and ER-SNAP of a capture whose t = 0 is the trigger.

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
    return out
