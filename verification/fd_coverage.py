"""The coverage map of a flexion-distraction specification (FDC-1 tables), and the FDC-1
contract's refusals and latches with the suite check that tries each.

Why a map of its own: an FD table's defects hide along other dimensions than a traction
table's — a mode or one side of lateral flexion, the slowest or the rated speed, a small
or a full depth, a dwell of 0 or of clinical length, the end by count or by time, the
distraction held low or high, and for each emergency trigger the moving phase it strikes.
The values come from the plan (verification/flexion_spec.py, verification/fd_plan.py) and
from the FD suites' own parametrization, read as the suites read them; the observers read
the conditions the FD suites record (suites/test_fd_*.py, verification/fd_emergency.py,
verification/fd_interlock.py). The map's machinery and its checks are
verification/coverage.py's; this module registers the map and the contract there
(coverage.register_kind) when coverage first looks a kind up.
"""

from __future__ import annotations

from drivers.units import DDEG_PER_DEG
from verification import coverage as cv
from verification.coverage import (Contract, ContractItem, Dimension, Entry, Observer, Tried, Values, cond,
                                   cond_tuple, fixed, names, parametrized, plan_value)
from verification.fd_interlock import LIMIT_REGISTERS
from verification.fd_plan import DEFAULT_ACCEL_DEG_S2, plan_of
from verification.flexion_spec import MOTIONS, MOVING_PHASES, FlexionSpecification, Treatment
from verification.spec import EMERGENCY_TRIGGERS

_KIN = "suites/test_fd_kinematics.py::test_treatment_kinematics"
_IL = "suites/test_fd_interlocks.py"
_ES = "suites/test_fd_emergency.py::test_fd_emergency_stop"
#: FDC-1 MODE 0 and 1
MODES = ("flexion", "lateral")
#: FDC-1 SPEED's smallest value: one register step (0.1 °/s)
SLOWEST_DEG_S = 1 / DDEG_PER_DEG
SLOWEST, RATED = f"slowest ({SLOWEST_DEG_S:g} °/s)", "rated"
#: how a treatment is told to end (FDC-1 CYCLES, TREATMENT_TIME; both: whichever comes first)
END_SET = ("CYCLES only", "TREATMENT_TIME only", "both")
#: the emergency triggers FDC-1 names besides those a trial applies: each is its own
#: requirement's (over-travel IL-TRAVEL, obstruction IL-OBSTRUCT) or latched only to try a refusal (over-force)
OTHER_TRIGGERS = ("overforce", "overtravel", "obstruction")


# ---------------------------------------------------------------- plan readers

def treatments(spec: FlexionSpecification, profile: str) -> list[Treatment]:
    """The treatments the kinematics suite runs in the profile (suites/conftest.py parametrizes by them)."""
    return spec.plan.treatments_for(profile)


def of_treatments(get, only=lambda t: True) -> Values:
    """The sorted distinct values of `get(treatment)` over the profile's treatments (`only` those)."""
    def values(spec, profile):
        return sorted({get(t) for t in treatments(spec, profile) if only(t)}, key=lambda v: (isinstance(v, str), v))
    return values


def modes(spec, profile, only=lambda t: True) -> list[str]:
    return [m for m in MODES if any(t.mode == m for t in treatments(spec, profile) if only(t))]


def motions(spec, profile, only=lambda t: True) -> list[str]:
    """The motions the treatments make: flexion, lateral to each side (a MODE 1 cycle makes both)."""
    made = {m for t in treatments(spec, profile) if only(t) for m in t.motions}
    return [m for m in MOTIONS if m in made]


def speed_corners(spec, profile, only=lambda t: True) -> list[str]:
    """Which ends of SPEED's range the treatments reach: the contract's slowest, the table's rated."""
    speeds = {t.speed_deg_s for t in treatments(spec, profile) if only(t)}
    return [*([SLOWEST] if any(s <= SLOWEST_DEG_S for s in speeds) else []),
            *([RATED] if any(s >= spec.rated_speed_deg_s for s in speeds) else [])]


def ended_by(spec, t: Treatment) -> str:
    """Which end the kinematics suite judges: fd_plan.plan_of's (the plan's ACCEL estimate)."""
    return plan_of(t, spec.plan.distraction_rate_n_s, DEFAULT_ACCEL_DEG_S2).ended_by


def ends(spec, profile) -> list[str]:
    """count, time: the ends judged ('either': too close to tell, judged as neither planned)."""
    found = {ended_by(spec, t) for t in treatments(spec, profile)}
    return [e for e in ("count", "time") if e in found]


def end_set(t: Treatment) -> str:
    return END_SET[2] if t.cycles and t.treatment_s else END_SET[0] if t.cycles else END_SET[1]


def ends_set_of(spec, profile) -> list[str]:
    found = {end_set(t) for t in treatments(spec, profile)}
    return [e for e in END_SET if e in found]


def by(end: str):
    return lambda spec, profile: sorted({float(t.cycles if end == "count" else t.treatment_s)
                                         for t in treatments(spec, profile) if ended_by(spec, t) == end})


def kinematics_items(spec, profile) -> list[str]:
    return [f"{_KIN}[{t.test_id}]" for t in treatments(spec, profile)]


def trial_plan(spec, profile) -> list[tuple[str, str, float]]:
    return spec.plan.emergency.trial_plan(profile)


