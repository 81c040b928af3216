"""The measurements of one emergency release, whatever triggered it.

Shared by the emergency-release suite (relays, coils, the watchdog) and the operator
checks (the red button pressed by hand), so a release is judged the same way however
its trigger instant was known: only that instant and its half-width differ.
"""

from __future__ import annotations

import numpy as np

from suites.analysis import crossing_below, fall_time, last_maximum_time
from suites.measurement import Measurement, UncertaintyTerm

RELEASE_REQUIREMENTS = ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP")


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
    values = {
        "ER-NORISE": last_maximum_time(t, f, 0.0, 3.0),
        "ER-HALF": crossing_below(t, f, 0.5 * f0, 0.0),
        "ER-RESIDUAL": crossing_below(t, f, residual, 0.0),
        "ER-SNAP": fall_time(t, f, f0, 0.0),
    }
    annotations = {"trigger_s": 0.0, **{k: v for k, v in values.items() if np.isfinite(v)}}
    out = []
    for rid, value in values.items():
        req = spec.requirement(rid)
        lo, hi = req.limits(residual=residual, force=f0)
        out.append(Measurement(name, req, value, "s", lo, hi, fall_budget if rid == "ER-SNAP" else budget,
                               conditions=conditions, annotations=annotations,
                               series={"t_s": t, "force_n": f} if rid == "ER-HALF" else {}))
    return out
