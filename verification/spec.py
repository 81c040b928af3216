"""Safety specifications as data: requirements with IDs, sources, limits and rules.

A specification file (suites/specs/*.yaml) is what a quality engineer reviews: every
requirement names the clause or source it comes from, the quantity, the limit formula
and the decision rule. The suites only read it; changing a tolerance is a reviewed
change to a data file, never to test code.

Each kind of table has its own ratings and its own plan (a traction table samples forces
and ramp rates, a flexion-distraction table depths, speeds and moving phases), so a
specification's `kind` chooses its model through a registry keyed by the table kinds
drivers/kinds.py knows: a model class registers itself with `@register_specification`,
and a new kind of table is one registered class (and one line in SPEC_MODULES), never an
`if kind == ...` in the loader. What every kind shares — requirements, their limit
formulas and decision rules, the unit vocabulary, the profiles — lives here once.
"""

from __future__ import annotations

from pathlib import Path
from importlib import import_module
from typing import Annotated, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers.errors import ConfigError
from verification.formula import Formula

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"  # the test modules and, in specs/, the specifications
SPECS_DIR = SUITES_DIR / "specs"

#: what each decision rule means, quoted on every measurement and in the report
DECISION_RULES = {
    "guard-banded": (
        "ILAC-G8 guard-banded acceptance: PASS when the value with its expanded uncertainty "
        "(k=2) lies inside the limits, FAIL when it lies outside even after subtracting it, "
        "INCONCLUSIVE when the uncertainty interval straddles a limit"
    ),
    "boolean": "PASS when the device did what the requirement says (an observed behaviour, no uncertainty)",
}

#: variables a traction specification's limit formulas may use (the suites supply each)
TRACTION_VARIABLES = frozenset({"setting", "rate", "rated", "residual", "force", "watchdog"})
#: variables a flexion-distraction specification's formulas may use: the set depth (deg),
#: the set SPEED and the rated speed (deg/s), BACKOFF as the table states it (deg), a set
#: duration or force (setting), the force at a trigger, the residual force, the watchdog
FLEXION_VARIABLES = frozenset({"depth", "speed", "rated_speed", "backoff", "setting", "force", "residual", "watchdog"})
#: every variable a limit formula may use; a specification's kind narrows it (formula_variables)
FORMULA_VARIABLES = set(TRACTION_VARIABLES | FLEXION_VARIABLES)

#: the units a requirement's quantity may be stated in: SI, except angles, which are in
#: degrees everywhere inside traction-rig (drivers/units.py says why); a count has no unit
#: of measure but says what is counted
UNITS = {
    "N": "newton",
    "N/s": "newton per second",
    "s": "second",
    "deg": "degree (angle)",
    "deg/s": "degree per second (angular speed)",
    "count": "a number of events (cycles)",
}

#: run profiles: `quick` for daily use, `full` the compliance run (adds what takes long:
#: treatment sessions of clinical length). A plan entry marked `full` runs only in `full`.
PROFILES = ("quick", "full")
DEFAULT_PROFILE = "quick"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def quantity_id(requirement: str, key: str | None = None) -> str:
    """The trace id of one quantity a requirement bounds: the requirement's id for its own,
    `ID.key` for a further one (ER-NORISE.rise). A verdict-table row, a report row, a
    results-database trend and a fault's mapping each use it."""
    return f"{requirement}.{key}" if key else requirement


def _check_formula(value):
    if value is None:
        return value
    formula = Formula(value)
    unknown = set(formula.names) - FORMULA_VARIABLES
    if unknown:
        raise ValueError(f"unknown variable {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(FORMULA_VARIABLES))})")
    return value


def _limits_of(lower, upper, variables: dict) -> tuple[float | None, float | None]:
    low = Formula(lower)(**variables) if lower is not None else None
    high = Formula(upper)(**variables) if upper is not None else None
    return low, high


class Bounded(Strict):
    """A measured quantity and its limit formulas: a requirement's own, or a further one."""

    quantity: str = Field(min_length=1)
    unit: str = ""
    upper: str | float | None = None
    lower: str | float | None = None

    @field_validator("upper", "lower")
    @classmethod
    def _formula(cls, value):
        return _check_formula(value)

    @field_validator("unit")
    @classmethod
    def _unit(cls, value):
        if value and value not in UNITS:
            raise ValueError(f"unknown unit {value!r} (one of {', '.join(UNITS)}; angles in deg)")
        return value

    def formula_names(self) -> set[str]:
        return {n for f in (self.lower, self.upper) if f is not None for n in Formula(f).names}


