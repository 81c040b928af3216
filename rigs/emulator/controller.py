"""The TCM-1 controller of the emulated table: registers, latches, phases, refusals.

Every rule here is a line of shared/protocols/traction-controller-modbus.md. The model
is plain Python with no I/O so the whole state machine can be unit-tested by stepping
table time directly; the Modbus server only translates frames into these calls.

`advance_to` hands runs of quiet cycles to the compiled kernel (rigs/emulator/kernel.py)
and runs here, in `step`, every cycle in which a rule acts; `_quiet_inputs` packs what
the kernel needs to tell the two apart.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from drivers.tcm1 import (
    HOLDING_SPECS,
    PROTOCOL_VERSION,
    Coil,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Phase,
    RejectReason,
    StimulusCoil,
    encode_serial,
)
from rigs.emulator import kernel
from rigs.emulator.faults import Defects
from rigs.emulator.physics import Drive, Mechanics, TableParams

#: Below this remainder (table seconds) no partial step is taken; keeps the
#: number of steps bounded when requests arrive faster than the step.
MIN_PARTIAL_STEP = 50e-6


class Refused(Exception):
    """A write the device refuses: Modbus exception `code`, LAST_REJECT `reason`."""

    def __init__(self, code: int, reason: RejectReason) -> None:
        super().__init__(f"exception {code:02X}, reason {reason.name}")
        self.code = code
        self.reason = reason


ILLEGAL_ADDRESS, ILLEGAL_VALUE, REFUSED = 0x02, 0x03, 0x04


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
    set_force: float = 0.0  # the phase's set force, N
    reference: float = 0.0  # ramp generator output, N
    phase_started: float = 0.0  # table time the phase began
    treatment_started: float = 0.0
    last_heartbeat: float = 0.0
    trigger_force: float = 0.0  # force held at the emergency trigger


class ControllerModel:
    """TCM-1 logic on top of the mechanics; `step(h)` is one controller cycle."""

    def __init__(self, params: TableParams, mechanics: Mechanics, defects: Defects) -> None:
        self.p = params
        self.mech = mechanics
        self.defects = defects
        rated = int(round(params.rated_force_n * 10))
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
                Holding.RESIDUAL_FORCE: int(round(params.residual_force_n * 10)),
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

    @property
    def powered(self) -> bool:
        return not self.relays[StimulusCoil.MAINS_CUT]

    @property
    def switch_connected(self) -> bool:
        return not self.relays[StimulusCoil.PATIENT_SWITCH_UNPLUG]

    @property
    def switch_pressed(self) -> bool:
        return self.switch_connected and self.relays[StimulusCoil.PATIENT_SWITCH]

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
    def ready(self) -> bool:
        return self.powered and self.switch_connected and not self.latched

    @property
    def running(self) -> bool:
        return Phase.RAMP_UP <= self.st.phase <= Phase.REST

    def discrete_inputs(self) -> list[bool]:
        st = self.st
        set_force = st.set_force
        tol = max(1.0, 0.01 * set_force)
        at_target = (
            st.enabled
            and st.phase in (Phase.RAMP_UP, Phase.HOLD, Phase.RAMP_TO_REST, Phase.REST)
            and abs(self.mech.s.cell - set_force) <= tol
        )
        values = {
            DiscreteInput.READY: self.ready,
            DiscreteInput.ENABLED: st.enabled,
            DiscreteInput.RUNNING: self.running,
            DiscreteInput.AT_TARGET: at_target,
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
            return int(round(self.mech.s.cell * 10)) & 0xFFFF
        if addr == InputReg.PHASE:
            return int(st.phase)
        if addr == InputReg.FAULT_CODE:
            return int(st.fault_code)
        uptime = int(self.now * 1000) & 0xFFFFFFFF
        if addr == InputReg.UPTIME_MS_HI:
            return uptime >> 16
        if addr == InputReg.UPTIME_MS_LO:
            return uptime & 0xFFFF
        if addr == InputReg.POSITION:
            return int(round(self.mech.s.x * 1e4)) & 0xFFFF
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
    def write_holding(self, start: int, values: list[int]) -> None:
        """FC 6/16: all or nothing, checked in address order; raises Refused."""
        self._transaction(lambda: [self._write_one_holding(start + i, v) for i, v in enumerate(values)])

    def write_coils(self, start: int, values: list[bool]) -> None:
        """FC 5/15: all or nothing, checked in address order; raises Refused."""
        self._transaction(lambda: [self._write_one_coil(start + i, v) for i, v in enumerate(values)])

    def _transaction(self, apply) -> None:
        saved = copy.deepcopy(self.st)
        events = len(self.events)
        try:
            apply()
        except Refused as refusal:
            self.st = saved
            del self.events[events:]
            self.st.last_reject = refusal.reason
            raise

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
                high = high // 10 * 10 + 9  # value // 10 <= limit // 10
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

    def _write_one_coil(self, addr: int, value: bool) -> None:
        coil = Coil(addr)
        if coil is Coil.ENABLE:
            self._enable(value)
        elif value:
            {Coil.START: self._start, Coil.STOP: self._stop, Coil.ESTOP: self._estop_coil, Coil.RESET: self._reset}[coil]()

    def coil_values(self) -> list[bool]:
        return [self.st.enable_coil, False, False, False, False]

    # ------------------------------------------------------------------ commands
    def _heartbeat(self) -> None:
        self.st.last_heartbeat = self.now

    def _not_ready_reason(self) -> RejectReason:
        if not self.powered or not self.switch_connected:
            return RejectReason.NOT_READY
        return RejectReason.LATCHED

    def _enable(self, value: bool) -> None:
        st = self.st
        if value:
            if not self.ready:
                raise Refused(REFUSED, self._not_ready_reason())
            st.enable_coil = True
            if not st.enabled:
                st.enabled = True
                st.disabling = False
                st.reference = max(0.0, self.mech.s.cell)
                st.set_force = 0.0
            st.disabling = False
            self._heartbeat()
            self.events.append((self.now, "enable"))
        else:
            st.enable_coil = False
            if st.enabled:
                st.disabling = True
                if st.phase not in (Phase.EMERGENCY_RELEASE,):
                    self._enter(Phase.RELEASING)
                    st.set_force = 0.0

    def _start(self) -> None:
        st = self.st
        if not st.enabled or st.disabling:
            raise Refused(REFUSED, RejectReason.NOT_READY)
        if not self.switch_connected and not self.defects.start_without_switch:
            raise Refused(REFUSED, RejectReason.NOT_READY)
        if self._latched_for_start() or self.switch_pressed:
            raise Refused(REFUSED, RejectReason.LATCHED)
        if st.holding[Holding.TARGET_FORCE] > st.holding[Holding.FORCE_LIMIT]:
            raise Refused(REFUSED, RejectReason.OUT_OF_RANGE)
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
        st.set_force = 0.0

    def _estop_coil(self) -> None:
        if self.defects.estop_coil_no_latch:
            self._begin_release("estop-coil")  # releases, latches nothing
            return
        self.st.estop_latched = True
        self.emergency(FaultCode.ESTOP, "estop-coil")

    def _reset(self) -> None:
        st = self.st
        residual = st.holding[Holding.RESIDUAL_FORCE] / 10.0
        if self.switch_pressed and not self.defects.reset_ignores_switch:
            raise Refused(REFUSED, RejectReason.LATCHED)
        if self.mech.s.cell > residual * self.defects.reset_force_factor and not self.defects.reset_under_force:
            raise Refused(REFUSED, RejectReason.FORCE_PRESENT)
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
        ignored = self.defects.switch_ignored_in_phase
        return ignored is not None and int(self.st.phase) == ignored

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
        st.set_force = 0.0

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
        st.set_force = 0.0
        st.reference = 0.0
        st.phase = Phase.IDLE

    def _watch_release(self) -> None:
        """Ground truth for benchmarks: when the true force crosses 50 % and residual."""
        f0 = self.st.trigger_force
        self._watch = [(0.5 * f0, "truth:half"), (self.st.holding[Holding.RESIDUAL_FORCE] / 10.0, "truth:residual")]

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
        if not self.powered:
            self.mech.step(h, Drive.PULL_ON if self.now < self._coast_until else Drive.FREEWHEEL, 0.0, 0.0)
            self._check_watch()
            return
        self._check_watchdog()
        self._check_overforce()
        self._advance_phase()
        slope = self._ramp_reference(h)
        if not st.enabled:
            drive = Drive.BRAKED
        elif st.phase == Phase.EMERGENCY_RELEASE:
            drive = Drive.PULL_ON if self.now < self._pull_until else Drive.RELEASE
        elif st.phase == Phase.IDLE and st.reference <= 0.0 and self.mech.s.cell <= 1.0:
            drive = Drive.BRAKED  # energised at no force: hold still, do not hunt
        else:
            drive = Drive.FORCE_LOOP
        self.mech.step(h, drive, st.reference, slope)
        self._check_watch()

    def _check_watchdog(self) -> None:
        st = self.st
        wd = self.defects.watchdog_ms(st.holding[Holding.WATCHDOG_MS])
        if wd and st.enabled and not st.watchdog_tripped and not self.defects.no_watchdog:
            if (self.now - st.last_heartbeat) * 1000.0 > wd:
                st.watchdog_tripped = True
                self.emergency(FaultCode.WATCHDOG, "watchdog")

    def _check_overforce(self) -> None:
        st = self.st
        limit = st.holding[Holding.FORCE_LIMIT] / 10.0
        if self.mech.s.cell > limit and not st.overforce_tripped:
            delay = self.defects.overforce_trip_delay_s
            if delay:
                over_since = self._over_since
                if over_since is None:
                    self._over_since = self.now
                    return
                if self.now - over_since < delay:
                    return
            st.overforce_tripped = True
            self.emergency(FaultCode.OVERFORCE, "overforce")
        else:
            self._over_since = None

    def _advance_phase(self) -> None:
        st = self.st
        now, cell = self.now, self.mech.s.cell
        in_phase = now - st.phase_started
        hold_s = st.holding[Holding.HOLD_TIME] / 10.0 * self.defects.hold_time_factor
        rest_s = st.holding[Holding.REST_TIME] / 10.0
        target = self.defects.target_n(st.holding[Holding.TARGET_FORCE] / 10.0)
        rest = self.defects.rest_n(st.holding[Holding.REST_FORCE] / 10.0)
        treatment = self.defects.treatment_s(st.holding[Holding.TREATMENT_TIME])
        if self.running and treatment and now - st.treatment_started >= treatment:
            self._enter(Phase.RELEASING)
        phase = st.phase
        if phase == Phase.RAMP_UP:
            st.set_force = target
            if st.reference == target:
                self._enter(Phase.HOLD)
        elif phase == Phase.HOLD:
            st.set_force = target
            if st.holding[Holding.MODE] == 1 and in_phase >= hold_s:
                self._enter(Phase.RAMP_TO_REST)
        elif phase == Phase.RAMP_TO_REST:
            st.set_force = rest
            if st.reference == rest:
                self._enter(Phase.REST)
        elif phase == Phase.REST:
            st.set_force = rest
            if in_phase >= rest_s:
                self._enter(Phase.RAMP_UP)
        elif phase == Phase.RELEASING:
            st.set_force = 0.0
            if st.reference == 0.0 and cell <= 1.0:
                self._enter(Phase.IDLE)
                if st.disabling:
                    st.enabled = False
                    st.disabling = False
        elif phase == Phase.EMERGENCY_RELEASE:
            st.set_force = 0.0
            st.reference = 0.0
            if cell <= 1.0 or self.mech.s.x <= 0.0:
                self._enter(Phase.IDLE)
                self.events.append((now, "released"))
                if st.disabling:
                    st.enabled = False
                    st.disabling = False
        elif phase == Phase.IDLE:
            st.set_force = 0.0

    def _ramp_reference(self, h: float) -> float:
        """Move the reference toward the set force at the commanded rate; return slope."""
        st = self.st
        if st.phase == Phase.EMERGENCY_RELEASE:
            return 0.0
        up, down = self._rates()
        goal = st.set_force
        overshoot = self.defects.overshoot_for(st.set_force)
        if overshoot and st.phase == Phase.RAMP_UP:
            # the defective generator aims past the set force, then comes back
            if not self._overshot:
                goal = st.set_force * (1.0 + overshoot)
                if st.reference >= goal - 1e-9:
                    self._overshot = True
                    goal = st.set_force
        elif st.phase != Phase.RAMP_UP:
            self._overshot = False
        st.reference, slope = kernel.ramp(st.reference, goal, up, down, h)
        return slope

    def _rates(self) -> tuple[float, float]:
        """The ramp generator's rates (N/s): up, as a defective rate table may run it; down,
        as a defective generator may come back from its overshoot."""
        holding = self.st.holding
        up = holding[Holding.RAMP_UP_RATE] / 10.0
        down = holding[Holding.RAMP_DOWN_RATE] / 10.0
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
        holding = st.holding
        if phase in (Phase.RAMP_UP, Phase.HOLD):
            set_force = self.defects.target_n(holding[Holding.TARGET_FORCE] / 10.0)
        elif phase in (Phase.RAMP_TO_REST, Phase.REST):
            set_force = self.defects.rest_n(holding[Holding.REST_FORCE] / 10.0)
        else:
            set_force = 0.0
        if not self.powered and self.now < self._coast_until:
            return None  # the coasting drive's cycles run here (the kernel would freewheel them)
        if (self._over_since is not None or st.set_force != set_force
                or (phase == Phase.EMERGENCY_RELEASE and st.reference != 0.0)):
            return None
        goal, overshoot_check = set_force, 0.0
        overshoot = self.defects.overshoot_for(set_force)
        if overshoot and phase == Phase.RAMP_UP:
            if not self._overshot:
                goal, overshoot_check = set_force * (1.0 + overshoot), 1.0
        elif phase != Phase.RAMP_UP and self._overshot:
            return None
        up, down = self._rates()
        treatment = self.defects.treatment_s(holding[Holding.TREATMENT_TIME])
        c = self._cycle
        c[kernel.C_PHASE] = int(phase)
        c[kernel.C_ENABLED] = st.enabled
        c[kernel.C_POWERED] = self.powered
        c[kernel.C_REF] = st.reference
        c[kernel.C_GOAL] = goal
        c[kernel.C_SET_FORCE] = set_force
        c[kernel.C_UP] = up
        c[kernel.C_DOWN] = down
        wd_ms = self.defects.watchdog_ms(holding[Holding.WATCHDOG_MS])
        c[kernel.C_WD_ACTIVE] = bool(wd_ms and st.enabled and not st.watchdog_tripped and not self.defects.no_watchdog)
        c[kernel.C_WD_MS] = wd_ms
        c[kernel.C_LAST_HB] = st.last_heartbeat
        c[kernel.C_LIMIT] = math.inf if st.overforce_tripped else holding[Holding.FORCE_LIMIT] / 10.0
        c[kernel.C_TREAT_ACTIVE] = bool(self.running and treatment)
        c[kernel.C_TREAT_S] = treatment
        c[kernel.C_TREAT_STARTED] = st.treatment_started
        c[kernel.C_PHASE_STARTED] = st.phase_started
        c[kernel.C_HOLD_S] = (holding[Holding.HOLD_TIME] / 10.0 * self.defects.hold_time_factor
                              if holding[Holding.MODE] == 1 else math.inf)
        c[kernel.C_REST_S] = holding[Holding.REST_TIME] / 10.0
        c[kernel.C_OVERSHOOT_CHECK] = overshoot_check
        c[kernel.C_WATCH_LEVEL] = self._watch[0][0] if self._watch else -math.inf
        c[kernel.C_PULL_UNTIL] = self._pull_until
        return c
