"""The emulated FDC-1 table served over Modbus TCP in process, on a manual clock: the
transport lines FDC-1 takes "as TCM-1" (exceptions 02/03/04/0B, all-or-nothing multiple
writes, pulse and plain coils) and SIO-1's OBSTACLE coil, through the register map the
table kind chooses (rigs/emulator/process.py EMULATED_KINDS)."""

from __future__ import annotations

import pytest
from pymodbus.client import ModbusTcpClient

from drivers.fdc1 import Coil, Holding, Phase, RejectReason, VALID_HOLDING, VALID_INPUT
from drivers.flexion_controller import FlexionController
from drivers.modbus_controller import CommandRefused, IllegalValue
from drivers.stimulus import StimulusModule
from drivers.tcm1 import StimulusCoil
from rigs.emulator.fd_table import FlexionDistractionTable
from rigs.emulator.modbus_server import TCM1_MAP, controller_devices, serve_tcp, stimulus_devices
from rigs.emulator.process import EMULATED_KINDS
from tests.emulated import LoopThread, ManualClock


@pytest.fixture
def served():
    clock = ManualClock()
    loop = LoopThread()
    table = FlexionDistractionTable(seed=2, clock=clock)
    kind = EMULATED_KINDS["flexion-distraction"]
    servers = []
    try:
        server, cport = loop.run(serve_tcp(controller_devices(table, 1, kind.registers)))
        servers.append(server)
        server, sport = loop.run(serve_tcp(stimulus_devices(table, 1, kind.relays)))
        servers.append(server)
        ctrl = FlexionController(host="127.0.0.1", port=cport, unit_id=1, timeout_s=2.0).connect()
        stim = StimulusModule("127.0.0.1", sport, 1, timeout_s=2.0, obstacle_slide=True).connect()
        raw = ModbusTcpClient("127.0.0.1", port=cport, timeout=2, retries=0)
        raw.connect()
        sraw = ModbusTcpClient("127.0.0.1", port=sport, timeout=2, retries=0)
        sraw.connect()
        try:
            yield table, clock, loop, ctrl, stim, raw, sraw
        finally:
            for client in (ctrl, stim, raw, sraw):
                client.close()
    finally:
        for server in servers:
            loop.run(server.shutdown())
        loop.stop()


def exception_code(response) -> int | None:
    return getattr(response, "exception_code", None) if response.isError() else None


def test_the_traction_map_is_served_as_before():
    holding, inputs = TCM1_MAP.shape()[2:]
    assert [(b.address, b.count) for b in holding] == [(0, 12)]
    assert [(b.address, b.count) for b in inputs] == [(0, 7), (100, 12)]


def test_addresses_outside_the_contract_are_02(served):
    *_, raw, _ = served
    assert exception_code(raw.read_holding_registers(max(VALID_HOLDING), count=2, device_id=1)) == 0x02
    assert exception_code(raw.read_input_registers(max(v for v in VALID_INPUT if v < 100), count=2,
                                                   device_id=1)) == 0x02
    assert exception_code(raw.read_input_registers(100, count=19, device_id=1)) == 0x02
    assert exception_code(raw.read_discrete_inputs(0, count=14, device_id=1)) == 0x02
    assert exception_code(raw.read_coils(0, count=6, device_id=1)) == 0x02
    assert not raw.read_input_registers(100, count=18, device_id=1).isError()
    assert not raw.read_discrete_inputs(0, count=13, device_id=1).isError()


def test_a_wrong_unit_id_is_0b(served):
    *_, raw, _ = served
    assert exception_code(raw.read_input_registers(0, count=9, device_id=7)) == 0x0B


def test_out_of_range_is_03_and_a_refusal_04_with_its_reason(served):
    table, clock, loop, ctrl, *_ = served
    with pytest.raises(IllegalValue):
        ctrl.write_holding(Holding.SPEED, 201)
    assert ctrl.status().last_reject is RejectReason.OUT_OF_RANGE
    with pytest.raises(CommandRefused):
        ctrl.start()
    assert ctrl.status().last_reject is RejectReason.NOT_READY
    with pytest.raises(CommandRefused):
        ctrl.write_holding(Holding.RESIDUAL_FORCE, 50)
    assert ctrl.status().last_reject is RejectReason.READ_ONLY


def test_a_multiple_write_is_all_or_nothing(served):
    table, clock, loop, ctrl, *_ = served
    before = ctrl.read_holding(Holding.FLEXION_DEPTH, 3)
    with pytest.raises(IllegalValue):
        ctrl.write_holdings(Holding.FLEXION_DEPTH, [120, 80, 999])  # SPEED 99.9 °/s refused
    assert ctrl.read_holding(Holding.FLEXION_DEPTH, 3) == before


def test_pulse_coils_read_back_0_and_enable_what_was_written(served):
    table, clock, loop, ctrl, *_ = served
    ctrl.set_depths(flexion_deg=5.0)
    ctrl.set_speed(10.0)
    ctrl.set_times(pause_s=5.0)
    ctrl.enable()
    ctrl.start()
    coils = ctrl.read_coils()
    assert coils[Coil.ENABLE] and not any(coils[c] for c in (Coil.START, Coil.STOP, Coil.ESTOP, Coil.RESET))
    assert ctrl.status().phase is Phase.MOVING_OUT
    clock.t += 2.0  # a 5° move at 10 °/s takes 0.75 s
    status = ctrl.status()
    assert status.flexion_deg == 5.0 and status.phase is Phase.PAUSE_AT_DEPTH
    assert ctrl.read_holding(Holding.RESIDUAL_FORCE)[0] == 100  # 10 N, the domain file's residual


def test_sio1_has_the_obstacle_coil_and_nothing_beyond(served):
    table, clock, loop, ctrl, stim, raw, sraw = served
    stim.press(StimulusCoil.OBSTACLE)
    assert stim.states()[StimulusCoil.OBSTACLE] and table.obstacle.inserted
    stim.release_all()
    assert not table.obstacle.inserted
    assert exception_code(sraw.write_coil(5, True, device_id=1)) == 0x02
