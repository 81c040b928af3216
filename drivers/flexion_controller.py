"""FDC-1 flexion-distraction controller driver (pymodbus 3.16, Modbus TCP or RTU).

Typed operations in degrees, newtons and seconds (drivers/units.py says why degrees);
d°, 0.1 °/s, dN and 0.1 s exist only between these methods and the registers. How the
controller is spoken to is drivers/modbus_controller.py's, shared with TCM-1, so a
refusal is the same one line naming LAST_REJECT, and a device whose DEVICE_KIND is not 4
is one line naming the table kind it is (drivers/kinds.py).

Setters check the ranges FDC-1 fixes (PAUSE_TIME 0..60 s, CYCLES 0..9999, a negative
depth...) before writing, so a value that no FDC-1 can take is the caller's mistake,
said at once. Bounds that another register sets (a depth against ANGLE_LIMIT, SPEED
against RATED_SPEED, a limit against the rated travel) are the device's to check: a
depth above the limit is exactly what the depth interlock test writes, and the device's
own refusal (03, LAST_REJECT 1) is what it verifies.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers import units
from drivers.fdc1 import (
    DEVICE_KIND,
    HOLDING_SPECS,
    IDENTITY_INPUT_SPAN,
    SERIAL_REGISTERS,
    STATUS_INPUT_SPAN,
    DeviceKind,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Mode,
    Phase,
    RejectReason,
    decode_serial,
)
from drivers.kinds import register_controller
from drivers.modbus_controller import ModbusController


@dataclass(frozen=True)
class FlexionStatus:
    """One consistent look at an FDC-1 controller: every discrete input and the status
    registers, angles in degrees (signed as the contract's axes), force in newtons."""

    ready: bool
    enabled: bool
    running: bool
    at_neutral: bool
    estop_latched: bool
    overforce_tripped: bool
    patient_switch_pressed: bool
    patient_switch_connected: bool
    watchdog_tripped: bool
    fault: bool
    overtravel_tripped: bool
    obstruction_tripped: bool
    brake_engaged: bool
    force_n: float
    phase: Phase
    fault_code: FaultCode
    uptime_s: float
    flexion_deg: float
    lateral_deg: float
    last_reject: RejectReason
    cycle_count: int
    host_ns: int  # perf_counter_ns when the reply arrived
    #: perf_counter_ns just before the request went out (the device sampled in between)
    sent_ns: int = 0

    @property
    def latched(self) -> bool:
        """A latch READY waits for (DI 4, 5, 8, 10, 11, or FAULT_CODE not 0)."""
        return (self.estop_latched or self.overforce_tripped or self.watchdog_tripped or self.overtravel_tripped
                or self.obstruction_tripped or self.fault)

    def released(self, residual_n: float) -> bool:
        """The table shown released (rigs/safe_state.py confirms a release by this): two
        hazards, the long-axis pull and the moving section, so the distraction at or below
        the residual AND the section's brake holding it."""
        return self.force_n <= residual_n and self.brake_engaged

    @staticmethod
    def released_by_force(force_n: float, residual_n: float) -> bool:
        """What a force reading alone confirms (the reference gauge's, when no controller
        link answers): nothing — a gauge in the ankle strap sees the pull, never the brake."""
        return False


@dataclass(frozen=True)
class FlexionIdentity:
    protocol_version: int
    firmware_version: int
    rated_force_n: float
    kind: DeviceKind
    serial: str
    rated_depth_deg: float
    rated_lateral_deg: float
    rated_speed_deg_s: float
    accel_deg_s2: float
    obstruction_force_n: float
    backoff_deg: float


@register_controller("FDC-1", tables=("flexion-distraction",), device_kinds=(DEVICE_KIND,), stimulus="SIO-1")
class FlexionController(ModbusController):
    """An FDC-1 controller. `safety_limit_n` is the rig's guard on the distraction force."""

    protocol = "FDC-1"
    default_name = "flexion-distraction controller"
    Status = FlexionStatus  # its "released" rule is the safe state's (rigs/safe_state.py)
    device_kinds = frozenset({DEVICE_KIND})
    DiscreteInput = DiscreteInput
    Holding = Holding
    FaultCode = FaultCode
    STATUS_INPUT_SPAN = STATUS_INPUT_SPAN
    IDENTITY_INPUT_SPAN = IDENTITY_INPUT_SPAN
    FAULT_CODE_REGISTER = InputReg.FAULT_CODE
    LAST_REJECT_REGISTER = InputReg.LAST_REJECT

    # ------------------------------------------------------------ status
    def status(self) -> FlexionStatus:
        di, ir, sent_ns, host_ns = self._status_words()
        enums = self._enumerated(phase=(Phase, ir[InputReg.PHASE]), fault_code=(FaultCode, ir[InputReg.FAULT_CODE]),
                                 last_reject=(RejectReason, ir[InputReg.LAST_REJECT]))
        return self._publish(FlexionStatus(
            *(bool(di[d]) for d in DiscreteInput),
            force_n=units.dn_to_n(units.to_signed16(ir[InputReg.ACTUAL_FORCE])),
            uptime_s=units.ms_to_s((ir[InputReg.UPTIME_MS_HI] << 16) | ir[InputReg.UPTIME_MS_LO]),
            flexion_deg=units.ddeg_to_deg(units.to_signed16(ir[InputReg.FLEXION_ANGLE])),
            lateral_deg=units.ddeg_to_deg(units.to_signed16(ir[InputReg.LATERAL_ANGLE])),
            cycle_count=ir[InputReg.CYCLE_COUNT],
            host_ns=host_ns,
            sent_ns=sent_ns,
            **enums,
        ))

    def identity(self) -> FlexionIdentity:
        regs = self._identity_words()
        base = IDENTITY_INPUT_SPAN[0]

        def at(reg: InputReg) -> int:
            return regs[reg - base]

        return FlexionIdentity(
            protocol_version=at(InputReg.PROTOCOL_VERSION),
            firmware_version=at(InputReg.FIRMWARE_VERSION),
            rated_force_n=units.dn_to_n(at(InputReg.RATED_FORCE)),
            kind=DeviceKind(at(InputReg.DEVICE_KIND)),
            serial=decode_serial(regs[InputReg.SERIAL - base : InputReg.SERIAL - base + SERIAL_REGISTERS]),
            rated_depth_deg=units.ddeg_to_deg(at(InputReg.RATED_DEPTH)),
            rated_lateral_deg=units.ddeg_to_deg(at(InputReg.RATED_LATERAL)),
            rated_speed_deg_s=units.ddeg_to_deg(at(InputReg.RATED_SPEED)),
            accel_deg_s2=units.ddeg_to_deg(at(InputReg.ACCEL)),
            obstruction_force_n=units.dn_to_n(at(InputReg.OBSTRUCTION_FORCE)),
            backoff_deg=units.ddeg_to_deg(at(InputReg.BACKOFF)),
        )

    # ------------------------------------------------------------ setters
    def _write_checked(self, reg: Holding, value: int, shown: str) -> None:
        """Write `value` to `reg` after the range FDC-1 fixes for it (the static bounds of
        HOLDING_SPECS; a bound another register sets is the device's to check)."""
        spec = HOLDING_SPECS[reg]
        high = spec.high if spec.high is not None else 0xFFFF
        if not spec.low <= value <= high:
            to_si, unit = _SHOWN.get(reg, (int, ""))
            top = f"{to_si(high):g}{unit}" if spec.high is not None else spec.high_register.name
            raise ValueError(f"{self.device}: {reg.name} {shown} is outside the range FDC-1 accepts "
                             f"({to_si(spec.low):g}{unit}..{top}); nothing was written")
        self.write_holding(reg, value)

    def set_distraction_force(self, newtons: float, *, testing_interlock: bool = False) -> None:
        """The long-axis force held during the treatment (0: no distraction)."""
        self._guard(newtons, "distraction force", testing_interlock)
        self._write_checked(Holding.DISTRACTION_FORCE, units.n_to_dn(newtons), f"{newtons:g} N")

    def set_distraction_rate(self, n_per_s: float) -> None:
        """The distraction ramp rate, rising and falling."""
        self._write_checked(Holding.DISTRACTION_RATE, units.n_to_dn(n_per_s), f"{n_per_s:g} N/s")

    def set_mode(self, mode: Mode | str) -> None:
        """Flexion (MODE 0) or lateral flexion (MODE 1): the axis the cycles move."""
        mode = Mode[mode.upper()] if isinstance(mode, str) else Mode(mode)
        self._write_checked(Holding.MODE, int(mode), mode.name.lower())

    def set_depths(self, flexion_deg: float | None = None, lateral_deg: float | None = None) -> None:
        """End angle of a flexion move, and of a lateral move to each side (degrees)."""
        if flexion_deg is not None:
            self._write_checked(Holding.FLEXION_DEPTH, units.deg_to_ddeg(flexion_deg), f"{flexion_deg:g}°")
        if lateral_deg is not None:
            self._write_checked(Holding.LATERAL_DEPTH, units.deg_to_ddeg(lateral_deg), f"{lateral_deg:g}°")

    def set_speed(self, deg_per_s: float) -> None:
        """Cruise speed of every move (the device bounds it by RATED_SPEED)."""
        self._write_checked(Holding.SPEED, units.deg_to_ddeg(deg_per_s), f"{deg_per_s:g} °/s")

    def set_times(self, pause_s: float | None = None, rest_s: float | None = None,
                  treatment_s: float | None = None) -> None:
        """Dwell at the depth, dwell at neutral, and the treatment time (0: until STOP or CYCLES)."""
        if pause_s is not None:
            self._write_checked(Holding.PAUSE_TIME, units.s_to_ds(pause_s), f"{pause_s:g} s")
        if rest_s is not None:
            self._write_checked(Holding.REST_TIME, units.s_to_ds(rest_s), f"{rest_s:g} s")
        if treatment_s is not None:
            self._write_checked(Holding.TREATMENT_TIME, int(round(treatment_s)), f"{treatment_s:g} s")

    def set_cycles(self, cycles: int) -> None:
        """Cycles to run (0: until STOP or TREATMENT_TIME)."""
        if cycles != int(cycles):
            raise ValueError(f"{self.device}: CYCLES must be a whole number, got {cycles}")
        self._write_checked(Holding.CYCLES, int(cycles), str(int(cycles)))

    def set_limits(self, angle_deg: float | None = None, lateral_deg: float | None = None,
                   force_n: float | None = None, *, testing_interlock: bool = False) -> None:
        """The over-travel thresholds (flexion, lateral each side) and the distraction
        over-force threshold; the device takes them only while not ENABLED (04, LAST_REJECT 4)."""
        if angle_deg is not None:
            self._write_checked(Holding.ANGLE_LIMIT, units.deg_to_ddeg(angle_deg), f"{angle_deg:g}°")
        if lateral_deg is not None:
            self._write_checked(Holding.LATERAL_LIMIT, units.deg_to_ddeg(lateral_deg), f"{lateral_deg:g}°")
        if force_n is not None:
            self._guard(force_n, "force limit", testing_interlock)
            self._write_checked(Holding.FORCE_LIMIT, units.n_to_dn(force_n), f"{force_n:g} N")


#: how a range check shows a register's bounds: to SI, and the unit
_SHOWN = {
    Holding.DISTRACTION_FORCE: (units.dn_to_n, " N"),
    Holding.FORCE_LIMIT: (units.dn_to_n, " N"),
    Holding.DISTRACTION_RATE: (units.dn_to_n, " N/s"),
    Holding.FLEXION_DEPTH: (units.ddeg_to_deg, "°"),
    Holding.LATERAL_DEPTH: (units.ddeg_to_deg, "°"),
    Holding.ANGLE_LIMIT: (units.ddeg_to_deg, "°"),
    Holding.LATERAL_LIMIT: (units.ddeg_to_deg, "°"),
    Holding.SPEED: (units.ddeg_to_deg, " °/s"),
    Holding.PAUSE_TIME: (units.ds_to_s, " s"),
    Holding.REST_TIME: (units.ds_to_s, " s"),
    Holding.TREATMENT_TIME: (int, " s"),
}
