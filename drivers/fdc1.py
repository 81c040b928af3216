"""FDC-1 (flexion-distraction controller) register map.

Defined once here and imported by the driver and (next) the emulated table, as
drivers/tcm1.py is for TCM-1, so the two sides cannot drift apart. Source:
shared/protocols/flexion-distraction-modbus.md (FDC-1 version 1.0). What that contract
says is "as TCM-1" is taken from drivers/tcm1.py, never restated here: the transport and
RTU settings, the coils (same addresses and pulse rule), LAST_REJECT's reasons, the
serial packing, PROTOCOL_VERSION, and FAULT_CODE 0..7 (FDC-1 adds 8 and 9 after them).
Angles are in 0.1 degree (d°), speeds in 0.1 °/s, accelerations in 0.1 °/s²; the driver
turns them into degrees in drivers/units.py and nowhere else.
"""

from __future__ import annotations

import enum

from drivers.tcm1 import (  # FDC-1 says "as TCM-1" for each of these (re-exported, __all__)
    DEFAULT_UNIT_ID,
    PROTOCOL_VERSION,
    PULSE_COILS,
    RTU_BAUDRATE,
    RTU_BYTESIZE,
    RTU_PARITY,
    RTU_STOPBITS,
    SERIAL_REGISTERS,
    Coil,
    HoldingSpec,
    RejectReason,
    decode_serial,
    encode_serial,
)
from drivers.tcm1 import FaultCode as _TcmFaultCode
from drivers.tcm1 import span_addresses

#: DEVICE_KIND (input register 103) of an FDC-1 controller: how a client tells it from TCM-1.
DEVICE_KIND = 4


class DeviceKind(enum.IntEnum):
    FLEXION_DISTRACTION = DEVICE_KIND


#: FDC-1's coils are TCM-1's: ENABLE, START, STOP, ESTOP, RESET at 0..4 (ENABLE plain,
#: the others pulses), so `Coil` and `PULSE_COILS` are imported above, not restated.
VALID_COILS = frozenset(int(c) for c in Coil)


class DiscreteInput(enum.IntEnum):
    READY = 0
    ENABLED = 1
    RUNNING = 2
    AT_NEUTRAL = 3
    ESTOP_LATCHED = 4
    OVERFORCE_TRIPPED = 5
    PATIENT_SWITCH_PRESSED = 6
    PATIENT_SWITCH_CONNECTED = 7
    WATCHDOG_TRIPPED = 8
    FAULT = 9
    OVERTRAVEL_TRIPPED = 10
    OBSTRUCTION_TRIPPED = 11
    BRAKE_ENGAGED = 12


#: the latches READY waits for (DI 4, 5, 8, 10, 11; FAULT_CODE not 0 is DI 9)
LATCH_INPUTS = (DiscreteInput.ESTOP_LATCHED, DiscreteInput.OVERFORCE_TRIPPED, DiscreteInput.WATCHDOG_TRIPPED,
                DiscreteInput.OVERTRAVEL_TRIPPED, DiscreteInput.OBSTRUCTION_TRIPPED, DiscreteInput.FAULT)


class Holding(enum.IntEnum):
    DISTRACTION_FORCE = 0
    DISTRACTION_RATE = 1
    MODE = 2
    FLEXION_DEPTH = 3
    LATERAL_DEPTH = 4
    SPEED = 5
    PAUSE_TIME = 6
    REST_TIME = 7
    CYCLES = 8
    ANGLE_LIMIT = 9
    LATERAL_LIMIT = 10
    FORCE_LIMIT = 11
    WATCHDOG_MS = 12
    HEARTBEAT = 13
    TREATMENT_TIME = 14
    RESIDUAL_FORCE = 15


#: the limits writable only while not ENABLED (else 04, LAST_REJECT 4)
LOCKED_WHILE_ENABLED = frozenset({Holding.ANGLE_LIMIT, Holding.LATERAL_LIMIT, Holding.FORCE_LIMIT})


class InputReg(enum.IntEnum):
    ACTUAL_FORCE = 0
    PHASE = 1
    FAULT_CODE = 2
    UPTIME_MS_HI = 3
    UPTIME_MS_LO = 4
    FLEXION_ANGLE = 5
    LATERAL_ANGLE = 6
    LAST_REJECT = 7
    CYCLE_COUNT = 8
    PROTOCOL_VERSION = 100
    FIRMWARE_VERSION = 101
    RATED_FORCE = 102
    DEVICE_KIND = 103
    SERIAL = 104  # 104..111
    RATED_DEPTH = 112
    RATED_LATERAL = 113
    RATED_SPEED = 114
    ACCEL = 115
    OBSTRUCTION_FORCE = 116
    BACKOFF = 117


