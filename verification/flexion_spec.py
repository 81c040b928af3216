"""The flexion-distraction specification's model: the table's ratings and the plan.

A flexion-distraction table's defects hide along other dimensions than a traction
table's: a mode or one side of lateral flexion, the slowest or the rated speed, a low or a
full depth, a dwell of 0 or of clinical length, the end of a treatment by count or by
time, a distraction held low or high while the section moves, and, for every emergency
trigger, the moving phase it strikes (out, back; lateral to each side). The plan names
the points sampled along each, so the coverage of a run is read from data, not code.
Angles in degrees, speeds in deg/s (drivers/units.py); forces in N, times in s.

Figures: shared/domain/flexion-distraction-reference.md; contract: FDC-1
(shared/protocols/flexion-distraction-modbus.md), whose register steps (0.1°, 0.1 °/s,
0.1 s) a value of the plan must land on, else the table is told something else.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from drivers.units import DDEG_PER_DEG, DS_PER_S
from verification.spec import (EMERGENCY_TRIGGERS, FLEXION_VARIABLES, EmergencyTrigger, Requirements, SourcePath,
                               SpecificationBase, Strict, register_specification)

#: the motions a section makes: flexion (lowered), lateral flexion to the patient's left (+)
#: and right (−); a MODE 1 cycle moves to both sides
Motion = Literal["flexion", "lateral_left", "lateral_right"]
MOTIONS: tuple[str, ...] = Motion.__args__
#: the phases in which the section moves (FDC-1 PHASE 2 and 4)
MovingPhase = Literal["moving_out", "moving_back"]
MOVING_PHASES: tuple[str, ...] = MovingPhase.__args__
#: FDC-1 MODE 0 and 1
Mode = Literal["flexion", "lateral"]
#: the rating that bounds each mode's and motion's travel
RATED_TRAVEL = {"flexion": "rated_flexion_deg", "lateral": "rated_lateral_deg", "lateral_left": "rated_lateral_deg",
                "lateral_right": "rated_lateral_deg"}


def _on_step(value: float | None, per_unit: int, what: str) -> float | None:
    """A value the table is told must be a whole register step (0.1°, 0.1 °/s, 0.1 s)."""
    if value is not None and abs(value * per_unit - round(value * per_unit)) > 1e-6:
        raise ValueError(f"{value:g} is not a whole {what} (FDC-1 register step {1 / per_unit:g})")
    return value


class Treatment(Strict):
    """One treatment the kinematics suite runs (FD-DEPTH, FD-NEUTRAL, FD-SPEED, FD-TIMING,
    FD-CYCLES, FD-ENCODER, DX-STATIC judge it), with its FDC-1 settings."""

    mode: Mode
    depth_deg: float = Field(gt=0, description="FLEXION_DEPTH or LATERAL_DEPTH (each side)")
    speed_deg_s: float = Field(ge=0.1, description="SPEED")
    pause_s: float = Field(0.0, ge=0, le=60, description="PAUSE_TIME, at the depth")
    rest_s: float = Field(0.0, ge=0, le=60, description="REST_TIME, at neutral")
    cycles: int = Field(0, ge=0, le=9999, description="CYCLES; 0: until TREATMENT_TIME")
    treatment_s: int = Field(0, ge=0, le=5940, description="TREATMENT_TIME; 0: until CYCLES")
    distraction_n: float = Field(0.0, ge=0, description="DISTRACTION_FORCE held while the section moves; 0: none")
    profile: Literal["quick", "full"] = Field("quick", description="full: run only in the full profile")

    @field_validator("depth_deg")
    @classmethod
    def _depth_step(cls, v):
        return _on_step(v, DDEG_PER_DEG, "0.1°")

    @field_validator("speed_deg_s")
    @classmethod
    def _speed_step(cls, v):
        return _on_step(v, DDEG_PER_DEG, "0.1 °/s")

    @field_validator("pause_s", "rest_s")
    @classmethod
    def _time_step(cls, v):
        return _on_step(v, DS_PER_S, "0.1 s")

    @model_validator(mode="after")
    def _ends(self):
        if not self.cycles and not self.treatment_s:
            raise ValueError("a treatment needs an end: cycles or treatment_s (or both)")
        return self

    @property
    def test_id(self) -> str:
        """The treatment's id in test names: mode, depth, speed, dwells, end, distraction."""
        end = "-".join([*([f"{self.cycles}c"] if self.cycles else []),
                        *([f"{self.treatment_s}s"] if self.treatment_s else [])])
        dx = f"-{self.distraction_n:g}N" if self.distraction_n else ""
        return (f"{self.mode}-{self.depth_deg:g}deg-{self.speed_deg_s:g}dps-p{self.pause_s:g}-r{self.rest_s:g}"
                f"-{end}{dx}")

    @property
    def motions(self) -> tuple[str, ...]:
        """The motions the treatment makes: flexion, or lateral to both sides."""
        return ("flexion",) if self.mode == "flexion" else ("lateral_left", "lateral_right")