def triggers(spec, profile) -> list[str]:
    return [t for t in EMERGENCY_TRIGGERS if t in spec.plan.emergency.triggers]


def trial_motions(spec, profile) -> list[str]:
    return [m for m in MOTIONS if any(m == tm for tm, _, _ in trial_plan(spec, profile))]


def trial_phases(spec, profile) -> list[str]:
    return [p for p in MOVING_PHASES if any(p == tp for _, tp, _ in trial_plan(spec, profile))]


def trial_cells(spec, profile) -> list[tuple]:
    return sorted({(m, p) for m, p, _ in trial_plan(spec, profile)})


def trial_forces(spec, profile) -> list[float]:
    return sorted({float(f) for _, _, f in trial_plan(spec, profile)})


def trigger_cells(spec, profile) -> list[tuple]:
    cells = sorted({(m, p, float(f)) for m, p, f in trial_plan(spec, profile)})
    return [(t, *c) for t in triggers(spec, profile) for c in cells]


def trial_depths(spec, profile) -> list[float]:
    em = spec.plan.emergency
    return sorted({em.flexion_depth_deg if m == "flexion" else em.lateral_depth_deg
                   for m in trial_motions(spec, profile)})


def emergency_items(spec, profile) -> list[str]:
    return [f"{_ES}[{t}]" for t in triggers(spec, profile)]


def start_items(spec, profile) -> list[str]:
    return [f"{_IL}::test_fd_start_refused[{c}]"
            for c in parametrized("suites.test_fd_interlocks", "test_fd_start_refused", "condition")(spec, profile)]


def overtravel_motions(spec, profile) -> list[str]:
    """The suite's parametrize, less the motions the plan leaves out (the test skips them)."""
    suite = parametrized("suites.test_fd_interlocks", "test_fd_overtravel_trip", "motion")(spec, profile)
    return [m for m in suite if m in spec.plan.interlocks.overtravel_motions]


def overtravel_items(spec, profile) -> list[str]:
    return [f"{_IL}::test_fd_overtravel_trip[{m}]" for m in overtravel_motions(spec, profile)]


def obstruction_trials(spec, profile) -> list[int]:
    return [spec.plan.obstruction.trials_for(profile)]


# ---------------------------------------------------------------- observers (the FD suites' conditions)

def cond_where(key: str, **match) -> Observer:
    """The values of one condition key over the measurements whose conditions match."""
    inner = cond(key)
    return lambda ms: inner([m for m in ms if all(m.get("conditions", {}).get(k) == v for k, v in match.items())])


def _motion(c: dict, angle_key: str) -> str | None:
    """The motion a kinematics measurement was taken on: flexion, or the lateral side its
    angle lies on (None: at neutral, no side)."""
    if c.get("mode") == "flexion":
        return "flexion"
    angle, depth = c.get(angle_key), c.get("depth_deg")
    if c.get("mode") != "lateral" or angle is None or depth is None or abs(angle) < depth / 2:
        return None
    return "lateral_left" if angle > 0 else "lateral_right"


def motion_from(angle_key: str) -> Observer:
    return lambda ms: {m_ for m in ms if (m_ := _motion(m.get("conditions", {}), angle_key))}


def dwell_at(ms: list[dict]) -> set:
    """FD-ENCODER: compared at the depth or at neutral (the inclinometer's angle against half the depth)."""
    out = set()
    for m in ms:
        c = m.get("conditions", {})
        if c.get("inclinometer_deg") is not None and c.get("depth_deg"):
            out.add("depth" if abs(c["inclinometer_deg"]) > c["depth_deg"] / 2 else "neutral")
    return out


def move_directions(ms: list[dict]) -> set:
    return {{1: "+", -1: "−"}.get(m.get("conditions", {}).get("direction")) for m in ms} - {None}


def ends_set(ms: list[dict]) -> set:
    out = set()
    for m in ms:
        c = m.get("conditions", {})
        if c.get("cycles") is not None and c.get("treatment_s") is not None:
            out.add(END_SET[2] if c["cycles"] and c["treatment_s"] else END_SET[0] if c["cycles"] else END_SET[1])
    return out


def quantities(**labels: str | None) -> Observer:
    """Which quantities of a requirement were measured (label → the quantity key; None: its primary)."""
    return lambda ms: {label for label, q in labels.items() if any(m.get("quantity") == q for m in ms)}


def restarts(ms: list[dict]) -> set:
    """ES-LATCH: START tried after every trigger; ENABLE where a power loss de-energised the drives."""
    out = set()
    for m in ms:
        c = m.get("conditions", {})
        if c.get("restart_refused") is not None:
            out.add("START")
        if c.get("enable_refused") is not None:
            out.add("ENABLE after a power loss")
    return out


def per_case(*keys: str) -> Observer:
    """How many trials each case (the values of `keys`) ran."""
    def observe(ms: list[dict]) -> set:
        per: dict[tuple, set] = {}
        for m in ms:
            c = m.get("conditions", {})
            if c.get("trial") is not None and all(c.get(k) is not None for k in keys):
                per.setdefault(tuple(c[k] for k in keys), set()).add(c["trial"])
        return {len(v) for v in per.values()}
    return observe


