"""drivers/fdc1.py against shared/protocols/flexion-distraction-modbus.md, line by line.

Each table of the contract is written out here as it stands in the document (address,
name, unit, range), so a register map that drifts from the contract fails on the line
that drifted. What the contract says is "as TCM-1" must be TCM-1's own object, not a copy.
"""

from __future__ import annotations

import pytest

from drivers import fdc1, tcm1, units
from drivers.fdc1 import (
    HOLDING_SPECS,
    IDENTITY_INPUT_SPAN,
    LOCKED_WHILE_ENABLED,
    RUNNING_PHASES,
    STATUS_INPUT_SPAN,
    VALID_COILS,
    VALID_DISCRETE,
    VALID_HOLDING,
    VALID_INPUT,
    DiscreteInput,
    FaultCode,
    Holding,
    InputReg,
    Mode,
    Phase,
)
from drivers.tcm1 import STIMULUS_COILS_WITHOUT_SLIDE, VALID_STIMULUS_COILS, StimulusCoil

# -- "## Coils": addr, name (all as TCM-1's)
COILS = [(0, "ENABLE"), (1, "START"), (2, "STOP"), (3, "ESTOP"), (4, "RESET")]

# -- "## Discrete inputs"
DISCRETE = [(0, "READY"), (1, "ENABLED"), (2, "RUNNING"), (3, "AT_NEUTRAL"), (4, "ESTOP_LATCHED"),
            (5, "OVERFORCE_TRIPPED"), (6, "PATIENT_SWITCH_PRESSED"), (7, "PATIENT_SWITCH_CONNECTED"),
            (8, "WATCHDOG_TRIPPED"), (9, "FAULT"), (10, "OVERTRAVEL_TRIPPED"), (11, "OBSTRUCTION_TRIPPED"),
            (12, "BRAKE_ENGAGED")]

# -- "## Holding registers": addr, name, low, high (a number, or the register bounding it), read-only
HOLDING = [
    (0, "DISTRACTION_FORCE", 0, "FORCE_LIMIT", False),
    (1, "DISTRACTION_RATE", 1, 5000, False),
    (2, "MODE", 0, 1, False),
    (3, "FLEXION_DEPTH", 0, "ANGLE_LIMIT", False),
    (4, "LATERAL_DEPTH", 0, "LATERAL_LIMIT", False),
    (5, "SPEED", 1, "RATED_SPEED", False),
    (6, "PAUSE_TIME", 0, 600, False),
    (7, "REST_TIME", 0, 600, False),
    (8, "CYCLES", 0, 9999, False),
    (9, "ANGLE_LIMIT", 1, "RATED_DEPTH", False),
    (10, "LATERAL_LIMIT", 1, "RATED_LATERAL", False),
    (11, "FORCE_LIMIT", 1, "RATED_FORCE", False),
    (12, "WATCHDOG_MS", 0, 60000, False),
    (13, "HEARTBEAT", 0, 0xFFFF, False),  # "any"
    (14, "TREATMENT_TIME", 0, 5940, False),
    (15, "RESIDUAL_FORCE", 0, 0xFFFF, True),  # "read-only (04, LAST_REJECT 6)"
]

# -- "## Input registers"
INPUT = [(0, "ACTUAL_FORCE"), (1, "PHASE"), (2, "FAULT_CODE"), (3, "UPTIME_MS_HI"), (4, "UPTIME_MS_LO"),
         (5, "FLEXION_ANGLE"), (6, "LATERAL_ANGLE"), (7, "LAST_REJECT"), (8, "CYCLE_COUNT"),
         (100, "PROTOCOL_VERSION"), (101, "FIRMWARE_VERSION"), (102, "RATED_FORCE"), (103, "DEVICE_KIND"),
         (104, "SERIAL"), (112, "RATED_DEPTH"), (113, "RATED_LATERAL"), (114, "RATED_SPEED"), (115, "ACCEL"),
         (116, "OBSTRUCTION_FORCE"), (117, "BACKOFF")]

# -- PHASE: "0 idle, 1 distraction ramp up, 2 moving out, 3 pause at depth, 4 moving back,
#    5 rest at neutral, 6 controlled end, 7 emergency stopped, 8 returning to neutral before a treatment"
PHASES = [(0, "IDLE"), (1, "DISTRACTION_RAMP_UP"), (2, "MOVING_OUT"), (3, "PAUSE_AT_DEPTH"), (4, "MOVING_BACK"),
          (5, "REST_AT_NEUTRAL"), (6, "CONTROLLED_END"), (7, "EMERGENCY_STOPPED"), (8, "RETURNING_TO_NEUTRAL")]

# -- FAULT_CODE: "0 none, 1 over-force, 2 e-stop, 3 patient switch, 4 watchdog, 5 load-cell fault,
#    6 motor fault, 7 power loss, 8 over-travel, 9 obstruction"
FAULTS = [(0, "NONE"), (1, "OVERFORCE"), (2, "ESTOP"), (3, "PATIENT_SWITCH"), (4, "WATCHDOG"), (5, "LOAD_CELL"),
          (6, "MOTOR"), (7, "POWER_LOSS"), (8, "OVERTRAVEL"), (9, "OBSTRUCTION")]


@pytest.mark.parametrize("address, name", COILS)
def test_coil(address, name):
    assert fdc1.Coil[name] == address
    assert (fdc1.Coil[name] in fdc1.PULSE_COILS) == (name != "ENABLE")  # "as TCM-1": ENABLE plain, others pulses


def test_coils_are_tcm1s_own():
    assert fdc1.Coil is tcm1.Coil and fdc1.PULSE_COILS is tcm1.PULSE_COILS
    assert VALID_COILS == {a for a, _ in COILS}


