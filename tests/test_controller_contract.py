"""Every TCM-1 address, command, refusal and exception through the driver, against
the emulated table served over Modbus TCP (manual clock: exact and deterministic)."""

from __future__ import annotations

import pytest

from drivers.controller import CommandRefused, IllegalAddress, IllegalValue, TractionController, WrongUnitId
from drivers.errors import SafetyGuardError
from drivers.tcm1 import (
    HOLDING_SPECS,
    Coil,
    DeviceKind,
    FaultCode,
    Holding,
    Phase,
    RejectReason,
    StimulusCoil,
)
from tests.emulated import heartbeats_then_silence, served_table


def last_reject(served) -> RejectReason:
    return served.controller.status().last_reject


# ---------------------------------------------------------------- identity / status
def test_identity_lumbar(lumbar):
    ident = lumbar.controller.identity()
    assert ident.protocol_version == 0x0100
    assert ident.kind is DeviceKind.LUMBAR
    assert ident.rated_force_n == 890.0
    assert ident.serial == lumbar.table.params.serial


def test_identity_cervical(cervical):
    ident = cervical.controller.identity()
    assert ident.kind is DeviceKind.CERVICAL
    assert ident.rated_force_n == 222.0
    assert cervical.controller.residual_force() == 10.0


def test_status_at_power_on(lumbar):
    st = lumbar.controller.status()
    assert st.ready and not st.enabled and not st.running
    assert st.patient_switch_connected and not st.patient_switch_pressed
    assert not st.latched and st.fault_code is FaultCode.NONE
    assert st.phase is Phase.IDLE
    assert abs(st.force_n) < 1.0
    assert lumbar.controller.residual_force() == 15.0


def test_uptime_counts_table_time(lumbar):
    t0 = lumbar.controller.status().uptime_s
    lumbar.advance(70.0)  # past 16 bits of milliseconds: the high word must carry
    assert lumbar.controller.status().uptime_s == pytest.approx(t0 + 70.0, abs=0.002)


# ---------------------------------------------------------------- holding registers
def test_holding_defaults_are_in_range(lumbar):
    values = lumbar.controller.settings()
    for reg, spec in HOLDING_SPECS.items():
        high = spec.high if spec.high is not None else 0xFFFF
        assert spec.low <= values[reg] <= max(high, values[Holding.FORCE_LIMIT]), reg


@pytest.mark.parametrize(
    "reg, good, bad",
    [
        (Holding.RAMP_UP_RATE, [1, 5000], [0, 5001]),
        (Holding.RAMP_DOWN_RATE, [1, 5000], [0, 5001]),
        (Holding.MODE, [0, 1], [2]),
        (Holding.HOLD_TIME, [1, 990], [0, 991]),
        (Holding.REST_TIME, [1, 990], [0, 991]),
        (Holding.WATCHDOG_MS, [0, 60000], [60001]),
        (Holding.TREATMENT_TIME, [0, 5940], [5941]),
        (Holding.FORCE_LIMIT, [1, 8900], [0, 8901]),
    ],
)
def test_holding_ranges(lumbar, reg, good, bad):
    ctrl = lumbar.controller
    for value in good:
        ctrl.write_holding(reg, value)
        assert ctrl.read_holding(reg) == [value]
    before = ctrl.read_holding(reg)
    for value in bad:
        with pytest.raises(IllegalValue) as err:
            ctrl.write_holding(reg, value)
        assert err.value.reason is RejectReason.OUT_OF_RANGE
        assert reg.name in str(err.value)
        assert ctrl.read_holding(reg) == before


def test_heartbeat_takes_any_value(lumbar):
    for value in (0, 1, 0xFFFF):
        lumbar.controller.write_holding(Holding.HEARTBEAT, value)


