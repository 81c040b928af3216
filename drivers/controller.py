"""TCM-1 traction controller driver (pymodbus 3.16, Modbus TCP or RTU).

Typed operations in newtons and seconds; the conversion to register units happens
here and in drivers/units.py only. How the controller is spoken to (transport, the RTU
line shared with the heartbeat process, the pipelined status snapshot, exceptions and
LAST_REJECT, the identity check by DEVICE_KIND) is drivers/modbus_controller.py's, shared
with the FDC-1 driver; this module holds what is TCM-1's own: its status snapshot, its
identity and its setters.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers import units
from drivers.kinds import register_controller
from drivers.modbus_controller import (  # noqa: F401 — the names every caller imports from here
    CONNECT_FIX,
    LINE_SETTLE_S,
    CommandRefused,
    IllegalAddress,
    IllegalValue,
    ModbusController,
    ModbusExceptionError,
    SharedLineClient,
    Transport,
    WrongUnitId,
    refusal_of,
)
from drivers.tcm1 import (
    IDENTITY_INPUT_SPAN,
    SERIAL_REGISTERS,
    STATUS_INPUT_SPAN,
    DeviceKind,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Phase,
    RejectReason,
    decode_serial,
)


@dataclass(frozen=True)
class ControllerStatus:
    """One consistent look at the controller: all discrete inputs + status registers."""

    ready: bool
    enabled: bool
    running: bool
    at_target: bool
    estop_latched: bool
    overforce_tripped: bool
    patient_switch_pressed: bool
    patient_switch_connected: bool
    watchdog_tripped: bool
    fault: bool
    force_n: float
    phase: Phase
    fault_code: FaultCode
    uptime_s: float
    position_m: float
    last_reject: RejectReason
    host_ns: int  # perf_counter_ns when the reply arrived
    #: perf_counter_ns just before the request went out: the device sampled what this
    #: snapshot shows somewhere in [sent_ns, host_ns], not at host_ns (a loaded host can
    #: take its time to read a reply)
    sent_ns: int = 0

    @property
    def latched(self) -> bool:
        return self.estop_latched or self.overforce_tripped or self.watchdog_tripped or self.fault

    def released(self, residual_n: float) -> bool:
        """The table shown released (rigs/safe_state.py confirms a release by this): on a
        traction table the pull is the whole hazard, so the force at or below the residual."""
        return self.released_by_force(self.force_n, residual_n)

    @staticmethod
    def released_by_force(force_n: float, residual_n: float) -> bool:
        """What a force reading alone confirms (the reference gauge's, when no controller
        link answers): on TCM-1 everything, the force being the whole hazard."""
        return force_n <= residual_n


@dataclass(frozen=True)
class ControllerIdentity:
    protocol_version: int
    firmware_version: int
    rated_force_n: float
    kind: DeviceKind
    serial: str


@register_controller("TCM-1", tables=("lumbar", "cervical"), device_kinds=tuple(DeviceKind), stimulus="SIO-1")
class TractionController(ModbusController):
    """A TCM-1 controller. `safety_limit_n` is the rig's guard, not the device's."""

    protocol = "TCM-1"
    default_name = "traction controller"
    Status = ControllerStatus  # its "released" rule is the safe state's (rigs/safe_state.py)
    device_kinds = frozenset(int(k) for k in DeviceKind)
    DiscreteInput = DiscreteInput
    Holding = Holding
    FaultCode = FaultCode
    STATUS_INPUT_SPAN = STATUS_INPUT_SPAN
    IDENTITY_INPUT_SPAN = IDENTITY_INPUT_SPAN
    FAULT_CODE_REGISTER = InputReg.FAULT_CODE
    LAST_REJECT_REGISTER = InputReg.LAST_REJECT

    # ------------------------------------------------------------ status
    def status(self) -> ControllerStatus:
        """Discrete inputs and status registers (see ModbusController._status_words)."""
        di, ir, sent_ns, host_ns = self._status_words()
        enums = self._enumerated(phase=(Phase, ir[InputReg.PHASE]), fault_code=(FaultCode, ir[InputReg.FAULT_CODE]),
                                 last_reject=(RejectReason, ir[InputReg.LAST_REJECT]))
        return self._publish(ControllerStatus(
            *(bool(di[d]) for d in DiscreteInput),
            force_n=units.dn_to_n(units.to_signed16(ir[InputReg.ACTUAL_FORCE])),
            uptime_s=units.ms_to_s((ir[InputReg.UPTIME_MS_HI] << 16) | ir[InputReg.UPTIME_MS_LO]),
            position_m=units.dmm_to_m(units.to_signed16(ir[InputReg.POSITION])),
            host_ns=host_ns,
            sent_ns=sent_ns,
            **enums,
        ))

    def identity(self) -> ControllerIdentity:
        regs = self._identity_words()
        return ControllerIdentity(
            protocol_version=regs[0],
            firmware_version=regs[1],
            rated_force_n=units.dn_to_n(regs[2]),
            kind=DeviceKind(regs[3]),
            serial=decode_serial(regs[4 : 4 + SERIAL_REGISTERS]),
        )

    # ------------------------------------------------------------ setters
    def set_target_force(self, newtons: float, *, testing_interlock: bool = False) -> None:
        self._guard(newtons, "target force", testing_interlock)
        self.write_holding(Holding.TARGET_FORCE, units.n_to_dn(newtons))

    def set_rest_force(self, newtons: float) -> None:
        self._guard(newtons, "rest force", False)
        self.write_holding(Holding.REST_FORCE, units.n_to_dn(newtons))

    def set_force_limit(self, newtons: float, *, testing_interlock: bool = False) -> None:
        self._guard(newtons, "force limit", testing_interlock)
        self.write_holding(Holding.FORCE_LIMIT, units.n_to_dn(newtons))

    def set_ramp_rates(self, up_n_per_s: float | None = None, down_n_per_s: float | None = None) -> None:
        if up_n_per_s is not None:
            self.write_holding(Holding.RAMP_UP_RATE, units.n_to_dn(up_n_per_s))
        if down_n_per_s is not None:
            self.write_holding(Holding.RAMP_DOWN_RATE, units.n_to_dn(down_n_per_s))

    def set_mode(self, intermittent: bool) -> None:
        self.write_holding(Holding.MODE, 1 if intermittent else 0)

    def set_times(self, hold_s: float | None = None, rest_s: float | None = None, treatment_s: float | None = None) -> None:
        if hold_s is not None:
            self.write_holding(Holding.HOLD_TIME, units.s_to_ds(hold_s))
        if rest_s is not None:
            self.write_holding(Holding.REST_TIME, units.s_to_ds(rest_s))
        if treatment_s is not None:
            self.write_holding(Holding.TREATMENT_TIME, int(round(treatment_s)))


__all__ = [
    "CONNECT_FIX",
    "LINE_SETTLE_S",
    "CommandRefused",
    "ControllerIdentity",
    "ControllerStatus",
    "IllegalAddress",
    "IllegalValue",
    "ModbusExceptionError",
    "SharedLineClient",
    "TractionController",
    "Transport",
    "WrongUnitId",
    "refusal_of",
]
