"""The FDC-1 driver against a plain pymodbus server with fixed register contents.

The server is pymodbus's own storage with no project code behind it (tests/conftest.py
`fixed_modbus`), so the decoding of the status snapshot (signed force and angles, 32-bit
uptime, every discrete input), the identity block, every setter's register and scaling,
the refusals with LAST_REJECT and the DEVICE_KIND check are checked against an
implementation that shares nothing with the project but the contract
(shared/protocols/flexion-distraction-modbus.md). A refusal is fixed content too: the
server's action answers one address with one exception, and LAST_REJECT (and FAULT_CODE)
hold the reason the driver must name."""

from __future__ import annotations

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers import kinds
from drivers.controller import TractionController
from drivers.errors import DeviceProtocolError, SafetyGuardError
from drivers.fdc1 import DeviceKind, FaultCode, Holding, Mode, Phase, RejectReason, encode_serial
from drivers.flexion_controller import FlexionController
from drivers.modbus_controller import CommandRefused, IllegalAddress, IllegalValue
from drivers.tcm1 import Coil

pytestmark = pytest.mark.timeout(30)

SERIAL = "FD-2026-000042"
#: DI 0..12: ready, enabled, running, -, -, -, -, switch connected, -, -, -, -, brake engaged
DI = [True, True, True, False, False, False, False, True, False, False, False, False, True]
#: IR 0..8: -12.3 N, PHASE 3, no fault, 100000 ms, +18.3°, -7.5°, LAST_REJECT 5, 7 cycles
IR_STATUS = [0xFF85, 3, 0, 0x0001, 0x86A0, 183, 0xFFB5, 5, 7]
#: HR 0..15 as a table might hold them after power-on
HR = [0, 100, 0, 100, 50, 100, 20, 20, 0, 250, 150, 3000, 0, 0, 0, 100]


def identity_words(protocol=0x0100, kind=4) -> list[int]:
    # 100..117: version, firmware 1.2, 300 N, DEVICE_KIND, serial, 25°, 15°, 20 °/s, 40 °/s², 130 N, 3°
    return [protocol, 0x0102, 3000, kind] + encode_serial(SERIAL) + [250, 150, 200, 400, 1300, 30]


def device(*, ir_status=None, kind=4, protocol=0x0100, refuse: dict | None = None) -> SimDevice:
    """A fixed FDC-1: `refuse` maps (function code, address) to the exception answered there."""
    refuse = refuse or {}

    async def action(function_code, start_address, address, count, registers, values):
        return refuse.get((function_code, address))

    return SimDevice(
        id=1,
        simdata=(
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=DI + [False] * 3, datatype=DataType.BITS)],
            [SimData(0, values=list(HR), datatype=DataType.REGISTERS)],
            [SimData(0, values=list(ir_status or IR_STATUS), datatype=DataType.REGISTERS),
             SimData(100, values=identity_words(protocol, kind), datatype=DataType.REGISTERS)],
        ),
        action=action if refuse else None,
    )


@pytest.fixture
def fdc(fixed_modbus):
    opened = []

    def open_(dev: SimDevice | None = None, cls=FlexionController, **kw) -> FlexionController:
        ctrl = cls(host="127.0.0.1", port=fixed_modbus(dev or device()), timeout_s=2.0, **kw).connect()
        opened.append(ctrl)
        return ctrl

    yield open_
    for ctrl in opened:
        ctrl.close()


# ------------------------------------------------------------------ registration
def test_fdc1_is_registered_for_the_flexion_distraction_table_by_device_kind_4():
    kind = kinds.controller_for_table("flexion-distraction")
    assert (kind.protocol, kind.driver, kind.device_kinds, kind.stimulus) == (
        "FDC-1", FlexionController, frozenset({4}), "SIO-1")
    assert kinds.controller_for_device(4) is kind and kinds.controller_for_protocol("FDC-1") is kind


