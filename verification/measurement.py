"""Measurements with limits, uncertainty and a verdict by a stated decision rule.

OpenHTF-style: a suite produces `Measurement`s; each knows its requirement IDs, value,
unit, limits, expanded uncertainty (with its budget), the decision rule and the time
series behind it, and judges itself. Outputs (terminal table, run record, report)
only consume them. Verdicts are PASS, FAIL or INCONCLUSIVE — the last when the
uncertainty interval straddles a limit (ILAC-G8 guard-banded acceptance) — or N/A.

A check relies on things it does not itself verify: force present when RESET is tried,
a release to time, a latch to keep. Each measurement lists those `preconditions` with
what was observed; when one did not hold, the measurement is NOT APPLICABLE (N/A, with
the reason) instead of judged: a table must not FAIL a requirement it met because
another requirement's defect took away what the check needed. N/A never decides a
requirement's verdict; a requirement with nothing but N/A stays NOT RUN.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from verification.spec import Requirement

TUR_MINIMUM = 4.0  # ANSI/NCSL Z540.3 practice



# ---------------------------------------------------------------- how a number and a limit read
#: significant digits of a measured value and of a limit as every view shows them ...
VALUE_DIGITS = 4
#: ... and of an expanded uncertainty (GUM 7.2.6: at most two significant digits)
U_DIGITS = 2


def number_text(value: float, unit: str = "", digits: int = VALUE_DIGITS) -> str:
    """A number as every view shows it: `digits` significant digits (4 for values and limits:
    a 0.01 N gauge reading at 890 N keeps its tenths; 2 for an uncertainty), then the unit."""
    return f"{value:.{digits}g} {unit}".strip()


def _limit_part(bound) -> str:
    # a specification limit may be a formula of the test's conditions ("max(0.05 * setting, 10)")
    return number_text(bound) if isinstance(bound, (int, float)) and not isinstance(bound, bool) else str(bound)


def limits_text(lower, upper, unit: str = "") -> str:
    """"≤ 20 N", "≥ 0.05 N", "2 … 8 N", "—" for none."""
    if lower is not None and upper is not None:
        return f"{_limit_part(lower)} … {_limit_part(upper)} {unit}".strip()
    if upper is not None:
        return f"≤ {_limit_part(upper)} {unit}".strip()
    if lower is not None:
        return f"≥ {_limit_part(lower)} {unit}".strip()
    return "—"


def closeness(value, lower, upper, *, boolean: bool = False) -> float:
    """How close a value came to its limits, in units of the limit (larger is worse; > 0 is
    beyond it). A boolean that held is never closer than a measured value: an operator's
    observation traced to a guard-banded requirement must not hide that requirement's worst
    measured value; a value never reached (None) is the worst of all."""
    if boolean:
        return float("-inf") if value else 1.0
    if value is None:
        return float("inf")
    worst = float("-inf")
    if upper is not None:
        worst = max(worst, (value - upper) / (abs(upper) or 1.0))
    if lower is not None:
        worst = max(worst, (lower - value) / (abs(lower) or 1.0))
    return worst


class Verdict(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_APPLICABLE = "N/A"

    @classmethod
    def worst(cls, verdicts) -> "Verdict":
        verdicts = list(verdicts)
        for v in (cls.FAIL, cls.INCONCLUSIVE):
            if v in verdicts:
                return v
        return cls.PASS


@dataclass(frozen=True)
class Precondition:
    """Something a check relies on, and what was observed of it."""

    what: str  # e.g. "force above the residual force when RESET was tried"
    held: bool
    observed: str  # e.g. "gauge 3.1 N at the RESET write"

    def to_dict(self) -> dict:
        return {"what": self.what, "held": bool(self.held), "observed": self.observed}


@dataclass(frozen=True)
class UncertaintyTerm:
    """One line of an uncertainty budget: a standard uncertainty in the value's unit."""

    name: str
    standard: float

    @classmethod
    def rectangular(cls, name: str, half_width: float) -> "UncertaintyTerm":
        return cls(name, abs(half_width) / math.sqrt(3.0))

    @classmethod
    def expanded(cls, name: str, expanded: float, k: float = 2.0) -> "UncertaintyTerm":
        return cls(name, abs(expanded) / k)


