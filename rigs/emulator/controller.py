"""The TCM-1 controller of the emulated table: registers, latches, phases, refusals.

Every rule here is a line of shared/protocols/traction-controller-modbus.md. The model
is plain Python with no I/O so the whole state machine can be unit-tested by stepping
table time directly; the Modbus server only translates frames into these calls.

`advance_to` hands runs of quiet cycles to the compiled kernel (rigs/emulator/kernel.py)
and runs here, in `step`, every cycle in which a rule acts; `_quiet_inputs` packs what
the kernel needs to tell the two apart. Each cycle rule is stated once, in
rigs/emulator/rules.py, and asked by both; every threshold it compares against is read
from the registers by one method here (`_set_force`, `_hold_s`, `_limit_n`, ...), in SI
through drivers/units.py.

What the registers show is derived from the state at the instant of the read, never
from a copy a later cycle tidies up: a stored "set force" that START left at 0 N until
the first cycle made AT_TARGET read 1 at 0 N of a 300 N target, right after START.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from drivers import units
from drivers.tcm1 import (
    HOLDING_SPECS,
    PROTOCOL_VERSION,
    RUNNING_PHASES,
    SET_FORCE_REGISTER,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Phase,
    RejectReason,
    StimulusCoil,
    at_target_tolerance_n,
    encode_serial,
)
from rigs.emulator import kernel
from rigs.emulator.command_rules import ILLEGAL_VALUE, REFUSED, CommandRules, Refused  # Refused: re-exported
from rigs.emulator.faults import Defects
from rigs.emulator.physics import Mechanics, TableParams
from rigs.emulator.rules import interpreted as rule

#: Below this remainder (table seconds) no partial step is taken; keeps the
#: number of steps bounded when requests arrive faster than the step.
MIN_PARTIAL_STEP = 50e-6




@dataclass
class ControllerState:
    """Everything a refused multi-write must roll back, and nothing else."""

    holding: dict[int, int] = field(default_factory=dict)
    enable_coil: bool = False
    enabled: bool = False
    estop_latched: bool = False
    overforce_tripped: bool = False
    watchdog_tripped: bool = False
    fault_code: FaultCode = FaultCode.NONE
    phase: Phase = Phase.IDLE
    last_reject: RejectReason = RejectReason.NONE
    disabling: bool = False  # ENABLE 0 written: releasing, then de-energise
    reference: float = 0.0  # ramp generator output, N
    phase_started: float = 0.0  # table time the phase began
    treatment_started: float = 0.0
    last_heartbeat: float = 0.0
    trigger_force: float = 0.0  # force held at the emergency trigger


class ControllerModel(CommandRules):
    """TCM-1 logic on top of the mechanics; `step(h)` is one controller cycle."""

    def __init__(self, params: TableParams, mechanics: Mechanics, defects: Defects) -> None:
        self.p = params
        self.mech = mechanics
        self.defects = defects
        rated = units.n_to_dn(params.rated_force_n)
        self.rated_dn = rated
        self.st = ControllerState(
            holding={
                Holding.TARGET_FORCE: 0,
                Holding.RAMP_UP_RATE: 100,
                Holding.RAMP_DOWN_RATE: 200,
                Holding.MODE: 0,
                Holding.HOLD_TIME: 300,
                Holding.REST_TIME: 100,
                Holding.REST_FORCE: 0,
                Holding.FORCE_LIMIT: rated,
                Holding.WATCHDOG_MS: 0,
                Holding.HEARTBEAT: 0,
                Holding.TREATMENT_TIME: 0,
                Holding.RESIDUAL_FORCE: units.n_to_dn(params.residual_force_n),
            }
        )
        # stimulus relays (SIO-1) as the table's wiring sees them
        self.relays = {c: False for c in StimulusCoil}
        self.events: list[tuple[float, str]] = []  # ground truth for benchmarks/tests
        self._watch: list[tuple[float, str]] = []  # force levels whose crossing is ground truth
        self._over_since: float | None = None  # debounced over-force (a defect) counting since
        self._overshot = False  # the overshoot defect's generator has turned back
        self._releases = 0
        self._pull_until = -math.inf  # a late drive stop (a defect): the drive pulls until then
        self._coast_until = -math.inf  # a mains cut in a ramp (a defect): the drive pulls unpowered until then
        self._cycle = np.zeros(kernel.C_SIZE)  # the kernel's view of this controller

    # ------------------------------------------------------------------ inputs
    @property
    def now(self) -> float:
        return self.mech.s.t

    def h(self, reg: Holding) -> int:
        return self.st.holding[reg]

    @property
    def latched(self) -> bool:
        st = self.st
        return (
            st.estop_latched
            or st.overforce_tripped
            or st.watchdog_tripped
            or st.fault_code != FaultCode.NONE
        )

    @property
    def running(self) -> bool:
        return self.st.phase in RUNNING_PHASES

    @property
    def at_target(self) -> bool:
        """The loop within AT_TARGET's band of the present phase's set force."""
        set_force = self._set_force()
        return (self.st.enabled and self.running
                and abs(self.mech.s.cell - set_force) <= at_target_tolerance_n(set_force))

    # ------------------------------------------------------------------ thresholds (SI)
    def _set_force(self) -> float:
        """The present phase's set force, N, as the registers name it now (a defect may
        aim elsewhere): what the generator ramps to and AT_TARGET is judged against."""
        reg = SET_FORCE_REGISTER.get(self.st.phase)
        if reg is None:
            return 0.0
        setting = units.dn_to_n(self.st.holding[reg])
        return self.defects.target_n(setting) if reg is Holding.TARGET_FORCE else self.defects.rest_n(setting)

    def _hold_s(self) -> float:
        """How long a hold lasts: intermittent mode only (a static hold lasts until STOP)."""
        holding = self.st.holding
        if holding[Holding.MODE] != 1:
            return math.inf
        return units.ds_to_s(holding[Holding.HOLD_TIME]) * self.defects.hold_time_factor

    def _rest_s(self) -> float:
        return units.ds_to_s(self.st.holding[Holding.REST_TIME])

    def _limit_n(self) -> float:
        """The over-force trip's threshold; none once the trip has latched."""
        if self.st.overforce_tripped:
            return math.inf
        return units.dn_to_n(self.st.holding[Holding.FORCE_LIMIT])

    def _residual_n(self) -> float:
        return units.dn_to_n(self.st.holding[Holding.RESIDUAL_FORCE])

    def _watchdog_s(self) -> float:
        """The watchdog's period while it is armed (a period set, the drive enabled, not
        yet tripped); none otherwise."""
        st = self.st
        period_ms = self.defects.watchdog_ms(st.holding[Holding.WATCHDOG_MS])
        if not period_ms or not st.enabled or st.watchdog_tripped or self.defects.no_watchdog:
            return math.inf
        return units.ms_to_s(period_ms)

    def _treatment_s(self) -> float:
        """TREATMENT_TIME while a treatment runs and one is set; none otherwise."""
        treatment = self.defects.treatment_s(self.st.holding[Holding.TREATMENT_TIME])
        return treatment if self.running and treatment else math.inf

    def _goal(self) -> tuple[float, bool]:
        """Where the ramp generator heads, and whether that is past the set force (the
        overshoot defect's generator, until it turns back)."""
        set_force = self._set_force()
        overshoot = self.defects.overshoot_for(set_force)
        if overshoot and self.st.phase == Phase.RAMP_UP and not self._overshot:
            return set_force * (1.0 + overshoot), True
        return set_force, False

    def discrete_inputs(self) -> list[bool]:
        st = self.st
        values = {
            DiscreteInput.READY: self.ready,
            DiscreteInput.ENABLED: st.enabled,
            DiscreteInput.RUNNING: self.running,
            DiscreteInput.AT_TARGET: self.at_target,
            DiscreteInput.ESTOP_LATCHED: st.estop_latched,
            DiscreteInput.OVERFORCE_TRIPPED: st.overforce_tripped,
            DiscreteInput.PATIENT_SWITCH_PRESSED: self.switch_pressed,
            DiscreteInput.PATIENT_SWITCH_CONNECTED: self.switch_connected,
            DiscreteInput.WATCHDOG_TRIPPED: st.watchdog_tripped,
            DiscreteInput.FAULT: st.fault_code != FaultCode.NONE,
        }
        return [values[d] for d in DiscreteInput]

    def input_register(self, addr: int) -> int:
        st = self.st
        if addr == InputReg.ACTUAL_FORCE:
            return units.signed16_register(units.n_to_dn(self.mech.s.cell))
        if addr == InputReg.PHASE:
            return int(st.phase)
        if addr == InputReg.FAULT_CODE:
            return int(st.fault_code)
        uptime = units.elapsed_ms(self.now) & 0xFFFFFFFF
        if addr == InputReg.UPTIME_MS_HI:
            return uptime >> 16
        if addr == InputReg.UPTIME_MS_LO:
            return uptime & 0xFFFF
        if addr == InputReg.POSITION:
            return units.signed16_register(units.m_to_dmm(self.mech.s.x))
        if addr == InputReg.LAST_REJECT:
            return int(st.last_reject)
        if addr == InputReg.PROTOCOL_VERSION:
            return PROTOCOL_VERSION
        if addr == InputReg.FIRMWARE_VERSION:
            return self.p.firmware
        if addr == InputReg.RATED_FORCE:
            return self.rated_dn
        if addr == InputReg.DEVICE_KIND:
            return int(self.p.kind)
        if InputReg.SERIAL <= addr < InputReg.SERIAL + 8:
            return encode_serial(self.p.serial)[addr - InputReg.SERIAL]
        raise KeyError(addr)

    # ------------------------------------------------------------------ writes
    def _write_one_holding(self, addr: int, value: int) -> None:
        reg = Holding(addr)
        spec = HOLDING_SPECS[reg]
        st = self.st
        if spec.read_only and not (reg is Holding.RESIDUAL_FORCE and self.defects.residual_writable):
            raise Refused(REFUSED, RejectReason.READ_ONLY)
        high = spec.high
        if spec.high_register is Holding.FORCE_LIMIT:
            high = st.holding[Holding.FORCE_LIMIT]
            if self.defects.accept_over_limit_setpoint:
                high = 0xFFFF
            elif self.defects.setpoint_check_whole_n:
                high = units.n_to_dn(units.whole_newtons(high) + 1) - 1  # whole N of value <= whole N of limit
        elif spec.high_register is Holding.TARGET_FORCE:
            high = st.holding[Holding.TARGET_FORCE]
        elif spec.high_register is InputReg.RATED_FORCE:
            high = self.rated_dn
        if not spec.low <= value <= high:
            raise Refused(ILLEGAL_VALUE, RejectReason.OUT_OF_RANGE)
        if reg is Holding.FORCE_LIMIT and st.enabled and self._limit_locked(value):
            raise Refused(REFUSED, RejectReason.ENABLED)
        st.holding[reg] = value
        if reg in (Holding.WATCHDOG_MS, Holding.HEARTBEAT):
            self._heartbeat()

    def _limit_locked(self, value: int) -> bool:
        """FORCE_LIMIT's lock while enabled: every write, unless a defect narrows it."""
        if self.defects.limit_lock_idle_only and self.running:
            return False
        if self.defects.limit_lock_decrease_only and value >= self.st.holding[Holding.FORCE_LIMIT]:
            return False
        return True

    def coil_values(self) -> list[bool]:
        return [self.st.enable_coil, False, False, False, False]

    # ------------------------------------------------------------------ commands
    def _heartbeat(self) -> None:
        self.st.last_heartbeat = self.now

    def _enable(self, value: bool) -> None:
        st = self.st
        if value:
            self._refuse_enable()
            st.enable_coil = True
            if not st.enabled:
                st.enabled = True
                st.reference = max(0.0, self.mech.s.cell)
            st.disabling = False
            self._heartbeat()
            self.events.append((self.now, "enable"))
        else:
            st.enable_coil = False
            if st.enabled:
                st.disabling = True
                if st.phase != Phase.EMERGENCY_RELEASE:
                    self._enter(Phase.RELEASING)

    def _start(self) -> None:
        st = self.st
        self._refuse_start(latched=self._latched_for_start(),
                           out_of_range=st.holding[Holding.TARGET_FORCE] > st.holding[Holding.FORCE_LIMIT],
                           switch_required=not self.defects.start_without_switch)
        st.reference = max(0.0, self.mech.s.cell)
        st.treatment_started = self.now
        self._enter(Phase.RAMP_UP)
        self.events.append((self.now, "start"))

    def _latched_for_start(self) -> bool:
        """The latches START checks: all of them, unless a defect forgets the watchdog's."""
        if not self.defects.start_ignores_watchdog_latch:
            return self.latched
        st = self.st
        return st.estop_latched or st.overforce_tripped or st.fault_code not in (FaultCode.NONE, FaultCode.WATCHDOG)

    def _stop(self) -> None:
        st = self.st
        if st.phase in (Phase.IDLE, Phase.EMERGENCY_RELEASE, Phase.RELEASING):
            return
        self._enter(Phase.RELEASING)

    def _estop_coil(self) -> None:
        if self.defects.estop_coil_no_latch:
            self._begin_release("estop-coil")  # releases, latches nothing
            return
        self.st.estop_latched = True
        self.emergency(FaultCode.ESTOP, "estop-coil")

    def _reset(self) -> None:
        st = self.st
        residual = self._residual_n()
        self._refuse_reset(
            switch_pressed=self.switch_pressed and not self.defects.reset_ignores_switch,
            force_present=self.mech.s.cell > residual * self.defects.reset_force_factor
            and not self.defects.reset_under_force)
        st.estop_latched = st.overforce_tripped = st.watchdog_tripped = False
        st.fault_code = FaultCode.NONE
        self._heartbeat()
        self.events.append((self.now, "reset"))
        self._latch_present_causes(after_reset=True)

    # ------------------------------------------------------------------ relays
    def set_relay(self, relay: StimulusCoil, on: bool) -> None:
        """SIO-1 changed a relay: the table sees the new wiring at this instant."""
        before_connected = self.switch_connected
        self.relays[relay] = on
        self.events.append((self.now, f"relay:{relay.name}={int(on)}"))
        if relay is StimulusCoil.PATIENT_SWITCH_UNPLUG and before_connected and on:
            if Phase.RAMP_UP <= self.st.phase <= Phase.RELEASING and not self.defects.ignore_unplug:
                self.emergency(FaultCode.PATIENT_SWITCH, "switch-unplugged")
        self._latch_present_causes()

    def _latch_present_causes(self, after_reset: bool = False) -> None:
        if self.relays[StimulusCoil.ESTOP_BUTTON]:
            if not self.defects.estop_button_ignored and not (after_reset and self.defects.reset_ignores_held_estop):
                self.st.estop_latched = True
                self.emergency(FaultCode.ESTOP, "estop-button")
        if self.switch_pressed and not self._switch_ignored():
            self.st.estop_latched = True
            self.emergency(FaultCode.PATIENT_SWITCH, "switch-pressed")
        if not self.powered and not (after_reset and self.defects.reset_ignores_mains_cut):
            self.power_loss()

    def _switch_ignored(self) -> bool:
        return self.st.phase == self.defects.switch_ignored_in_phase

    # ------------------------------------------------------------------ triggers
    def emergency(self, code: FaultCode, cause: str) -> None:
        st = self.st
        if st.fault_code == FaultCode.NONE or self.defects.fault_code_last:
            st.fault_code = code
        self._begin_release(cause)

    def _begin_release(self, cause: str) -> None:
        """Emergency release of whatever force there is; latching is the caller's."""
        st = self.st
        if st.phase != Phase.EMERGENCY_RELEASE and (st.enabled or self.mech.s.cell > 0.5):
            st.trigger_force = self.mech.s.force
            self._enter(Phase.EMERGENCY_RELEASE)
            self.events.append((self.now, f"emergency:{cause}"))
            self._watch_release()
            every = self.defects.sporadic_slow_every
            self._releases += 1
            self.mech.release_tau_override = (
                self.defects.sporadic_slow_tau_s if every and self._releases % every == 0 else None
            )
            worn = self.p.worn_release_above_n
            if worn is not None and st.trigger_force > worn:
                self.mech.release_tau_override = self.p.worn_release_tau_s
                self.mech.release_min_speed_override(self.p.worn_release_min_speed_m_s)
            elif worn is not None:
                self.mech.release_min_speed_override(None)
            if self.defects.late_drive_stop_s:
                self._pull_until = self.now + self.defects.late_drive_stop_s

    def power_loss(self) -> None:
        st = self.st
        if st.fault_code == FaultCode.NONE or self.defects.fault_code_last:
            st.fault_code = FaultCode.POWER_LOSS
        if st.enabled or st.phase != Phase.IDLE:
            self.events.append((self.now, "emergency:power-loss"))
            st.trigger_force = self.mech.s.force
            self._watch_release()
            if st.phase == Phase.RAMP_UP and self.defects.mains_cut_coast_s:
                self._coast_until = self.now + self.defects.mains_cut_coast_s
        st.enabled = False
        st.disabling = False
        st.reference = 0.0
        st.phase = Phase.IDLE

    def _watch_release(self) -> None:
        """Ground truth for benchmarks: when the true force crosses 50 % and residual."""
        f0 = self.st.trigger_force
        self._watch = [(0.5 * f0, "truth:half"), (self._residual_n(), "truth:residual")]

    def _check_watch(self) -> None:
        watch = getattr(self, "_watch", None)
        while watch and self.mech.s.force < watch[0][0]:
            level, name = watch.pop(0)
            # interpolate inside the last step: the history holds the previous sample
            h = self.mech.history
            i = (h.n - 2) % h.size
            t_prev, f_prev = h.t[i], h.f[i]
            f_now, t_now = self.mech.s.force, self.now
            t_cross = t_now if f_prev == f_now else t_prev + (f_prev - level) / (f_prev - f_now) * (t_now - t_prev)
            self.events.append((float(t_cross), name))

    def _enter(self, phase: Phase) -> None:
        self.st.phase = phase
        self.st.phase_started = self.now

    # ------------------------------------------------------------------ cycle
    def step(self, h: float) -> None:
        """One controller cycle of length h (table seconds), then the mechanics."""
        st = self.st
        if self.powered:  # unpowered, the controller's logic is dark: only the winch moves
            self._check_watchdog()
            self._check_overforce()
            self._advance_phase()
            slope = self._ramp_reference(h)
        else:
            slope = 0.0
        drive = rule.drive_of(self.powered, st.enabled, st.phase, st.reference, self.mech.s.cell, self.now,
                              self._pull_until, self._coast_until)
        self.mech.step(h, drive, st.reference, slope)
        self._check_watch()

    def _check_watchdog(self) -> None:
        st = self.st
        if rule.watchdog_expired(self.now, st.last_heartbeat, self._watchdog_s()):
            st.watchdog_tripped = True
            self.emergency(FaultCode.WATCHDOG, "watchdog")

    def _check_overforce(self) -> None:
        if rule.over_limit(self.mech.s.cell, self._limit_n()):
            delay = self.defects.overforce_trip_delay_s
            if delay:
                over_since = self._over_since
                if over_since is None:
                    self._over_since = self.now
                    return
                if self.now - over_since < delay:
                    return
            self.st.overforce_tripped = True
            self.emergency(FaultCode.OVERFORCE, "overforce")
        else:
            self._over_since = None

    def _advance_phase(self) -> None:
        st = self.st
        now = self.now
        if rule.treatment_over(now, st.treatment_started, self._treatment_s()):
            self._enter(Phase.RELEASING)
        phase = st.phase
        if phase == Phase.EMERGENCY_RELEASE:
            st.reference = 0.0
        after = rule.next_phase(phase, st.reference, self._set_force(), now - st.phase_started, self._hold_s(),
                                self._rest_s(), self.mech.s.cell, self.mech.s.x)
        if after == phase:
            return
        self._enter(Phase(after))
        if phase == Phase.EMERGENCY_RELEASE:
            self.events.append((now, "released"))
        if after == Phase.IDLE and st.disabling:
            st.enabled = False
            st.disabling = False

    def _ramp_reference(self, h: float) -> float:
        """Move the reference toward the set force at the commanded rate; return slope."""
        st = self.st
        up, down = self._rates()
        if st.phase != Phase.RAMP_UP:
            self._overshot = False
        goal, past = self._goal()
        if past and rule.overshoot_turns(st.reference, goal):
            self._overshot = True  # the defective generator has gone past the set force: it comes back
            goal = self._set_force()
        st.reference, slope = rule.reference_step(st.phase, st.reference, goal, up, down, h)
        return slope

    def _rates(self) -> tuple[float, float]:
        """The ramp generator's rates (N/s): up, as a defective rate table may run it; down,
        as a defective generator may come back from its overshoot."""
        holding = self.st.holding
        up = units.dn_to_n(holding[Holding.RAMP_UP_RATE])
        down = units.dn_to_n(holding[Holding.RAMP_DOWN_RATE])
        if self.st.phase == Phase.RAMP_UP:
            if self._overshot:
                down *= self.defects.overshoot_return_factor
            else:
                # the only descent in a progressive phase: a START to a target below the present force
                down *= self.defects.start_descent_rate_factor
        return up * self.defects.ramp_rate_factor(up), down

    # ------------------------------------------------------------------ time
    def advance_to(self, t: float, exact: bool = True) -> None:
        """Run the controller cycles up to table time t: whole 1 ms cycles, then (exact)
        a partial one ending at t itself, so a write acts at its true instant."""
        dt = self.p.dt
        mech = self.mech
        state = mech.state
        args = mech.kernel_args()
        while t - state[kernel.S_T] >= dt:
            c = self._quiet_inputs()
            if c is None:
                self.step(dt)
                continue
            reason, _ = kernel.run_quiet(*args, c, t)
            self.st.reference = float(c[kernel.C_REF])
            if reason == kernel.NOT_QUIET:
                self.step(dt)
            elif reason == kernel.WATCH:
                self._check_watch()
            elif reason == kernel.NEED_NOISE:
                mech.refill_noise()
        rest = t - state[kernel.S_T]
        if exact and rest >= MIN_PARTIAL_STEP:
            self.step(rest)

    def _quiet_inputs(self) -> np.ndarray | None:
        """The kernel's inputs for a run of quiet cycles, or None when the next cycle must
        run here anyway (a state that the first cycle's rules would tidy up)."""
        st = self.st
        phase = st.phase
        if (self._over_since is not None
                or (phase == Phase.EMERGENCY_RELEASE and st.reference != 0.0)
                or (phase != Phase.RAMP_UP and self._overshot)):
            return None
        goal, past = self._goal()
        up, down = self._rates()
        c = self._cycle
        c[kernel.C_PHASE] = int(phase)
        c[kernel.C_ENABLED] = st.enabled
        c[kernel.C_POWERED] = self.powered
        c[kernel.C_REF] = st.reference
        c[kernel.C_GOAL] = goal
        c[kernel.C_SET_FORCE] = self._set_force()
        c[kernel.C_UP] = up
        c[kernel.C_DOWN] = down
        c[kernel.C_WATCHDOG_S] = self._watchdog_s()
        c[kernel.C_LAST_HB] = st.last_heartbeat
        c[kernel.C_LIMIT] = self._limit_n()
        c[kernel.C_TREAT_S] = self._treatment_s()
        c[kernel.C_TREAT_STARTED] = st.treatment_started
        c[kernel.C_PHASE_STARTED] = st.phase_started
        c[kernel.C_HOLD_S] = self._hold_s()
        c[kernel.C_REST_S] = self._rest_s()
        c[kernel.C_OVERSHOOT_CHECK] = past
        c[kernel.C_WATCH_LEVEL] = self._watch[0][0] if self._watch else -math.inf
        c[kernel.C_PULL_UNTIL] = self._pull_until
        c[kernel.C_COAST_UNTIL] = self._coast_until
        return c