def test_target_force_bounded_by_force_limit(lumbar):
    ctrl = lumbar.controller
    ctrl.set_force_limit(300.0)
    ctrl.set_target_force(300.0)
    with pytest.raises(IllegalValue) as err:
        ctrl.set_target_force(300.1)
    assert err.value.reason is RejectReason.OUT_OF_RANGE
    assert ctrl.read_holding(Holding.TARGET_FORCE) == [3000]


def test_rest_force_bounded_by_target(lumbar):
    ctrl = lumbar.controller
    ctrl.set_target_force(200.0)
    ctrl.set_rest_force(100.0)
    with pytest.raises(IllegalValue):
        ctrl.set_rest_force(200.1)


def test_force_limit_not_writable_while_enabled(lumbar):
    ctrl = lumbar.controller
    ctrl.enable()
    with pytest.raises(CommandRefused) as err:
        ctrl.set_force_limit(500.0)
    assert err.value.reason is RejectReason.ENABLED
    assert ctrl.read_holding(Holding.FORCE_LIMIT) == [8900]


def test_residual_force_is_read_only(lumbar):
    with pytest.raises(CommandRefused) as err:
        lumbar.controller.write_holding(Holding.RESIDUAL_FORCE, 100)
    assert err.value.reason is RejectReason.READ_ONLY
    assert lumbar.controller.residual_force() == 15.0


def test_multiple_write_is_all_or_nothing(lumbar):
    ctrl = lumbar.controller
    with pytest.raises(IllegalValue):
        ctrl.write_holdings(Holding.TARGET_FORCE, [1000, 0])  # RAMP_UP_RATE 0 is out of range
    assert ctrl.read_holding(Holding.TARGET_FORCE) == [0]
    assert last_reject(lumbar) is RejectReason.OUT_OF_RANGE


def test_multiple_write_checked_in_address_order(lumbar):
    ctrl = lumbar.controller
    # REST_FORCE (6) is checked against the TARGET_FORCE (0) written earlier in the same request
    ctrl.write_holdings(Holding.TARGET_FORCE, [2000, 100, 200, 1, 10, 10, 1500])
    assert ctrl.read_holding(Holding.REST_FORCE) == [1500]
    with pytest.raises(IllegalValue):
        ctrl.write_holdings(Holding.TARGET_FORCE, [1000, 100, 200, 1, 10, 10, 1500])
    assert ctrl.read_holding(Holding.TARGET_FORCE) == [2000]


def test_multiple_write_refused_by_state_changes_nothing(lumbar):
    ctrl = lumbar.controller
    ctrl.enable()
    with pytest.raises(CommandRefused):
        ctrl.write_holdings(Holding.REST_FORCE, [0, 5000])  # FORCE_LIMIT while enabled
    assert ctrl.read_holding(Holding.FORCE_LIMIT) == [8900]


# ---------------------------------------------------------------- addresses / unit id
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c._client.read_coils(0, count=6, device_id=1),
        lambda c: c._client.read_coils(5, count=1, device_id=1),
        lambda c: c._client.read_discrete_inputs(0, count=11, device_id=1),
        lambda c: c._client.read_discrete_inputs(10, count=1, device_id=1),
        lambda c: c._client.read_holding_registers(12, count=1, device_id=1),
        lambda c: c._client.read_holding_registers(0, count=13, device_id=1),
        lambda c: c._client.read_input_registers(7, count=1, device_id=1),
        lambda c: c._client.read_input_registers(5, count=3, device_id=1),
        lambda c: c._client.read_input_registers(99, count=2, device_id=1),
        lambda c: c._client.read_input_registers(110, count=3, device_id=1),
        lambda c: c._client.write_register(12, 1, device_id=1),
        lambda c: c._client.write_registers(10, [0, 150, 0], device_id=1),
        lambda c: c._client.write_coil(5, True, device_id=1),
        lambda c: c._client.write_coils(3, [False, False, False], device_id=1),
    ],
)
def test_addresses_outside_the_document_give_02(lumbar, call):
    response = call(lumbar.controller)
    assert response.isError() and response.exception_code == 0x02