def expanded_uncertainty(terms: list[UncertaintyTerm], k: float = 2.0) -> float:
    return k * math.sqrt(sum(t.standard**2 for t in terms))


@dataclass
class Measurement:
    name: str
    requirement: Requirement
    value: float | bool
    unit: str = ""
    lower: float | None = None
    upper: float | None = None
    budget: list[UncertaintyTerm] = field(default_factory=list)
    conditions: dict = field(default_factory=dict)  # setpoint, trigger, phase, rate…
    series: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    annotations: dict = field(default_factory=dict)  # trigger instants, crossings (series time base)
    note: str = ""
    preconditions: list[Precondition] = field(default_factory=list)
    quantity: str | None = None  # a further quantity of the requirement (its `also:` key); None: its own

    @property
    def not_applicable(self) -> str:
        """Why this check could not be judged ('' when every precondition held)."""
        missing = next((p for p in self.preconditions if not p.held), None)
        if missing is not None:
            return f"{missing.what}: not so — {missing.observed}"
        if self.value is None:  # nothing was measured: never judged, never formatted as a number
            return "no value was measured"
        return ""

    @property
    def uncertainty(self) -> float:
        return expanded_uncertainty(self.budget) if self.budget else 0.0

    @property
    def tur(self) -> float | None:
        """Test uncertainty ratio: the tolerance half-span over the expanded uncertainty."""
        if self.requirement.decision_rule == "boolean" or not self.uncertainty:
            return None
        if self.lower is not None and self.upper is not None:
            half = (self.upper - self.lower) / 2.0
        else:
            half = abs(self.upper if self.upper is not None else self.lower)
        return half / self.uncertainty if half else None

    @property
    def tur_flag(self) -> bool:
        tur = self.tur
        return tur is not None and tur < TUR_MINIMUM

    @property
    def verdict(self) -> Verdict:
        if self.not_applicable:
            return Verdict.NOT_APPLICABLE
        if self.requirement.decision_rule == "boolean":
            return Verdict.PASS if bool(self.value) else Verdict.FAIL
        value = float(self.value)
        if not math.isfinite(value):
            return Verdict.FAIL  # never reached (e.g. never fell below a level)
        u = self.uncertainty
        verdicts = []
        if self.upper is not None:
            verdicts.append(Verdict.PASS if value + u <= self.upper else Verdict.FAIL if value - u > self.upper else Verdict.INCONCLUSIVE)
        if self.lower is not None:
            verdicts.append(Verdict.PASS if value - u >= self.lower else Verdict.FAIL if value + u < self.lower else Verdict.INCONCLUSIVE)
        return Verdict.worst(verdicts)

    @property
    def margin(self) -> float:
        """Distance to the nearest limit in units of the limit (negative: outside): the
        negative of `closeness`, the one rule every view ranks measurements by."""
        if self.not_applicable:
            return math.inf  # never the worst of anything
        if self.requirement.decision_rule == "boolean":
            return -closeness(bool(self.value), None, None, boolean=True)
        value = float(self.value)
        return -closeness(value if math.isfinite(value) else None, self.lower, self.upper)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "requirement": self.requirement.id,
            "quantity": self.quantity,
            "value": self.value if isinstance(self.value, bool) or self.value is None else float(self.value),
            "unit": self.unit,
            "lower": self.lower,
            "upper": self.upper,
            "uncertainty": self.uncertainty,
            "coverage_factor": 2.0,
            "budget": [{"name": t.name, "standard": t.standard} for t in self.budget],
            "tur": self.tur,
            "tur_below_4": self.tur_flag,
            "decision_rule": self.requirement.decision_rule,
            "verdict": self.verdict.value,
            "conditions": self.conditions,
            "annotations": self.annotations,
            "note": self.note,
            "preconditions": [p.to_dict() for p in self.preconditions],
            "not_applicable": self.not_applicable or None,
        }
