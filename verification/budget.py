"""How much table time each suite test plans, read from the specification's plan.

A suite test's time limit on a rig is this table time ÷ the rig's time scale K plus a
wall margin (fixtures/plugin.py), so a real bench (K = 1) gets the time its plan needs
and an emulated table (K = 10) no more than it needs: the unit tests' 120 s would kill a
bench run half way and let a hung emulated run sit for minutes. `rig spec duration`
prints the same figures before anything runs.

Every test function in suites/ registers an estimator here (`@estimates("test_name")`);
one without is a collection error, so a new test cannot run under a limit nobody
derived. An estimator returns table seconds for one collected item:
`estimator(spec, params, profile)`, `params` being the item's parametrization
(`item.callspec.params`, e.g. {"trigger": "watchdog"}) and `profile` "quick" or "full".
The figures model what the test waits for (ramps at the commanded rates, settle and
hold times, treatment lengths, release allowances); the wall work between table steps
(Modbus round trips, RESET and ENABLE) is the plugin's margin, not table time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from drivers.kinds import Registrants
from verification.spec import DEFAULT_PROFILE, PROFILES, Session, Specification
from verification.steps import (AFTER_LOWER_START_S, AFTER_RAMP_S, AFTER_RELEASE_S, AFTER_TREATMENT_S, CELL_WINDOW_S,
                          IN_PHASE_S, JUST_ABOVE_N, LOWER_FRACTION, LIMIT_RUNNING_FRACTION, HOLD_FRACTION,
                          TRIP_WAIT_S, AFTER_TRIP_S, QUIET_S, RESET_SETTLE_S, trial_rates)

#: estimator(spec, params, profile) -> table seconds
Estimator = Callable[[Specification, dict, str], float]
_ESTIMATORS: dict[str, Estimator] = {}
#: the library modules that register estimators of their own beside their procedure (a
#: table kind's trials, whose figures are the procedure's own steps): imported by every
#: look-up, so an estimate never depends on whether a suite module was collected first
ESTIMATOR_MODULES = ("verification.fd_interlock", "verification.fd_emergency")
_load = Registrants(ESTIMATOR_MODULES).load

# ---------------------------------------------------------------- the limit (wall)
#: wall seconds on top of the plan for every suite test: bench preparation before it
#: (relays to rest, RESET, ENABLE: a few round trips, up to 5 s of refused RESETs) and
#: the emergency release and its confirmation after it (rigs/safe_state.py)
MARGIN_WALL_S = 30.0
#: the plan's wall time again times this. The plan is a table within its specification;
#: a defective one runs the suites' bounded waits to their ends (a release that never
#: comes is waited for twice its allowance + 1 s, a late watchdog twice its limit + 1 s),
#: and it must be judged FAIL, not cut off by the limit as INCONCLUSIVE. A loaded host
#: (two xdist workers on two cores) stretches every poll and round trip, and repeated
#: emergency trials (a trigger instant known too loosely) come out of it too.
MARGIN_FRACTION = 1.0
#: the first suite test of a session also opens the rig (an emulated table is a process
#: of its own, JIT-compiled on its first start) and arms the heartbeat
OPEN_RIG_WALL_S = 60.0
#: no suite test's limit is shorter than this (a limit is a guard against a hung run,
#: not a measurement: no requirement is judged by it)
FLOOR_WALL_S = 60.0


def time_limit_s(table_s: float, k: float, *, first: bool = False, operator_wall_s: float = 0.0) -> float:
    """A suite test's pytest-timeout limit in wall seconds: its planned table time ÷ K, plus
    the stated margins, plus the time given to a person at the bench (operator prompts)."""
    if k <= 0:
        raise ValueError(f"time scale K must be positive, not {k!r}")
    wall = table_s / k
    limit = wall * (1.0 + MARGIN_FRACTION) + MARGIN_WALL_S + (OPEN_RIG_WALL_S if first else 0.0) + operator_wall_s
    return round(max(FLOOR_WALL_S, limit), 1)


# ---------------------------------------------------------------- the registry
class MissingEstimate(LookupError):
    """A suite test with no estimator: its time limit could not be derived."""


def estimates(*names: str):
    """Register the decorated function as the estimator of the suite tests `names`."""
    def register(fn: Estimator) -> Estimator:
        for name in names:
            if name in _ESTIMATORS:
                raise ValueError(f"verification/budget.py: {name} has two estimators")
            _ESTIMATORS[name] = fn
        return fn
    return register


def estimator_of(name: str) -> Estimator:
    _load()
    try:
        return _ESTIMATORS[name]
    except KeyError:
        raise MissingEstimate(f"{name}: no table-time estimator in verification/budget.py — add one with "
                              f"@estimates({name!r}) (its time limit on a rig derives from it)") from None


def known_tests() -> list[str]:
    _load()
    return sorted(_ESTIMATORS)


def estimate(spec: Specification, test: str, params: dict | None = None, profile: str = DEFAULT_PROFILE) -> float:
    """Table seconds the suite test function `test` plans for these parameters."""
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: known {', '.join(PROFILES)}")
    value = float(estimator_of(test)(spec, dict(params or {}), profile))
    if not value >= 0.0:  # also catches nan
        raise ValueError(f"verification/budget.py: the estimator of {test} gave {value!r} table seconds")
    return value


# ---------------------------------------------------------------- shared pieces
def release_s(spec: Specification) -> float:
    """Table seconds an emergency release may take (ER-RESIDUAL's limit; the watchdog
    period where the specification has no plain number): what a table within its
    specification needs after any test that ends with force on it."""
    try:
        upper = spec.requirement("ER-RESIDUAL").limits(residual=spec.residual_force_n,
                                                       force=max(spec.plan.emergency.forces_n))[1]
    except (KeyError, TypeError, ValueError):
        upper = None
    return float(upper) if upper is not None else float(spec.plan.watchdog_s)


def ramp_s(from_n: float, to_n: float, rate_n_s: float) -> float:
    return abs(to_n - from_n) / rate_n_s


# ---------------------------------------------------------------- test_force_accuracy.py


@estimates("test_static_force_accuracy")
def _static_force_accuracy(spec: Specification, params: dict, profile: str) -> float:
    """The staircase: each setpoint reached at the maximum rate from the one before (the
    rising ones, then the falling ones from above), the settle time, the load-cell window;
    then the release from the last setpoint."""
    rate, present, total = spec.max_ramp_rate_n_s, 0.0, 0.0
    falling = sorted(spec.plan.falling_setpoints_n, reverse=True)
    for setting in [*sorted(spec.plan.setpoints_n), *falling]:
        total += ramp_s(present, setting, rate) + spec.plan.settle_s + CELL_WINDOW_S
        present = setting
    return total + release_s(spec)


# ---------------------------------------------------------------- test_ramps.py


def ramp_case(spec: Specification, params: dict) -> tuple[float, float] | None:
    """(rate N/s, setting N) of one test_ramp case (one of plan.ramp_cases(): slow, fast,
    fast-high), or None when the plan has no such case (the test skips it)."""
    return spec.plan.ramp_cases().get(str(params.get("case", "slow")))


@estimates("test_ramp")
def _ramp(spec: Specification, params: dict, profile: str) -> float:
    """Progressive ramp to the setting and its settle; the ramp down to LOWER_FRACTION of it
    and its settle; the STOP release to zero; the recording after it. All at the case's rate."""
    case = ramp_case(spec, params)
    if case is None:
        return 0.0
    rate, setting = case
    settle = spec.plan.settle_s
    lower = LOWER_FRACTION * setting
    return (ramp_s(0.0, setting, rate) + settle + AFTER_LOWER_START_S + ramp_s(setting, lower, rate) + settle
            + ramp_s(lower, 0.0, rate) + AFTER_RAMP_S)