def test_typed_illegal_address(lumbar):
    with pytest.raises(IllegalAddress) as err:
        lumbar.controller._call("holding 12", lumbar.controller._client.read_holding_registers, 12, count=1)
    assert "02" in str(err.value) and "holding 12" in str(err.value)


def test_wrong_unit_id_gives_0B(lumbar):
    from drivers.controller import TractionController

    other = TractionController(host="127.0.0.1", port=lumbar.controller_port, unit_id=7, timeout_s=2).connect()
    try:
        with pytest.raises(WrongUnitId) as err:
            other.status()
        assert "unit id" in str(err.value)
    finally:
        other.close()


# ---------------------------------------------------------------- coils
def test_pulse_coils_read_back_zero_enable_reads_back_written(lumbar):
    ctrl = lumbar.controller
    ctrl.enable()
    ctrl.stop()
    ctrl.emergency_stop()
    coils = ctrl.read_coils()
    assert coils[Coil.ENABLE] is True
    assert not any(coils[c] for c in (Coil.START, Coil.STOP, Coil.ESTOP, Coil.RESET))
    ctrl.disable()
    assert ctrl.read_coils()[Coil.ENABLE] is False


def test_enable_refused_unless_ready(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    with pytest.raises(CommandRefused) as err:
        ctrl.enable()
    assert err.value.reason is RejectReason.NOT_READY
    stim.release(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    ctrl.emergency_stop()
    with pytest.raises(CommandRefused) as err:
        ctrl.enable()
    assert err.value.reason is RejectReason.LATCHED
    ctrl.reset()
    ctrl.enable()
    assert ctrl.status().enabled


def test_start_refused_unless_enabled(lumbar):
    with pytest.raises(CommandRefused) as err:
        lumbar.controller.start()
    assert err.value.reason is RejectReason.NOT_READY
    assert lumbar.controller.status().phase is Phase.IDLE


def test_start_refused_without_patient_switch(lumbar):
    ctrl = lumbar.controller
    ctrl.set_target_force(100.0)
    ctrl.enable()
    lumbar.stimulus.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.reason is RejectReason.NOT_READY
    lumbar.advance(1.0)
    assert ctrl.status().force_n < 1.0


def test_start_refused_while_latched(lumbar):
    ctrl = lumbar.controller
    ctrl.set_target_force(100.0)
    ctrl.enable()
    ctrl.emergency_stop()
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.reason is RejectReason.LATCHED


def test_start_refused_when_target_above_limit(lumbar):
    ctrl = lumbar.controller
    ctrl.set_target_force(400.0)
    ctrl.set_force_limit(300.0)  # lowered below the target while disabled
    ctrl.enable()
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.reason is RejectReason.OUT_OF_RANGE
    lumbar.advance(1.0)
    assert ctrl.status().force_n < 1.0


def test_stop_while_idle_is_accepted(lumbar):
    lumbar.controller.stop()
    lumbar.controller.enable()
    lumbar.controller.stop()
    assert lumbar.controller.status().phase is Phase.IDLE


def test_safety_guard_refuses_before_sending(lumbar):
    ctrl = lumbar.controller
    ctrl.safety_limit_n = 500.0
    with pytest.raises(SafetyGuardError):
        ctrl.set_target_force(600.0)
    assert ctrl.read_holding(Holding.TARGET_FORCE) == [0]
    ctrl.set_force_limit(550.0, testing_interlock=True)
    with pytest.raises(IllegalValue):  # the device's own refusal, reached on purpose
        ctrl.set_target_force(600.0, testing_interlock=True)


# ---------------------------------------------------------------- treatment
def start_treatment(served, target=200.0, up=50.0, down=100.0, **times):
    ctrl = served.controller
    ctrl.set_target_force(target)
    ctrl.set_ramp_rates(up, down)
    if times:
        ctrl.set_times(**times)
    ctrl.enable()
    ctrl.start()


def test_static_treatment_profile(lumbar):
    ctrl = lumbar.controller
    start_treatment(lumbar, target=200.0, up=50.0)
    st = ctrl.status()
    assert st.running and st.phase is Phase.RAMP_UP
    lumbar.advance(2.0)
    assert 80.0 < ctrl.status().force_n < 120.0  # 50 N/s for 2 s
    lumbar.advance_until(lambda s: s.phase is Phase.HOLD, 5.0)
    lumbar.advance(1.0)
    st = ctrl.status()
    assert st.at_target and st.force_n == pytest.approx(200.0, abs=2.0)
    assert st.position_m > 0.0
    ctrl.stop()
    assert ctrl.status().phase is Phase.RELEASING
    lumbar.advance_until(lambda s: s.phase is Phase.IDLE, 5.0)
    st = ctrl.status()
    assert st.enabled and not st.running and st.force_n < 15.0


def test_treatment_time_ends_with_release(lumbar):
    start_treatment(lumbar, target=100.0, up=100.0, treatment_s=5)
    lumbar.advance(4.0)
    assert lumbar.controller.status().phase is Phase.HOLD
    lumbar.advance(1.1)
    assert lumbar.controller.status().phase is Phase.RELEASING


def test_intermittent_cycle(lumbar):
    ctrl = lumbar.controller
    ctrl.set_target_force(200.0)
    ctrl.set_rest_force(100.0)
    ctrl.set_mode(intermittent=True)
    start_treatment(lumbar, target=200.0, up=100.0, down=100.0, hold_s=3.0, rest_s=2.0)
    seen = []
    for _ in range(1200):
        lumbar.advance(0.01)
        phase = ctrl.status().phase
        if not seen or seen[-1] is not phase:
            seen.append(phase)
    assert seen[:5] == [Phase.RAMP_UP, Phase.HOLD, Phase.RAMP_TO_REST, Phase.REST, Phase.RAMP_UP]


def test_disable_releases_then_de_energises(lumbar):
    ctrl = lumbar.controller
    start_treatment(lumbar, target=150.0, up=100.0)
    lumbar.advance(3.0)
    ctrl.disable()
    st = ctrl.status()
    assert st.enabled and st.phase is Phase.RELEASING
    lumbar.advance_until(lambda s: not s.enabled, 5.0)
    assert ctrl.status().force_n < 15.0


# ---------------------------------------------------------------- emergency paths
def test_estop_coil_releases_latches_and_blocks_restart(lumbar):
    ctrl = lumbar.controller
    start_treatment(lumbar, target=300.0, up=100.0)
    lumbar.advance(4.0)
    ctrl.emergency_stop()
    st = ctrl.status()
    assert st.phase is Phase.EMERGENCY_RELEASE and st.estop_latched and st.fault
    assert st.fault_code is FaultCode.ESTOP
    with pytest.raises(CommandRefused) as err:
        ctrl.reset()  # force still present
    assert err.value.reason is RejectReason.FORCE_PRESENT
    lumbar.advance(1.0)
    st = ctrl.status()
    assert st.phase is Phase.IDLE and st.enabled and st.force_n < 15.0
    with pytest.raises(CommandRefused) as err:
        ctrl.start()
    assert err.value.reason is RejectReason.LATCHED
    ctrl.reset()
    st = ctrl.status()
    assert not st.latched and st.fault_code is FaultCode.NONE and st.ready
    ctrl.start()


def test_first_fault_is_kept_until_reset(lumbar):
    ctrl = lumbar.controller
    start_treatment(lumbar, target=100.0, up=100.0)
    ctrl.emergency_stop()
    lumbar.stimulus.press(StimulusCoil.ESTOP_BUTTON)
    assert ctrl.status().fault_code is FaultCode.ESTOP
    lumbar.stimulus.release(StimulusCoil.ESTOP_BUTTON)


def test_estop_button_held_latches_again_after_reset(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    ctrl.enable()
    stim.press(StimulusCoil.ESTOP_BUTTON)
    assert ctrl.status().estop_latched
    ctrl.reset()
    assert ctrl.status().estop_latched
    stim.release(StimulusCoil.ESTOP_BUTTON)
    ctrl.reset()
    assert not ctrl.status().latched


def test_patient_switch_pressed_is_an_emergency(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    start_treatment(lumbar, target=200.0, up=100.0)
    lumbar.advance(3.0)
    stim.press(StimulusCoil.PATIENT_SWITCH)
    st = ctrl.status()
    assert st.patient_switch_pressed and st.estop_latched
    assert st.phase is Phase.EMERGENCY_RELEASE and st.fault_code is FaultCode.PATIENT_SWITCH
    lumbar.advance(1.0)
    with pytest.raises(CommandRefused) as err:
        ctrl.reset()  # switch still pressed
    assert err.value.reason is RejectReason.LATCHED
    stim.release(StimulusCoil.PATIENT_SWITCH)
    ctrl.reset()
    assert ctrl.status().ready


def test_unplugging_switch_during_treatment_is_an_emergency(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    start_treatment(lumbar, target=200.0, up=100.0)
    lumbar.advance(3.0)
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    st = ctrl.status()
    assert not st.patient_switch_connected and st.fault_code is FaultCode.PATIENT_SWITCH
    assert st.phase is Phase.EMERGENCY_RELEASE


def test_unplugging_switch_while_idle_only_clears_ready(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    st = ctrl.status()
    assert not st.ready and st.fault_code is FaultCode.NONE
    stim.release(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert ctrl.status().ready


def test_watchdog_trips_without_heartbeat(lumbar):
    ctrl = lumbar.controller
    alive, st = heartbeats_then_silence(lumbar, lambda: start_treatment(lumbar, target=200.0, up=100.0))
    assert not alive.watchdog_tripped
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG
    assert st.phase in (Phase.EMERGENCY_RELEASE, Phase.IDLE)
    lumbar.advance(1.0)
    ctrl.reset()  # restarts the watchdog
    assert not ctrl.status().watchdog_tripped


def test_watchdog_zero_disables(lumbar):
    ctrl = lumbar.controller
    ctrl.set_watchdog(0)
    ctrl.enable()
    lumbar.advance(100.0)
    assert not ctrl.status().watchdog_tripped


def test_overforce_from_outside_trips_and_latches(lumbar):
    ctrl = lumbar.controller
    ctrl.set_force_limit(250.0)
    start_treatment(lumbar, target=200.0, up=100.0)
    lumbar.advance(4.0)
    lumbar.loop.call(setattr, lumbar.table.mechanics, "external_target_n", 80.0)  # patient pulls back
    lumbar.advance(0.05)
    st = ctrl.status()
    assert st.overforce_tripped and st.fault_code is FaultCode.OVERFORCE
    lumbar.loop.call(setattr, lumbar.table.mechanics, "external_target_n", 0.0)
    lumbar.advance(1.0)
    assert ctrl.status().overforce_tripped  # latched


def test_an_estop_on_a_de_energised_table_holding_a_little_force_releases_it(lumbar):
    """A braked, de-energised winch still holding a little tension (a patient's pull on the
    strap) and an ESTOP: the emergency release acts whether or not the drive is energised,
    so the force goes and the table comes back to IDLE — found by the traction fault matrix,
    where the safe state's ESTOP after an over-force test left a table in EMERGENCY_RELEASE
    at 1.2 N for good and every later test timed out waiting for it."""
    ctrl = lumbar.controller
    start_treatment(lumbar, target=100.0, up=100.0)
    lumbar.advance(2.0)
    ctrl.disable()  # released at RAMP_DOWN_RATE to the slack point, then de-energised, braked
    lumbar.advance(3.0)
    st = ctrl.status()
    assert st.phase is Phase.IDLE and not st.enabled  # braked at the slack point (within a register step)
    lumbar.loop.call(setattr, lumbar.table.mechanics, "external_target_n", 2.0)  # the patient leans on the strap
    lumbar.advance(0.5)
    assert ctrl.status().force_n > 1.0
    ctrl.emergency_stop()
    lumbar.advance(3.0)
    st = ctrl.status()
    assert st.estop_latched and not st.enabled
    assert st.phase is Phase.IDLE, f"still {st.phase.name} at {st.force_n:g} N"


def test_mains_cut_drops_drive_and_latches(lumbar):
    ctrl, stim = lumbar.controller, lumbar.stimulus
    start_treatment(lumbar, target=300.0, up=100.0)
    lumbar.advance(4.0)
    stim.press(StimulusCoil.MAINS_CUT)
    st = ctrl.status()
    assert not st.enabled and not st.ready and st.fault_code is FaultCode.POWER_LOSS
    lumbar.advance(3.0)
    assert ctrl.status().force_n < 15.0
    ctrl.reset()  # cause still present: latches again at once
    assert ctrl.status().fault_code is FaultCode.POWER_LOSS
    stim.release(StimulusCoil.MAINS_CUT)
    ctrl.reset()
    st = ctrl.status()
    assert st.ready and not st.enabled
    assert ctrl.read_coils()[Coil.ENABLE] is True  # the coil keeps what was written
    ctrl.enable()
    assert ctrl.status().enabled


# ---------------------------------------------------------------- stimulus module
def test_stimulus_relays(lumbar):
    stim = lumbar.stimulus
    assert StimulusCoil.OBSTACLE not in stim.relays  # a traction bench has no obstacle slide
    for relay in stim.relays:
        ack = stim.press(relay)
        assert isinstance(ack, int) and ack > 0
        assert stim.states()[relay] is True
        stim.release(relay)
        assert stim.states()[relay] is False


def test_stimulus_addresses_and_unit(lumbar):
    client = lumbar.stimulus._client
    assert client.write_coil(4, True, device_id=1).exception_code == 0x02
    assert client.read_coils(0, count=5, device_id=1).exception_code == 0x02
    assert client.read_holding_registers(0, count=1, device_id=1).exception_code == 0x02
    assert client.read_coils(0, count=4, device_id=9).exception_code == 0x0B


def test_other_unit_id_configuration():
    with served_table("lumbar", seed=3, unit_id=5) as served:
        assert served.controller.identity().kind is DeviceKind.LUMBAR


def test_status_snapshots_go_out_together_where_the_device_takes_them(lumbar):
    """The emulator answers every frame of a read: both status reads in flight at once,
    the same snapshot as two plain reads would give."""
    ctrl = lumbar.controller
    assert ctrl.pipelined is True
    together = ctrl.status()
    ctrl.pipelined = False
    apart = ctrl.status()
    ctrl.pipelined = True
    same = ("ready", "enabled", "phase", "fault_code", "uptime_s", "last_reject", "patient_switch_connected")
    assert [getattr(together, f) for f in same] == [getattr(apart, f) for f in same]
    assert together.sent_ns < together.host_ns


def test_a_pipelined_snapshot_on_a_refused_unit_id_still_names_the_refusal(lumbar):
    """An exception answer to a pipelined read falls back to the plain reads, which say why."""
    ctrl = TractionController(host="127.0.0.1", port=lumbar.controller_port, unit_id=7, timeout_s=2.0).connect()
    assert ctrl.pipelined is False  # the probe got exceptions: not relied on
    ctrl.pipelined = True  # as if the unit id had been right at connect
    try:
        with pytest.raises(WrongUnitId):
            ctrl.status()
    finally:
        ctrl.close()