STATUS_INPUT_SPAN = (0, 9)  # IR 0..8 in one read
IDENTITY_INPUT_SPAN = (100, 18)  # IR 100..117 in one read

#: Every readable address per table, for the 02 "address not in this document" rule.
VALID_DISCRETE = frozenset(int(d) for d in DiscreteInput)
VALID_HOLDING = frozenset(int(h) for h in Holding)
VALID_INPUT = span_addresses(STATUS_INPUT_SPAN, IDENTITY_INPUT_SPAN)


class Phase(enum.IntEnum):
    IDLE = 0
    DISTRACTION_RAMP_UP = 1
    MOVING_OUT = 2
    PAUSE_AT_DEPTH = 3
    MOVING_BACK = 4
    REST_AT_NEUTRAL = 5
    CONTROLLED_END = 6
    EMERGENCY_STOPPED = 7
    RETURNING_TO_NEUTRAL = 8


#: PHASE values in which RUNNING (DI 2) is 1: 1-6 and 8.
RUNNING_PHASES = frozenset(set(Phase) - {Phase.IDLE, Phase.EMERGENCY_STOPPED})
#: PHASE values in which the section moves by command (a move of the cycle or a return).
MOVING_PHASES = frozenset({Phase.MOVING_OUT, Phase.MOVING_BACK, Phase.CONTROLLED_END, Phase.RETURNING_TO_NEUTRAL})

#: FAULT_CODE: TCM-1's 0..7 ("the first is kept until RESET"), then FDC-1's own 8 and 9.
FaultCode = enum.IntEnum("FaultCode", [(f.name, f.value) for f in _TcmFaultCode] + [("OVERTRAVEL", 8),
                                                                                    ("OBSTRUCTION", 9)])
FaultCode.__doc__ = "FDC-1 FAULT_CODE: TCM-1's codes 0..7, then 8 over-travel and 9 obstruction."
FaultCode.__module__ = __name__


class Mode(enum.IntEnum):
    """MODE (holding 2): which axis is cycled; the other is held at 0."""

    FLEXION = 0
    LATERAL = 1


#: AT_NEUTRAL's band: both encoder angles within this of 0 (d°).
NEUTRAL_BAND_DD = 5

HOLDING_SPECS: dict[Holding, HoldingSpec] = {
    Holding.DISTRACTION_FORCE: HoldingSpec(0, None, Holding.FORCE_LIMIT),
    Holding.DISTRACTION_RATE: HoldingSpec(1, 5000),
    Holding.MODE: HoldingSpec(0, 1),
    Holding.FLEXION_DEPTH: HoldingSpec(0, None, Holding.ANGLE_LIMIT),
    Holding.LATERAL_DEPTH: HoldingSpec(0, None, Holding.LATERAL_LIMIT),
    Holding.SPEED: HoldingSpec(1, None, InputReg.RATED_SPEED),
    Holding.PAUSE_TIME: HoldingSpec(0, 600),
    Holding.REST_TIME: HoldingSpec(0, 600),
    Holding.CYCLES: HoldingSpec(0, 9999),
    Holding.ANGLE_LIMIT: HoldingSpec(1, None, InputReg.RATED_DEPTH),
    Holding.LATERAL_LIMIT: HoldingSpec(1, None, InputReg.RATED_LATERAL),
    Holding.FORCE_LIMIT: HoldingSpec(1, None, InputReg.RATED_FORCE),
    Holding.WATCHDOG_MS: HoldingSpec(0, 60000),
    Holding.HEARTBEAT: HoldingSpec(0, 0xFFFF),
    Holding.TREATMENT_TIME: HoldingSpec(0, 5940),
    Holding.RESIDUAL_FORCE: HoldingSpec(0, 0xFFFF, read_only=True),
}

__all__ = [
    # as TCM-1 (drivers/tcm1.py)
    "DEFAULT_UNIT_ID", "PROTOCOL_VERSION", "PULSE_COILS", "RTU_BAUDRATE", "RTU_BYTESIZE", "RTU_PARITY", "RTU_STOPBITS",
    "SERIAL_REGISTERS", "Coil", "HoldingSpec", "RejectReason", "decode_serial", "encode_serial",
    # FDC-1's own
    "DEVICE_KIND", "DeviceKind", "DiscreteInput", "FaultCode", "HOLDING_SPECS", "Holding", "IDENTITY_INPUT_SPAN",
    "InputReg", "LATCH_INPUTS", "LOCKED_WHILE_ENABLED", "MOVING_PHASES", "Mode", "NEUTRAL_BAND_DD", "Phase",
    "RUNNING_PHASES", "STATUS_INPUT_SPAN", "VALID_COILS", "VALID_DISCRETE", "VALID_HOLDING", "VALID_INPUT",
]
