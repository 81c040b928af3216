"""TCM-1 (traction controller) and SIO-1 (stimulus module) register maps.

Defined once here and imported by both the drivers and the emulated table, so the two
cannot drift apart: an address or range that is wrong here is wrong on both sides and
is caught by the tests against the plain fixed-content server and pyvisa-sim instead.
Source: shared/protocols/traction-controller-modbus.md (TCM-1 version 1.0).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PROTOCOL_VERSION = 0x0100
DEFAULT_UNIT_ID = 1
RTU_BAUDRATE = 19200
RTU_BYTESIZE = 8
RTU_PARITY = "E"
RTU_STOPBITS = 1


class Coil(enum.IntEnum):
    ENABLE = 0
    START = 1
    STOP = 2
    ESTOP = 3
    RESET = 4


#: Coils the controller acts on and reads back 0.
PULSE_COILS = frozenset({Coil.START, Coil.STOP, Coil.ESTOP, Coil.RESET})


class DiscreteInput(enum.IntEnum):
    READY = 0
    ENABLED = 1
    RUNNING = 2
    AT_TARGET = 3
    ESTOP_LATCHED = 4
    OVERFORCE_TRIPPED = 5
    PATIENT_SWITCH_PRESSED = 6
    PATIENT_SWITCH_CONNECTED = 7
    WATCHDOG_TRIPPED = 8
    FAULT = 9


class Holding(enum.IntEnum):
    TARGET_FORCE = 0
    RAMP_UP_RATE = 1
    RAMP_DOWN_RATE = 2
    MODE = 3
    HOLD_TIME = 4
    REST_TIME = 5
    REST_FORCE = 6
    FORCE_LIMIT = 7
    WATCHDOG_MS = 8
    HEARTBEAT = 9
    TREATMENT_TIME = 10
    RESIDUAL_FORCE = 11


class InputReg(enum.IntEnum):
    ACTUAL_FORCE = 0
    PHASE = 1
    FAULT_CODE = 2
    UPTIME_MS_HI = 3
    UPTIME_MS_LO = 4
    POSITION = 5
    LAST_REJECT = 6
    PROTOCOL_VERSION = 100
    FIRMWARE_VERSION = 101
    RATED_FORCE = 102
    DEVICE_KIND = 103
    SERIAL = 104  # 104..111


SERIAL_REGISTERS = 8
def span_addresses(*spans: tuple[int, int]) -> frozenset[int]:
    """The addresses of (start, count) spans: the input registers a map's reads cover are
    exactly the ones it has (why a span and the valid set are one statement)."""
    return frozenset(a for start, count in spans for a in range(start, start + count))


STATUS_INPUT_SPAN = (0, 7)  # IR 0..6 in one read
IDENTITY_INPUT_SPAN = (100, 12)  # IR 100..111 in one read
#: PROTOCOL_VERSION .. DEVICE_KIND: the identity's head every controller protocol here
#: shares (FDC-1 keeps it "as TCM-1"), so a driver can tell which controller answered
IDENTITY_HEAD = InputReg.DEVICE_KIND - InputReg.PROTOCOL_VERSION + 1

#: Every readable address per table, for the 02 "address not in this document" rule.
VALID_COILS = frozenset(int(c) for c in Coil)
VALID_DISCRETE = frozenset(int(d) for d in DiscreteInput)
VALID_HOLDING = frozenset(int(h) for h in Holding)
VALID_INPUT = span_addresses(STATUS_INPUT_SPAN, IDENTITY_INPUT_SPAN)


class Phase(enum.IntEnum):
    IDLE = 0
    RAMP_UP = 1
    HOLD = 2
    RAMP_TO_REST = 3
    REST = 4
    RELEASING = 5
    EMERGENCY_RELEASE = 6


#: PHASE values of a treatment in progress: RUNNING (DI 2) is 1 exactly in these.
RUNNING_PHASES = frozenset({Phase.RAMP_UP, Phase.HOLD, Phase.RAMP_TO_REST, Phase.REST})

#: The register that names each running phase's set force (the force AT_TARGET is judged
#: against): the progressive ramp and the hold aim at TARGET_FORCE, the intermittent ramp
#: to rest and the rest at REST_FORCE. Any other phase's set force is 0 N.
SET_FORCE_REGISTER = {
    Phase.RAMP_UP: Holding.TARGET_FORCE,
    Phase.HOLD: Holding.TARGET_FORCE,
    Phase.RAMP_TO_REST: Holding.REST_FORCE,
    Phase.REST: Holding.REST_FORCE,
}


def at_target_tolerance_n(set_force_n: float) -> float:
    """AT_TARGET's band around the phase's set force: max(1 N, 1 %)."""
    return max(1.0, 0.01 * set_force_n)


class FaultCode(enum.IntEnum):
    NONE = 0
    OVERFORCE = 1
    ESTOP = 2
    PATIENT_SWITCH = 3
    WATCHDOG = 4
    LOAD_CELL = 5
    MOTOR = 6
    POWER_LOSS = 7


class RejectReason(enum.IntEnum):
    NONE = 0
    OUT_OF_RANGE = 1
    NOT_READY = 2
    LATCHED = 3
    ENABLED = 4
    FORCE_PRESENT = 5
    READ_ONLY = 6

    @property
    def text(self) -> str:
        return _REJECT_TEXT[self]


_REJECT_TEXT = {
    RejectReason.NONE: "no reason recorded",
    RejectReason.OUT_OF_RANGE: "value out of range",
    RejectReason.NOT_READY: "not ready (drive not enabled, not powered or patient switch not connected)",
    RejectReason.LATCHED: "a latch is set or the patient switch is pressed",
    RejectReason.ENABLED: "not allowed while the drive is enabled",
    RejectReason.FORCE_PRESENT: "force above RESIDUAL_FORCE is present",
    RejectReason.READ_ONLY: "register is read-only",
}


class DeviceKind(enum.IntEnum):
    LUMBAR = 1
    CERVICAL = 2
    BOTH = 3


@dataclass(frozen=True)
class HoldingSpec:
    """Static range of a holding register; dynamic bounds name another register."""

    low: int
    high: int | None  # None: bounded by `high_register` (or 0xFFFF for 'any')
    high_register: Holding | InputReg | None = None
    read_only: bool = False


HOLDING_SPECS: dict[Holding, HoldingSpec] = {
    Holding.TARGET_FORCE: HoldingSpec(0, None, Holding.FORCE_LIMIT),
    Holding.RAMP_UP_RATE: HoldingSpec(1, 5000),
    Holding.RAMP_DOWN_RATE: HoldingSpec(1, 5000),
    Holding.MODE: HoldingSpec(0, 1),
    Holding.HOLD_TIME: HoldingSpec(1, 990),
    Holding.REST_TIME: HoldingSpec(1, 990),
    Holding.REST_FORCE: HoldingSpec(0, None, Holding.TARGET_FORCE),
    Holding.FORCE_LIMIT: HoldingSpec(1, None, InputReg.RATED_FORCE),
    Holding.WATCHDOG_MS: HoldingSpec(0, 60000),
    Holding.HEARTBEAT: HoldingSpec(0, 0xFFFF),
    Holding.TREATMENT_TIME: HoldingSpec(0, 5940),
    Holding.RESIDUAL_FORCE: HoldingSpec(0, 0xFFFF, read_only=True),
}


class StimulusCoil(enum.IntEnum):
    """SIO-1 relays: plain coils, 1 = the condition is applied to the table. One map for
    every bench: OBSTACLE (flexion-distraction-modbus.md) exists only on a bench with an
    obstacle slide; a module without one answers coil 4 with exception 02."""

    PATIENT_SWITCH = 0
    ESTOP_BUTTON = 1
    MAINS_CUT = 2
    PATIENT_SWITCH_UNPLUG = 3
    OBSTACLE = 4


#: the relays of every SIO-1, slide or not (the traction benches have exactly these)
STIMULUS_COILS_WITHOUT_SLIDE = tuple(c for c in StimulusCoil if c is not StimulusCoil.OBSTACLE)
#: the coils of a module without an obstacle slide: any other address is 02
VALID_STIMULUS_COILS = frozenset(int(c) for c in STIMULUS_COILS_WITHOUT_SLIDE)


def encode_serial(serial: str) -> list[int]:
    raw = serial.encode("ascii")[: SERIAL_REGISTERS * 2].ljust(SERIAL_REGISTERS * 2, b"\0")
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]


def decode_serial(registers: list[int]) -> str:
    raw = b"".join(bytes([(r >> 8) & 0xFF, r & 0xFF]) for r in registers)
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")
