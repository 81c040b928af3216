"""How long a flexion-distraction treatment of the plan lasts on a table that meets its
contract, and which of its two ends (CYCLES or TREATMENT_TIME) comes first.

Read by the kinematics suite (which end to judge: FD-CYCLES counts a treatment ended by
its count and times one ended by its TREATMENT_TIME) and by verification/budget.py (the
table seconds it plans), so both read the same model: each move a trapezoid at ACCEL up
to SPEED (FDC-1 "A move"; triangular when too short), the dwells as set, the distraction
ramped up before the cycles and down after the controlled end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from verification.flexion_spec import Treatment

#: ACCEL when the table's own is not known (before a rig is open: `rig spec duration`):
#: the domain file's proposed default, °/s²
DEFAULT_ACCEL_DEG_S2 = 40.0
#: a treatment whose count and time would end it within this many table seconds of each
#: other ends by whichever the table reaches first: neither end is judged as planned
END_MARGIN_S = 2.0


def move_s(travel_deg: float, speed_deg_s: float, accel_deg_s2: float = DEFAULT_ACCEL_DEG_S2) -> float:
    """A move from rest to rest: trapezoidal, or triangular when it cannot reach SPEED."""
    travel = abs(travel_deg)
    if travel * accel_deg_s2 >= speed_deg_s ** 2:
        return travel / speed_deg_s + speed_deg_s / accel_deg_s2
    return 2.0 * math.sqrt(travel / accel_deg_s2)


def cycle_s(t: Treatment, accel_deg_s2: float = DEFAULT_ACCEL_DEG_S2) -> float:
    """One cycle: out, pause, back, rest (lateral: to each side)."""
    sides = len(t.motions)
    return sides * (2 * move_s(t.depth_deg, t.speed_deg_s, accel_deg_s2) + t.pause_s + t.rest_s)


@dataclass(frozen=True)
class TreatmentPlan:
    """A treatment as a compliant table runs it (table seconds from START)."""

    ramp_up_s: float  # PHASE 1: the distraction to its setting before the first move
    cycles_s: float  # from the first move to the start of the controlled end
    return_s: float  # the controlled end's move back to neutral (at most one full move)
    ramp_down_s: float
    ended_by: str  # "count", "time" or "either" (too close to tell)

    @property
    def total_s(self) -> float:
        return self.ramp_up_s + self.cycles_s + self.return_s + self.ramp_down_s


def plan_of(t: Treatment, distraction_rate_n_s: float, accel_deg_s2: float = DEFAULT_ACCEL_DEG_S2) -> TreatmentPlan:
    ramp = t.distraction_n / distraction_rate_n_s if t.distraction_n else 0.0
    by_count = t.cycles * cycle_s(t, accel_deg_s2) if t.cycles else math.inf
    # TREATMENT_TIME counts from START, the distraction's ramp included
    by_time = max(t.treatment_s - ramp, 0.0) if t.treatment_s else math.inf
    if abs(by_count - by_time) < END_MARGIN_S:
        ended_by = "either"
    else:
        ended_by = "count" if by_count < by_time else "time"
    cycles = min(by_count, by_time)
    back = 0.0 if ended_by == "count" else move_s(t.depth_deg, t.speed_deg_s, accel_deg_s2)
    return TreatmentPlan(ramp, cycles, back, ramp, ended_by)


__all__ = ["DEFAULT_ACCEL_DEG_S2", "END_MARGIN_S", "TreatmentPlan", "cycle_s", "move_s", "plan_of"]