def above_limit(ms: list[dict]) -> set:
    return {cv._norm(c["written_deg"] - c["limit_deg"]) for m in ms
            if (c := m.get("conditions", {})).get("written_deg") is not None and c.get("limit_deg") is not None}


# ---------------------------------------------------------------- the dimensions

def _mode(gap: str, only=lambda t: True) -> Dimension:
    return Dimension("mode", "other", lambda s, p: modes(s, p, only), "plan.treatments (mode)", cond("mode"), gap=gap,
                     contract=MODES)


def _motion_dim(observe: Observer | None, gap: str, only=lambda t: True) -> Dimension:
    return Dimension("motion (side)", "direction", lambda s, p: motions(s, p, only),
                     "plan.treatments (mode; a lateral cycle makes both sides)", observe, gap=gap, contract=MOTIONS)


def _speed(gap: str, only=lambda t: True) -> Dimension:
    return Dimension("speed", "rate", of_treatments(lambda t: float(t.speed_deg_s), only),
                     "plan.treatments (speed_deg_s)", cond("speed_deg_s"), unit="°/s", gap=gap)


def _speed_corners(gap: str, only=lambda t: True) -> Dimension:
    return Dimension("ends of SPEED's range", "rate", lambda s, p: speed_corners(s, p, only),
                     "plan.treatments against FDC-1 SPEED's register step and rated_speed_deg_s", None, gap=gap,
                     contract=(SLOWEST, RATED))


def _depth(mode: str, gap: str) -> Dimension:
    return Dimension(f"{mode} depth", "angle", of_treatments(lambda t: float(t.depth_deg), lambda t: t.mode == mode),
                     f"plan.treatments (depth_deg of the {mode} ones; rated {'flexion' if mode == 'flexion' else 'lateral'}"
                     f" travel: rated_{mode}_deg)", cond_where("depth_deg", mode=mode), unit="°", gap=gap)


def _distraction(gap: str) -> Dimension:
    return Dimension("distraction held", "force", of_treatments(lambda t: float(t.distraction_n)),
                     "plan.treatments (distraction_n; 0: none)", cond("distraction_n"), unit="N", gap=gap)


TRIAL_DIMS = (
    Dimension("trigger", "trigger", triggers, "plan.emergency.triggers (verification.spec.EMERGENCY_TRIGGERS)",
              cond("trigger"), gap="a table whose stop differs by trigger passes on the untried ones",
              contract=(*EMERGENCY_TRIGGERS, *OTHER_TRIGGERS)),
    Dimension("motion", "direction", trial_motions, "plan.emergency.trial_plan(profile) (plan.emergency.motions)",
              cond("motion"), gap="a stop that overruns on one side only passes", contract=MOTIONS),
    Dimension("moving phase", "phase", trial_phases, "plan.emergency.trial_plan(profile) (plan.emergency.phases)",
              cond("phase"), gap="a stop that fails moving back (towards neutral) only passes", contract=MOVING_PHASES),
    Dimension("distraction at the trigger", "force", trial_forces, "plan.emergency.forces_n (by trial_plan)",
              cond("force_n"), unit="N", gap="a release slow from high forces only passes"),
    Dimension("motion × phase", "combinations", trial_cells, "plan.emergency.trial_plan(profile)",
              cond_tuple("motion", "phase"), enough="one cell is the whole plan: its motion and phase are sampled above"),
    Dimension("trigger × motion × phase × force", "combinations", trigger_cells,
              "plan.emergency.trial_plan(profile) for each trigger", cond_tuple("trigger", "motion", "phase", "force_n"),
              enough="one cell is the whole plan: its trigger, motion, phase and force are sampled above"),
    Dimension("speed at the trigger", "rate", lambda s, p: [float(s.emergency_speed_deg_s)],
              "plan.emergency.speed_deg_s (None: rated_speed_deg_s)", cond("speed_deg_s"), unit="°/s",
              enough="the rated speed: the fastest move the table is allowed, the longest stop in time and travel "
                     "at any deceleration; a creeping brake (ES-HOLD) and the release (ES-RELEASE) do not depend on "
                     "the speed the section had"),
    Dimension("trial move's depth", "angle", trial_depths, "plan.emergency.flexion_depth_deg, lateral_depth_deg",
              cond("depth_deg"), unit="°",
              enough="the trigger strikes at mid-move at cruise (plan.emergency.at_fraction): the depth only sets how "
                     "long the cruise lasts"),
    Dimension("where in the move", "other", lambda s, p: [float(s.plan.emergency.at_fraction)],
              "plan.emergency.at_fraction (share of the move covered)", None,
              enough="at cruise the section moves at SPEED anywhere along the move; a trial struck outside the cruise "
                     "is repeated, then N/A (verification/fd_emergency.CRUISE_SHARE)"),
    Dimension("trials per trigger", "repetition", lambda s, p: [s.plan.emergency.trials_for(p)],
              "plan.emergency.trials_for(profile) (quick_trials in the quick profile)", cv.trials_per_trigger,
              enough="each trial is one trigger; the worst trial decides, with min, max, mean and SD per trigger"),
)