class Quantity(Bounded):
    """A further quantity a requirement bounds, judged by the requirement's decision rule:
    ER-NORISE bounds how long the force rises after a trigger and by how much. Each is
    measured and reported on its own; the requirement's verdict is the worst of them."""

    key: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="short name, e.g. rise")

    @model_validator(mode="after")
    def _limits(self):
        if self.upper is None and self.lower is None:
            raise ValueError(f"quantity {self.key}: needs an upper or a lower limit")
        return self


class Requirement(Bounded):
    id: str = Field(pattern=r"^[A-Z]{2}-[A-Z0-9-]+$")
    title: str = Field(min_length=1)
    source: str = Field(min_length=1, description="clause or source; (J) marks engineering judgment")
    decision_rule: Literal["guard-banded", "boolean"] = "guard-banded"
    also: list[Quantity] = Field(default_factory=list, description="further quantities the requirement bounds")

    @model_validator(mode="after")
    def _limits(self):
        if self.decision_rule == "guard-banded" and self.upper is None and self.lower is None:
            raise ValueError("a guard-banded requirement needs an upper or a lower limit")
        if self.also and self.decision_rule != "guard-banded":
            raise ValueError("further quantities (also:) need the guard-banded decision rule")
        keys = [q.key for q in self.also]
        if len(set(keys)) != len(keys):
            raise ValueError(f"also: a quantity key appears twice ({', '.join(keys)})")
        return self

    def further(self, key: str) -> Quantity:
        for q in self.also:
            if q.key == key:
                return q
        raise KeyError(f"{self.id}: no further quantity {key!r} (the specification's also: has "
                       f"{', '.join(q.key for q in self.also) or 'none'})")

    def limits(self, quantity: str | None = None, **variables: float) -> tuple[float | None, float | None]:
        """The limits of the requirement's quantity, or of its further quantity `quantity`."""
        if quantity is None:
            return _limits_of(self.lower, self.upper, variables)
        q = self.further(quantity)
        return _limits_of(q.lower, q.upper, variables)

    @property
    def rule_text(self) -> str:
        return DECISION_RULES[self.decision_rule]


class IntermittentPlan(Strict):
    hold_force_n: float = Field(gt=0)
    rest_force_n: float = Field(ge=0)
    hold_s: float = Field(ge=0.1, le=99)
    rest_s: float = Field(ge=0.1, le=99)
    treatment_s: int = Field(ge=1, le=5940)


class Session(Strict):
    """One intermittent treatment the suites run: the plan's intermittent levels and times
    unless it names its own levels. Sessions sample the treatment's length (a timer that
    drifts only in long sessions) and its levels (low and high forces)."""

    treatment_s: int = Field(ge=1, le=5940, description="TREATMENT_TIME, table seconds")
    hold_force_n: float | None = Field(None, gt=0)
    rest_force_n: float | None = Field(None, ge=0)
    profile: Literal["quick", "full"] = Field("quick", description="full: run only in the full profile")
    mode: Literal["intermittent", "static"] = Field("intermittent", description="MODE: static holds the hold "
                                                    "level until TREATMENT_TIME (judged: TT-TIME)")

    @property
    def test_id(self) -> str:
        """The session's id in test names: its length, its levels when it names its own, static."""
        levels = f"-{self.hold_force_n:g}N" if self.hold_force_n is not None else ""
        return f"{self.treatment_s}s{levels}{'-static' if self.mode == 'static' else ''}"


#: the emergency triggers a suite can apply (test_emergency_release runs one test per trigger)
EmergencyTrigger = Literal["estop_coil", "estop_button", "switch_pressed", "switch_unplugged", "watchdog", "mains_cut"]
EMERGENCY_TRIGGERS: tuple[str, ...] = EmergencyTrigger.__args__


class EmergencyPlan(Strict):
    trials: int = Field(20, ge=1, description="trials per trigger, spread over phases and forces")
    forces_n: list[float] = Field(min_length=1)
    phases: list[Literal["ramp_up", "hold", "ramp_to_rest", "rest"]] = ["ramp_up", "hold", "ramp_to_rest", "rest"]
    triggers: list[EmergencyTrigger] = list(EMERGENCY_TRIGGERS)
    setup_ramp_n_s: float = Field(gt=0, description="ramp used to reach the trial force outside ramp-up trials")
    quick_trials: int | None = Field(None, ge=1, description="trials per trigger in the quick profile (default: trials)")

    def trials_for(self, profile: str) -> int:
        """Trials per trigger: the specification's N in the full profile (the compliance run),
        `quick_trials` in the quick one."""
        return self.trials if profile == "full" or self.quick_trials is None else self.quick_trials

    def trial_plan(self, profile: str) -> list[tuple[str, float]]:
        """Each trial's (phase, force) in order: every phase × force combination in turn, so
        any count of trials spreads over all of them before repeating one."""
        combos = [(p, f) for p in self.phases for f in self.forces_n]
        return [combos[i % len(combos)] for i in range(self.trials_for(profile))]