class FlexionEmergencyPlan(Strict):
    """Emergency-stop trials: each trigger in each moving phase of each motion, at the rated
    speed (unless `speed_deg_s` says less), with the distraction held at each force."""

    trials: int = Field(24, ge=1, description="trials per trigger in the full profile (the compliance run)")
    quick_trials: int | None = Field(None, ge=1, description="trials per trigger in the quick profile "
                                     "(default: trials)")
    triggers: list[EmergencyTrigger] = list(EMERGENCY_TRIGGERS)
    motions: list[Motion] = Field(default_factory=lambda: list(MOTIONS), min_length=1)
    phases: list[MovingPhase] = Field(default_factory=lambda: list(MOVING_PHASES), min_length=1)
    forces_n: list[float] = Field(min_length=1, description="distraction held at the trigger (ES-RELEASE)")
    flexion_depth_deg: float = Field(gt=0, description="FLEXION_DEPTH of the flexion trials")
    lateral_depth_deg: float = Field(gt=0, description="LATERAL_DEPTH of the lateral trials")
    at_fraction: float = Field(0.5, gt=0, lt=1, description="the trigger when the section has covered this share "
                               "of the move (mid-move: at cruise speed)")
    speed_deg_s: float | None = Field(None, ge=0.1, description="SPEED of the trials; None: the rated speed")
    hold_window_s: float = Field(5.0, gt=0, description="ES-HOLD: the window after the section came to rest")
    at_rest_deg_s: float = Field(0.5, gt=0, description="ES-TIME: the section counts as at rest below this speed")

    @field_validator("flexion_depth_deg", "lateral_depth_deg")
    @classmethod
    def _depth_step(cls, v):
        return _on_step(v, DDEG_PER_DEG, "0.1°")

    def trials_for(self, profile: str) -> int:
        """Trials per trigger: the specification's N in the full profile, `quick_trials` in the quick one."""
        return self.trials if profile == "full" or self.quick_trials is None else self.quick_trials

    def cells(self) -> list[tuple[str, str]]:
        """Every (motion, phase) a trigger can strike, motions first."""
        return [(m, p) for m in self.motions for p in self.phases]

    def trial_plan(self, profile: str) -> list[tuple[str, str, float]]:
        """Each trial's (motion, phase, force) in order. The (motion, phase) cells come in
        turn, so any count reaches every cell before repeating one. The force is chosen by
        the motion's and the phase's index plus the pass, like a Latin square: one pass
        already holds each motion and each phase at more than one force (a release slow
        from high forces in one phase only is not hidden behind a force tied to the
        phase), and len(forces) passes hold every cell at every force."""
        forces = self.forces_n
        cells = [(m, p, i + j) for i, m in enumerate(self.motions) for j, p in enumerate(self.phases)]
        out = []
        for n in range(self.trials_for(profile)):
            lap, at = divmod(n, len(cells))
            motion, phase, index = cells[at]
            out.append((motion, phase, forces[(index + lap) % len(forces)]))
        return out


