"""The coverage map: per requirement, the dimensions along which a table's behaviour can
differ and the values the plan samples along each, per profile (quick / full).

Why it exists: a defect that lives in part of the parameter space (one ramp direction,
high forces only, long sessions, one refusal) passes a suite that samples one point of
that dimension. The map makes each such point visible: a dimension sampled at one point
carries the reason one point is enough, or it is a GAP, said as such.

One declarative place (MAP below). Each dimension's values are a function of the
Specification and the profile — read from the plan, or from the suite test's own
parametrization — never a copied number; a fixed value names the test that fixes it.
`check_run` holds the map to account against a run's record: every value it claims for
the run's profile must appear in the conditions of some measurement of that requirement.
The contract's refusals and latches (CONTRACT: TCM-1's) name the suite check that tries each;
one no suite tries is flagged.

Each kind of specification has its own map and contract (MAPS, CONTRACTS, keyed by the
specification's model): the traction kinds' are here, another kind's live in a module of
their own (KIND_MODULES) that registers them when a look-up first needs them — so this
module never imports its kinds at import time, and they import it freely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

from drivers.kinds import Registrants
from verification import suite_source
from verification.spec import Specification, SpecificationBase, specification_of
from verification.steps import LOWER_FRACTION

PROFILES = ("quick", "full")

#: the summary's columns: what kind of dimension each is
AXES = ("force", "angle", "rate", "direction", "approach", "phase", "trigger", "duration", "repetition", "condition",
        "combinations", "other")

Values = Callable[[Specification, str], list]
Observer = Callable[[list[dict]], set]


# ---------------------------------------------------------------- plan readers
# Each reads the plan as the suites do, through the Specification's own fields and methods
# (a specification file without 1.3's fields loads with their defaults, which is what the
# suites then run).

def setpoints(spec: Specification, profile: str) -> list[float]:
    """FA-STATIC's staircase (suites/test_force_accuracy.py): the setpoints rising, then
    the falling setpoints approached from above."""
    return _sorted_unique([*spec.plan.setpoints_n, *spec.plan.falling_setpoints_n])


def approaches(spec: Specification, profile: str) -> list[str]:
    return ["rising", *(["falling"] if spec.plan.falling_setpoints_n else [])]


def setting_approach(spec: Specification, profile: str) -> list[tuple[float, str]]:
    return sorted({(float(v), "rising") for v in spec.plan.setpoints_n}
                  | {(float(v), "falling") for v in spec.plan.falling_setpoints_n})


def ramp_cases(spec: Specification) -> dict[str, tuple[float, float]]:
    """test_ramp's cases, id → (rate, force): the plan's own `ramp_cases()`."""
    return dict(spec.plan.ramp_cases())


def ramp_rates(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(rate for rate, _ in ramp_cases(spec).values())


def ramp_forces(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(force for _, force in ramp_cases(spec).values())


def ramp_directions(spec: Specification, profile: str) -> list[str]:
    """RA-RATE's slopes: up, down to a lower setting, and the STOP release."""
    return ["progressive", "to lower setting", "regressive"]


def ramp_targets(spec: Specification, profile: str) -> list[float]:
    """The settings RA-OVERSHOOT and RA-SETTLE are judged at: each case's force, and the
    lower setting it ramps down to."""
    forces = ramp_forces(spec, profile)
    return _sorted_unique([*forces, *(LOWER_FRACTION * f for f in forces)])


def past_setting_directions(spec: Specification, profile: str) -> list[str]:
    """RA-OVERSHOOT and RA-SETTLE: after the progressive ramp, and after the ramp to the
    lower setting (an undershoot)."""
    return ["progressive", "to lower setting"]


def ramp_cases_rate_force(spec: Specification, profile: str) -> list[tuple[float, float]]:
    return sorted(set(ramp_cases(spec).values()))


def sessions(spec: Specification, profile: str, intermittent_only: bool = True) -> list[dict]:
    """The treatments a profile runs: the plan's `sessions_for(profile)`, with their levels
    (`levels_of`); the intermittent ones only unless told (IM-* judge nothing in a static one)."""
    plan = spec.plan
    out = []
    for s in plan.sessions_for(profile):
        if intermittent_only and s.mode != "intermittent":
            continue
        hold, rest = plan.levels_of(s)
        out.append({"treatment_s": float(s.treatment_s), "hold_force_n": float(hold), "rest_force_n": float(rest),
                    "mode": s.mode})
    return out