class TestPlan(Strict):
    setpoints_n: list[float] = Field(min_length=8)
    falling_setpoints_n: list[float] = Field(default_factory=list, description="FA-STATIC approached from above: "
                                             "after the rising staircase, START down to each")
    settle_s: float = Field(3.0, gt=0)
    ramp_rates_n_s: list[float] = Field(min_length=2)
    ramp_force_n: float = Field(gt=0)
    ramp_high_force_n: float | None = Field(None, gt=0, description="a ramp case at the fastest rate to this force")
    intermittent: IntermittentPlan
    sessions: list[Session] = Field(default_factory=list, description="intermittent treatments run (default: one "
                                    "of intermittent.treatment_s)")
    emergency: EmergencyPlan
    watchdog_s: float = Field(2.0, gt=0, le=60)
    overforce_limit_n: float = Field(gt=0)

    def sessions_for(self, profile: str) -> list[Session]:
        """The intermittent sessions a profile runs, in plan order: `full` runs every one."""
        every = self.sessions or [Session(treatment_s=self.intermittent.treatment_s)]
        return [s for s in every if profile == "full" or s.profile == "quick"]

    def levels_of(self, session: Session) -> tuple[float, float]:
        """(hold, rest) force of a session: its own where it names them, else plan.intermittent's."""
        im = self.intermittent
        return (im.hold_force_n if session.hold_force_n is None else session.hold_force_n,
                im.rest_force_n if session.rest_force_n is None else session.rest_force_n)

    def ramp_cases(self) -> dict[str, tuple[float, float]]:
        """The ramp cases (id → rate, force): the slowest and the fastest rate to ramp_force_n,
        and the fastest to ramp_high_force_n (the high end of the range)."""
        rates = sorted(self.ramp_rates_n_s)
        cases = {"slow": (rates[0], self.ramp_force_n), "fast": (rates[-1], self.ramp_force_n)}
        if self.ramp_high_force_n is not None:
            cases["fast-high"] = (rates[-1], self.ramp_high_force_n)
        return cases


#: a specification's requirement list (every kind has one, after its plan)
Requirements = Annotated[list[Requirement], Field(min_length=1)]
#: where a specification was read from (not part of its content)
SourcePath = Annotated[Path | None, Field(None, exclude=True)]


class SpecificationBase(Strict):
    """What every kind of specification has: a name, a version, the table kind, and
    requirements traced to sources. A kind's model adds its ratings, `plan` and
    `requirements` (in that order: the order a run records the specification in), and sets
    `formula_variables`, the variables its suites supply to the limit formulas."""

    name: str
    title: str
    version: str
    kind: str

    formula_variables: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _requirements_consistent(self):
        ids = [r.id for r in self.requirements]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"requirement id {', '.join(dupes)} appears twice")
        for r in self.requirements:
            for where, q in [("", r), *((f" also {q.key}", q) for q in r.also)]:
                foreign = q.formula_names() - self.formula_variables
                if foreign:
                    raise ValueError(f"requirement {r.id}{where}: variable {', '.join(sorted(foreign))} is not one a "
                                     f"{self.kind} suite supplies ({', '.join(sorted(self.formula_variables))})")
        return self

    def requirement(self, rid: str) -> Requirement:
        for r in self.requirements:
            if r.id == rid:
                return r
        raise KeyError(f"{self.name}: no requirement {rid}")

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.requirements]

    @property
    def quantity_ids(self) -> list[str]:
        """Every quantity's trace id: each requirement's, then its further ones (ER-NORISE.rise)."""
        return [q for r in self.requirements for q in [r.id, *(quantity_id(r.id, a.key) for a in r.also)]]


# ---------------------------------------------------------------- the registry of models by table kind

S = TypeVar("S", bound=type[SpecificationBase])

#: modules whose specification models register themselves (imported before any look-up)
SPEC_MODULES = ("verification.flexion_spec",)
_MODELS: dict[str, type[SpecificationBase]] = {}


