"""The FDC-1 controller of the emulated flexion-distraction table: registers, latches,
phases, refusals, the section's moves and the distraction winch.

Every rule here is a line of shared/protocols/flexion-distraction-modbus.md. As the
TCM-1 model (rigs/emulator/controller.py), it is plain Python with no I/O, so the whole
state machine is tested on a manual clock; the Modbus server only translates frames.

Time runs two ways, each at its own cost:
* The section (rigs/emulator/section.py) is planned in closed form when a move or a stop
  begins; its phase ends, the over-travel and obstruction crossings, the treatment time
  and the watchdog are instants computed from the plan, and `advance_to` jumps from one
  to the next. Nothing is stepped, so a table second costs the same at any time scale K.
* The distraction is the traction table's winch: a TCM-1 `ControllerModel` over
  `Mechanics`, run by the compiled kernel in batches (rules.py, kernel.run_quiet), driven
  through its own coils and registers. FDC-1 says the distraction behaves "as TCM-1"
  (ramp, hold by the force loop, emergency release, over-force trip, freewheel on power
  loss), so the force loop is that one, not a second one written here. The winch is
  advanced up to the next instant the FDC acts on; what the winch decides on its own (the
  ramp reaching the set force, the release ending, its over-force trip) the FDC reads
  from its state and event log at the instant it happened.

Angles inside are degrees (drivers/units.py says why); registers through drivers/units.py.
Which number a defect changes is FdParams' (rigs/emulator/fd_params.py): no defect is a
branch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from drivers import units
from drivers import tcm1
from drivers.fdc1 import (
    HOLDING_SPECS,
    LOCKED_WHILE_ENABLED,
    MOVING_PHASES,
    NEUTRAL_BAND_DD,
    PROTOCOL_VERSION,
    RUNNING_PHASES,
    Coil,
    DeviceKind,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Mode,
    Phase,
    RejectReason,
    encode_serial,
)
from drivers.tcm1 import StimulusCoil
from rigs.emulator.command_rules import ILLEGAL_VALUE, REFUSED, CommandRules, Refused
from rigs.emulator.controller import ControllerModel
from rigs.emulator.fd_params import FdParams
from rigs.emulator.obstacle import Obstacle
from rigs.emulator.section import Motion, Section

#: Angles (degrees) closer than this to a target count as there (float pieces).
AT_EPS_DEG = 1e-6
#: The section's past kept for the inclinometer (table seconds).
HISTORY_S = 120.0
#: A whole cycle never takes less than this (table seconds): with depth, pause and rest
#: all 0 a cycle would otherwise be endless phase changes at one instant.
MIN_CYCLE_S = 1e-3
#: While the section moves with the distraction held, the winch's cord follows the strap
#: line's length in pieces this long (table seconds): a straight line between the lengths
#: at its ends (a trapezoid's 40 °/s² departs from it by a few 0.001°).
STRAP_STEP_S = 0.02
#: The limits a depth's range is checked against (FdParams.depth_range_slack_dd).
ANGLE_LIMITS = frozenset({Holding.ANGLE_LIMIT, Holding.LATERAL_LIMIT})
#: Motions in which the drive, not the brake, holds the section.
DRIVEN = frozenset({Motion.MOVE, Motion.DRIVE_STOP})
#: Motions the obstruction watch applies to: a move under way.
WATCHED = frozenset({Motion.MOVE})
#: the winch's TCM-1 registers the FDC wires its distraction settings to
WINCH_WIRING = ((Holding.DISTRACTION_FORCE, (tcm1.Holding.TARGET_FORCE,)),
                (Holding.DISTRACTION_RATE, (tcm1.Holding.RAMP_UP_RATE, tcm1.Holding.RAMP_DOWN_RATE)),
                (Holding.FORCE_LIMIT, (tcm1.Holding.FORCE_LIMIT,)))


@dataclass
class FdState:
    """Everything a refused multi-write must roll back (the section's plan is saved beside)."""

    holding: dict[int, int] = field(default_factory=dict)
    enable_coil: bool = False
    enabled: bool = False
    disabling: bool = False  # ENABLE 0 during a treatment: controlled end, then de-energise
    estop_latched: bool = False
    overforce_tripped: bool = False
    watchdog_tripped: bool = False
    overtravel_tripped: bool = False
    obstruction_tripped: bool = False
    fault_code: FaultCode = FaultCode.NONE
    phase: Phase = Phase.IDLE
    phase_started: float = 0.0
    phase_until: float = math.inf  # when the present phase's own timer ends it
    releasing: bool = False  # PHASE 6 after the move to neutral: the distraction ramps down
    last_reject: RejectReason = RejectReason.NONE
    treatment_started: float = 0.0
    cycle_started: float = 0.0
    cycle_count: int = 0
    side: int = 1  # MODE 1: +1 the left move of the cycle, -1 the right one
    last_heartbeat: float = 0.0


class FdController(CommandRules):
    """FDC-1 logic over the section's plan and the distraction winch."""

    def __init__(self, params: FdParams, winch: ControllerModel, obstacle: Obstacle) -> None:
        self.p = params
        self.winch = winch
        self.obstacle = obstacle
        self._t = winch.now
        self.st = FdState(holding={
            Holding.DISTRACTION_FORCE: 0,
            Holding.DISTRACTION_RATE: 100,
            Holding.MODE: int(Mode.FLEXION),
            Holding.FLEXION_DEPTH: units.deg_to_ddeg(10.0),
            Holding.LATERAL_DEPTH: units.deg_to_ddeg(5.0),
            Holding.SPEED: units.deg_to_ddeg(10.0),
            Holding.PAUSE_TIME: units.s_to_ds(1.0),
            Holding.REST_TIME: units.s_to_ds(1.0),
            Holding.CYCLES: 0,
            Holding.ANGLE_LIMIT: units.deg_to_ddeg(params.rated_depth_deg),
            Holding.LATERAL_LIMIT: units.deg_to_ddeg(params.rated_lateral_deg),
            Holding.FORCE_LIMIT: units.n_to_dn(params.rated_force_n),
            Holding.WATCHDOG_MS: 0,
            Holding.HEARTBEAT: 0,
            Holding.TREATMENT_TIME: 0,
            Holding.RESIDUAL_FORCE: units.n_to_dn(params.residual_force_n),
        })
        # the section rests where its encoders read 0
        self.section = Section((self._true(0, 0.0), self._true(1, 0.0)))
        self.relays = {c: False for c in StimulusCoil}
        self.events: list[tuple[float, str]] = []  # ground truth, table time
        self._truth: list[tuple[float, str]] = []  # ground truth of the plan, logged once reached
        self._winch_seen = 0
        self._winch_queue: list | None = None  # winch commands of a write not yet committed
        self._crossings: dict[str, tuple] = {}  # name -> (what it depends on, instant)
        self._strap_zero: float | None = None  # the strap line's take-up when it was last tensioned
        self._wire_winch()

    # ------------------------------------------------------------------ encoders
    def _encoder(self, axis: int, true_deg: float) -> float:
        return true_deg * (1.0 + self.p.encoder_gain_error[axis]) + self.p.encoder_offset_deg[axis]

    def _true(self, axis: int, encoder_deg: float) -> float:
        return (encoder_deg - self.p.encoder_offset_deg[axis]) / (1.0 + self.p.encoder_gain_error[axis])

    def encoder_angles(self) -> tuple[float, float]:
        return self.encoder_angle(0), self.encoder_angle(1)

    # ------------------------------------------------------------------ inputs
    @property
    def now(self) -> float:
        return self._t

    @property
    def mech(self):
        """The winch's mechanics (the patient simulator pulls on its cord)."""
        return self.winch.mech

    def h(self, reg: int) -> int:
        return self.st.holding[Holding(reg)]

    @property
    def latched(self) -> bool:
        st = self.st
        return (st.estop_latched or st.overforce_tripped or st.watchdog_tripped or st.overtravel_tripped
                or st.obstruction_tripped or st.fault_code != FaultCode.NONE)

    @property
    def running(self) -> bool:
        return self.st.phase in RUNNING_PHASES

    @property
    def force_n(self) -> float:
        """The distraction load cell (the winch's own cell)."""
        return self.winch.mech.s.cell

    def at_neutral(self) -> bool:
        band = units.ddeg_to_deg(NEUTRAL_BAND_DD)
        return all(abs(a) <= band for a in self.encoder_angles())

    def brake_engaged(self) -> bool:
        """The brake holds unless the energised drive is moving the section."""
        return not (self.powered and self.st.enabled and self.section.motion(self._t) in DRIVEN)

    # ------------------------------------------------------------------ settings (SI)
    def _deg(self, reg: Holding) -> float:
        return units.ddeg_to_deg(self.st.holding[reg])

    def _speed(self) -> float:
        return self._deg(Holding.SPEED) * self.p.speed_factor

    def _accel(self) -> float:
        return self.p.accel_deg_s2 * self.p.accel_factor

    def _watchdog_until(self) -> float:
        st = self.st
        period = st.holding[Holding.WATCHDOG_MS]
        if not period or not st.enabled or st.watchdog_tripped or not self.powered:
            return math.inf
        return st.last_heartbeat + units.ms_to_s(period)

    def _treatment_until(self) -> float:
        seconds = self.st.holding[Holding.TREATMENT_TIME] * self.p.treatment_time_factor
        if not seconds or not self.running or self.st.phase == Phase.CONTROLLED_END:
            return math.inf
        return self.st.treatment_started + seconds

    def _limits(self) -> tuple[float, float]:
        margin = self.p.overtravel_margin_deg
        return self._deg(Holding.ANGLE_LIMIT) + margin, self._deg(Holding.LATERAL_LIMIT) + margin

    # ------------------------------------------------------------------ reads
    def discrete_inputs(self) -> list[bool]:
        st = self.st
        values = {
            DiscreteInput.READY: self.ready,
            DiscreteInput.ENABLED: st.enabled,
            DiscreteInput.RUNNING: self.running,
            DiscreteInput.AT_NEUTRAL: self.at_neutral(),
            DiscreteInput.ESTOP_LATCHED: st.estop_latched,
            DiscreteInput.OVERFORCE_TRIPPED: st.overforce_tripped,
            DiscreteInput.PATIENT_SWITCH_PRESSED: self.switch_pressed,
            DiscreteInput.PATIENT_SWITCH_CONNECTED: self.switch_connected,
            DiscreteInput.WATCHDOG_TRIPPED: st.watchdog_tripped,
            DiscreteInput.FAULT: st.fault_code != FaultCode.NONE,
            DiscreteInput.OVERTRAVEL_TRIPPED: st.overtravel_tripped,
            DiscreteInput.OBSTRUCTION_TRIPPED: st.obstruction_tripped,
            DiscreteInput.BRAKE_ENGAGED: self.brake_engaged(),
        }
        return [values[d] for d in DiscreteInput]

    def coil_values(self) -> list[bool]:
        return [self.st.enable_coil] + [False] * (len(Coil) - 1)

    def encoder_angle(self, axis: int) -> float:
        return self._encoder(axis, self.section.axes[axis].state(self._t)[0])

    def input_register(self, addr: int) -> int:
        if InputReg.SERIAL <= addr < InputReg.SERIAL + 8:
            return encode_serial(self.p.serial)[addr - InputReg.SERIAL]
        return _INPUTS[addr](self)

    # ------------------------------------------------------------------ writes
    def _snapshot(self):
        """What a refused write puts back: the state and events (CommandRules'), the
        section's plan, the truth still to log, the obstacle's moves; the winch commands
        of the write wait for it to be accepted."""
        saved = (super()._snapshot(), self.section.snapshot(), list(self._truth),
                 (list(self.obstacle._changes_t), list(self.obstacle._changes_in)))
        self._winch_queue = []
        return saved

    def _rollback(self, saved) -> None:
        state, plan, self._truth, obstacle = saved
        super()._rollback(state)
        self.section.restore(plan)
        self.obstacle._changes_t, self.obstacle._changes_in = obstacle
        self._winch_queue = None

    def _commit(self) -> None:
        queue, self._winch_queue = self._winch_queue, None
        for command in queue:
            command()
        self._wire_winch()

    def _bound(self, reg: Holding) -> int:
        spec = HOLDING_SPECS[reg]
        if spec.high is not None:
            return spec.high
        if isinstance(spec.high_register, Holding):
            slack = self.p.depth_range_slack_dd if spec.high_register in ANGLE_LIMITS else 0
            return self.st.holding[spec.high_register] + slack
        return self.input_register(spec.high_register)

    def _write_one_holding(self, addr: int, value: int) -> None:
        reg = Holding(addr)
        spec = HOLDING_SPECS[reg]
        st = self.st
        if spec.read_only:
            raise Refused(REFUSED, RejectReason.READ_ONLY)
        if not spec.low <= value <= self._bound(reg):
            raise Refused(ILLEGAL_VALUE, RejectReason.OUT_OF_RANGE)
        if reg in LOCKED_WHILE_ENABLED and st.enabled and self.p.limits_locked_while_enabled:
            raise Refused(REFUSED, RejectReason.ENABLED)
        st.holding[reg] = value
        if reg in (Holding.WATCHDOG_MS, Holding.HEARTBEAT):
            st.last_heartbeat = self._t

    # ------------------------------------------------------------------ the winch
    def _wire_winch(self) -> None:
        """The winch's registers follow the FDC's distraction settings. Written into its
        register image directly: these are the table's internal wiring, not a client's
        writes, and the FDC has checked them against FDC-1's own ranges."""
        for reg, targets in WINCH_WIRING:
            for target in targets:
                self.winch.st.holding[target] = self.st.holding[reg]

    def _to_winch(self, coil: tcm1.Coil, value: bool = True) -> None:
        """A command to the winch through its own coils, at this instant (inside a write:
        once the write is committed)."""
        def command() -> None:
            try:
                self.winch.write_coils(int(coil), [value])
            except Refused as refusal:  # the wiring keeps the winch ready when the FDC is
                self.events.append((self._t, f"distraction-refused:{coil.name}:{refusal.reason.name}"))
        if self._winch_queue is not None:
            self._winch_queue.append(command)
        else:
            command()

    def _winch_holds_force(self) -> bool:
        return self.winch.st.phase in (tcm1.Phase.RAMP_UP, tcm1.Phase.HOLD)

    def _release_distraction(self) -> None:
        """A TCM-1 emergency release of the distraction (its ESTOP coil)."""
        if self.p.release_on_trigger and self.winch.st.phase != tcm1.Phase.EMERGENCY_RELEASE:
            self._to_winch(tcm1.Coil.ESTOP)

    # ------------------------------------------------------------------ phases
    def _enter(self, phase: Phase, until: float = math.inf) -> None:
        st = self.st
        st.phase, st.phase_started, st.phase_until = phase, self._t, until
        self.events.append((self._t, f"phase:{phase.name.lower()}"))

    def _move_axes(self, targets: tuple[float | None, float | None]) -> float:
        """Move each axis with a target (encoder degrees) at SPEED; when the last arrives."""
        end = self._t
        for axis, target in enumerate(targets):
            if target is not None:
                end = max(end, self.section.axes[axis].move(self._t, self._true(axis, target), self._accel(),
                                                            self._speed(), self._creep_at(axis, target)))
        return end

    def _off_neutral(self) -> bool:
        return any(abs(a) > AT_EPS_DEG for a in self.encoder_angles())

    def _begin_body(self) -> None:
        """After the return to neutral: the distraction ramp (PHASE 1), or the cycles."""
        if self.st.holding[Holding.DISTRACTION_FORCE] > 0:
            self._enter(Phase.DISTRACTION_RAMP_UP)
            self._to_winch(tcm1.Coil.START)
        else:
            self._begin_cycle()

    def _begin_cycle(self) -> None:
        self.st.cycle_started = self._t
        self._move_out()

    def _cycled_axis(self) -> int:
        return 0 if self.st.holding[Holding.MODE] == Mode.FLEXION else 1

    def _move_out(self) -> None:
        st = self.st
        axis = self._cycled_axis()
        if axis == 0:
            depth = self._deg(Holding.FLEXION_DEPTH)
        else:
            depth = st.side * self._deg(Holding.LATERAL_DEPTH) * self.p.side_depth_factor[0 if st.side > 0 else 1]
        depth += math.copysign(self.p.depth_offset_deg, depth) if depth else 0.0
        targets = (depth, None) if axis == 0 else (None, depth)
        self._enter(Phase.MOVING_OUT, self._move_axes(targets))

    def _back_targets(self) -> tuple[float, float]:
        """Where a cycle's move back ends: neutral (a defect stops short of it on the side
        the section comes from)."""
        axis = self._cycled_axis()
        short = math.copysign(self.p.return_short_deg, self.encoder_angle(axis))
        return (short, 0.0) if axis == 0 else (0.0, short)

    def _controlled_end(self) -> None:
        """PHASE 6: a move to neutral at SPEED from wherever the section is, then the
        distraction ramps down."""
        self.st.releasing = False
        self._enter(Phase.CONTROLLED_END, self._move_axes((0.0, 0.0)))

    def _phase_timer(self) -> None:
        """The present phase's own timer ran out (a move arrived, a dwell ended)."""
        st = self.st
        phase = st.phase
        if phase == Phase.RETURNING_TO_NEUTRAL:
            self._begin_body()
        elif phase == Phase.MOVING_OUT:
            pause = units.ds_to_s(st.holding[Holding.PAUSE_TIME]) * self.p.pause_factor
            self._enter(Phase.PAUSE_AT_DEPTH, self._t + pause)
        elif phase == Phase.PAUSE_AT_DEPTH:
            self._enter(Phase.MOVING_BACK, self._move_axes(self._back_targets()))
        elif phase == Phase.MOVING_BACK:
            rest = units.ds_to_s(st.holding[Holding.REST_TIME]) * self.p.rest_factor
            self._enter(Phase.REST_AT_NEUTRAL, max(self._t + rest, st.cycle_started + MIN_CYCLE_S))
        elif phase == Phase.REST_AT_NEUTRAL:
            self._rest_over()
        elif phase == Phase.CONTROLLED_END:
            self._neutral_reached()

    def _rest_over(self) -> None:
        st = self.st
        if st.holding[Holding.MODE] == Mode.LATERAL and st.side > 0:
            st.side = -1
            self._move_out()
            return
        st.side = 1
        st.cycle_count += 1
        self.events.append((self._t, f"cycle:{st.cycle_count}"))
        cycles = st.holding[Holding.CYCLES]
        if cycles and st.cycle_count >= cycles + self.p.extra_cycles:
            self._controlled_end()
        else:
            self._begin_cycle()

    def _neutral_reached(self) -> None:
        st = self.st
        st.phase_until = math.inf
        if self._winch_holds_force():
            st.releasing = True
            self._to_winch(tcm1.Coil.STOP)
        else:
            self._treatment_done()

    def _treatment_done(self) -> None:
        st = self.st
        st.releasing = False
        self._enter(Phase.IDLE)
        if st.disabling:
            self._deenergise()

    def _deenergise(self) -> None:
        st = self.st
        st.enabled = st.disabling = False
        self._to_winch(tcm1.Coil.ENABLE, False)
        if self.section.moving(self._t):
            self._stop_section(Motion.BRAKE_STOP)
        self.events.append((self._t, "de-energised"))

    # ------------------------------------------------------------------ commands
    def _enable(self, value: bool) -> None:
        st = self.st
        if value:
            self._refuse_enable()
            st.enable_coil = True
            st.disabling = False
            st.last_heartbeat = self._t
            if not st.enabled:
                st.enabled = True
                self._to_winch(tcm1.Coil.ENABLE, True)
                self.events.append((self._t, "enable"))
                self._check_overtravel_now()
            return
        st.enable_coil = False
        if not st.enabled:
            return
        if self.running:
            st.disabling = True
            if st.phase != Phase.CONTROLLED_END:
                self._controlled_end()
        else:
            self._deenergise()

    def _start(self) -> None:
        st = self.st
        h = st.holding
        self._refuse_start(
            latched=self.latched and self.p.start_refused_while_latched,
            out_of_range=(h[Holding.FLEXION_DEPTH] > h[Holding.ANGLE_LIMIT]
                          or h[Holding.LATERAL_DEPTH] > h[Holding.LATERAL_LIMIT]
                          or h[Holding.DISTRACTION_FORCE] > h[Holding.FORCE_LIMIT]))
        if self.running:
            return  # a treatment already runs: START changes nothing
        st.treatment_started = self._t
        st.cycle_count = 0
        st.side = 1
        self.events.append((self._t, "start"))
        if self._off_neutral():
            self._enter(Phase.RETURNING_TO_NEUTRAL, self._move_axes((0.0, 0.0)))
        else:
            self._begin_body()

    def _stop(self) -> None:
        st = self.st
        if self.running:
            if st.phase != Phase.CONTROLLED_END:
                self._controlled_end()
        elif st.phase == Phase.IDLE and st.enabled and self.powered and self._off_neutral():
            self._controlled_end()

    def _estop_coil(self) -> None:
        self.st.estop_latched = True
        self.emergency(FaultCode.ESTOP, "estop-coil")

    def _reset(self) -> None:
        st = self.st
        self._refuse_reset(
            switch_pressed=self.switch_pressed,
            force_present=self.force_n > units.dn_to_n(st.holding[Holding.RESIDUAL_FORCE]) * self.p.reset_force_factor)
        st.estop_latched = st.overforce_tripped = st.watchdog_tripped = False
        st.overtravel_tripped = st.obstruction_tripped = False
        st.fault_code = FaultCode.NONE
        st.last_heartbeat = self._t
        self._to_winch(tcm1.Coil.RESET)
        self.events.append((self._t, "reset"))
        if st.phase == Phase.EMERGENCY_STOPPED:
            self._enter(Phase.IDLE)
        self._latch_present_causes()
        if self.p.reset_returns_to_neutral and not self.latched:
            self._stop()

    # ------------------------------------------------------------------ relays
    def set_relay(self, relay: StimulusCoil, on: bool) -> None:
        """SIO-1 changed a relay: the table (and the bench's obstacle) see it now."""
        was_connected = self.switch_connected
        self.relays[relay] = on
        self.events.append((self._t, f"relay:{relay.name}={int(on)}"))
        if relay is StimulusCoil.OBSTACLE:
            self.obstacle.set(self._t, on)
            return
        if relay is StimulusCoil.MAINS_CUT:
            self.winch.set_relay(relay, on)
        if (relay is StimulusCoil.PATIENT_SWITCH_UNPLUG and on and was_connected and self.running
                and self.p.unplug_is_trigger):
            self.emergency(FaultCode.PATIENT_SWITCH, "switch-unplugged")
        self._latch_present_causes()

    def _latch_present_causes(self) -> None:
        st = self.st
        if self.relays[StimulusCoil.ESTOP_BUTTON]:
            st.estop_latched = True
            self.emergency(FaultCode.ESTOP, "estop-button")
        if self.switch_pressed:
            st.estop_latched = True
            self.emergency(FaultCode.PATIENT_SWITCH, "switch-pressed")
        if not self.powered:
            self.power_loss()
        self._check_overtravel_now()

    # ------------------------------------------------------------------ triggers
    def _first_fault(self, code: FaultCode) -> None:
        if self.st.fault_code == FaultCode.NONE:
            self.st.fault_code = code

    def _stop_section(self, motion: Motion) -> None:
        """Stop the section from its state now: the drive's emergency deceleration (after
        its reaction and any overrun), or the brake alone; then the brake holds."""
        p, t = self.p, self._t
        if motion is Motion.BRAKE_STOP:
            decel, coast = p.brake_decel_deg_s2, p.brake_reaction_s
        else:
            speed = max(abs(axis.state(t)[1]) for axis in self.section.axes)
            decel = p.emergency_decel_deg_s2
            coast = p.emergency_reaction_s + (p.stop_overrun_deg / speed if speed else 0.0)
        creep = self._creep()
        at_rest = self.section.stop(t, decel, motion, coast, creep)
        angles = self.section.angles(at_rest)
        self._truth = [(at_rest, f"truth:at-rest flexion={angles[0]:.4f} lateral={angles[1]:.4f}")]

    def _creep_at(self, axis: int, angle: float) -> float:
        """How a worn brake lets an axis held at `angle` drift: flexion further down,
        lateral further out (0 nominally)."""
        creep = self.p.brake_creep_deg_s
        if axis == 0:
            return creep
        return math.copysign(creep, angle) if abs(angle) > AT_EPS_DEG else 0.0

    def _creep(self) -> tuple[float, float]:
        return tuple(self._creep_at(axis, self.section.axes[axis].state(self._t)[0]) for axis in (0, 1))

    def emergency(self, code: FaultCode, cause: str, backoff: bool = False) -> None:
        """An emergency trigger: PHASE 7, the section stopped by the drive (and for an
        obstruction backed off), the distraction released as TCM-1 releases; latching is
        the caller's. A section the drive is already stopping keeps its stop."""
        st = self.st
        self._first_fault(code)
        self.events.append((self._t, f"emergency:{cause}"))
        if st.phase != Phase.EMERGENCY_STOPPED:
            self._enter(Phase.EMERGENCY_STOPPED)
        st.disabling = st.releasing = False
        if self.section.motion(self._t) is Motion.MOVE:
            self._stop_section(Motion.DRIVE_STOP if st.enabled and self.powered else Motion.BRAKE_STOP)
        if backoff:
            self._back_off()
        self._release_distraction()

    def _back_off(self) -> None:
        """After an obstruction: BACKOFF back towards neutral at SPEED, then the brake."""
        axis = self.obstacle.axis
        start = self.section.axes[axis].settled_at()
        here = self._encoder(axis, self.section.axes[axis].state(start)[0])
        travel = min(abs(here), self.p.backoff_deg * self.p.backoff_factor)
        target = self._true(axis, here - math.copysign(travel, here))
        self.section.axes[axis].move(start, target, self._accel(), self._speed(), self._creep_at(axis, target))
        end = self.section.axes[axis].settled_at()
        angles = self.section.angles(end)
        self._truth.append((end, f"truth:backed-off flexion={angles[0]:.4f} lateral={angles[1]:.4f}"))

    def power_loss(self) -> None:
        """Mains cut: the drives drop, the brake alone stops the section, the winch's
        carriage brake releases (the winch model's own power loss)."""
        st = self.st
        self._first_fault(FaultCode.POWER_LOSS)
        if st.phase != Phase.EMERGENCY_STOPPED:
            self.events.append((self._t, "emergency:power-loss"))
            self._enter(Phase.EMERGENCY_STOPPED)
        st.enabled = st.disabling = st.releasing = False
        if self.section.motion(self._t) in DRIVEN:
            self._stop_section(Motion.BRAKE_STOP)

    def _check_overtravel_now(self) -> None:
        if self._overtravel_at(self._t) <= self._t:
            self._overtravel()

    def _cached(self, name: str, key: tuple, t_from: float, compute) -> float:
        """A crossing of the plan, computed again only when what it depends on (`key`)
        changed: one found from an earlier instant that is still ahead is still the first."""
        cached = self._crossings.get(name)
        if cached is not None and cached[0] == key and cached[1] >= t_from:
            return cached[1]
        value = compute()
        self._crossings[name] = (key, value)
        return value

    def _overtravel_at(self, t_from: float) -> float:
        st = self.st
        if not (st.enabled and self.powered) or st.overtravel_tripped:
            return math.inf
        flexion_limit, lateral_limit = self._limits()
        axes = self.section.axes
        return self._cached("overtravel", (self.section.version, flexion_limit, lateral_limit), t_from, lambda: min(
            axes[0].first_above(self._true(0, flexion_limit) + AT_EPS_DEG, t_from),
            axes[1].first_above(self._true(1, lateral_limit) + AT_EPS_DEG, t_from),
            axes[1].first_below(self._true(1, -lateral_limit) - AT_EPS_DEG, t_from)))

    def _overtravel(self) -> None:
        self.st.overtravel_tripped = True
        self.emergency(FaultCode.OVERTRAVEL, "overtravel")

    def _obstruction_at(self, t_from: float) -> float:
        st = self.st
        if (not self.obstacle.inserted or st.obstruction_tripped or not (st.enabled and self.powered)
                or st.phase not in MOVING_PHASES):
            return math.inf
        level = self.obstacle.trip_angle(self.p.obstruction_force_n * self.p.obstruction_trip_factor)
        axis = self.section.axes[self.obstacle.axis]
        return self._cached("obstruction", (self.section.version, level), t_from,
                            lambda: axis.first_above(level, t_from, WATCHED, rising=True))

    def _obstruction(self) -> None:
        self.st.obstruction_tripped = True
        self.emergency(FaultCode.OBSTRUCTION, "obstruction", backoff=True)

    def _watchdog(self) -> None:
        self.st.watchdog_tripped = True
        self.emergency(FaultCode.WATCHDOG, "watchdog")

    def _emit_truth(self) -> None:
        t, name = self._truth.pop(0)
        self.events.append((t, name))

    # ------------------------------------------------------------------ time
    def _next_event(self) -> tuple[float, object]:
        """The earliest instant at which the FDC itself acts, and what it does then."""
        st, t = self.st, self._t
        candidates = [
            (st.phase_until, self._phase_timer),
            (self._treatment_until(), self._controlled_end),
            (self._watchdog_until(), self._watchdog),
            (self._overtravel_at(t), self._overtravel),
            (self._obstruction_at(t), self._obstruction),
        ]
        if self._truth:
            candidates.append((self._truth[0][0], self._emit_truth))
        return min(candidates, key=lambda c: c[0])

    def _winch_horizon(self, horizon: float) -> float:
        """Near the end of the distraction ramp the winch runs to the predicted instant and
        then a cycle at a time, so the cycles begin within a cycle of the force being set."""
        winch = self.winch
        if self.st.phase != Phase.DISTRACTION_RAMP_UP or winch.st.phase != tcm1.Phase.RAMP_UP:
            return horizon
        rate = units.dn_to_n(self.st.holding[Holding.DISTRACTION_RATE])
        goal = units.dn_to_n(self.st.holding[Holding.DISTRACTION_FORCE])
        predicted = winch.now + abs(goal - winch.st.reference) / rate
        return min(horizon, max(predicted, winch.now + 2 * self.winch.p.dt))

    def _winch_news(self) -> tuple[float, object] | None:
        """What the winch did on its own since last asked, that the FDC acts on."""
        winch = self.winch
        tripped_at = winch.now
        for t, name in winch.events[self._winch_seen:]:
            self.events.append((t, f"distraction:{name}"))
            if name == "emergency:overforce":
                tripped_at = min(tripped_at, t)
        self._winch_seen = len(winch.events)
        if winch.st.overforce_tripped and not self.st.overforce_tripped:
            return tripped_at, self._overforce  # (an already releasing winch logs no new release)
        phase = winch.st.phase
        if self.st.phase == Phase.DISTRACTION_RAMP_UP and phase == tcm1.Phase.HOLD:
            return winch.st.phase_started, self._begin_cycle
        if self.st.phase == Phase.CONTROLLED_END and self.st.releasing and phase == tcm1.Phase.IDLE:
            return winch.st.phase_started, self._treatment_done
        return None

    def _overforce(self) -> None:
        self.st.overforce_tripped = True
        self.emergency(FaultCode.OVERFORCE, "overforce")

    def _strap_path_m(self, t: float) -> float:
        """How much (m) the ankle-strap line is shorter at t than with the section level."""
        angles = self.section.angles(t)
        return sum(c * abs(a) for c, a in zip(self.p.strap_take_up_m_per_deg, angles))

    def _strap_horizon(self, horizon: float) -> float:
        """The section's motion fed to the winch's cord, up to the horizon it returns.

        While the winch holds (or releases) a distraction, the strap line's length is the
        cord's path: the section lowering or swinging slackens the cord and the force loop
        must take it up (DX-STATIC). The winch runs in STRAP_STEP_S pieces while the section
        moves, its path heading for the length at each piece's end. An idle winch's strap is
        slack: the section moves it without force, and it is tensioned again from where it
        stands (Mechanics.rebase_path)."""
        mech, w = self.winch.mech, self.winch.now
        if self.winch.st.phase == tcm1.Phase.IDLE:
            self._strap_zero = None
            mech.pull_speed_override(None)
            return horizon
        if self._strap_zero is None:
            mech.rebase_path()
            self._strap_zero = self._strap_path_m(w)
        still = self.section.still_until(w)
        moving = still < w + self.winch.p.dt  # (a motion starting within a cycle starts now)
        end = min(horizon, w + STRAP_STEP_S) if moving else min(horizon, still)
        if end > w:
            mech.path_target_m = self._strap_zero - self._strap_path_m(end)
            mech.path_rate_m_s = abs(mech.path_target_m - mech.path_m) / (end - w)
        factor = self.p.moving_take_up_factor if moving else 1.0
        mech.pull_speed_override(self.winch.p.pull_speed_max_m_s * factor)
        return end

    def advance_to(self, t: float, exact: bool = True) -> None:
        """Run the table up to table time t: each instant the FDC acts at, in order, with
        the winch brought exactly there first; then the winch to t."""
        while True:
            t_event, act = self._next_event()
            horizon = self._strap_horizon(self._winch_horizon(min(t, t_event)))
            self.winch.advance_to(horizon, exact or horizon < t)
            news = self._winch_news()
            if news is not None:
                self._t = max(self._t, news[0])
                news[1]()
                continue
            if horizon < min(t, t_event):
                continue
            if t_event <= t:
                self._t = max(self._t, t_event)
                act()
                continue
            break
        self._t = max(self._t, t)
        self.section.prune(self._t - HISTORY_S)


def _uptime(c: FdController) -> int:
    return units.elapsed_ms(c.now) & 0xFFFFFFFF


#: input register -> what it shows (built once: a status read asks nine of them)
_INPUTS = {
    InputReg.ACTUAL_FORCE: lambda c: units.signed16_register(units.n_to_dn(c.force_n)),
    InputReg.PHASE: lambda c: int(c.st.phase),
    InputReg.FAULT_CODE: lambda c: int(c.st.fault_code),
    InputReg.UPTIME_MS_HI: lambda c: _uptime(c) >> 16,
    InputReg.UPTIME_MS_LO: lambda c: _uptime(c) & 0xFFFF,
    InputReg.FLEXION_ANGLE: lambda c: units.signed16_register(units.deg_to_ddeg(c.encoder_angle(0))),
    InputReg.LATERAL_ANGLE: lambda c: units.signed16_register(units.deg_to_ddeg(c.encoder_angle(1))),
    InputReg.LAST_REJECT: lambda c: int(c.st.last_reject),
    InputReg.CYCLE_COUNT: lambda c: c.st.cycle_count,
    InputReg.PROTOCOL_VERSION: lambda c: PROTOCOL_VERSION,
    InputReg.FIRMWARE_VERSION: lambda c: c.p.firmware,
    InputReg.RATED_FORCE: lambda c: units.n_to_dn(c.p.rated_force_n),
    InputReg.DEVICE_KIND: lambda c: int(DeviceKind.FLEXION_DISTRACTION),
    InputReg.RATED_DEPTH: lambda c: units.deg_to_ddeg(c.p.rated_depth_deg),
    InputReg.RATED_LATERAL: lambda c: units.deg_to_ddeg(c.p.rated_lateral_deg),
    InputReg.RATED_SPEED: lambda c: units.deg_to_ddeg(c.p.rated_speed_deg_s),
    InputReg.ACCEL: lambda c: units.deg_to_ddeg(c.p.accel_deg_s2),
    InputReg.OBSTRUCTION_FORCE: lambda c: units.n_to_dn(c.p.obstruction_force_n),
    InputReg.BACKOFF: lambda c: units.deg_to_ddeg(c.p.backoff_deg),
}