@pytest.mark.parametrize("address, name", DISCRETE)
def test_discrete_input(address, name):
    assert DiscreteInput[name] == address


def test_no_other_discrete_input():
    assert VALID_DISCRETE == {a for a, _ in DISCRETE} and len(DiscreteInput) == len(DISCRETE)


def test_ready_waits_for_the_latches_the_contract_names():
    # "READY: ... nothing latched (DI 4, 5, 8, 10, 11 or FAULT_CODE not 0)"; FAULT (DI 9) is FAULT_CODE not 0
    assert sorted(int(d) for d in fdc1.LATCH_INPUTS) == [4, 5, 8, 9, 10, 11]


@pytest.mark.parametrize("address, name, low, high, read_only", HOLDING)
def test_holding_register(address, name, low, high, read_only):
    reg = Holding[name]
    assert reg == address
    spec = HOLDING_SPECS[reg]
    assert spec.low == low and spec.read_only is read_only
    if isinstance(high, str):
        assert spec.high is None and spec.high_register.name == high
    else:
        assert spec.high == high


def test_no_other_holding_register():
    assert VALID_HOLDING == {a for a, *_ in HOLDING} and set(HOLDING_SPECS) == set(Holding)


def test_the_limits_are_locked_while_enabled():
    # ANGLE_LIMIT "writable only while not ENABLED"; LATERAL_LIMIT and FORCE_LIMIT "as ANGLE_LIMIT"
    assert LOCKED_WHILE_ENABLED == {Holding.ANGLE_LIMIT, Holding.LATERAL_LIMIT, Holding.FORCE_LIMIT}


def test_bounding_registers_are_the_contracts():
    # the depth/limit bounds name holding registers, the rated ones input registers
    assert HOLDING_SPECS[Holding.FLEXION_DEPTH].high_register is Holding.ANGLE_LIMIT
    assert HOLDING_SPECS[Holding.SPEED].high_register is InputReg.RATED_SPEED
    assert HOLDING_SPECS[Holding.ANGLE_LIMIT].high_register is InputReg.RATED_DEPTH


@pytest.mark.parametrize("address, name", INPUT)
def test_input_register(address, name):
    assert InputReg[name] == address


def test_input_addresses_and_spans():
    # 104..111 SERIAL (8 registers, "as TCM-1"); nothing between 9 and 99, nothing after 117
    assert VALID_INPUT == set(range(0, 9)) | set(range(100, 118))
    assert STATUS_INPUT_SPAN == (0, 9) and IDENTITY_INPUT_SPAN == (100, 18)
    assert fdc1.SERIAL_REGISTERS == 8 and fdc1.encode_serial is tcm1.encode_serial


def test_device_kind_and_protocol_version():
    assert fdc1.DEVICE_KIND == 4 and fdc1.DeviceKind(4).name == "FLEXION_DISTRACTION"
    assert fdc1.PROTOCOL_VERSION == 0x0100
    assert not set(int(k) for k in tcm1.DeviceKind) & {fdc1.DEVICE_KIND}  # "a client tells FDC-1 from TCM-1"


@pytest.mark.parametrize("value, name", PHASES)
def test_phase(value, name):
    assert Phase[name] == value


def test_running_is_phase_1_to_6_or_8():
    assert {int(p) for p in RUNNING_PHASES} == {1, 2, 3, 4, 5, 6, 8} and len(Phase) == len(PHASES)


@pytest.mark.parametrize("value, name", FAULTS)
def test_fault_code(value, name):
    assert FaultCode[name] == value


def test_fault_codes_0_to_7_are_tcm1s():
    assert [(f.value, f.name) for f in tcm1.FaultCode] == FAULTS[:8] and len(FaultCode) == len(FAULTS)


def test_last_reject_is_tcm1s():
    # "LAST_REJECT: as TCM-1 (0 none, 1 out of range, 2 not ready, 3 latched or switch pressed,
    #  4 enabled, 5 force present, 6 read-only)"
    assert fdc1.RejectReason is tcm1.RejectReason
    assert [r.value for r in fdc1.RejectReason] == list(range(7))


def test_mode():
    assert (Mode.FLEXION, Mode.LATERAL) == (0, 1)


def test_transport_is_tcm1s():
    assert (fdc1.RTU_BAUDRATE, fdc1.RTU_PARITY, fdc1.RTU_BYTESIZE, fdc1.RTU_STOPBITS) == (19200, "E", 8, 1)
    assert fdc1.DEFAULT_UNIT_ID == 1


# -- "## Axes and units": d°, 0.1 °/s, 0.1 °/s², signed
@pytest.mark.parametrize("degrees, register", [(0.0, 0), (18.3, 183), (-7.5, -75), (25.0, 250), (0.04, 0), (0.06, 1)])
def test_angle_scaling(degrees, register):
    assert units.deg_to_ddeg(degrees) == register
    assert units.ddeg_to_deg(register) == pytest.approx(round(degrees, 1))


def test_signed_angles_through_the_register_word():
    for ddeg in (-250, -1, 0, 1, 250):
        assert units.to_signed16(units.signed16_register(ddeg)) == ddeg


# -- SIO-1 on a flexion-distraction bench: "4 | OBSTACLE"
def test_obstacle_is_coil_4_of_the_one_sio1_map():
    assert StimulusCoil.OBSTACLE == 4 and StimulusCoil(4).name == "OBSTACLE"
    assert [int(c) for c in StimulusCoil] == [0, 1, 2, 3, 4]
    # "A module on a bench without a slide answers coil 4 with exception 02"
    assert VALID_STIMULUS_COILS == {0, 1, 2, 3} and StimulusCoil.OBSTACLE not in STIMULUS_COILS_WITHOUT_SLIDE