def session_of(spec: Specification, params: dict) -> Session:
    """The session one test_intermittent_treatment item runs: its parameter `treatment`
    (suites/conftest.py parametrizes it with plan.sessions), else the first of the plan's."""
    chosen = params.get("treatment")
    return chosen if isinstance(chosen, Session) else spec.plan.sessions_for("full")[0]


@estimates("test_intermittent_treatment")
def _intermittent(spec: Specification, params: dict, profile: str) -> float:
    """START to the treatment's end (the controller's TREATMENT_TIME, which includes the
    ramps and plateaus), the final regressive release at the maximum rate, 0.5 s after."""
    s = session_of(spec, params)
    if s not in spec.plan.sessions_for(profile):
        return 0.0  # collected in the quick profile too, and skipped there (suites/conftest.py)
    hold, _ = spec.plan.levels_of(s)
    return s.treatment_s + ramp_s(hold, 0.0, spec.max_ramp_rate_n_s) + AFTER_TREATMENT_S


# ---------------------------------------------------------------- test_emergency_release.py


@dataclass(frozen=True)
class TrialPlan:
    """One emergency trial's table time, step by step (rig spec duration can show them)."""

    to_trigger_s: float  # START to the trigger (the watchdog's trip)
    release_s: float
    after_s: float = AFTER_RELEASE_S
    steps: dict = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.to_trigger_s + self.release_s + self.after_s