# ------------------------------------------------------------------ status snapshot
def test_status_decoding(fdc):
    st = fdc().status()
    assert (st.ready, st.enabled, st.running, st.at_neutral) == (True, True, True, False)
    assert st.patient_switch_connected and not st.patient_switch_pressed
    assert not (st.overtravel_tripped or st.obstruction_tripped or st.latched)
    assert st.brake_engaged
    assert st.force_n == pytest.approx(-12.3)
    assert st.phase is Phase.PAUSE_AT_DEPTH and st.fault_code is FaultCode.NONE
    assert st.uptime_s == pytest.approx(100.0)
    assert st.flexion_deg == pytest.approx(18.3) and st.lateral_deg == pytest.approx(-7.5)
    assert st.last_reject is RejectReason.FORCE_PRESENT
    assert st.cycle_count == 7
    assert st.sent_ns <= st.host_ns


@pytest.mark.parametrize("di, flag", [(4, "estop_latched"), (5, "overforce_tripped"), (8, "watchdog_tripped"),
                                      (9, "fault"), (10, "overtravel_tripped"), (11, "obstruction_tripped")])
def test_every_latch_the_contract_names_is_latched(fixed_modbus, di, flag):
    bits = list(DI)
    bits[di] = True
    dev = device()
    dev.simdata[1][0] = SimData(0, values=bits + [False] * 3, datatype=DataType.BITS)
    with FlexionController(host="127.0.0.1", port=fixed_modbus(dev), timeout_s=2.0) as ctrl:
        st = ctrl.status()
        assert getattr(st, flag) and st.latched


@pytest.mark.parametrize("code, fault", [(8, FaultCode.OVERTRAVEL), (9, FaultCode.OBSTRUCTION),
                                         (7, FaultCode.POWER_LOSS), (3, FaultCode.PATIENT_SWITCH)])
def test_fault_codes_of_fdc1_decode(fdc, code, fault):
    status = list(IR_STATUS)
    status[2] = code
    assert fdc(device(ir_status=status)).status().fault_code is fault


@pytest.mark.parametrize("index, value, what", [(1, 9, "Phase"), (2, 10, "FaultCode"), (7, 7, "RejectReason")])
def test_a_status_register_outside_the_enumerations_is_one_line(fdc, index, value, what):
    status = list(IR_STATUS)
    status[index] = value
    with pytest.raises(DeviceProtocolError) as err:
        fdc(device(ir_status=status)).status()
    assert "out of the FDC-1 enumerations" in str(err.value) and "\n" not in str(err.value)


def test_on_status_sees_every_snapshot(fdc):
    ctrl = fdc()
    seen = []
    ctrl.on_status = seen.append
    st = ctrl.status()
    assert seen == [st]


# ------------------------------------------------------------------ identity / DEVICE_KIND
def test_identity_decoding(fdc):
    ident = fdc().identity()
    assert ident.kind is DeviceKind.FLEXION_DISTRACTION and ident.serial == SERIAL
    assert (ident.protocol_version, ident.firmware_version) == (0x0100, 0x0102)
    assert ident.rated_force_n == 300.0
    assert (ident.rated_depth_deg, ident.rated_lateral_deg) == (25.0, 15.0)
    assert (ident.rated_speed_deg_s, ident.accel_deg_s2) == (20.0, 40.0)
    assert (ident.obstruction_force_n, ident.backoff_deg) == (130.0, 3.0)


@pytest.mark.parametrize("kind, tables", [(1, "lumbar, cervical"), (3, "lumbar, cervical")])
def test_the_fdc1_driver_names_a_tcm1_it_finds(fdc, kind, tables):
    with pytest.raises(DeviceProtocolError) as err:
        fdc(device(kind=kind)).identity()
    assert str(err.value).endswith(f"DEVICE_KIND {kind} is a TCM-1 controller, not FDC-1 — "
                                   f"set table.kind to one of {tables}")


def test_the_tcm1_driver_names_an_fdc1_it_finds(fdc):
    with pytest.raises(DeviceProtocolError) as err:
        fdc(device(kind=4), cls=TractionController).identity()
    assert str(err.value).endswith("DEVICE_KIND 4 is an FDC-1 controller, not TCM-1 — "
                                   "set table.kind to one of flexion-distraction")