def session_lengths(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(s["treatment_s"] for s in sessions(spec, profile))


def treatment_lengths(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(s["treatment_s"] for s in sessions(spec, profile, intermittent_only=False))


def treatment_modes(spec: Specification, profile: str) -> list[str]:
    return sorted({s["mode"] for s in sessions(spec, profile, intermittent_only=False)})


def session_levels(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(v for s in sessions(spec, profile) for v in (s["hold_force_n"], s["rest_force_n"]))


def session_hold_levels(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(s["hold_force_n"] for s in sessions(spec, profile, intermittent_only=False))


def intermittent_times(spec: Specification, profile: str) -> list[float]:
    im = spec.plan.intermittent
    return _sorted_unique([im.hold_s, im.rest_s])


def emergency_triggers(spec: Specification, profile: str) -> list[str]:
    from verification.spec import EMERGENCY_TRIGGERS

    return [t for t in EMERGENCY_TRIGGERS if t in spec.plan.emergency.triggers]


def emergency_combos(spec: Specification, profile: str) -> list[tuple[str, float]]:
    """(phase, force) of the trials of one trigger: the plan's `trial_plan(profile)` (every
    phase × force combination in turn), read as the suite reads it — so fewer trials than
    combinations leave some out, and the map says so."""
    return sorted({(p, float(f)) for p, f in spec.plan.emergency.trial_plan(profile)})


def emergency_phases(spec: Specification, profile: str) -> list[str]:
    return sorted({p for p, _ in emergency_combos(spec, profile)}, key=list(spec.plan.emergency.phases).index)


def emergency_forces(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(f for _, f in emergency_combos(spec, profile))


def emergency_cells(spec: Specification, profile: str) -> list[tuple[str, str, float]]:
    return [(t, p, f) for t in emergency_triggers(spec, profile) for p, f in emergency_combos(spec, profile)]


def watchdog_combos(spec: Specification, profile: str) -> list[tuple[str, float]]:
    return emergency_combos(spec, profile) if "watchdog" in spec.plan.emergency.triggers else []


def watchdog_phases(spec: Specification, profile: str) -> list[str]:
    return sorted({p for p, _ in watchdog_combos(spec, profile)}, key=list(spec.plan.emergency.phases).index)


def watchdog_forces(spec: Specification, profile: str) -> list[float]:
    return _sorted_unique(f for _, f in watchdog_combos(spec, profile))


def emergency_trials(spec: Specification, profile: str) -> list[int]:
    return [spec.plan.emergency.trials_for(profile)]


def restarts_tried(spec: SpecificationBase, profile: str) -> list[str]:
    """What each emergency trial tries after its trigger: START always, ENABLE only where a
    power loss de-energised the drive (a mains-cut trigger in the plan)."""
    return ["START", *(["ENABLE after a power loss"] if "mains_cut" in spec.plan.emergency.triggers else [])]


def when_test(module: str, test: str, *always: str, then: str) -> Values:
    """Values fixed by the suites: `always`, plus `then` when the suite test that tries it exists."""
    return lambda spec, profile: [*always, *([then] if suite_source.has_test(module, test) else [])]


def parametrized(module: str, test: str, argname: str) -> Values:
    """The values a suite test is parametrized with: the fixed list lives in the test, once."""
    def values(spec: Specification, profile: str) -> list:
        found = suite_source.parametrized(module, test, argname)
        if found is None:
            raise LookupError(f"{module}.{test}: no parametrize of {argname!r} (the coverage map reads it)")
        return found
    return values


def ramp_items(spec: Specification, profile: str) -> list[str]:
    return [f"suites/test_ramps.py::test_ramp[{case}]" for case in ramp_cases(spec)]


def session_items(spec: Specification, profile: str) -> list[str]:
    """One test item per session of the profile (suites/conftest.py parametrizes by them)."""
    return [f"suites/test_ramps.py::test_intermittent_treatment[{s.test_id}]"
            for s in spec.plan.sessions_for(profile)]


def emergency_items(spec: Specification, profile: str) -> list[str]:
    return [f"suites/test_emergency_release.py::test_emergency_release[{t}]" for t in emergency_triggers(spec, profile)]


def latch_items(spec: Specification, profile: str) -> list[str]:
    return [*emergency_items(spec, profile), "suites/test_interlocks.py::test_fault_code_keeps_the_first_trigger"]


def reset_forces(spec: Specification, profile: str) -> list[float]:
    """IL-RESET's forces: the corner a few newtons above the residual, and the largest trial force."""
    from verification.steps import JUST_ABOVE_N

    return _sorted_unique([spec.residual_force_n + JUST_ABOVE_N, max(spec.plan.emergency.forces_n)])


def start_items(spec: Specification, profile: str) -> list[str]:
    return [f"suites/test_interlocks.py::test_start_refused[{c}]"
            for c in parametrized("suites.test_interlocks", "test_start_refused", "condition")(spec, profile)]


def plan_value(getter: Callable[[Specification], float]) -> Values:
    return lambda spec, profile: [float(getter(spec))]


def fixed(*items) -> Values:
    return lambda spec, profile: list(items)


# ---------------------------------------------------------------- observers (a run's record)

def cond(key: str, default=None) -> Observer:
    """The values of one condition key over the measurements (a missing key: `default`)."""
    def observe(ms: list[dict]) -> set:
        out = set()
        for m in ms:
            value = m.get("conditions", {}).get(key, default)
            if value is not None:
                out.add(_norm(value))
        return out
    return observe


def cond_tuple(*keys: str) -> Observer:
    def observe(ms: list[dict]) -> set:
        out = set()
        for m in ms:
            c = m.get("conditions", {})
            if all(c.get(k) is not None for k in keys):
                out.add(tuple(_norm(c[k]) for k in keys))
        return out
    return observe


def names(**patterns: str) -> Observer:
    """Which of the fixed checks ran, told by the measurement's name (value: a substring)."""
    def observe(ms: list[dict]) -> set:
        return {value for value, pattern in patterns.items() if any(pattern in m.get("name", "") for m in ms)}
    return observe


def level_phase(ms: list[dict]) -> set:
    """IM-LEVELS: the phase from the condition, else the measurement's name (hold 1 …)."""
    out = set()
    for m in ms:
        phase = m.get("conditions", {}).get("phase") or m.get("name", "").split(" ")[0]
        if phase in ("hold", "rest"):
            out.add(phase)
    return out


def trials_per_trigger(ms: list[dict]) -> set:
    per: dict[str, set] = {}
    for m in ms:
        c = m.get("conditions", {})
        if c.get("trigger") and c.get("trial") is not None:
            per.setdefault(c["trigger"], set()).add(c["trial"])
    return {len(v) for v in per.values()}


def above_limit(ms: list[dict]) -> set:
    return {_norm(m["conditions"]["setpoint_n"] - m["conditions"]["limit_n"]) for m in ms
            if m.get("conditions", {}).get("setpoint_n") is not None and m["conditions"].get("limit_n") is not None}


def union_of(*keys: str) -> Observer:
    def observe(ms: list[dict]) -> set:
        return set().union(*(cond(k)(ms) for k in keys))
    return observe


def first_of(*keys: str) -> Observer:
    """A quantity the suites may record under one of several keys (session length)."""
    def observe(ms: list[dict]) -> set:
        for key in keys:
            seen = cond(key)(ms)
            if seen:
                return seen
        return set()
    return observe


# ---------------------------------------------------------------- the map

@dataclass(frozen=True)
class Dimension:
    name: str
    axis: str
    values: Values
    source: str  # where the values come from: a plan field, or the test that fixes them
    observe: Observer | None = None  # how a run's record shows the values (None: it does not)
    enough: str | None = None  # why one sampled point is enough (else a one-point dimension is a GAP)
    gap: str | None = None  # what a one-point sample lets pass, for the GAP line
    unit: str = ""
    #: every value along which the contract lets the table's behaviour differ, where it names
    #: them (TCM-1's phases, triggers, regressive paths): the values the plan leaves out are listed
    contract: tuple[str, ...] = ()

    def __post_init__(self):
        if self.axis not in AXES:
            raise ValueError(f"dimension {self.name}: axis {self.axis!r} is not one of {', '.join(AXES)}")


@dataclass(frozen=True)
class Entry:
    requirement: str
    tests: tuple[str, ...]
    dimensions: tuple[Dimension, ...]
    #: the test items (node ids) that together sample the values, for a specification and
    #: profile (default: `tests`); a run that ran only some of them is checked as 'partly run'
    items: Values | None = None

    def node_ids(self, spec: Specification, profile: str) -> list[str]:
        return list(self.items(spec, profile)) if self.items else list(self.tests)


ACCURACY_DIMS = (
    Dimension("setting", "force", setpoints, "plan.setpoints_n + plan.falling_setpoints_n", cond("setting_n"), unit="N"),
    Dimension("approach", "approach", approaches, "rising staircase; plan.falling_setpoints_n from above",
              cond("approach", "rising"),
              gap="a loop with friction or a one-sided integrator settles elsewhere when approached from above"),
    Dimension("setting × approach", "combinations", setting_approach, "plan.setpoints_n (rising), "
              "plan.falling_setpoints_n (from above)", cond_tuple("setting_n", "approach"),
              enough="one cell is the whole plan"),
    Dimension("ramp rate of the approach", "rate", plan_value(lambda s: s.max_ramp_rate_n_s), "max_ramp_rate_n_s "
              "(suites/test_force_accuracy.py)", None,
              enough="judged after settle_s, when the ramp no longer acts; the approach's transient is RA-OVERSHOOT's "
                     "and RA-SETTLE's, at every rate of the ramp cases", unit="N/s"),
    Dimension("repetition per setting", "repetition", fixed(1), "suites/test_force_accuracy.py (one step per setting)",
              None, enough="the value is a mean over the settled window, its scatter in the budget (noise of the mean); "
                           "a loop offset repeats identically at the same setting, and its drift run to run is the "
                           "results database's trend"),
)

RAMP_RATE = Dimension("ramp rate", "rate", ramp_rates, "plan.ramp_cases() (slowest, fastest of plan.ramp_rates_n_s)",
                      cond("rate_n_s"), unit="N/s", gap="a rate error at one rate only passes")
RAMP_FORCE = Dimension("ramp force", "force", ramp_forces, "plan.ramp_force_n, plan.ramp_high_force_n", cond("setting_n"),
                       unit="N", gap="a ramp that fails only at high forces (a saturating drive) passes")
RAMP_CELLS = Dimension("rate × force (ramp cases)", "combinations", ramp_cases_rate_force, "plan.ramp_cases()",
                       cond_tuple("rate_n_s", "setting_n"),
                       enough="a single case is the whole plan: its rate and force are sampled above")

EMERGENCY_DIMS = (
    Dimension("trigger", "trigger", emergency_triggers, "plan.emergency.triggers (verification.spec.EMERGENCY_TRIGGERS)",
              cond("trigger"), gap="a table whose release differs by trigger passes on the untried ones",
              contract=("estop_coil", "estop_button", "switch_pressed", "switch_unplugged", "watchdog", "mains_cut",
                        "overforce")),
    Dimension("phase", "phase", emergency_phases, "plan.emergency.trial_plan(profile) (every phase × force in turn)",
              cond("phase"), gap="a release that fails in one phase only (a ramp, the rest) passes",
              contract=("ramp_up", "hold", "ramp_to_rest", "rest", "releasing")),
    Dimension("force at the trigger", "force", emergency_forces, "plan.emergency.forces_n", cond("force_n"), unit="N",
              gap="a release that is slow from high forces only passes"),
    Dimension("trigger × phase × force", "combinations", emergency_cells, "plan.emergency.trial_plan(profile) for "
              "each trigger", cond_tuple("trigger", "phase", "force_n"),
              enough="one cell is the whole plan: its trigger, phase and force are sampled above"),
    Dimension("trials per trigger", "repetition", emergency_trials, "plan.emergency.trials_for(profile) (quick_trials "
              "in the quick profile)", trials_per_trigger,
              enough="each trial is one trigger; the count is the repetition, the worst trial decides"),
)

MAP: tuple[Entry, ...] = (
    Entry("FA-STATIC", ("suites/test_force_accuracy.py::test_static_force_accuracy",), (
        *ACCURACY_DIMS,
        Dimension("treatment mode", "other", fixed("static"), "suites/test_force_accuracy.py", None,
                  enough="the intermittent levels are IM-LEVELS's, judged against the same limit formula"),
    )),
    Entry("FA-CELL", ("suites/test_force_accuracy.py::test_static_force_accuracy",), ACCURACY_DIMS),
    Entry("RA-RATE", ("suites/test_ramps.py::test_ramp",), (
        RAMP_RATE, RAMP_FORCE, RAMP_CELLS,
        Dimension("direction", "direction", ramp_directions, "suites/test_ramps.py::test_ramp (its slopes)",
                  cond("direction"), gap="a ramp wrong in one direction only passes",
                  contract=("progressive", "to lower setting", "regressive", "end of treatment", "ENABLE 0")),
        Dimension("start of the ramp", "other", fixed("from rest (0 N)"), "suites/test_ramps.py::test_ramp", None,
                  enough="the progressive slope is fitted on 20–80 % of the span, away from the start's corner; the "
                         "falling slopes start from the held setting"),
    ), ramp_items),
    Entry("RA-OVERSHOOT", ("suites/test_ramps.py::test_ramp",), (
        RAMP_RATE, RAMP_FORCE, RAMP_CELLS,
        Dimension("direction", "direction", past_setting_directions, "suites/test_ramps.py::test_ramp",
                  cond("direction", "progressive"),
                  gap="an undershoot below a lower setting (a falling ramp that overruns) passes"),
        Dimension("setting judged at", "force", ramp_targets, "the ramp cases' forces and (1.3) "
                  "test_ramps.LOWER_FRACTION of each", cond("target_n"), unit="N",
                  gap="overshoot at one setting only"),
    ), ramp_items),
    Entry("RA-SETTLE", ("suites/test_ramps.py::test_ramp",), (
        RAMP_RATE, RAMP_FORCE, RAMP_CELLS,
        Dimension("direction", "direction", past_setting_directions, "suites/test_ramps.py::test_ramp",
                  cond("direction", "progressive"),
                  gap="a table that settles slowly after a falling ramp passes"),
        Dimension("setting judged at", "force", ramp_targets, "the ramp cases' forces and (1.3) "
                  "test_ramps.LOWER_FRACTION of each", cond("target_n"), unit="N",
                  gap="settling at one setting only"),
    ), ramp_items),
    Entry("IM-TIMING", ("suites/test_ramps.py::test_intermittent_treatment",), (
        Dimension("phase", "phase", fixed("hold", "rest"), "suites/test_ramps.py::test_intermittent_treatment",
                  cond("phase")),
        Dimension("set duration", "duration", intermittent_times, "plan.intermittent.hold_s, rest_s", cond("set_s"),
                  unit="s", enough="one hold and one rest time: the timer counts each the same way"),
        Dimension("session length", "duration", session_lengths, "plan.sessions_for(profile)",
                  first_of("treatment_s", "session_s"), unit="s",
                  gap="a timer that drifts only in long sessions passes"),
        Dimension("levels (hold, rest)", "force", session_levels, "plan.sessions (levels; default plan.intermittent)",
                  union_of("hold_set_n", "rest_set_n"), unit="N",
                  gap="a timer that runs differently at high forces only passes"),
    ), session_items),
    Entry("IM-LEVELS", ("suites/test_ramps.py::test_intermittent_treatment",), (
        Dimension("phase", "phase", fixed("hold", "rest"), "suites/test_ramps.py::test_intermittent_treatment",
                  level_phase),
        Dimension("set level", "force", session_levels, "plan.sessions (hold_force_n, rest_force_n; default "
                  "plan.intermittent)", cond("set_n"), unit="N", gap="a level wrong at high forces only passes"),
        Dimension("session length", "duration", session_lengths, "plan.sessions_for(profile)",
                  first_of("treatment_s", "session_s"), unit="s",
                  gap="a level that drifts only in long sessions passes"),
    ), session_items),
    Entry("TT-TIME", ("suites/test_ramps.py::test_intermittent_treatment",), (
        Dimension("treatment length", "duration", treatment_lengths, "plan.sessions_for(profile)", cond("set_s"), unit="s",
                  gap="a timer that drifts only in long sessions passes (issue 23)"),
        Dimension("hold level", "force", session_hold_levels, "plan.sessions (hold_force_n)",
                  cond("hold_set_n"), unit="N",
                  enough="TREATMENT_TIME is counted on the controller's clock; the level only shapes the ramps "
                         "around the plateaus, which the corner detection places"),
        Dimension("treatment mode", "other", treatment_modes, "plan.sessions (mode)", cond("mode")),
    ), session_items),
    Entry("WD-TIME", ("suites/test_emergency_release.py::test_emergency_release[watchdog]",), (
        Dimension("phase", "phase", watchdog_phases, "plan.emergency.phases (the watchdog trials)", cond("phase"),
                  gap="a watchdog late in one phase only passes",
                  contract=("idle", "ramp_up", "hold", "ramp_to_rest", "rest", "releasing")),
        Dimension("force at the trip", "force", watchdog_forces, "plan.emergency.forces_n (the watchdog trials)",
                  cond("force_n"), unit="N"),
        Dimension("phase × force", "combinations", watchdog_combos, "plan.emergency (the watchdog trials)",
                  cond_tuple("phase", "force_n"), enough="one cell is the whole plan"),
        Dimension("configured period", "duration", plan_value(lambda s: s.plan.watchdog_s), "plan.watchdog_s",
                  None, unit="s",
                  enough="the limit is relative to the configured period, which the rig writes (WATCHDOG_MS); a "
                         "late or fixed-period watchdog shows at any period"),
        Dimension("trials", "repetition", emergency_trials, "plan.emergency.trials_for(profile)", trials_per_trigger,
                  enough="each trial is one trip; the worst decides"),
    )),
    Entry("IL-SETPOINT", ("suites/test_interlocks.py::test_setpoint_above_force_limit_refused",
                         "suites/test_interlocks.py::test_start_refused_with_target_above_lowered_limit"), (
        Dimension("write", "condition", fixed("single write (FC 6)", "multiple write (FC 16)"),
                  "suites/test_interlocks.py::test_setpoint_above_force_limit_refused",
                  names(**{"single write (FC 6)": "single write", "multiple write (FC 16)": "multiple write"})),
        Dimension("target above the limit by", "condition",
                  when_test("suites.test_interlocks", "test_start_refused_with_target_above_lowered_limit",
                            "a write above the limit", then="the limit lowered below a taken target (START)"),
                  "suites/test_interlocks.py", names(**{"a write above the limit": "write above FORCE_LIMIT",
                                                        "the limit lowered below a taken target (START)":
                                                        "START refused with TARGET_FORCE above FORCE_LIMIT"}),
                  gap="START with a taken target left above a lowered limit (LAST_REJECT 1) is not tried"),
        Dimension("amount above FORCE_LIMIT", "force", fixed(0.1, 10.0),
                  "suites/test_interlocks.py (one register step, 0.1 N, and 10 N above the limit)",
                  above_limit, unit="N"),
        Dimension("FORCE_LIMIT", "force", plan_value(lambda s: s.plan.overforce_limit_n), "plan.overforce_limit_n",
                  cond("limit_n"), unit="N",
                  enough="below the rated force, so a table comparing with the rated force, not FORCE_LIMIT, is caught"),
    )),
    Entry("IL-LIMIT-LOCK", ("suites/test_interlocks.py::test_force_limit_locked_while_enabled",
                           "suites/test_interlocks.py::test_residual_force_read_only"), (
        Dimension("register", "condition", fixed("FORCE_LIMIT (while enabled)", "RESIDUAL_FORCE (read-only)"),
                  "suites/test_interlocks.py",
                  names(**{"FORCE_LIMIT (while enabled)": "FORCE_LIMIT write refused",
                           "RESIDUAL_FORCE (read-only)": "RESIDUAL_FORCE write refused"})),
        Dimension("drive state", "condition", fixed("enabled, idle", "treatment running"),
                  "suites/test_interlocks.py::test_force_limit_locked_while_enabled", cond("state")),
        Dimension("value written", "direction", fixed("lower", "higher"),
                  "suites/test_interlocks.py::test_force_limit_locked_while_enabled (LOWER_FRACTION of "
                  "plan.overforce_limit_n; the rated force)", cond("direction")),
        Dimension("state × value", "combinations", fixed(*((s, d) for s in ("enabled, idle", "treatment running")
                                                             for d in ("lower", "higher"))),
                  "suites/test_interlocks.py::test_force_limit_locked_while_enabled",
                  cond_tuple("state", "direction"), enough="one cell is the whole plan"),
    )),
    Entry("IL-START", ("suites/test_interlocks.py::test_start_refused",), (
        Dimension("refusal condition", "condition", parametrized("suites.test_interlocks", "test_start_refused",
                                                                  "condition"),
                  "suites/test_interlocks.py::test_start_refused (parametrize)", cond("condition")),
        Dimension("target force", "force", plan_value(lambda s: min(s.plan.emergency.forces_n)),
                  "min(plan.emergency.forces_n)", None, unit="N",
                  enough="the refusal is decided before any force is commanded; a target above FORCE_LIMIT is "
                         "IL-SETPOINT's"),
    ), start_items),
    Entry("IL-RESET", ("suites/test_interlocks.py::test_reset_refused_with_force_present",
                      "suites/test_interlocks.py::test_reset_refused_with_switch_pressed",
                      "suites/test_interlocks.py::test_reset_refused_just_above_the_residual"), (
        Dimension("when", "condition", fixed("during a treatment", "right after an emergency stop",
                                             "a hold just above the residual"),
                  "suites/test_interlocks.py::test_reset_refused_with_force_present, "
                  "test_reset_refused_just_above_the_residual",
                  names(**{"during a treatment": "during a treatment", "right after an emergency stop": "right after",
                           "a hold just above the residual": "just above the residual"})),
        Dimension("refusal cause", "condition",
                  when_test("suites.test_interlocks", "test_reset_refused_with_switch_pressed",
                            "force present (LAST_REJECT 5)", then="patient switch pressed (LAST_REJECT 3)"),
                  "suites/test_interlocks.py",
                  names(**{"force present (LAST_REJECT 5)": "RESET refused during a treatment",
                           "patient switch pressed (LAST_REJECT 3)": "RESET refused with the patient switch pressed"}),
                  gap="RESET with the patient switch pressed (LAST_REJECT 3) is not tried"),
        Dimension("force held", "force", reset_forces,
                  "residual_force_n + verification.steps.JUST_ABOVE_N (the corner); max(plan.emergency.forces_n)", None,
                  unit="N"),
    )),
    Entry("IL-OVERFORCE", ("suites/test_interlocks.py::test_overforce_trip",
                           "suites/test_interlocks.py::test_overforce_trip_pulled_by_operator"), (
        Dimension("pull rate", "rate", plan_value(lambda s: 20.0 * s.plan.overforce_limit_n),
                  "suites/test_interlocks.py::test_overforce_trip (20 × plan.overforce_limit_n per s, a snag)",
                  cond("pull_rate_n_s"), unit="N/s",
                  enough="the trip compares the controller's own cell with FORCE_LIMIT every cycle, whatever made "
                         "the force rise; a snag is the pull a debounced or filtered trip fails (the force is over "
                         "the limit only briefly before the loop pays out), and a slower pull adds only the cell's "
                         "error ÷ the rate, which FA-CELL bounds (pull_rates); a person's slow pull is tried at a "
                         "bench (test_overforce_trip_pulled_by_operator)"),
        Dimension("phase", "phase", fixed("hold"), "suites/test_interlocks.py (hold at 0.8 × the limit)", None,
                  enough="the contract's trip does not depend on the phase (ACTUAL_FORCE exceeded FORCE_LIMIT), and a "
                         "table's own ramp cannot cross the limit (TARGET_FORCE ≤ FORCE_LIMIT, IL-SETPOINT): only an "
                         "outside pull does, and the hold is where a patient or a snag pulls against a still winch"),
        Dimension("FORCE_LIMIT", "force", plan_value(lambda s: s.plan.overforce_limit_n), "plan.overforce_limit_n",
                  cond("limit_n"), unit="N", enough="the trip compares with the register, whatever its value"),
    ), fixed("suites/test_interlocks.py::test_overforce_trip")),
    *(Entry(rid, ("suites/test_emergency_release.py::test_emergency_release",), EMERGENCY_DIMS, emergency_items)
      for rid in ("ER-NORISE", "ER-HALF", "ER-RESIDUAL", "ER-SNAP")),
    Entry("ER-LATCH", ("suites/test_emergency_release.py::test_emergency_release",
                       "suites/test_interlocks.py::test_fault_code_keeps_the_first_trigger"), (
        *EMERGENCY_DIMS,
        Dimension("second trigger while latched", "condition", fixed("patient switch pressed after an ESTOP"),
                  "suites/test_interlocks.py::test_fault_code_keeps_the_first_trigger",
                  names(**{"patient switch pressed after an ESTOP": "FAULT_CODE keeps the first trigger"}),
                  enough="FAULT_CODE is one register every trigger's path writes: a path that overwrites it does so "
                         "after any first trigger; an e-stop then the switch is the pair a person gives at once"),
        Dimension("restart tried", "condition",
                  restarts_tried,
                  "suites/test_emergency_release.py::run_trial", None,
                  enough="START after every trigger; ENABLE only where a power loss de-energised the drive"),
    ), latch_items),
)


#: each kind of specification's map, by its model (verification.spec's registry): a kind
#: whose suites are not mapped yet has none, and each of its requirements is listed as
#: covered by no suite (a GAP) instead of borrowing another kind's entries of the same id
MAPS: dict[type[SpecificationBase], tuple[Entry, ...]] = {Specification: MAP}
#: where each kind's map lives (for the line that names a requirement missing from it)
MAP_HOMES: dict[type[SpecificationBase], str] = {Specification: "verification/coverage.py MAP"}
#: the modules that register another kind's map and contract (register_kind) when imported:
#: imported by the first look-up, never at this module's import (they import this one)
KIND_MODULES = ("verification.fd_coverage",)
_load = Registrants(KIND_MODULES).load


def register_kind(model: type[SpecificationBase], entries: tuple[Entry, ...], contract: Contract, home: str) -> None:
    """A kind's map (`home`: where it lives) and its protocol's contract, by its specification model."""
    MAPS[model] = entries
    MAP_HOMES[model] = home
    CONTRACTS[model] = contract


def entry(rid: str, spec: SpecificationBase | None = None) -> Entry | None:
    """The map's entry of a requirement (of `spec`'s kind; None: the traction map)."""
    _load()
    entries = MAP if spec is None else MAPS.get(type(spec), ())
    return next((e for e in entries if e.requirement == rid), None)


def unmapped_text(spec: SpecificationBase) -> str:
    """Why a requirement has no rows: not in its kind's map, or its kind has none yet."""
    _load()
    if type(spec) in MAPS:
        return f"not in the coverage map ({MAP_HOMES[type(spec)]})"
    return f"not in the coverage map: no suite covers a {spec.kind} specification yet (verification/coverage.py MAPS)"


# ---------------------------------------------------------------- the contract's refusals and latches

@dataclass(frozen=True)
class Tried:
    """A suite check that tries a contract item: the test (file::function, [param] when
    parametrized), the measurement name (or a part of it) that judges it, and — when the
    test builds that name — the literal the test's source holds instead."""

    test: str
    check: str
    requirement: str
    literal: str | None = None
    #: the library module that builds the measurement's name when the test hands its trial
    #: to it (verification.fd_emergency's trial_measurements): the literal is looked for there,
    #: and the test's module must import it
    built_by: str | None = None

    def missing(self) -> str | None:
        """Why the suites do not hold this check (None: they do). Read from the suites'
        source, so the map never claims a check that was renamed or removed."""
        path, _, node = self.test.partition("::")
        fn, _, param = node.partition("[")
        param = param.rstrip("]")
        problem = suite_source.why_unreadable(path)
        if problem:  # a suite that does not parse tries nothing
            return problem
        if not suite_source.has_test(path, fn):
            return f"no {fn} in {path}"
        if param and param not in suite_source.parametrize_values(path, fn):
            return f"{fn} is not parametrized with {param!r}"
        if self.built_by is not None:
            if not suite_source.imports_from(path, self.built_by):
                return f"{path} does not import {self.built_by}"
            if (self.literal or self.check) not in _library_source(self.built_by):
                return f"{self.built_by} builds no check named “{self.literal or self.check}”"
            return None
        if (self.literal or self.check) not in suite_source.source(path):
            return f"{path} has no check named “{self.literal or self.check}”"
        return None


@dataclass(frozen=True)
class ContractItem:
    id: str
    kind: str  # refusal, latch, reject code
    says: str  # the contract's words (shared/protocols/traction-controller-modbus.md)
    tried: tuple[Tried, ...] = ()
    note: str = ""

    def found(self) -> list[Tried]:
        return [t for t in self.tried if t.missing() is None]

    @property
    def status(self) -> str:
        return "tried" if self.found() else "NOT TRIED"


@dataclass(frozen=True)
class Contract:
    """A protocol's refusals and latches, with the file that states them."""

    protocol: str  # TCM-1
    file: str  # shared/protocols/traction-controller-modbus.md
    items: tuple[ContractItem, ...]
    scope: str = ""  # what the section holds beyond the protocol's own lines (said after the intro)


_T = Tried
_ER = "suites/test_emergency_release.py::test_emergency_release"
_IL = "suites/test_interlocks.py"
_START = "START refused ({condition})"
_LATCH = "restart refused until RESET"


def _start(condition: str) -> Tried:
    return _T(f"{_IL}::test_start_refused[{condition}]", f"START refused ({condition})", "IL-START", _START)


def _latch(trigger: str) -> Tried:
    return _T(f"{_ER}[{trigger}]", _LATCH, "ER-LATCH")


CONTRACT: tuple[ContractItem, ...] = (
    ContractItem("ENABLE-READY", "refusal", "ENABLE: Refused (exception 04) unless READY",
                 (_latch("mains_cut"),
                  _T(f"{_IL}::test_start_refused[mains cut through RESET]",
                     "ENABLE refused after the mains returns (no RESET since)", "IL-START")),
                 "only after a power loss: ENABLE must then be refused until RESET"),
    ContractItem("START-ENABLED", "refusal", "START: Refused (04) unless ENABLED", (_start("not enabled"),)),
    ContractItem("START-SWITCH", "refusal", "START: Refused (04) unless the patient switch connected (LAST_REJECT 2)",
                 (_start("switch unplugged"),)),
    ContractItem("START-ESTOP", "refusal", "START: Refused (04) unless nothing latched (3): ESTOP_LATCHED",
                 (_start("e-stop latched"), _latch("estop_coil"), _latch("estop_button"))),
    ContractItem("START-PRESSED", "refusal", "START: Refused (04) with the patient switch pressed (3)",
                 (_start("switch pressed"), _latch("switch_pressed"))),
    ContractItem("START-WATCHDOG", "refusal", "START: Refused (04) unless nothing latched (3): WATCHDOG_TRIPPED",
                 (_start("watchdog tripped"), _latch("watchdog"))),
    ContractItem("START-OVERFORCE", "refusal", "START: Refused (04) unless nothing latched (3): OVERFORCE_TRIPPED",
                 (_start("over-force tripped"),)),
    ContractItem("START-FAULT", "refusal", "START: Refused (04) unless nothing latched (3): FAULT_CODE not 0 "
                 "(patient switch unplugged in a treatment, power loss)",
                 (_latch("switch_unplugged"), _latch("mains_cut"))),
    ContractItem("START-LIMIT", "refusal", "START: Refused (04) unless TARGET_FORCE ≤ FORCE_LIMIT (1)",
                 (_T(f"{_IL}::test_start_refused_with_target_above_lowered_limit",
                     "START refused with TARGET_FORCE above FORCE_LIMIT (LAST_REJECT 1)", "IL-SETPOINT"),)),
    ContractItem("RESET-FORCE", "refusal", "RESET: Refused (04) while ACTUAL_FORCE > RESIDUAL_FORCE (LAST_REJECT 5)",
                 (_T(f"{_IL}::test_reset_refused_with_force_present", "RESET refused during a treatment", "IL-RESET"),
                  _T(f"{_IL}::test_reset_refused_with_force_present", "RESET refused right after an emergency stop",
                     "IL-RESET"),
                  _T(f"{_IL}::test_reset_refused_just_above_the_residual",
                     "RESET refused just above the residual force", "IL-RESET"))),
    ContractItem("RESET-PRESSED", "refusal", "RESET: Refused (04) while the patient switch is pressed (3)",
                 (_T(f"{_IL}::test_reset_refused_with_switch_pressed",
                     "RESET refused with the patient switch pressed (LAST_REJECT 3)", "IL-RESET"),)),
    ContractItem("RELATCH-ESTOP", "latch", "RESET: A cause still present (e-stop button held) latches again at once",
                 (_T(f"{_IL}::test_start_refused[e-stop held through RESET]",
                     "a RESET with the e-stop button held latches again at once", "IL-START"),)),
    ContractItem("RELATCH-MAINS", "latch", "RESET: A cause still present (mains cut) latches again at once",
                 (_T(f"{_IL}::test_start_refused[mains cut through RESET]",
                     "a RESET with the mains still cut latches again at once", "IL-START"),
                  _T(f"{_IL}::test_start_refused[mains cut through RESET]",
                     "ENABLE refused after the mains returns (no RESET since)", "IL-START"),
                  _start("mains cut through RESET"))),
    ContractItem("TARGET-RANGE", "refusal", "TARGET_FORCE: a value above FORCE_LIMIT is refused (exception 03) and "
                 "not taken",
                 (_T(f"{_IL}::test_setpoint_above_force_limit_refused", "single write above FORCE_LIMIT refused",
                     "IL-SETPOINT"),
                  _T(f"{_IL}::test_setpoint_above_force_limit_refused",
                     "single write one register step (0.1 N) above FORCE_LIMIT refused with 03", "IL-SETPOINT"),
                  _T(f"{_IL}::test_setpoint_above_force_limit_refused", "TARGET_FORCE unchanged", "IL-SETPOINT"))),
    ContractItem("ALL-OR-NOTHING", "refusal", "A refused write changes nothing: a multiple write (FC 15/16) is all "
                 "or nothing",
                 (_T(f"{_IL}::test_setpoint_above_force_limit_refused", "multiple write above FORCE_LIMIT refused",
                     "IL-SETPOINT"),)),
    ContractItem("LIMIT-ENABLED", "refusal", "FORCE_LIMIT: writable only while not ENABLED (else 04, LAST_REJECT 4)",
                 (_T(f"{_IL}::test_force_limit_locked_while_enabled", "FORCE_LIMIT write refused with 04",
                     "IL-LIMIT-LOCK"),)),
    ContractItem("RESIDUAL-RO", "refusal", "RESIDUAL_FORCE: read-only (04 on write, LAST_REJECT 6)",
                 (_T(f"{_IL}::test_residual_force_read_only",
                     "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)", "IL-LIMIT-LOCK"),
                  _T(f"{_IL}::test_residual_force_read_only", "RESIDUAL_FORCE unchanged", "IL-LIMIT-LOCK")),
                 "a raise is tried (twice the residual): a table that lets it be raised weakens every release check"),
    ContractItem("LATCH-ESTOP", "latch", "ESTOP_LATCHED: ESTOP coil, or the e-stop button of the table; latched "
                 "until RESET",
                 (_latch("estop_coil"), _latch("estop_button"),
                  _T(f"{_IL}::test_reset_refused_with_force_present", "e-stop latch kept", "IL-RESET"))),
    ContractItem("LATCH-PRESSED", "latch", "PATIENT_SWITCH_PRESSED latches ESTOP_LATCHED",
                 (_latch("switch_pressed"),
                  _T(f"{_IL}::test_reset_refused_with_switch_pressed", "e-stop latch kept (switch pressed)",
                     "IL-RESET"))),
    ContractItem("LATCH-OVERFORCE", "latch", "OVERFORCE_TRIPPED: ACTUAL_FORCE exceeded FORCE_LIMIT; latched",
                 (_start("over-force tripped"),
                  _T(f"{_IL}::test_overforce_trip", "gauge crossing FORCE_LIMIT to the trip", "IL-OVERFORCE")),
                 "test_overforce_trip also asserts the latch after the trip"),
    ContractItem("LATCH-WATCHDOG", "latch", "WATCHDOG_TRIPPED: no heartbeat within WATCHDOG_MS while ENABLED; latched",
                 (_start("watchdog tripped"), _latch("watchdog"))),
    ContractItem("LATCH-UNPLUG", "latch", "unplugging the patient switch during a treatment is an emergency trigger "
                 "(FAULT_CODE 3)", (_latch("switch_unplugged"),)),
    ContractItem("LATCH-POWER", "latch", "a power loss drops ENABLED (write 1 again after RESET); FAULT_CODE 7",
                 (_latch("mains_cut"),)),
    ContractItem("LATCH-FIRST", "latch", "FAULT_CODE: the first trigger is kept until RESET",
                 (_T(f"{_IL}::test_fault_code_keeps_the_first_trigger",
                     "FAULT_CODE keeps the first trigger (e-stop) after a second (patient switch)", "ER-LATCH",
                     built_by="verification.emergency"),
                  _T(f"{_IL}::test_fault_code_keeps_the_first_trigger", "FAULT_CODE cleared by RESET", "ER-LATCH",
                     built_by="verification.emergency"))),
    ContractItem("REJECT-1", "reject code", "LAST_REJECT 1: value out of range",
                 (_T(f"{_IL}::test_setpoint_above_force_limit_refused", "single write above FORCE_LIMIT refused with 03",
                     "IL-SETPOINT"),
                  _T(f"{_IL}::test_start_refused_with_target_above_lowered_limit",
                     "START refused with TARGET_FORCE above FORCE_LIMIT (LAST_REJECT 1)", "IL-SETPOINT"))),
    ContractItem("REJECT-2", "reject code", "LAST_REJECT 2: not ready", (_start("switch unplugged"),),
                 "the refusal (04) is judged; the code is recorded (reason), not judged"),
    ContractItem("REJECT-3", "reject code", "LAST_REJECT 3: latched or switch pressed",
                 (_T(f"{_IL}::test_reset_refused_with_switch_pressed",
                     "RESET refused with the patient switch pressed (LAST_REJECT 3)", "IL-RESET"),)),
    ContractItem("REJECT-4", "reject code", "LAST_REJECT 4: enabled",
                 (_T(f"{_IL}::test_force_limit_locked_while_enabled", "FORCE_LIMIT write refused with 04",
                     "IL-LIMIT-LOCK"),)),
    ContractItem("REJECT-5", "reject code", "LAST_REJECT 5: force present",
                 (_T(f"{_IL}::test_reset_refused_with_force_present", "RESET refused during a treatment", "IL-RESET"),
                  _T(f"{_IL}::test_reset_refused_just_above_the_residual",
                     "RESET refused just above the residual force", "IL-RESET"))),
    ContractItem("REJECT-6", "reject code", "LAST_REJECT 6: read-only",
                 (_T(f"{_IL}::test_residual_force_read_only",
                     "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)", "IL-LIMIT-LOCK"),)),
)


#: each kind's contract, by its specification model (register_kind adds the other kinds')
CONTRACTS: dict[type[SpecificationBase], Contract] = {
    Specification: Contract("TCM-1", "shared/protocols/traction-controller-modbus.md", CONTRACT)}


def contract_of(spec: SpecificationBase) -> Contract | None:
    """The contract of the protocol a specification's tables speak (None: its kind has none mapped)."""
    _load()
    return CONTRACTS.get(type(spec))


# ---------------------------------------------------------------- derived views

@dataclass
class Row:
    """One dimension of one requirement, evaluated for a specification."""

    dimension: Dimension
    values: dict[str, list]  # profile → values

    @property
    def one_point(self) -> bool:
        return any(len(v) <= 1 for v in self.values.values())

    @property
    def flagged(self) -> bool:
        """A GAP: sampled at one point (in some profile) with no reason why that is enough."""
        return self.one_point and not self.dimension.enough

    def unsampled(self, profile: str) -> list[str]:
        """The contract's values of this dimension that the plan does not sample."""
        return [v for v in self.dimension.contract if v not in self.values[profile]]


def rows(spec: SpecificationBase, rid: str, profiles: Iterable[str] = PROFILES) -> list[Row] | None:
    e = entry(rid, spec)
    if e is None:
        return None
    return [Row(d, {p: list(d.values(spec, p)) for p in profiles}) for d in e.dimensions]


def coverage(spec: SpecificationBase, profiles: Iterable[str] = PROFILES) -> dict[str, list[Row] | None]:
    """requirement id → its rows (None: a requirement the map does not know: a GAP)."""
    profiles = list(profiles)
    return {rid: rows(spec, rid, profiles) for rid in spec.ids}


def gaps(spec: SpecificationBase, profiles: Iterable[str] = PROFILES) -> list[str]:
    out = []
    for rid, rs in coverage(spec, profiles).items():
        if rs is None:
            out.append(f"{rid}: {unmapped_text(spec)}")
            continue
        for r in rs:
            if r.flagged:
                shown = {p: _fmt(v[0], r.dimension.unit) if v else "none" for p, v in r.values.items()}
                where = (next(iter(shown.values())) if len(set(shown.values())) == 1
                         else "; ".join(f"{p}: {v}" for p, v in shown.items()))
                out.append(f"{rid} · {r.dimension.name}: one point ({where}) — {r.dimension.gap or 'no reason given'}")
    return out


def unsampled(spec: SpecificationBase, profiles: Iterable[str] = PROFILES) -> list[str]:
    """'RID · dimension: not sampled: …' for each dimension that leaves some of the
    contract's values out (in any profile), one line per dimension."""
    profiles = list(profiles)
    out = []
    for rid, rs in coverage(spec, profiles).items():
        for r in rs or []:
            left = sorted({v for p in profiles for v in r.unsampled(p)}, key=list(r.dimension.contract).index)
            if left:
                out.append(f"{rid} · {r.dimension.name}: not sampled: {', '.join(left)}")
    return out


# ---------------------------------------------------------------- the check against a run

@dataclass
class CheckLine:
    requirement: str
    dimension: str
    status: str  # ok, MISSING, not recorded, not run, partly run
    detail: str = ""


@dataclass
class RunCheck:
    run_dir: Path
    spec_name: str
    profile: str
    lines: list[CheckLine] = field(default_factory=list)
    contract: list[tuple[ContractItem, str]] = field(default_factory=list)  # item, what the run shows
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(line.status == "MISSING" for line in self.lines)

    def text(self) -> str:
        out = [f"coverage check of {self.run_dir} against the map of {self.spec_name} (profile {self.profile})"]
        out += [f"  note: {n}" for n in self.notes]
        width = max((len(line.requirement) for line in self.lines), default=10)
        for line in self.lines:
            out.append(f"  {line.requirement:<{width}}  {line.dimension:<28} {line.status:<13} {line.detail}".rstrip())
        tried = [(i, s) for i, s in self.contract if s]
        if tried:
            out.append("  contract refusals and latches this run tried:")
            out += [f"    {i.id:<16} {s}" for i, s in tried]
        missing = sum(1 for line in self.lines if line.status == "MISSING")
        out.append(f"  {'OK' if self.ok else 'FAILED'}: " + (
            "every value the map claims for the requirements this run measured appears in its record" if self.ok
            else f"{missing} dimension(s) with a claimed value no measurement shows"))
        return "\n".join(out)


def _ran(node: str, started: set[str]) -> bool:
    return any(_same_test(node, s) for s in started)


def check_run(spec: SpecificationBase, run_dir: Path, start: dict | None, measurements: list[dict], started: set[str],
              profile: str | None = None) -> RunCheck:
    """Every value the map claims for the run's profile must appear in the conditions of
    some measurement of that requirement. A requirement the run did not measure at all (a -k run) is 'not run', not a
    failure; a dimension the record does not carry is 'not recorded'. The map is evaluated
    for the specification the run recorded when it differs from `spec` (that is what ran).
    `start`, `measurements`, `started`: the run's run-start line, its measurement lines and the
    node ids of the tests that started, as the run directory's reader gives them
    (rigcli/coverage_cmd.recorded_run): the record is reports.rundir's to read."""
    profile = profile or (start or {}).get("profile") or "quick"
    check = RunCheck(Path(run_dir), spec.name, profile)
    recorded = (start or {}).get("specification")
    if recorded:
        try:
            ran = specification_of(recorded)
        except Exception as exc:  # a record of an older schema: the given specification stands
            check.notes.append(f"the run's recorded specification does not load ({str(exc).splitlines()[0]}); "
                               f"the map uses {spec.name} as given")
        else:
            if ran.model_dump() != spec.model_dump():
                given, recorded_ = spec.model_dump(), ran.model_dump()
                differ = [k for k in given if given[k] != recorded_.get(k)]
                differ += [f"plan.{k}" for k in given["plan"] if given["plan"][k] != recorded_["plan"].get(k)]
                check.notes.append(f"the run's specification {ran.name} {ran.version} differs from the one given "
                                   f"({', '.join(d for d in differ if d != 'plan') or 'in detail'}): the map is "
                                   "evaluated for what ran")
            spec = ran
    by_req: dict[str, list[dict]] = {}
    for m in measurements:  # summaries too: a long session records only its worst plateau per phase
        by_req.setdefault(m.get("requirement"), []).append(m)
    for rid in spec.ids:
        ms = by_req.get(rid, [])
        rs = rows(spec, rid, [profile])
        if rs is None:
            check.lines.append(CheckLine(rid, "-", "MISSING" if ms else "not run", unmapped_text(spec)))
            continue
        nodes = entry(rid, spec).node_ids(spec, profile)
        absent = [n for n in nodes if not _ran(n, started)]
        if len(absent) == len(nodes) and not ms:
            check.lines.append(CheckLine(rid, "(all)", "not run", "none of its tests ran"))
            continue
        if absent:  # a -k run: what it claims cannot all be expected of this run
            check.lines.append(CheckLine(rid, "(all)", "partly run", "not run: " + ", ".join(
                n.split("::")[-1] for n in absent)))
            continue
        for r in rs:
            claimed = r.values[profile]
            if r.dimension.observe is None:
                check.lines.append(CheckLine(rid, r.dimension.name, "not recorded",
                                             f"claims {_fmt_list(claimed)}; the record does not carry it"))
                continue
            seen = r.dimension.observe(ms)
            missing = [v for v in claimed if _norm(v) not in seen]
            if missing:
                check.lines.append(CheckLine(rid, r.dimension.name, "MISSING",
                                             f"claims {_fmt_list(missing)}; measured {_fmt_list(sorted(seen, key=str))}"))
            else:
                check.lines.append(CheckLine(rid, r.dimension.name, "ok", _fmt_list(claimed)))
    contract = contract_of(spec)
    for item in contract.items if contract else ():
        shown = []
        for t in item.found():
            if any(t.check in m.get("name", "") and _same_test(t.test, m.get("test", "")) for m in measurements):
                shown.append(f"{t.requirement}: {t.check}")
        check.contract.append((item, "; ".join(shown)))
    return check


def _same_test(mapped: str, nodeid: str) -> bool:
    """suites/test_x.py::test_y[param] against a recorded node id (the param is optional)."""
    if "[" in mapped:
        return nodeid.endswith(mapped.split("/")[-1]) or nodeid == mapped
    return nodeid.split("[")[0].endswith(mapped.split("/")[-1])


# ---------------------------------------------------------------- Markdown

def render_markdown(specs: list[SpecificationBase], profiles: list[str]) -> str:
    names = " ".join(s.name for s in specs)
    prof = "both" if list(profiles) == list(PROFILES) else profiles[0]
    out = [
        "# Coverage map",
        "",
        f"Generated by `rig spec coverage {names} --profile {prof} --out docs/coverage.md` from verification/coverage.py "
        "(do not edit by hand). For each requirement: the dimensions along which a table's behaviour can differ and "
        "the values the plan samples along each, per profile. A dimension sampled at one point carries the reason one "
        "point is enough, or it is a **GAP**. `rig spec coverage SPEC --run RUNDIR` checks a run's record against it: "
        "every value claimed for the run's profile must appear in a measurement of that requirement.",
        "",
    ]
    for spec in specs:
        cov = coverage(spec, profiles)
        out += [f"## {spec.name} (specification {spec.version})", "", "### Summary: values sampled per dimension", "",
                "Cells: number of values sampled" + (" (quick / full where they differ)" if len(profiles) > 1 else "")
                + " (repetition: ×N, how many times; n of m: of the m values the contract names)" + "; a + b: two dimensions of that kind (in the order of the requirement's table below); "
                "combinations: the cells of dimensions sampled together; ⚠ one point with no reason (GAP); "
                "– not a dimension of that requirement.", ""]
        axes = [a for a in AXES if any(r.dimension.axis == a for rs in cov.values() if rs for r in rs)]
        columns = axes or ["dimensions"]  # a kind no suite covers yet has none: one column says so
        out.append("| requirement | " + " | ".join(columns) + " |")
        out.append("|---" * (len(columns) + 1) + "|")
        for rid, rs in cov.items():
            if rs is None:
                out.append(f"| {rid} ⚠ not mapped | " + " | ".join("–" for _ in columns) + " |")
                continue
            cells = []
            for a in axes:
                mine = [r for r in rs if r.dimension.axis == a]
                cells.append(" + ".join(_count(r, profiles) for r in mine) if mine else "–")
            out.append(f"| {rid} | " + " | ".join(cells) + " |")
        out += ["", "### Per requirement", ""]
        for rid, rs in cov.items():
            req = spec.requirement(rid)
            out += [f"#### {rid} — {req.title}", ""]
            if rs is None:
                out += [f"**GAP**: {unmapped_text(spec)}.", ""]
                continue
            out.append("Measured by " + ", ".join(f"`{t}`" for t in entry(rid, spec).tests) + ".")
            out += ["", "| dimension | " + " | ".join(profiles) + " | from | one point | the contract's values not sampled |",
                    "|---" * (len(profiles) + 4) + "|"]
            for r in rs:
                vals = [(_fmt_cells(r.values[p]) if r.dimension.axis == "combinations" else
                         _fmt_list(r.values[p], r.dimension.unit) + _share_of_rated(spec, r, p)) for p in profiles]
                why = ("" if not r.one_point else f"**GAP**: {r.dimension.gap or 'no reason given'}" if r.flagged
                       else f"enough: {r.dimension.enough}")
                left = sorted({v for p in profiles for v in r.unsampled(p)}, key=list(r.dimension.contract).index)
                out.append(f"| {r.dimension.name} | " + " | ".join(vals) + f" | {r.dimension.source} | {why} | "
                           f"{', '.join(left)} |")
            out.append("")
        found = gaps(spec, profiles)
        out += [f"### Gaps ({spec.name})", "", "Dimensions sampled at one point with no reason why that is enough:", ""]
        out += [f"- {g}" for g in found] if found else ["None."]
        left = unsampled(spec, profiles)
        out += ["", "Values the contract names along a dimension that the plan does not sample:", ""]
        out += [f"- {line}" for line in left] if left else ["None."]
        out.append("")
    contracts = []  # one section per protocol, in the order of the specifications that use it
    for spec in specs:
        c = contract_of(spec)
        if c is not None and c not in contracts:
            contracts.append(c)
    for contract in contracts:
        out += _contract_markdown(contract)
    return "\n".join(out)


def _contract_markdown(contract: Contract) -> list[str]:
    out = [f"## The contract's refusals and latches ({contract.protocol})", "",
           f"Every \"Refused (04)…\", LAST_REJECT code and latch of {contract.file} ({contract.protocol}), and the "
           "suite check that tries it. **NOT TRIED** is a gap." + (f" {contract.scope}" if contract.scope else ""), "",
           "| id | kind | the contract says | tried by | status |", "|---|---|---|---|---|"]
    for item in contract.items:
        found = item.found()
        by = "<br>".join(f"`{t.test}` — {t.requirement}: “{t.check}”" for t in found) or "–"
        lost = [f"{t.test}: {t.missing()}" for t in item.tried if t not in found]
        note = "; ".join([*([item.note] if item.note else []), *(f"claimed but {m}" for m in lost)])
        note = f" ({note})" if note else ""
        status = f"**{item.status}**" if not found else item.status
        out.append(f"| {item.id} | {item.kind} | {item.says} | {by} | {status}{note} |")
    untried = [i.id for i in contract.items if not i.found()]
    out += ["", f"Not tried by any suite: {', '.join(untried) if untried else 'none'}.", ""]
    return out


def _fmt_cells(cells: list[tuple]) -> str:
    """Cells of dimensions sampled together: 'every cell' when they are the whole product of
    the values seen along each, else how many of it, and which are left out."""
    if not cells:
        return "none"
    axes = [sorted({c[i] for c in cells}, key=lambda v: (isinstance(v, str), v)) for i in range(len(cells[0]))]
    product = math.prod(len(a) for a in axes)
    shape = " × ".join(str(len(a)) for a in axes)
    if len(cells) == product:
        return f"every cell ({shape} = {product})" if len(cells) > 1 else f"one cell: {_fmt(cells[0])}"
    import itertools

    left = [c for c in itertools.product(*axes) if c not in set(cells)]
    return f"{len(cells)} of {shape} = {product} cells; not sampled: {_fmt_list(left)}"


def _share_of_rated(spec: Specification, r: Row, profile: str) -> str:
    """How far up the table's range a force dimension reaches: the corner a list hides."""
    vals = [v for v in r.values[profile] if isinstance(v, float)]
    if r.dimension.axis != "force" or r.dimension.unit != "N" or not vals:
        return ""
    return f" (to {max(vals) / spec.rated_force_n:.0%} of rated)"


def _count(r: Row, profiles: list[str]) -> str:
    if r.dimension.axis == "repetition":  # how many times, not how many values
        reps = [f"×{_fmt(r.values[p][0])}" if len(r.values[p]) == 1 else str(len(r.values[p])) for p in profiles]
        return (reps[0] if len(set(reps)) == 1 else " / ".join(reps)) + (" ⚠" if r.flagged else "")
    counts = [len(r.values[p]) for p in profiles]
    text = str(counts[0]) if len(set(counts)) == 1 else " / ".join(map(str, counts))
    if r.dimension.contract:  # of the values the contract names
        text += f" of {len(r.dimension.contract)}"
    return text + (" ⚠" if r.flagged else "")


# ---------------------------------------------------------------- helpers

def _library_source(module: str) -> str:
    spec = find_spec(module)
    return Path(spec.origin).read_text(encoding="utf-8") if spec is not None and spec.origin else ""


def _sorted_unique(values: Iterable[float]) -> list[float]:
    return sorted({float(v) for v in values})


def _norm(value):
    """Comparable form of a value from the plan or a record (JSON turns tuples into lists)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return round(float(value), 6) if math.isfinite(value) else value
    if isinstance(value, (list, tuple)):
        return tuple(_norm(v) for v in value)
    return value


def _fmt(value, unit: str = "") -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, tuple):
        text = "(" + ", ".join(_fmt(v) for v in value) + ")"
    else:
        text = str(value)
    return f"{text} {unit}".strip() if unit and not isinstance(value, tuple) else text


def _fmt_list(values: list, unit: str = "") -> str:
    if not values:
        return "none"
    if len(values) > 8:
        return f"{len(values)} values: " + ", ".join(_fmt(v) for v in values[:6]) + ", …"
    return ", ".join(_fmt(v, unit) for v in values)


__all__ = ["MAP", "MAPS", "CONTRACT", "CONTRACTS", "Contract", "Dimension", "Entry", "ContractItem", "Tried", "coverage",
           "gaps", "check_run", "contract_of", "register_kind", "render_markdown", "rows", "entry"]