def trigger_point_s(spec: Specification, trigger: str, phase: str, force: float) -> float:
    """Table seconds from START to the point of the phase the trial triggers at."""
    up, down, hold, _ = trial_rates(spec, trigger, phase, force)
    reach = force / up
    if phase == "ramp_up":
        return 0.6 * force / up
    if phase == "hold":
        return reach + IN_PHASE_S
    if phase == "ramp_to_rest":
        return reach + hold + 0.25 * (force / 2) / down
    return reach + hold + (force / 2) / down + IN_PHASE_S  # rest


def watchdog_trip_s(spec: Specification, point_s: float) -> float:
    """START to the watchdog's trip: today the beats stop one period *before* the trigger
    point (test_emergency_release._reach with lead_s = watchdog), so the trip lands on the
    point, or one period after START when the point comes sooner. A trial that stops the
    beats *at* the point and times the trip (WD-TIME) needs point + period (+ tolerance)."""
    return max(point_s, spec.plan.watchdog_s)


def emergency_trial(spec: Specification, trigger: str, phase: str, force: float) -> TrialPlan:
    point = trigger_point_s(spec, trigger, phase, force)
    to_trigger = watchdog_trip_s(spec, point) if trigger == "watchdog" else point
    return TrialPlan(to_trigger, release_s(spec), steps={"point_s": point})


@estimates("test_emergency_release")
def _emergency_release(spec: Specification, params: dict, profile: str) -> float:
    """Every trial: START, ramp to the force, the phase's wait (the watchdog's period for
    its trigger), the release within ER-RESIDUAL's allowance, the recording after it.
    RESET and ENABLE between trials are wall work (the margin)."""
    trigger = str(params.get("trigger", ""))
    if trigger not in spec.plan.emergency.triggers:
        return 0.0  # skipped: not in the plan
    return sum(emergency_trial(spec, trigger, phase, force).total_s for phase, force in spec.plan.emergency.trial_plan(profile))


# ---------------------------------------------------------------- test_interlocks.py


@estimates("test_setpoint_above_force_limit_refused", "test_start_refused",
           "test_start_refused_with_target_above_lowered_limit", "test_reset_refused_with_switch_pressed")
def _refusal(spec: Specification, params: dict, profile: str) -> float:
    """A refused command, then QUIET_S of the gauge watching that nothing moves; a latch
    that must be made first takes its own time: the watchdog's trip (waited up to three
    periods + 1 s) or an over-force trip (as test_overforce_trip, then up to 10 s released)."""
    condition = params.get("condition")
    if condition == "watchdog tripped":
        return 3 * spec.plan.watchdog_s + 1.0 + QUIET_S
    if condition == "over-force tripped":
        return _overforce_trip(spec, params, profile) + 10.0 + QUIET_S
    return QUIET_S


@estimates("test_force_limit_locked_while_enabled")
def _limit_lock(spec: Specification, params: dict, profile: str) -> float:
    """Register writes, and a treatment started and stopped around two of them: at most
    the release from its setting (the writes take only wall time, the ramp barely begins)."""
    return ramp_s(LIMIT_RUNNING_FRACTION * spec.plan.overforce_limit_n, 0.0, spec.max_ramp_rate_n_s)


@estimates("test_residual_force_read_only", "test_fault_code_keeps_the_first_trigger")
def _registers_only(spec: Specification, params: dict, profile: str) -> float:
    """Register writes and reads, relays and a release of no force: no table time of their own."""
    return 0.0