def register_specification(cls: S) -> S:
    """Register a specification model for the table kinds its `kind` field allows (a
    Literal of table kinds, as drivers/kinds.py names them)."""
    kinds = getattr(cls.model_fields["kind"].annotation, "__args__", ())
    if not kinds or not all(isinstance(k, str) for k in kinds):
        raise TypeError(f"{cls.__name__}: kind must be a Literal of table kinds")
    for kind in kinds:
        other = _MODELS.get(kind, cls)
        if (other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):  # a module imported
            # again (pytester's in-process runs) registers its class anew: that one replaces itself
            raise ValueError(f"{cls.__name__}: table kind {kind} already has {other.__name__}")
        _MODELS[kind] = cls
    return cls


def specification_models() -> dict[str, type[SpecificationBase]]:
    """table kind → the specification model for it, in registration order."""
    for module in SPEC_MODULES:
        import_module(module)
    return dict(_MODELS)


def model_for(kind) -> type[SpecificationBase]:
    """The specification model of a table kind; one line naming the known kinds if none."""
    models = specification_models()
    try:
        return models[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind {kind!r} is not a table kind with a specification model "
                         f"(known: {', '.join(models)})") from None


def specification_of(data: dict, source: Path | None = None) -> SpecificationBase:
    """A specification from its content (a file's, or as a run recorded it), by its kind."""
    return model_for(data.get("kind"))(**data, source=source)


@register_specification
class Specification(SpecificationBase):
    """A powered traction table's specification (lumbar, cervical): forces and ramps."""

    kind: Literal["lumbar", "cervical"]
    rated_force_n: float = Field(gt=0)
    residual_force_n: float = Field(gt=0)
    max_ramp_rate_n_s: float = Field(gt=0)
    plan: TestPlan
    requirements: Requirements
    source: SourcePath

    formula_variables: ClassVar[frozenset[str]] = TRACTION_VARIABLES

    @model_validator(mode="after")
    def _consistent(self):
        if max(self.plan.setpoints_n) > self.rated_force_n:
            raise ValueError("plan.setpoints_n: a setpoint is above rated_force_n")
        if max(self.plan.ramp_rates_n_s) > self.max_ramp_rate_n_s:
            raise ValueError("plan.ramp_rates_n_s: a rate is above max_ramp_rate_n_s")
        highest = [("plan.falling_setpoints_n", max(self.plan.falling_setpoints_n, default=0.0)),
                   ("plan.ramp_high_force_n", self.plan.ramp_high_force_n or 0.0),
                   *((f"plan.sessions[{i}].hold_force_n", s.hold_force_n or 0.0) for i, s in enumerate(self.plan.sessions))]
        for where, force in highest:
            if force > self.rated_force_n:
                raise ValueError(f"{where}: {force:g} N is above rated_force_n ({self.rated_force_n:g} N)")
        if self.plan.falling_setpoints_n and max(self.plan.falling_setpoints_n) >= max(self.plan.setpoints_n):
            raise ValueError("plan.falling_setpoints_n: each must lie below the highest setpoint (it is approached "
                             "from above)")
        return self


def builtin_names() -> list[str]:
    """The built-in specifications, grouped by their model in registration order (traction
    first), by name within a model."""
    order = {cls: i for i, cls in enumerate(dict.fromkeys(specification_models().values()))}

    def rank(path: Path) -> tuple:
        try:
            kind = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("kind")
        except (OSError, yaml.YAMLError, AttributeError):
            kind = None
        return order.get(_MODELS.get(kind), len(order)), path.stem

    return [p.stem for p in sorted(SPECS_DIR.glob("*.yaml"), key=rank)]


def load_spec(name_or_path: str | Path) -> SpecificationBase:
    """A specification file (or a built-in's name) as its kind's model; bad input is one
    line naming the file, the key and the requirement."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SPECS_DIR / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        known = ", ".join(builtin_names())
        raise ConfigError(f"{path}: cannot read specification ({exc.strerror}); built-in: {known}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        model = model_for(data.get("kind"))
    except ValueError as exc:
        raise ConfigError(f"{path}: kind: {exc}") from None
    try:
        return model(**data, source=path)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["loc"][:1] == ("requirements",) and len(err["loc"]) > 1:
            try:
                rid = data["requirements"][err["loc"][1]].get("id", "?")
                loc += f" ({rid})"
            except (IndexError, KeyError, TypeError, AttributeError):
                pass
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{path}: {loc or '(top level)'}: {msg}{more}") from None