DEPTH_GAP = "a table short at one depth only (its rated travel) passes"
FD_MAP: tuple[Entry, ...] = (
    Entry("FD-DEPTH", (_KIN,), (
        _mode("a mode whose depth is wrong passes when only the other is run"),
        _motion_dim(motion_from("set_deg"), "one side of lateral flexion short passes"),
        _depth("flexion", DEPTH_GAP), _depth("lateral", DEPTH_GAP),
        _speed("a depth overshot at high speeds (or crept short of at low) passes"),
        _speed_corners("a depth wrong at one end of SPEED's range only passes"),
        _distraction("a depth that sags under the distraction passes"),
    ), kinematics_items),
    Entry("FD-NEUTRAL", (_KIN,), (
        _mode("a mode whose return falls short passes when only the other is run"),
        _motion_dim(None, "a return short from one side only passes"),
        Dimension("rest at neutral", "duration", of_treatments(lambda t: float(t.rest_s)), "plan.treatments (rest_s)",
                  cond("rest_s"), unit="s", gap="a return judged only with (or only without) a dwell at neutral"),
        _speed("a return short at one speed only passes"),
        _distraction("a section pulled off neutral by the distraction passes"),
    ), kinematics_items),
    Entry("FD-SPEED", (_KIN,), (
        _speed("a speed loop wrong at one speed only (a dead band at the slowest) passes"),
        _speed_corners("a speed error at one end of SPEED's range only passes"),
        _mode("a speed wrong in one mode only passes"),
        Dimension("move direction", "direction", fixed("+", "−"),
                  "suites/test_fd_kinematics.py (each treatment moves out and back: towards larger and smaller angles)",
                  move_directions),
        _depth("flexion", "a move too short to cruise (triangular) only; cruise not judged"),
        _depth("lateral", "a move too short to cruise (triangular) only; cruise not judged"),
        _distraction("a drive slowed by the distraction passes"),
    ), kinematics_items),
    Entry("FD-TIMING", (_KIN,), (
        Dimension("pause at the depth", "duration", of_treatments(lambda t: float(t.pause_s)),
                  "plan.treatments (pause_s; 0: the contract's corner)", cond_where("set_s", phase="pause"), unit="s",
                  gap="a pause timer wrong at 0 or at clinical length only passes"),
        Dimension("rest at neutral", "duration", of_treatments(lambda t: float(t.rest_s)),
                  "plan.treatments (rest_s; 0: the contract's corner)", cond_where("set_s", phase="rest"), unit="s",
                  gap="a rest timer wrong at 0 or at clinical length only passes"),
        _mode("a dwell wrong in one mode only passes"),
        _speed("a dwell clipped by a slow approach passes"),
    ), kinematics_items),
    Entry("FD-CYCLES", (_KIN,), (
        Dimension("ended by", "condition", ends, "plan.treatments through verification.fd_plan.plan_of (which end "
                  "comes first, at the domain file's ACCEL)", names(count="cycles counted", time="treatment time error"),
                  gap="a treatment ended by count only (or by time only): the other end is not judged",
                  contract=("count", "time")),
        Dimension("ends set", "condition", ends_set_of, "plan.treatments (cycles, treatment_s)", ends_set,
                  gap="a table that ends wrongly when both CYCLES and TREATMENT_TIME are set passes", contract=END_SET),
        Dimension("CYCLES", "other", by("count"), "plan.treatments ended by the count (cycles)", cond("set"),
                  enough="the count is judged exactly; the counter counts each cycle the same way"),
        Dimension("TREATMENT_TIME", "duration", by("time"), "plan.treatments ended by time (treatment_s)",
                  cond("set_s"), unit="s", gap="a timer that drifts only in long sessions passes (the full profile "
                                               "runs clinical lengths)"),
        _mode("a lateral cycle counted per side (or a flexion one twice) passes when only the other is run"),
        _speed_corners("a count wrong at the slowest speed only (an edge within the noise counted twice) passes"),
    ), kinematics_items),
    Entry("FD-ENCODER", (_KIN,), (
        _mode("an encoder wrong on one axis only passes"),
        _motion_dim(motion_from("inclinometer_deg"), "an encoder wrong on one side only passes"),
        Dimension("compared at", "other", fixed("neutral", "depth"),
                  "suites/test_fd_kinematics.py::_encoder (every settled dwell)", dwell_at),
        _depth("flexion", "an encoder scale error shows only at large angles"),
        _depth("lateral", "an encoder scale error shows only at large angles"),
    ), kinematics_items),
    Entry("DX-STATIC", (_KIN,), (
        Dimension("distraction held", "force", of_treatments(lambda t: float(t.distraction_n), lambda t: t.distraction_n),
                  "plan.treatments (distraction_n above 0)", cond("distraction_n"), unit="N",
                  gap="a force loop that sags at high (or low) forces only passes"),
        _mode("a winch disturbed by one mode's motion only passes", lambda t: t.distraction_n),
        _speed("a winch disturbed only by fast moves passes", lambda t: t.distraction_n),
        Dimension("move direction", "direction", fixed("+", "−"),
                  "suites/test_fd_kinematics.py::_distraction (each move of the treatment)", move_directions),
    ), kinematics_items),
    Entry("IL-DEPTH", (f"{_IL}::test_fd_depth_above_limit_refused",), (
        Dimension("register", "condition", fixed("FLEXION_DEPTH", "LATERAL_DEPTH"),
                  f"{_IL}::test_fd_depth_above_limit_refused",
                  names(FLEXION_DEPTH="FLEXION_DEPTH ", LATERAL_DEPTH="LATERAL_DEPTH ")),
        Dimension("refused", "condition", fixed("a depth written above its limit (03)",
                                                "START with a depth left above a lowered limit (LAST_REJECT 1)"),
                  f"{_IL}::test_fd_depth_above_limit_refused",
                  names(**{"a depth written above its limit (03)": "above the limit refused with 03",
                           "START with a depth left above a lowered limit (LAST_REJECT 1)":
                               "depth above a lowered limit"})),
        Dimension("amount above the limit", "angle", lambda s, p: sorted(float(v) for v in
                                                                         s.plan.interlocks.above_limit_deg),
                  "plan.interlocks.above_limit_deg", above_limit, unit="°",
                  gap="only one step above the limit (or only well above) is tried"),
        Dimension("limits written", "angle", lambda s, p: sorted({float(s.plan.interlocks.angle_limit_deg),
                                                                  float(s.plan.interlocks.lateral_limit_deg)}),
                  "plan.interlocks.angle_limit_deg, lateral_limit_deg", cond("limit_deg"), unit="°",
                  enough="below the rated travel, so a table comparing with the rated travel, not the limit, is "
                         "caught"),
        Dimension("mode of the START case", "other", fixed("flexion", "lateral"),
                  f"{_IL}::test_fd_depth_above_limit_refused", cond("mode")),
    )),
    Entry("IL-LIMIT-LOCK", (f"{_IL}::test_fd_limits_locked_while_enabled",), (
        Dimension("limit register", "condition", lambda s, p: [r.name for r in LIMIT_REGISTERS],
                  "verification/fd_interlock.LIMIT_REGISTERS (the suite's loop)", cond("register"),
                  contract=("ANGLE_LIMIT", "LATERAL_LIMIT", "FORCE_LIMIT")),
        Dimension("read-only register", "condition", fixed("RESIDUAL_FORCE"),
                  f"{_IL}::test_fd_limits_locked_while_enabled", names(RESIDUAL_FORCE="RESIDUAL_FORCE write refused"),
                  enough="FDC-1 has one read-only holding register"),
        Dimension("drive state", "condition", fixed("enabled, idle", "treatment running"),
                  f"{_IL}::test_fd_limits_locked_while_enabled", cond("state")),
        Dimension("value written", "direction", fixed("lower", "higher"),
                  f"{_IL}::test_fd_limits_locked_while_enabled (half the held value; one step above it)",
                  cond("direction")),
        Dimension("state × value", "combinations", fixed(*((s, d) for s in ("enabled, idle", "treatment running")
                                                             for d in ("lower", "higher"))),
                  f"{_IL}::test_fd_limits_locked_while_enabled", cond_tuple("state", "direction"),
                  enough="one cell is the whole plan"),
    )),
    Entry("IL-START", (f"{_IL}::test_fd_start_refused",), (
        Dimension("refusal condition", "condition", parametrized("suites.test_fd_interlocks", "test_fd_start_refused",
                                                                  "condition"),
                  f"{_IL}::test_fd_start_refused (parametrize: START_CASES, with the LAST_REJECT the contract's "
                  "order names)", cond("condition")),
        Dimension("depth set", "angle", plan_value(lambda s: s.plan.interlocks.angle_limit_deg / 2),
                  "plan.interlocks.angle_limit_deg / 2 (a depth over the limit: its own case)", None, unit="°",
                  enough="START's refusal is decided before any move; a depth over its limit is a case of its own"),
    ), start_items),
    Entry("IL-RESET", (f"{_IL}::test_fd_reset",), (
        Dimension("RESET tried", "condition",
                  fixed("with the distraction held (LAST_REJECT 5)", "with the patient switch pressed (LAST_REJECT 3)",
                        "with the e-stop button held (latches again)", "after a stop mid-move (moves nothing)"),
                  f"{_IL}::test_fd_reset (RESET refused right after an emergency stop is judged only while the "
                  "controller still shows force)",
                  names(**{"with the distraction held (LAST_REJECT 5)": "RESET refused with force present",
                           "with the patient switch pressed (LAST_REJECT 3)": "RESET refused with the patient switch",
                           "with the e-stop button held (latches again)": "e-stop button held latches again",
                           "after a stop mid-move (moves nothing)": "RESET moves nothing"})),
        Dimension("distraction at the refusal", "force", plan_value(lambda s: min(s.plan.emergency.forces_n)),
                  "min(plan.emergency.forces_n)", None, unit="N",
                  gap="a RESET threshold set too high (between residual_force_n and the force tried) passes: unlike "
                      "traction's IL-RESET, no RESET is tried just above the residual force"),
    )),
    Entry("IL-TRAVEL", (f"{_IL}::test_fd_overtravel_trip",), (
        Dimension("motion (side)", "direction", overtravel_motions,
                  f"{_IL}::test_fd_overtravel_trip (parametrize) ∩ plan.interlocks.overtravel_motions", cond("motion"),
                  gap="an over-travel trip missing on one side passes", contract=MOTIONS),
        Dimension("how the limit is crossed", "condition",
                  fixed("energised beyond a lowered limit (the domain file's bench procedure)"),
                  f"{_IL}::test_fd_overtravel_trip", None,
                  gap="a trip checked only when the drives are energised, not while a move (a drive overshooting) or a "
                      "push carries the section across the limit, passes: FDC-1 refuses a depth beyond the limit, so "
                      "no suite can drive a compliant section across it"),
        Dimension("limit", "angle", plan_value(lambda s: s.plan.interlocks.overtravel_limit_deg),
                  "plan.interlocks.overtravel_limit_deg", cond("limit_deg"), unit="°",
                  enough="the trip compares the encoder with the register, whatever its value"),
    ), overtravel_items),
    Entry("IL-OBSTRUCT", (f"{_IL}::test_fd_obstruction", f"{_IL}::test_fd_obstruction_placed_by_operator"), (
        Dimension("speed", "rate", lambda s, p: sorted(float(v) for v in s.plan.obstruction.speeds_deg_s),
                  "plan.obstruction.speeds_deg_s", cond("speed_deg_s"), unit="°/s",
                  gap="a force on the obstacle too high at high speeds only passes"),
        Dimension("distraction held", "force", lambda s, p: sorted(float(v) for v in s.plan.obstruction.distraction_n),
                  "plan.obstruction.distraction_n", cond("distraction_n"), unit="N",
                  gap="an obstruction detection masked by the distraction passes"),
        Dimension("speed × distraction", "combinations", lambda s, p: sorted(s.plan.obstruction.cases()),
                  "plan.obstruction.cases()", cond_tuple("speed_deg_s", "distraction_n"),
                  enough="one cell is the whole plan"),
        Dimension("obstacle (axis, side)", "direction", fixed("the rig file's obstacle"), "the rig file (obstacle:)",
                  None, gap="an obstruction detection that works on one axis or side only passes: a bench has one "
                            "obstacle, at the angle its rig file states"),
        Dimension("trials per case", "repetition", obstruction_trials,
                  "plan.obstruction.trials_for(profile) (quick_trials in the quick profile)",
                  per_case("speed_deg_s", "distraction_n"),
                  enough="each strike is judged on its own (peak, back-off, release), the worst decides; the full "
                         "profile strikes each case plan.obstruction.trials times"),
    ), fixed(f"{_IL}::test_fd_obstruction")),
    Entry("ES-TIME", (_ES,), TRIAL_DIMS, emergency_items),
    Entry("ES-TRAVEL", (_ES,), TRIAL_DIMS, emergency_items),
    Entry("ES-HOLD", (_ES,), (
        *TRIAL_DIMS,
        Dimension("held", "condition", fixed("the hold window after the stop", "after RESET (no return)"),
                  "verification/fd_emergency.py (stop_measurements, return_measurement)",
                  quantities(**{"the hold window after the stop": None, "after RESET (no return)": "return"})),
        Dimension("hold window", "duration", plan_value(lambda s: s.plan.emergency.hold_window_s),
                  "plan.emergency.hold_window_s", cond("hold_window_s"), unit="s",
                  enough="the largest excursion over the window and its fitted drift rate (recorded) show a creeping "
                         "brake at any window long enough to see it move"),
    ), emergency_items),
    Entry("ES-RELEASE", (_ES,), (
        *TRIAL_DIMS,
        Dimension("quantity", "condition", fixed("time below the residual", "rise"),
                  "verification/release.residual_release", quantities(**{"time below the residual": None,
                                                                          "rise": "rise"})),
    ), emergency_items),
    Entry("ES-LATCH", (_ES,), (
        *TRIAL_DIMS,
        Dimension("restart tried", "condition",
                  cv.restarts_tried,
                  "verification/fd_emergency.run_trial", restarts,
                  enough="START after every trigger; ENABLE only where a power loss de-energised the drives"),
    ), emergency_items),
)


