"""Drift of one table's requirement over its runs: what no single run can show.

Each run gives one point per requirement: its worst (deciding) value and that value's
expanded uncertainty U (k = 2). Two warnings, both stated with their numbers:

- **step**: the newest value differs from the table's history (the previous runs, up to
  `window`) by more than the combined expanded uncertainty of the difference. The
  history's mean is weighted by 1/u²; its uncertainty is the larger of the weighted
  mean's and the scatter's standard error, and run-to-run scatter beyond what the
  runs' own U explain (reproducibility, estimated from the history) is added to the
  newest value's, so an ordinary run of a scattered requirement is no step.
- **trend**: a weighted least-squares line through the last `window` runs (value over
  run number) whose slope differs from zero by more than 2 standard uncertainties
  (scaled by the Birge ratio when the points scatter more than their U say) and is
  projected to reach the guard-banded limit — the limit moved inward by the newest
  run's U, where PASS ends — within `horizon` more runs. A valve wearing out shows as
  ER-HALF creeping up here before any run fails it.

Only guard-banded requirements with numbers drift; a boolean one holds or not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from reports.rundir import U_DIGITS, number_text

MIN_RUNS = 4  # a trend needs this many points; a step at least 2 before the newest
HORIZON_RUNS = 5
WINDOW_RUNS = 20
K = 2.0


@dataclass(frozen=True)
class Point:
    value: float
    uncertainty: float  # expanded, k = 2
    lower: float | None
    upper: float | None
    verdict: str
    label: str = ""  # the run's name or date, for the text


@dataclass(frozen=True)
class DriftWarning:
    requirement: str
    serial: str
    kind: str  # "step" | "trend"
    text: str
    value: float
    reference: float  # the history's mean (step) or the projected value (trend)
    combined_u: float  # expanded uncertainty the move is compared with
    runs_to_limit: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _u(p: Point) -> float:
    return max(p.uncertainty / K, 1e-12)


def usable(points: list[Point]) -> list[Point]:
    return [p for p in points if p.value is not None and math.isfinite(p.value)]


def step_warning(requirement: str, serial: str, points: list[Point], unit: str = "",
                 window: int = WINDOW_RUNS) -> DriftWarning | None:
    points = usable(points)
    if len(points) < 3:
        return None
    new, history = points[-1], points[-1 - window:-1]
    x = np.array([p.value for p in history])
    u = np.array([_u(p) for p in history])
    w = 1.0 / u**2
    mean = float(np.sum(w * x) / np.sum(w))
    m = len(history)
    s = float(np.std(x, ddof=1)) if m >= 2 else 0.0
    u_mean = max(math.sqrt(1.0 / float(np.sum(w))), s / math.sqrt(m))
    reproducibility = math.sqrt(max(0.0, s**2 - float(np.mean(u**2))))
    combined = K * math.sqrt(_u(new) ** 2 + reproducibility**2 + u_mean**2)
    moved = new.value - mean
    if abs(moved) <= combined:
        return None
    return DriftWarning(requirement, serial, "step",
                        f"{requirement} on {serial}: {number_text(new.value, unit)} moved {moved:+.3g} {unit} from its history "
                        f"({number_text(mean, unit)} over {m} runs), more than the combined U {number_text(combined, unit, U_DIGITS)}",
                        new.value, mean, combined)


def trend_warning(requirement: str, serial: str, points: list[Point], unit: str = "",
                  horizon: int = HORIZON_RUNS, window: int = WINDOW_RUNS) -> DriftWarning | None:
    points = usable(points)[-window:]
    n = len(points)
    if n < MIN_RUNS:
        return None
    new = points[-1]
    i = np.arange(n, dtype=float)
    x = np.array([p.value for p in points])
    w = 1.0 / np.array([_u(p) for p in points]) ** 2
    design = np.column_stack([np.ones(n), i])
    normal = design.T @ (design * w[:, None])
    cov = np.linalg.inv(normal)
    a, b = cov @ (design.T @ (w * x))
    chi2 = float(np.sum(w * (x - (a + b * i)) ** 2))
    cov = cov * max(1.0, chi2 / (n - 2))  # Birge: the points scatter more than their U say
    u_b = math.sqrt(cov[1, 1])
    if abs(b) <= K * u_b:
        return None  # no slope that the scatter does not explain
    at = n - 1 + horizon
    projected = a + b * at
    u_proj = math.sqrt(cov[0, 0] + 2 * at * cov[0, 1] + at * at * cov[1, 1])
    fitted_now = a + b * (n - 1)
    for limit, sign in ((new.upper, 1.0), (new.lower, -1.0)):
        if limit is None or sign * b <= 0:
            continue
        accept = limit - sign * new.uncertainty  # the guard-banded limit: beyond it, no PASS
        if sign * (projected - accept) < 0:
            continue
        runs_left = max(0.0, (accept - fitted_now) / b)
        word = "rising" if b > 0 else "falling"
        return DriftWarning(requirement, serial, "trend",
                            f"{requirement} on {serial}: {word} {b:+.3g} {unit}/run (± {K * u_b:.2g}) over {n} runs, "
                            f"projected {number_text(projected)} ± {number_text(K * u_proj, unit, U_DIGITS)} in {horizon} runs: reaches the "
                            f"guard-banded limit {number_text(accept, unit)} in about {runs_left:.1f} runs "
                            f"(limit {number_text(limit, unit)})",
                            new.value, float(projected), K * u_proj, runs_left)
    return None


def assess(requirement: str, serial: str, points: list[Point], unit: str = "", *, horizon: int = HORIZON_RUNS,
           window: int = WINDOW_RUNS) -> list[DriftWarning]:
    found = [trend_warning(requirement, serial, points, unit, horizon, window),
             step_warning(requirement, serial, points, unit, window)]
    return [w for w in found if w is not None]


def points_from_rows(rows) -> list[Point]:
    """Trend rows of the store (oldest first) → points; runs without a number are left out."""
    out = []
    for r in rows:
        if r.decision_rule == "boolean" or r.value is None or r.uncertainty is None:
            continue
        started = getattr(r, "started_utc", None)
        out.append(Point(float(r.value), float(r.uncertainty), r.lower, r.upper, r.verdict,
                         started.strftime("%Y-%m-%d %H:%M") if started else ""))
    return out
