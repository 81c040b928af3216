"""The controller driver over Modbus RTU (19200 baud) on a pseudo-terminal pair.

Parity is N here: this machine's ptys refuse PARENB (EINVAL) and carry no parity bit
anyway; real lines use the contract's 8E1, the drivers' default."""

from __future__ import annotations

import pytest

from drivers.controller import CommandRefused, TractionController
from drivers.tcm1 import DeviceKind, RejectReason
from rigs.emulator.modbus_server import controller_devices, serve_rtu
from rigs.emulator.table import EmulatedTable
from tests.emulated import LoopThread, ManualClock
from tests.ptylink import PtyLink


@pytest.fixture
def rtu_link():
    link = PtyLink()
    loop = LoopThread()
    table = EmulatedTable("cervical", seed=4, clock=ManualClock())
    server = loop.run(serve_rtu(controller_devices(table, unit_id=3), link.end_a, parity="N"))
    yield link
    loop.run(server.shutdown())
    loop.stop()
    link.close()


@pytest.mark.timeout(30)
def test_rtu_identity_status_and_refusal(rtu_link):
    ctrl = TractionController(transport="rtu", port=rtu_link.end_b, unit_id=3, timeout_s=1.0, parity="N").connect()
    try:
        assert ctrl.identity().kind is DeviceKind.CERVICAL
        assert ctrl.status().ready
        ctrl.set_target_force(100.0)
        with pytest.raises(CommandRefused) as err:
            ctrl.start()
        assert err.value.reason is RejectReason.NOT_READY
    finally:
        ctrl.close()


@pytest.mark.timeout(30)
def test_rtu_wrong_unit_id_is_bounded(rtu_link):
    ctrl = TractionController(transport="rtu", port=rtu_link.end_b, unit_id=9, timeout_s=0.5, parity="N").connect()
    try:
        with pytest.raises(Exception) as err:
            ctrl.status()
        assert "unit" in str(err.value)
    finally:
        ctrl.close()