# ---------------------------------------------------------------- the FDC-1 contract

_T = Tried
_START = "START refused ({condition})"
_LATCH = "restart refused until RESET"


def _start(condition: str) -> Tried:
    return _T(f"{_IL}::test_fd_start_refused[{condition}]", f"START refused ({condition})", "IL-START", _START)


def _latch(trigger: str) -> Tried:
    return _T(f"{_ES}[{trigger}]", _LATCH, "ES-LATCH", built_by="verification.fd_emergency")


def _reset(check: str) -> Tried:
    return _T(f"{_IL}::test_fd_reset", check, "IL-RESET")


def _lock(register: str) -> Tried:
    return _T(f"{_IL}::test_fd_limits_locked_while_enabled", f"{register} write refused with 04, LAST_REJECT 4",
              "IL-LIMIT-LOCK", "write refused with 04, LAST_REJECT 4 (")


_DEPTH = f"{_IL}::test_fd_depth_above_limit_refused"
_DEPTH_START = _T(_DEPTH, "depth above a lowered limit (LAST_REJECT 1)", "IL-DEPTH",
                  "START refused with the {mode} depth above a lowered limit (LAST_REJECT 1)")
_DEPTH_WRITE = _T(_DEPTH, "above the limit refused with 03 (LAST_REJECT 1)", "IL-DEPTH")
_OVERFORCE = ("set up only where the rig can pull the held distraction over a lowered FORCE_LIMIT (the emulator's "
              "patient simulator), else N/A with the reason; the trip's time is judged by no FD suite (traction's "
              "IL-OVERFORCE has no FD counterpart)")

