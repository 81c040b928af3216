"""The controller driver over Modbus RTU (19200 baud) on a pseudo-terminal pair.

Parity is N here: this machine's ptys refuse PARENB (EINVAL) and carry no parity bit
anyway; real lines use the contract's 8E1, the drivers' default. The table runs on a
manual clock, so what the controller does is exact and needs no wall-clock waits."""

from __future__ import annotations

import pytest

from drivers.controller import CommandRefused, TractionController
from drivers.errors import DeviceUnreachable
from drivers.tcm1 import DeviceKind, Holding, Phase, RejectReason
from rigs.emulator.modbus_server import controller_devices, serve_rtu
from rigs.emulator.nullmodem import PtyLink
from rigs.emulator.table import EmulatedTable
from rigs.rig import Rig
from tests.emulated import LoopThread, ManualClock

pytestmark = pytest.mark.timeout(30)


class RtuTable:
    """A cervical table served as RTU unit 3 on `link.end_a`; the driver opens `end_b`."""

    def __init__(self) -> None:
        self.link = PtyLink()
        self.loop = LoopThread()
        self.clock = ManualClock()
        self.table = EmulatedTable("cervical", seed=4, clock=self.clock)
        self.server = self.loop.run(serve_rtu(controller_devices(self.table, unit_id=3), self.link.end_a, parity="N"))

    def controller(self, unit_id: int = 3, timeout_s: float = 1.0) -> TractionController:
        return TractionController(transport="rtu", port=self.link.end_b, unit_id=unit_id, timeout_s=timeout_s,
                                  parity="N").connect()

    def advance_until(self, ctrl: TractionController, predicate, table_s: float, step_s: float = 0.05):
        """Move table time on in steps until predicate(status) holds (bounded in table time)."""
        waited = 0.0
        while waited <= table_s:
            status = ctrl.status()
            if predicate(status):
                return status
            self.clock.t += step_s
            self.loop.call(self.table.sync)
            waited += step_s
        raise AssertionError(f"not reached within {table_s} table s: {status}")

    def close(self) -> None:
        self.loop.run(self.server.shutdown())
        self.loop.stop()
        self.link.close()


@pytest.fixture
def rtu():
    served = RtuTable()
    yield served
    served.close()


def test_rtu_identity_status_and_refusal(rtu):
    ctrl = rtu.controller()
    try:
        assert ctrl.identity().kind is DeviceKind.CERVICAL
        assert ctrl.status().ready
        ctrl.set_target_force(100.0)
        with pytest.raises(CommandRefused) as err:
            ctrl.start()
        assert err.value.reason is RejectReason.NOT_READY
    finally:
        ctrl.close()


def test_rtu_wrong_unit_id_is_bounded(rtu):
    ctrl = rtu.controller(unit_id=9, timeout_s=0.5)
    try:
        with pytest.raises(Exception) as err:
            ctrl.status()
        assert "unit" in str(err.value)
    finally:
        ctrl.close()


def test_rtu_settings_in_si_and_a_treatment(rtu):
    ctrl = rtu.controller()
    try:
        ctrl.set_target_force(120.5)
        ctrl.set_ramp_rates(25.0, 50.0)
        ctrl.set_times(hold_s=8.0, rest_s=4.0, treatment_s=45)
        settings = ctrl.settings()
        assert settings[Holding.TARGET_FORCE] == 1205  # 0.1 N steps on the wire
        assert (settings[Holding.RAMP_UP_RATE], settings[Holding.RAMP_DOWN_RATE]) == (250, 500)
        assert (settings[Holding.HOLD_TIME], settings[Holding.REST_TIME], settings[Holding.TREATMENT_TIME]) == (80, 40, 45)
        ctrl.enable()
        ctrl.start()
        status = rtu.advance_until(ctrl, lambda s: s.phase is Phase.HOLD, table_s=10.0)
        assert status.running and status.force_n == pytest.approx(120.5, abs=5.0)
    finally:
        ctrl.close()


def test_make_safe_on_the_single_rtu_link(rtu):
    """An RTU rig has no safety link: Rig.make_safe must release on the controller's own."""
    ctrl = rtu.controller()
    try:
        ctrl.set_target_force(100.0)
        ctrl.set_ramp_rates(100.0, 100.0)
        ctrl.enable()
        ctrl.start()
        rtu.advance_until(ctrl, lambda s: s.force_n > 50.0, table_s=5.0)
        rig = Rig(config=None, controller=ctrl, stimulus=None, gauge=None)
        assert rig.safety is None
        assert rig.make_safe() == []
        # ESTOP released the force; ENABLE 0 de-energises once it is gone
        status = rtu.advance_until(ctrl, lambda s: s.force_n < 15.0 and not s.enabled, table_s=5.0)
        assert status.estop_latched
        with pytest.raises(CommandRefused):
            ctrl.start()
    finally:
        ctrl.close()


def test_rig_make_safe_repeats_a_spoilt_attempt_on_the_single_link():
    """A signal can land while the only link waits for a reply; that reply can spoil the
    first release attempt, so a failed attempt is made once more (both steps idempotent)."""

    class Link:
        attempts = 0

        def make_safe(self):
            self.attempts += 1
            return ["ESTOP: unexpected reply"] if self.attempts == 1 else []

    link = Link()
    assert Rig(config=None, controller=link, stimulus=None, gauge=None).make_safe() == []
    assert link.attempts == 2


def test_missing_serial_device_is_one_line():
    with pytest.raises(DeviceUnreachable) as err:
        TractionController(transport="rtu", port="/dev/ttyNOPE9", parity="N").connect()
    text = str(err.value)
    assert "\n" not in text and "/dev/ttyNOPE9" in text and "19200 8N1" in text
    assert "serial port name" in text