def test_an_unknown_device_kind_is_one_line(fdc):
    with pytest.raises(DeviceProtocolError, match=r"DEVICE_KIND 9 is not 4$"):
        fdc(device(kind=9)).identity()


def test_a_wrong_protocol_version_names_fdc1(fdc):
    with pytest.raises(DeviceProtocolError) as err:
        fdc(device(protocol=0x0200)).identity()
    assert "PROTOCOL_VERSION is 0x0200" in str(err.value) and "not a FDC-1 1.0 controller" in str(err.value)


# ------------------------------------------------------------------ setters: register and scaling
@pytest.mark.parametrize(
    "call, reg, raw",
    [
        (lambda c: c.set_distraction_force(123.4), Holding.DISTRACTION_FORCE, 1234),
        (lambda c: c.set_distraction_rate(12.5), Holding.DISTRACTION_RATE, 125),
        (lambda c: c.set_mode(Mode.LATERAL), Holding.MODE, 1),
        (lambda c: c.set_mode("flexion"), Holding.MODE, 0),
        (lambda c: c.set_depths(flexion_deg=18.26), Holding.FLEXION_DEPTH, 183),  # to the nearest 0.1°
        (lambda c: c.set_depths(lateral_deg=7.5), Holding.LATERAL_DEPTH, 75),
        (lambda c: c.set_speed(12.3), Holding.SPEED, 123),
        (lambda c: c.set_times(pause_s=4.0), Holding.PAUSE_TIME, 40),
        (lambda c: c.set_times(rest_s=0.0), Holding.REST_TIME, 0),
        (lambda c: c.set_times(treatment_s=300), Holding.TREATMENT_TIME, 300),
        (lambda c: c.set_cycles(9999), Holding.CYCLES, 9999),
        (lambda c: c.set_limits(angle_deg=20.0), Holding.ANGLE_LIMIT, 200),
        (lambda c: c.set_limits(lateral_deg=12.0), Holding.LATERAL_LIMIT, 120),
        (lambda c: c.set_limits(force_n=250.0), Holding.FORCE_LIMIT, 2500),
        (lambda c: c.set_watchdog(1.5), Holding.WATCHDOG_MS, 1500),
    ],
)
def test_every_setter_writes_its_register_in_register_units(fdc, call, reg, raw):
    ctrl = fdc()
    call(ctrl)
    assert ctrl.read_holding(reg) == [raw]
    others = {h: v for h, v in ctrl.settings().items() if h is not reg}
    assert others == {h: HR[h] for h in Holding if h is not reg}  # nothing else written


def test_heartbeat_writes_holding_13(fdc):
    ctrl = fdc()
    ctrl.heartbeat()
    ctrl.heartbeat()
    assert ctrl.read_holding(Holding.HEARTBEAT) == [2]
    assert ctrl.residual_force() == 10.0


@pytest.mark.parametrize(
    "call, text",
    [
        (lambda c: c.set_depths(flexion_deg=-0.5), "FLEXION_DEPTH -0.5° is outside the range FDC-1 accepts (0°..ANGLE_LIMIT)"),
        (lambda c: c.set_depths(lateral_deg=-1), "LATERAL_DEPTH -1° is outside"),
        (lambda c: c.set_speed(0.04), "SPEED 0.04 °/s is outside the range FDC-1 accepts (0.1 °/s..RATED_SPEED)"),
        (lambda c: c.set_times(pause_s=60.1), "PAUSE_TIME 60.1 s is outside the range FDC-1 accepts (0 s..60 s)"),
        (lambda c: c.set_times(rest_s=-0.1), "REST_TIME -0.1 s is outside"),
        (lambda c: c.set_times(treatment_s=5941), "TREATMENT_TIME 5941 s is outside the range FDC-1 accepts (0 s..5940 s)"),
        (lambda c: c.set_cycles(10000), "CYCLES 10000 is outside the range FDC-1 accepts (0..9999)"),
        (lambda c: c.set_distraction_rate(500.1), "DISTRACTION_RATE 500.1 N/s is outside the range FDC-1 accepts (0.1 N/s..500 N/s)"),
        (lambda c: c.set_distraction_rate(0), "DISTRACTION_RATE 0 N/s is outside"),
        (lambda c: c.set_limits(angle_deg=0.0), "ANGLE_LIMIT 0° is outside the range FDC-1 accepts (0.1°..RATED_DEPTH)"),
    ],
)
def test_a_value_no_fdc1_takes_is_refused_before_the_write(fdc, call, text):
    ctrl = fdc()
    before = ctrl.settings()
    with pytest.raises(ValueError) as err:
        call(ctrl)
    assert text in str(err.value) and "nothing was written" in str(err.value) and "\n" not in str(err.value)
    assert ctrl.settings() == before


