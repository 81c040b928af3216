"""The controller driver against a plain pymodbus server with fixed register contents.

This server is pymodbus's own storage with no project code behind it, so decoding
(signed force, 32-bit uptime, serial packing, enumerations) is checked against an
implementation that shares nothing with the project's emulator but the contract.
"""

from __future__ import annotations

import pytest
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.controller import IllegalAddress, TractionController
from drivers.errors import DeviceProtocolError
from drivers.tcm1 import DeviceKind, FaultCode, Holding, Phase, RejectReason

SERIAL = "TX-2026-000417"


def serial_words(text: str) -> list[int]:
    raw = text.encode().ljust(16, b"\0")
    return [raw[i] << 8 | raw[i + 1] for i in range(0, 16, 2)]


def fixed_device(protocol=0x0100, phase=2, kind=1) -> SimDevice:
    di = [True, True, True, True, False, False, False, True, False, False] + [False] * 6
    ir_status = [0xFF85, phase, 0, 0x0001, 0x86A0, 0xFFF6, 5]  # -12.3 N, 100000 ms, -1.0 mm, LAST_REJECT 5
    ir_ident = [protocol, 0x0203, 8900, kind] + serial_words(SERIAL)
    hr = [1500, 100, 200, 0, 300, 100, 0, 8900, 0, 0, 0, 150]
    return SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[True] + [False] * 15, datatype=DataType.BITS)],
            [SimData(0, values=di, datatype=DataType.BITS)],
            [SimData(0, values=hr, datatype=DataType.REGISTERS)],
            [SimData(0, values=ir_status, datatype=DataType.REGISTERS),
             SimData(100, values=ir_ident, datatype=DataType.REGISTERS)],
        ),
    )


@pytest.fixture
def fixed_server(fixed_modbus):
    return lambda device: TractionController(host="127.0.0.1", port=fixed_modbus(device), timeout_s=2.0).connect()


def test_status_decoding(fixed_server):
    st = fixed_server(fixed_device()).status()
    assert (st.ready, st.enabled, st.running, st.at_target) == (True, True, True, True)
    assert st.patient_switch_connected and not st.patient_switch_pressed and not st.latched
    assert st.force_n == pytest.approx(-12.3)
    assert st.phase is Phase.HOLD and st.fault_code is FaultCode.NONE
    assert st.uptime_s == pytest.approx(100.0)
    assert st.position_m == pytest.approx(-0.001)
    assert st.last_reject is RejectReason.FORCE_PRESENT


def test_identity_decoding(fixed_server):
    ident = fixed_server(fixed_device(kind=3)).identity()
    assert ident.serial == SERIAL
    assert ident.kind is DeviceKind.BOTH
    assert ident.rated_force_n == 890.0
    assert ident.firmware_version == 0x0203


def test_settings_and_writes_reach_the_registers(fixed_server):
    ctrl = fixed_server(fixed_device())
    assert ctrl.settings()[Holding.TARGET_FORCE] == 1500
    ctrl.set_target_force(123.4)
    ctrl.set_ramp_rates(12.5, 30.0)
    ctrl.set_times(hold_s=12.3, rest_s=4.0, treatment_s=600)
    ctrl.set_watchdog(1.5)
    s = ctrl.settings()
    assert s[Holding.TARGET_FORCE] == 1234
    assert (s[Holding.RAMP_UP_RATE], s[Holding.RAMP_DOWN_RATE]) == (125, 300)
    assert (s[Holding.HOLD_TIME], s[Holding.REST_TIME], s[Holding.TREATMENT_TIME]) == (123, 40, 600)
    assert s[Holding.WATCHDOG_MS] == 1500


def test_wrong_protocol_version_is_named(fixed_server):
    with pytest.raises(DeviceProtocolError) as err:
        fixed_server(fixed_device(protocol=0x0200)).identity()
    assert "PROTOCOL_VERSION" in str(err.value) and "0x0200" in str(err.value)


def test_phase_outside_enumeration_is_a_protocol_error(fixed_server):
    with pytest.raises(DeviceProtocolError) as err:
        fixed_server(fixed_device(phase=9)).status()
    assert "enumerations" in str(err.value)


def test_server_exception_02_is_typed(fixed_server):
    ctrl = fixed_server(fixed_device())
    with pytest.raises(IllegalAddress):
        ctrl.read_holding(Holding.TARGET_FORCE, count=20)


def test_a_server_that_reads_one_frame_at_a_time_gets_one_read_at_a_time(fixed_server):
    """pymodbus' stock server keeps the second frame of a segment until more bytes come:
    the probe at connect finds that out, and every snapshot is then two plain reads."""
    ctrl = fixed_server(fixed_device())
    assert ctrl.pipelined is False
    for _ in range(3):
        st = ctrl.status()
        assert st.force_n == -12.3 and st.phase is Phase.HOLD and st.uptime_s == 100.0