class InterlockPlan(Strict):
    """The interlock cases (IL-DEPTH, IL-LIMIT-LOCK, IL-TRAVEL; IL-START and IL-RESET use the
    emergency plan's lowest force and the flexion trial depth)."""

    angle_limit_deg: float = Field(gt=0, description="ANGLE_LIMIT written for the interlock tests, below the rated "
                                   "depth so a table that compares with the rated depth is caught")
    lateral_limit_deg: float = Field(gt=0, description="LATERAL_LIMIT alike")
    above_limit_deg: list[float] = Field(min_length=1, description="how far above a limit a refused depth is "
                                         "written (one register step: the corner)")
    overtravel_motions: list[Motion] = Field(default_factory=lambda: list(MOTIONS), min_length=1)
    overtravel_stand_deg: float = Field(gt=0, description="IL-TRAVEL on a bench: the section stopped off neutral "
                                        "here (each motion's side), de-energised ...")
    overtravel_limit_deg: float = Field(gt=0, description="... the limit lowered to this, below where it stands, "
                                        "then energised: FDC-1 trips at once")

    @field_validator("angle_limit_deg", "lateral_limit_deg", "overtravel_stand_deg", "overtravel_limit_deg")
    @classmethod
    def _angle_step(cls, v):
        return _on_step(v, DDEG_PER_DEG, "0.1°")

    @field_validator("above_limit_deg")
    @classmethod
    def _above_step(cls, v):
        for x in v:
            if x <= 0:
                raise ValueError(f"{x:g}: a refused depth lies above the limit (> 0)")
            _on_step(x, DDEG_PER_DEG, "0.1°")
        return v

    @model_validator(mode="after")
    def _below_stand(self):
        if self.overtravel_limit_deg >= self.overtravel_stand_deg:
            raise ValueError("overtravel_limit_deg: must lie below overtravel_stand_deg (the section stands beyond it)")
        return self


class ObstructionPlan(Strict):
    """IL-OBSTRUCT: moves into the bench's obstacle (its angle is the rig file's), at each
    speed, with and without distraction."""

    speeds_deg_s: list[float] = Field(min_length=1, description="SPEED of the moves into the obstacle")
    distraction_n: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    beyond_deg: float = Field(5.0, gt=0, description="the move's depth: the obstacle angle plus this")
    trials: int = Field(3, ge=1, description="trials per speed × force in the full profile")
    quick_trials: int | None = Field(None, ge=1)

    @field_validator("speeds_deg_s")
    @classmethod
    def _speed_steps(cls, v):
        for x in v:
            _on_step(x, DDEG_PER_DEG, "0.1 °/s")
        return v

    def trials_for(self, profile: str) -> int:
        return self.trials if profile == "full" or self.quick_trials is None else self.quick_trials

    def cases(self) -> list[tuple[float, float]]:
        """(speed, distraction) of each case."""
        return [(s, f) for s in self.speeds_deg_s for f in self.distraction_n]


class FlexionPlan(Strict):
    treatments: list[Treatment] = Field(min_length=1)
    distraction_rate_n_s: float = Field(gt=0, le=500, description="DISTRACTION_RATE (FDC-1: up to 5000 dN/s)")
    emergency: FlexionEmergencyPlan
    interlocks: InterlockPlan
    obstruction: ObstructionPlan
    watchdog_s: float = Field(3.0, gt=0, le=60)

    def treatments_for(self, profile: str) -> list[Treatment]:
        """The treatments a profile runs, in plan order: `full` runs every one."""
        return [t for t in self.treatments if profile == "full" or t.profile == "quick"]