def test_negative_forces_and_the_rig_guard_are_checked_before_the_write(fdc):
    ctrl = fdc(safety_limit_n=200.0)
    with pytest.raises(ValueError, match="distraction force must be >= 0 N"):
        ctrl.set_distraction_force(-1.0)
    with pytest.raises(SafetyGuardError, match="distraction force 250.0 N above the rig's safety limit 200.0 N"):
        ctrl.set_distraction_force(250.0)
    ctrl.set_distraction_force(250.0, testing_interlock=True)
    assert ctrl.read_holding(Holding.DISTRACTION_FORCE) == [2500]


def test_an_unknown_mode_is_refused_before_the_write(fdc):
    with pytest.raises(KeyError):
        fdc().set_mode("circumduction")
    with pytest.raises(ValueError):
        fdc().set_mode(2)


# ------------------------------------------------------------------ refusals name LAST_REJECT
WRITE_REGISTER, WRITE_COIL = 6, 5


def refusing(fc: int, address: int, code: ExcCodes, reject: int, fault: int = 0) -> SimDevice:
    status = list(IR_STATUS)
    status[7], status[2] = reject, fault
    return device(ir_status=status, refuse={(fc, address): code})


def test_a_depth_above_its_limit_is_03_with_last_reject_1(fdc):
    ctrl = fdc(refusing(WRITE_REGISTER, Holding.FLEXION_DEPTH, ExcCodes.ILLEGAL_VALUE, 1))
    with pytest.raises(IllegalValue) as err:
        ctrl.set_depths(flexion_deg=30.0)
    assert err.value.reason is RejectReason.OUT_OF_RANGE
    assert str(err.value) == ("flexion-distraction controller (modbus-tcp://127.0.0.1:%s unit 1): exception 03 "
                              "(illegal data value) on FLEXION_DEPTH (holding 3) := 300; LAST_REJECT 1: value out of "
                              "range" % ctrl.link.port)


@pytest.mark.parametrize("reg, call", [(Holding.ANGLE_LIMIT, lambda c: c.set_limits(angle_deg=20)),
                                       (Holding.LATERAL_LIMIT, lambda c: c.set_limits(lateral_deg=10)),
                                       (Holding.FORCE_LIMIT, lambda c: c.set_limits(force_n=200))])
def test_a_limit_while_enabled_is_04_with_last_reject_4(fdc, reg, call):
    ctrl = fdc(refusing(WRITE_REGISTER, reg, ExcCodes.DEVICE_FAILURE, 4))
    with pytest.raises(CommandRefused) as err:
        call(ctrl)
    assert err.value.reason is RejectReason.ENABLED
    assert f"exception 04 (refused by device state) on {reg.name} (holding {int(reg)})" in str(err.value)
    assert "LAST_REJECT 4: not allowed while the drive is enabled" in str(err.value)


def test_residual_force_is_read_only_with_last_reject_6(fdc):
    ctrl = fdc(refusing(WRITE_REGISTER, Holding.RESIDUAL_FORCE, ExcCodes.DEVICE_FAILURE, 6))
    with pytest.raises(CommandRefused) as err:
        ctrl.write_holding(Holding.RESIDUAL_FORCE, 50)
    assert err.value.reason is RejectReason.READ_ONLY and "LAST_REJECT 6: register is read-only" in str(err.value)