@estimates("test_reset_refused_just_above_the_residual")
def _reset_just_above(spec: Specification, params: dict, profile: str) -> float:
    """The ramp to a few newtons above the residual at the set-up rate, the settle, the STOP release."""
    setting = spec.residual_force_n + JUST_ABOVE_N
    rate = spec.plan.emergency.setup_ramp_n_s
    return 2 * ramp_s(0.0, setting, rate) + RESET_SETTLE_S


@estimates("test_reset_refused_with_force_present")
def _reset_refused(spec: Specification, params: dict, profile: str) -> float:
    """The largest trial force reached at the set-up ramp, RESET tried twice around an
    e-stop (0.05 s each side), then the release."""
    em = spec.plan.emergency
    return ramp_s(0.0, max(em.forces_n), em.setup_ramp_n_s) + 0.1 + release_s(spec)


@estimates("test_overforce_trip")
def _overforce_trip(spec: Specification, params: dict, profile: str) -> float:
    """Ramp to 80 % of the over-force limit, 0.3 s, the snag and the trip, 1 s after."""
    hold = HOLD_FRACTION * spec.plan.overforce_limit_n
    return ramp_s(0.0, hold, spec.max_ramp_rate_n_s) + 0.3 + TRIP_WAIT_S + AFTER_TRIP_S + release_s(spec)


@estimates("test_overforce_trip_pulled_by_operator")
def _overforce_by_hand(spec: Specification, params: dict, profile: str) -> float:
    """The table's part of a person's pull: the ramp to the hold, the trip, the release.
    The person's own time is their prompts' (the plugin adds it, as for every operator test)."""
    hold = HOLD_FRACTION * spec.plan.overforce_limit_n
    return ramp_s(0.0, hold, spec.max_ramp_rate_n_s) + TRIP_WAIT_S + 0.5 + release_s(spec)


# ---------------------------------------------------------------- test_operator_checks.py
@estimates("test_estop_button_pressed_by_hand")
def _estop_by_hand(spec: Specification, params: dict, profile: str) -> float:
    """The table's part: the ramp to the largest trial force, the release, 0.15 s after."""
    em = spec.plan.emergency
    return ramp_s(0.0, max(em.forces_n), em.setup_ramp_n_s) + release_s(spec) + AFTER_RELEASE_S


# ---------------------------------------------------------------- test_fd_kinematics.py
@estimates("test_treatment_kinematics")
def _fd_treatment(spec: Specification, params: dict, profile: str) -> float:
    """A flexion-distraction treatment (verification/fd_plan.py: the distraction's ramp up,
    the cycles to their count or TREATMENT_TIME, the controlled end's return and ramp
    down), with the rest recorded before START and after the end (the first and last dwells)
    and, before it, the section's return to neutral from the rated depth."""
    from verification.fd_plan import move_s, plan_of

    t = params.get("fd_treatment")
    if t is None:
        t = spec.plan.treatments_for("full")[0]
    if t not in spec.plan.treatments_for(profile):
        return 0.0  # collected in the quick profile too, and skipped there (suites/conftest.py)
    plan = plan_of(t, spec.plan.distraction_rate_n_s)
    return (move_s(spec.rated_flexion_deg, spec.rated_speed_deg_s) + FD_BEFORE_START_S + plan.total_s
            + FD_AFTER_END_S)


#: table seconds of rest the kinematics suite records before START and after the end
#: (suites/test_fd_kinematics.py BEFORE_START_S, AFTER_END_S read them from here)
FD_BEFORE_START_S = 0.5
FD_AFTER_END_S = 1.0


# ---------------------------------------------------------------- a whole plan
@dataclass(frozen=True)
class Planned:
    """One collected suite test's plan: table seconds, and when it runs at all."""

    nodeid: str
    test: str
    table_s: float
    operator: bool = False  # needs a person at the bench (skipped without one)
    emulator_only: bool = False
    bench_only: bool = False  # a person stands in for the emulator's patient simulator
    operator_prompts: int = 0
    skipped: str | None = None  # skipped whatever the rig (a full-profile session in quick): why


def plan_total(rows: Iterable[Planned], *, bench: bool) -> float:
    """Table seconds of the tests that run on an emulated rig without a person (bench=False)
    or on a real bench with a person at it (bench=True)."""
    return sum(r.table_s for r in rows if runs_on(r, bench))


def runs_on(row: Planned, bench: bool) -> bool:
    if row.skipped:
        return False
    if bench:
        return not row.emulator_only
    return not row.operator and not row.bench_only