@register_specification
class FlexionSpecification(SpecificationBase):
    """A powered flexion-distraction table's specification (FDC-1): angles, speeds, times
    and the distraction force."""

    kind: Literal["flexion-distraction"]
    rated_flexion_deg: float = Field(gt=0, description="rated flexion travel")
    rated_lateral_deg: float = Field(gt=0, description="rated lateral travel, each side")
    rated_speed_deg_s: float = Field(gt=0, description="rated speed; SPEED never above it")
    rated_force_n: float = Field(gt=0, description="rated distraction force")
    residual_force_n: float = Field(gt=0, description="distraction below this counts as released")
    plan: FlexionPlan
    requirements: Requirements
    source: SourcePath

    formula_variables: ClassVar[frozenset[str]] = FLEXION_VARIABLES

    def rated_depth(self, motion_or_mode: str) -> float:
        """The rated travel of a motion (flexion, lateral_left, lateral_right) or a mode."""
        return getattr(self, RATED_TRAVEL[motion_or_mode])

    @property
    def emergency_speed_deg_s(self) -> float:
        return self.plan.emergency.speed_deg_s or self.rated_speed_deg_s

    @model_validator(mode="after")
    def _inside_ratings(self):
        """Every value the plan tells the table lies inside the table's ratings (else the
        table refuses it, and the test would judge a refusal instead)."""
        plan, em, il, ob = self.plan, self.plan.emergency, self.plan.interlocks, self.plan.obstruction
        checks = []
        for i, t in enumerate(plan.treatments):
            checks += [(f"plan.treatments[{i}].depth_deg", t.depth_deg, self.rated_depth(t.mode), RATED_TRAVEL[t.mode]),
                       (f"plan.treatments[{i}].speed_deg_s", t.speed_deg_s, self.rated_speed_deg_s, "rated_speed_deg_s"),
                       (f"plan.treatments[{i}].distraction_n", t.distraction_n, self.rated_force_n, "rated_force_n")]
        checks += [("plan.emergency.flexion_depth_deg", em.flexion_depth_deg, self.rated_flexion_deg, "rated_flexion_deg"),
                   ("plan.emergency.lateral_depth_deg", em.lateral_depth_deg, self.rated_lateral_deg, "rated_lateral_deg"),
                   ("plan.emergency.speed_deg_s", em.speed_deg_s or 0.0, self.rated_speed_deg_s, "rated_speed_deg_s"),
                   *((f"plan.emergency.forces_n[{i}]", f, self.rated_force_n, "rated_force_n")
                     for i, f in enumerate(em.forces_n)),
                   ("plan.interlocks.angle_limit_deg", il.angle_limit_deg, self.rated_flexion_deg, "rated_flexion_deg"),
                   ("plan.interlocks.lateral_limit_deg", il.lateral_limit_deg, self.rated_lateral_deg,
                    "rated_lateral_deg"),
                   *((f"plan.interlocks.overtravel_stand_deg ({m})", il.overtravel_stand_deg, self.rated_depth(m),
                      RATED_TRAVEL[m]) for m in il.overtravel_motions),
                   *((f"plan.obstruction.speeds_deg_s[{i}]", s, self.rated_speed_deg_s, "rated_speed_deg_s")
                     for i, s in enumerate(ob.speeds_deg_s)),
                   *((f"plan.obstruction.distraction_n[{i}]", f, self.rated_force_n, "rated_force_n")
                     for i, f in enumerate(ob.distraction_n))]
        for where, value, rated, name in checks:
            if value > rated:
                raise ValueError(f"{where}: {value:g} is above {name} ({rated:g})")
        for where, force in [*((f"plan.emergency.forces_n[{i}]", f) for i, f in enumerate(em.forces_n))]:
            if force <= self.residual_force_n:
                raise ValueError(f"{where}: {force:g} N is not above residual_force_n ({self.residual_force_n:g} N): "
                                 "ES-RELEASE would have nothing to release")
        return self


__all__ = ["FlexionEmergencyPlan", "FlexionPlan", "FlexionSpecification", "InterlockPlan", "MOTIONS", "MOVING_PHASES",
           "Motion", "MovingPhase", "ObstructionPlan", "Treatment"]