FDC1_ITEMS: tuple[ContractItem, ...] = (
    ContractItem("ENABLE-READY", "refusal", "ENABLE: as TCM-1, Refused (04) unless READY",
                 (_latch("mains_cut"),), "only after a power loss: ENABLE must then be refused until RESET"),
    ContractItem("START-ENABLED", "refusal", "START: Refused (04) unless ENABLED (LAST_REJECT 2)",
                 (_start("not enabled"), _start("power loss, mains back"))),
    ContractItem("START-SWITCH", "refusal", "START: Refused (04) unless the patient switch connected (2)",
                 (_start("switch unplugged"),)),
    ContractItem("START-ESTOP", "refusal", "START: Refused (04) unless nothing latched (3): ESTOP_LATCHED",
                 (_start("e-stop latched"), _start("e-stop button held"), _latch("estop_coil"),
                  _latch("estop_button"))),
    ContractItem("START-PRESSED", "refusal", "START: Refused (04) unless nothing latched (3): the patient switch "
                 "pressed (latches ESTOP_LATCHED)", (_start("switch pressed"), _latch("switch_pressed"))),
    ContractItem("START-WATCHDOG", "refusal", "START: Refused (04) unless nothing latched (3): WATCHDOG_TRIPPED",
                 (_start("watchdog tripped"), _latch("watchdog"))),
    ContractItem("START-OVERTRAVEL", "refusal", "START: Refused (04) unless nothing latched (3): OVERTRAVEL_TRIPPED",
                 (_start("over-travel tripped"),)),
    ContractItem("START-OBSTRUCTION", "refusal", "START: Refused (04) unless nothing latched (3): "
                 "OBSTRUCTION_TRIPPED", (_start("obstruction tripped"),),
                 "N/A on a bench without the obstacle slide (the case says so)"),
    ContractItem("START-OVERFORCE", "refusal", "START: Refused (04) unless nothing latched (3): OVERFORCE_TRIPPED",
                 (_start("over-force tripped"),), _OVERFORCE),
    ContractItem("START-FAULT", "refusal", "START: Refused (04) unless nothing latched (3): FAULT_CODE not 0 "
                 "(patient switch unplugged while RUNNING, power loss)",
                 (_latch("switch_unplugged"), _latch("mains_cut"))),
    ContractItem("START-LIMIT", "refusal", "START: Refused (04) unless every setpoint within its limit (1): a depth "
                 "left above a lowered limit", (_DEPTH_START, _start("depth over limit"))),
    ContractItem("START-LIMIT-FORCE", "refusal", "START: Refused (04) unless every setpoint within its limit (1): "
                 "DISTRACTION_FORCE left above a lowered FORCE_LIMIT", (_start("distraction over limit"),)),
    ContractItem("START-ORDER", "refusal", "START: when several fail, LAST_REJECT names the first in the order "
                 "2, 3, 1", (_start("not enabled + latched"), _start("switch unplugged + latched"),
                             _start("latched + depth over limit"))),
    ContractItem("ES-RESTART", "latch", "Emergency stop: PHASE 7 and START refused until RESET",
                 tuple(_latch(t) for t in EMERGENCY_TRIGGERS)),
    ContractItem("RESET-FORCE", "refusal", "RESET: as TCM-1, Refused (04) while ACTUAL_FORCE > RESIDUAL_FORCE "
                 "(LAST_REJECT 5)", (_reset("RESET refused with force present (LAST_REJECT 5)"),
                                     _reset("RESET refused right after an emergency stop (force present), latch kept")),
                 "one force only (the lowest trial force): a threshold above the residual is IL-RESET's GAP"),
    ContractItem("RESET-PRESSED", "refusal", "RESET: Refused (04) while the patient switch is pressed (3)",
                 (_reset("RESET refused with the patient switch pressed (LAST_REJECT 3)"),
                  _reset("e-stop latch kept (switch pressed)"))),
    ContractItem("RELATCH-ESTOP", "latch", "RESET: a cause still present (the e-stop button held) latches again at "
                 "once", (_reset("a RESET with the e-stop button held latches again at once"),)),
    ContractItem("RESET-STILL", "latch", "RESET moves nothing; after RESET, PHASE 0 with the section where it is "
                 "(it does not return to neutral by itself)",
                 (_reset("RESET moves nothing (the section stays where it stopped)"),),
                 "every emergency trial also watches for a return after RESET (ES-HOLD's return quantity)"),
    ContractItem("DEPTH-RANGE", "refusal", "FLEXION_DEPTH, LATERAL_DEPTH: a depth above its limit is out of range, "
                 "refused (03) and not taken", (_DEPTH_WRITE, _T(_DEPTH, "unchanged after", "IL-DEPTH"))),
    ContractItem("VALUE-RANGE", "refusal", "Any other value outside its range (DISTRACTION_FORCE above FORCE_LIMIT, "
                 "SPEED above RATED_SPEED, PAUSE_TIME above 600, …) is refused (03) and not taken", (),
                 "no FD suite writes a value out of range other than a depth; the plan's values are validated inside "
                 "the ratings (verification/flexion_spec.py), so no run tries one"),
    ContractItem("ALL-OR-NOTHING", "refusal", "as TCM-1: a multiple write (FC 15/16) is all or nothing",
                 (_T(_DEPTH, "multiple write of both depths, flexion above its limit: refused with 03, neither taken",
                     "IL-DEPTH"),),
                 "FC 16 of both depths, one above its limit; a multiple coil write with a refused coil is tried by "
                 "no FD suite"),
    ContractItem("LIMIT-ENABLED", "refusal", "ANGLE_LIMIT, LATERAL_LIMIT, FORCE_LIMIT: writable only while not "
                 "ENABLED (else 04, LAST_REJECT 4)", tuple(_lock(r) for r in ("ANGLE_LIMIT", "LATERAL_LIMIT",
                                                                             "FORCE_LIMIT")),
                 "each lower and higher, idle and while a treatment runs"),
    ContractItem("RESIDUAL-RO", "refusal", "RESIDUAL_FORCE: read-only (04, LAST_REJECT 6)",
                 (_T(f"{_IL}::test_fd_limits_locked_while_enabled",
                     "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)", "IL-LIMIT-LOCK"),
                  _T(f"{_IL}::test_fd_limits_locked_while_enabled", "RESIDUAL_FORCE unchanged", "IL-LIMIT-LOCK"))),
    ContractItem("LATCH-ESTOP", "latch", "ESTOP_LATCHED: ESTOP coil, or the e-stop button; latched until RESET",
                 (_latch("estop_coil"), _latch("estop_button"), _start("e-stop latched"))),
    ContractItem("LATCH-PRESSED", "latch", "PATIENT_SWITCH_PRESSED latches ESTOP_LATCHED",
                 (_latch("switch_pressed"), _reset("e-stop latch kept (switch pressed)"))),
    ContractItem("LATCH-UNPLUG", "latch", "unplugging the patient switch while RUNNING is an emergency trigger "
                 "(FAULT_CODE 3; ESTOP_LATCHED not set)", (_latch("switch_unplugged"),)),
    ContractItem("LATCH-WATCHDOG", "latch", "WATCHDOG_TRIPPED: no heartbeat within WATCHDOG_MS while ENABLED; latched",
                 (_start("watchdog tripped"), _latch("watchdog"))),
    ContractItem("LATCH-OVERFORCE", "latch", "OVERFORCE_TRIPPED: ACTUAL_FORCE exceeded FORCE_LIMIT; latched",
                 (_start("over-force tripped"),), _OVERFORCE),
    ContractItem("LATCH-OVERTRAVEL", "latch", "OVERTRAVEL_TRIPPED: an encoder angle beyond its limit while energised "
                 "(energising beyond a limit trips at once); latched",
                 (_T(f"{_IL}::test_fd_overtravel_trip", "over-travel trip after ENABLE beyond the limit", "IL-TRAVEL"),
                  _start("over-travel tripped"))),
    ContractItem("LATCH-OBSTRUCTION", "latch", "OBSTRUCTION_TRIPPED: a load beyond OBSTRUCTION_FORCE while a move is "
                 "under way: stop, back off BACKOFF, brake; latched",
                 (_T(f"{_IL}::test_fd_obstruction", "obstruction at ", "IL-OBSTRUCT", "obstruction at {speed:g} °/s"),
                  _start("obstruction tripped")),
                 "test_fd_obstruction judges the stop and back-off and records the flag (reported_obstruction); "
                 "the latch is judged by START refused"),
    ContractItem("LATCH-POWER", "latch", "a power loss de-energises the drives (the brake alone stops the section); "
                 "FAULT_CODE 7", (_latch("mains_cut"), _start("power loss, mains back"))),
    ContractItem("LATCH-FIRST", "latch", "FAULT_CODE: the first is kept until RESET",
                 (_T(f"{_IL}::test_fd_fault_code_keeps_the_first_trigger",
                     "FAULT_CODE keeps the first trigger (e-stop) after a second (patient switch)", "ES-LATCH",
                     built_by="verification.emergency"),)),
    ContractItem("REJECT-1", "reject code", "LAST_REJECT 1: out of range", (_DEPTH_WRITE, _DEPTH_START)),
    ContractItem("REJECT-2", "reject code", "LAST_REJECT 2: not ready",
                 (_start("not enabled"), _start("switch unplugged"))),
    ContractItem("REJECT-3", "reject code", "LAST_REJECT 3: latched or switch pressed",
                 (_start("e-stop latched"), _reset("RESET refused with the patient switch pressed (LAST_REJECT 3)"))),
    ContractItem("REJECT-4", "reject code", "LAST_REJECT 4: enabled", (_lock("ANGLE_LIMIT"),)),
    ContractItem("REJECT-5", "reject code", "LAST_REJECT 5: force present",
                 (_reset("RESET refused with force present (LAST_REJECT 5)"),)),
    ContractItem("REJECT-6", "reject code", "LAST_REJECT 6: read-only",
                 (_T(f"{_IL}::test_fd_limits_locked_while_enabled",
                     "RESIDUAL_FORCE write refused with 04 (read-only, LAST_REJECT 6)", "IL-LIMIT-LOCK"),)),
)

FDC1 = Contract("FDC-1", "shared/protocols/flexion-distraction-modbus.md", FDC1_ITEMS,
                "With the lines FDC-1 takes \"as TCM-1\" (ENABLE, RESET, multiple writes, LAST_REJECT); the FD "
                "suites judge the LAST_REJECT code of each refusal, not only the exception.")

cv.register_kind(FlexionSpecification, FD_MAP, FDC1, "verification/fd_coverage.py FD_MAP")

__all__ = ["FD_MAP", "FDC1", "FDC1_ITEMS"]