@pytest.mark.parametrize("reject", [RejectReason.OUT_OF_RANGE, RejectReason.NOT_READY])
def test_start_refused_names_the_first_reason(fdc, reject):
    ctrl = fdc(refusing(WRITE_COIL, Coil.START, ExcCodes.DEVICE_FAILURE, int(reject)))
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.reason is reject and f"on START (coil 1) := 1; LAST_REJECT {int(reject)}" in str(err.value)


def test_start_refused_while_latched_names_the_fault_code(fdc):
    ctrl = fdc(refusing(WRITE_COIL, Coil.START, ExcCodes.DEVICE_FAILURE, 3, fault=9))
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.fault is FaultCode.OBSTRUCTION
    assert str(err.value).endswith("LAST_REJECT 3: a latch is set or the patient switch is pressed; "
                                   "FAULT_CODE 9 (obstruction)")


def test_reset_refused_with_force_present(fdc):
    ctrl = fdc(refusing(WRITE_COIL, Coil.RESET, ExcCodes.DEVICE_FAILURE, 5))
    with pytest.raises(CommandRefused) as err:
        ctrl.reset()
    assert err.value.reason is RejectReason.FORCE_PRESENT


def test_commands_are_the_tcm1_coils(fdc):
    ctrl = fdc()
    ctrl.enable()
    assert ctrl.read_coils()[Coil.ENABLE] is True
    for command, coil in ((ctrl.start, Coil.START), (ctrl.stop, Coil.STOP), (ctrl.emergency_stop, Coil.ESTOP),
                          (ctrl.reset, Coil.RESET)):
        assert command() > 0
        assert ctrl.read_coils()[coil] is True  # a plain store keeps it: the write reached this coil
    ctrl.disable()
    assert ctrl.read_coils()[Coil.ENABLE] is False
    assert ctrl.make_safe() == []


def test_an_address_outside_the_store_is_02(fdc):
    with pytest.raises(IllegalAddress):
        fdc().read_holding(Holding.DISTRACTION_FORCE, count=20)


# ------------------------------------------------------------------ Modbus RTU
def test_the_same_driver_over_rtu(tmp_path):
    """Over a pty pair (parity N: this machine's ptys refuse PARENB), pymodbus's own RTU
    server holding the same fixed content: the shared RTU line machinery carries FDC-1."""
    from pymodbus.framer import FramerType
    from pymodbus.server import ModbusSerialServer

    from rigs.emulator.nullmodem import PtyLink
    from tests.emulated import LoopThread

    link, loop = PtyLink(), LoopThread()

    async def serve():
        server = ModbusSerialServer([device()], framer=FramerType.RTU, port=link.end_a, baudrate=19200,
                                    bytesize=8, parity="N", stopbits=1)
        await server.serve_forever(background=True)
        return server

    server = loop.run(serve())
    try:
        ctrl = FlexionController(transport="rtu", port=link.end_b, timeout_s=1.0, parity="N").connect()
        try:
            assert ctrl.identity().serial == SERIAL
            st = ctrl.status()
            assert st.flexion_deg == pytest.approx(18.3) and st.phase is Phase.PAUSE_AT_DEPTH
            ctrl.set_depths(flexion_deg=12.0)
            assert ctrl.read_holding(Holding.FLEXION_DEPTH) == [120]
        finally:
            ctrl.close()
    finally:
        loop.run(server.shutdown())
        loop.stop()
        link.close()


# ------------------------------------------------------------------ the heartbeat process
def test_the_heartbeat_process_beats_an_fdc1_on_holding_13(fdc):
    """The heartbeat process opens the controller's own protocol (FDC-1's HEARTBEAT is holding
    13, TCM-1's 9): the shared heartbeat link, not a copy."""
    import time

    from drivers.watchdog import HeartbeatKeeper

    ctrl = fdc()
    keeper = HeartbeatKeeper(ctrl, 1.0)
    try:
        keeper.arm()
        assert ctrl.read_holding(Holding.WATCHDOG_MS) == [1000]
        deadline = time.monotonic() + 5.0
        while ctrl.read_holding(Holding.HEARTBEAT) == [0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ctrl.read_holding(Holding.HEARTBEAT) != [0]
        assert keeper.refresh()["beats"] >= 1
    finally:
        keeper.stop()
