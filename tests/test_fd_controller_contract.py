"""FDC-1 (shared/protocols/flexion-distraction-modbus.md) line by line through our drivers
(drivers/flexion_controller.py, drivers/stimulus.py with SIO-1's OBSTACLE coil), against
the emulated flexion-distraction table served over Modbus TCP in process on a manual
clock (tests/emulated.py `served_table`, as `rig emulate` serves the kind): exact and
deterministic, no wall time.

The FDC-1 counterpart of test_controller_contract.py. It proves each line holds over the
wire and reads as the driver reports it (degrees, newtons, seconds, the enumerations);
the physics behind a line (trapezoids, stop distances, the release curve, defects) is
tested in depth in process by test_fd_emulator_model.py, and the driver's decoding
against a server sharing no project code by test_flexion_controller_fixed_server.py.
The ranges here are the contract's numbers, with the rated figures of the emulated table
(the domain file's proposed defaults) checked once in the identity test.
"""

from __future__ import annotations

import pytest

from drivers.controller import TractionController
from drivers.errors import DeviceProtocolError, SafetyGuardError
from drivers.fdc1 import Coil, DeviceKind, FaultCode, Holding, Mode, Phase, RejectReason
from drivers.flexion_controller import FlexionController
from drivers.modbus_controller import CommandRefused, IllegalAddress, IllegalValue, WrongUnitId
from drivers.tcm1 import VALID_STIMULUS_COILS, StimulusCoil
from tests.emulated import heartbeats_then_silence, identity_refused, served_table

pytestmark = pytest.mark.timeout(120)

FD = "flexion-distraction"
#: the emulated table's rated figures (shared/domain/flexion-distraction-reference.md)
RATED_DEPTH_DD, RATED_LATERAL_DD, RATED_SPEED_DD, RATED_FORCE_DN = 250, 150, 200, 3000
#: where the bench's obstacle stands (rigs/emulator/obstacle.py's default, degrees of flexion)
OBSTACLE_DEG = 10.0
STEP_S = 0.02  # table seconds per manual step while waiting for a phase


@pytest.fixture
def fd():
    with served_table(FD, seed=2, safety_limit_n=300.0) as served:
        yield served


# ---------------------------------------------------------------- helpers
def refused(served, action, reason: RejectReason, exc=CommandRefused):
    """`action` refused with `exc` (03 IllegalValue, 04 CommandRefused) naming `reason`,
    and LAST_REJECT (input 7) saying the same afterwards."""
    with pytest.raises(exc) as err:
        action()
    assert err.value.reason is reason, str(err.value)
    assert served.controller.status().last_reject is reason
    return err.value


def until_phase(served, phase: Phase, timeout_s: float = 30.0) -> float:
    return served.advance_until(lambda s: s.phase is phase, timeout_s, STEP_S)


def phases_over(served, seconds: float, step_s: float = STEP_S) -> list[Phase]:
    """The PHASE values the driver reports, in order, while `seconds` of table time pass."""
    seen: list[Phase] = []
    for _ in range(int(round(seconds / step_s))):
        phase = served.controller.status().phase
        if not seen or seen[-1] is not phase:
            seen.append(phase)
        served.advance(step_s)
    return seen


def treatment(served, depth=10.0, speed=10.0, pause=1.0, rest=1.0, cycles=0, force=0.0, mode=Mode.FLEXION,
              lateral=5.0, treatment_s=0, start=True) -> None:
    ctrl = served.controller
    ctrl.set_mode(mode)
    ctrl.set_depths(flexion_deg=depth, lateral_deg=lateral)
    ctrl.set_speed(speed)
    ctrl.set_times(pause_s=pause, rest_s=rest, treatment_s=treatment_s)
    ctrl.set_cycles(cycles)
    ctrl.set_distraction_rate(100.0)
    ctrl.set_distraction_force(force)
    ctrl.enable()
    if start:
        ctrl.start()


def stopped_off_neutral(served, depth=20.0) -> float:
    """An emergency stop at the depth, then RESET: the section stands off neutral, idle."""
    treatment(served, depth=depth, speed=20.0, pause=5.0)
    until_phase(served, Phase.PAUSE_AT_DEPTH)
    served.controller.emergency_stop()
    served.advance(0.5)
    served.controller.reset()
    st = served.controller.status()
    assert st.phase is Phase.IDLE and st.enabled
    return st.flexion_deg


def raw(served):
    return served.controller._client


# ---------------------------------------------------------------- identity (IR 100..117)
def test_identity_registers_and_device_kind_4(fd):
    ident = fd.controller.identity()
    p = fd.table.params
    assert ident.protocol_version == 0x0100 and ident.firmware_version == p.firmware
    assert ident.kind is DeviceKind.FLEXION_DISTRACTION and int(ident.kind) == 4
    assert ident.serial == p.serial
    assert ident.rated_force_n == 300.0
    assert (ident.rated_depth_deg, ident.rated_lateral_deg, ident.rated_speed_deg_s) == (25.0, 15.0, 20.0)
    assert ident.accel_deg_s2 == 40.0
    assert (ident.obstruction_force_n, ident.backoff_deg) == (80.0, 2.0)
    assert fd.controller.residual_force() == 10.0


def test_a_tcm1_driver_on_an_fdc1_table_is_one_line(fd):
    err = identity_refused(TractionController, fd.controller_port)
    assert isinstance(err, DeviceProtocolError) and "\n" not in str(err)
    assert str(err).endswith("DEVICE_KIND 4 is an FDC-1 controller, not TCM-1 — set table.kind to one of "
                             "flexion-distraction")


def test_an_fdc1_driver_on_a_tcm1_table_is_one_line():
    """The other way round: FDC-1's identity block (100..117) runs past TCM-1's (100..111),
    so the table answers 02 to the whole read; the head both share still names it."""
    with served_table("lumbar", seed=1) as lumbar:
        err = identity_refused(FlexionController, lumbar.controller_port)
    assert isinstance(err, DeviceProtocolError) and "\n" not in str(err)
    assert "DEVICE_KIND 1 is a TCM-1 controller, not FDC-1" in str(err)
    assert str(err).endswith("set table.kind to one of lumbar, cervical")


# ---------------------------------------------------------------- status (DI 0..12, IR 0..8)
def test_status_at_power_on(fd):
    st = fd.controller.status()
    assert st.ready and not st.enabled and not st.running
    assert st.at_neutral and st.brake_engaged
    assert st.patient_switch_connected and not st.patient_switch_pressed
    assert not st.latched and not st.fault and st.fault_code is FaultCode.NONE
    assert not (st.overtravel_tripped or st.obstruction_tripped or st.watchdog_tripped or st.overforce_tripped)
    assert st.phase is Phase.IDLE and st.last_reject is RejectReason.NONE and st.cycle_count == 0
    assert (st.flexion_deg, st.lateral_deg) == (0.0, 0.0)
    assert abs(st.force_n) < 1.0


def test_uptime_counts_table_time_and_its_high_word_carries(fd):
    t0 = fd.controller.status().uptime_s
    fd.advance(70.0)  # past 16 bits of milliseconds
    assert fd.controller.status().uptime_s == pytest.approx(t0 + 70.0, abs=0.002)


@pytest.mark.parametrize("depth, neutral", [(0.4, True), (0.6, False)])
def test_at_neutral_is_both_angles_within_half_a_degree(fd, depth, neutral):
    treatment(fd, depth=depth, pause=5.0)
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    st = fd.controller.status()
    assert st.flexion_deg == pytest.approx(depth, abs=0.1)
    assert st.at_neutral is neutral


# ---------------------------------------------------------------- holding registers (HR 0..15)
def test_holding_defaults_are_in_range_and_the_limits_rated(fd):
    values = fd.controller.settings()
    top = {Holding.DISTRACTION_FORCE: values[Holding.FORCE_LIMIT], Holding.DISTRACTION_RATE: 5000, Holding.MODE: 1,
           Holding.FLEXION_DEPTH: values[Holding.ANGLE_LIMIT], Holding.LATERAL_DEPTH: values[Holding.LATERAL_LIMIT],
           Holding.SPEED: RATED_SPEED_DD, Holding.PAUSE_TIME: 600, Holding.REST_TIME: 600, Holding.CYCLES: 9999,
           Holding.WATCHDOG_MS: 60000, Holding.TREATMENT_TIME: 5940}
    low = {Holding.DISTRACTION_RATE: 1, Holding.SPEED: 1}
    for reg, high in top.items():
        assert low.get(reg, 0) <= values[reg] <= high, reg
    assert (values[Holding.ANGLE_LIMIT], values[Holding.LATERAL_LIMIT], values[Holding.FORCE_LIMIT]) == (
        RATED_DEPTH_DD, RATED_LATERAL_DD, RATED_FORCE_DN)
    assert values[Holding.RESIDUAL_FORCE] == 100  # 10 N


@pytest.mark.parametrize(
    "reg, good, bad",
    [
        (Holding.DISTRACTION_FORCE, [0, RATED_FORCE_DN], [RATED_FORCE_DN + 1]),  # 0..FORCE_LIMIT
        (Holding.DISTRACTION_RATE, [1, 5000], [0, 5001]),
        (Holding.MODE, [0, 1], [2]),
        (Holding.FLEXION_DEPTH, [0, RATED_DEPTH_DD], [RATED_DEPTH_DD + 1]),  # 0..ANGLE_LIMIT
        (Holding.LATERAL_DEPTH, [0, RATED_LATERAL_DD], [RATED_LATERAL_DD + 1]),  # 0..LATERAL_LIMIT
        (Holding.SPEED, [1, RATED_SPEED_DD], [0, RATED_SPEED_DD + 1]),
        (Holding.PAUSE_TIME, [0, 600], [601]),
        (Holding.REST_TIME, [0, 600], [601]),
        (Holding.CYCLES, [0, 9999], [10000]),
        (Holding.ANGLE_LIMIT, [1, RATED_DEPTH_DD], [0, RATED_DEPTH_DD + 1]),
        (Holding.LATERAL_LIMIT, [1, RATED_LATERAL_DD], [0, RATED_LATERAL_DD + 1]),
        (Holding.FORCE_LIMIT, [1, RATED_FORCE_DN], [0, RATED_FORCE_DN + 1]),
        (Holding.WATCHDOG_MS, [0, 60000], [60001]),
        (Holding.TREATMENT_TIME, [0, 5940], [5941]),
    ],
    ids=lambda v: v.name if isinstance(v, Holding) else None,
)
def test_holding_ranges_good_and_bad_at_each_bound(fd, reg, good, bad):
    ctrl = fd.controller
    for value in good:
        ctrl.write_holding(reg, value)
        assert ctrl.read_holding(reg) == [value]
    before = ctrl.settings()
    for value in bad:
        err = refused(fd, lambda: ctrl.write_holding(reg, value), RejectReason.OUT_OF_RANGE, IllegalValue)
        assert err.code == 0x03 and reg.name in str(err)
        assert ctrl.settings() == before  # nothing written


def test_heartbeat_takes_any_value(fd):
    for value in (0, 1, 0xFFFF):
        fd.controller.write_holding(Holding.HEARTBEAT, value)
        assert fd.controller.read_holding(Holding.HEARTBEAT) == [value]


@pytest.mark.parametrize("limit, setpoint, call", [
    ("angle_deg", Holding.FLEXION_DEPTH, lambda c, v: c.set_depths(flexion_deg=v)),
    ("lateral_deg", Holding.LATERAL_DEPTH, lambda c, v: c.set_depths(lateral_deg=v)),
    ("force_n", Holding.DISTRACTION_FORCE, lambda c, v: c.set_distraction_force(v)),
])
def test_a_setpoint_is_bounded_by_its_limit_as_written(fd, limit, setpoint, call):
    """A depth (or the distraction force) above its limit is out of range: 03, not taken."""
    ctrl = fd.controller
    ctrl.set_limits(**{limit: 12.0})
    call(ctrl, 12.0)
    refused(fd, lambda: call(ctrl, 12.1), RejectReason.OUT_OF_RANGE, IllegalValue)
    assert ctrl.read_holding(setpoint) == [120]


def test_residual_force_is_read_only_04_last_reject_6(fd):
    err = refused(fd, lambda: fd.controller.write_holding(Holding.RESIDUAL_FORCE, 50), RejectReason.READ_ONLY)
    assert err.code == 0x04
    assert fd.controller.residual_force() == 10.0


@pytest.mark.parametrize("limit", ["angle_deg", "lateral_deg", "force_n"])
def test_limits_writable_only_while_not_enabled_04_last_reject_4(fd, limit):
    ctrl = fd.controller
    before = ctrl.settings()
    ctrl.enable()
    err = refused(fd, lambda: ctrl.set_limits(**{limit: 5.0}), RejectReason.ENABLED)
    assert err.code == 0x04
    assert ctrl.settings() == before
    ctrl.set_depths(flexion_deg=5.0)  # setpoints stay writable while enabled
    ctrl.disable()
    ctrl.set_limits(**{limit: 5.0})


@pytest.mark.parametrize("limit, setpoint", [
    ({"angle_deg": 5.0}, lambda c: c.set_depths(flexion_deg=5.0)),
    ({"lateral_deg": 3.0}, lambda c: c.set_depths(lateral_deg=3.0)),
    ({"force_n": 20.0}, lambda c: c.set_distraction_force(20.0)),
])
def test_a_limit_lowered_below_a_setpoint_refuses_start_until_it_is_lowered(fd, limit, setpoint):
    ctrl = fd.controller
    ctrl.set_depths(flexion_deg=10.0, lateral_deg=5.0)
    ctrl.set_distraction_force(40.0)
    ctrl.set_limits(**limit)  # allowed while not ENABLED, though a setpoint is above it
    ctrl.enable()
    refused(fd, ctrl.start, RejectReason.OUT_OF_RANGE)
    fd.advance(1.0)
    assert fd.controller.status().phase is Phase.IDLE
    setpoint(ctrl)
    ctrl.start()
    assert ctrl.status().running


def test_a_multiple_write_is_all_or_nothing_in_address_order(fd):
    ctrl = fd.controller
    before = ctrl.settings()
    refused(fd, lambda: ctrl.write_holdings(Holding.FLEXION_DEPTH, [120, 80, RATED_SPEED_DD + 1]),
            RejectReason.OUT_OF_RANGE, IllegalValue)  # SPEED last: the depths before it not taken
    assert ctrl.settings() == before
    ctrl.write_holdings(Holding.FLEXION_DEPTH, [120, 80, RATED_SPEED_DD])
    assert ctrl.read_holding(Holding.FLEXION_DEPTH, 3) == [120, 80, RATED_SPEED_DD]
    # checked in address order: a depth against its limit as it stands when the depth is
    # reached, so a limit raised later in the same request does not let it in
    ctrl.set_limits(angle_deg=10.0)
    depth_to_limit = [150] + [ctrl.read_holding(Holding(r))[0] for r in range(Holding.LATERAL_DEPTH,
                                                                               Holding.ANGLE_LIMIT)] + [200]
    before = ctrl.settings()
    refused(fd, lambda: ctrl.write_holdings(Holding.FLEXION_DEPTH, depth_to_limit), RejectReason.OUT_OF_RANGE,
            IllegalValue)
    assert ctrl.settings() == before
    ctrl.enable()
    before = ctrl.settings()
    refused(fd, lambda: ctrl.write_holdings(Holding.CYCLES, [5, 100]), RejectReason.ENABLED)  # ANGLE_LIMIT
    assert ctrl.settings() == before


def test_a_multiple_coil_write_is_all_or_nothing(fd):
    ctrl = fd.controller
    ctrl.set_depths(flexion_deg=10.0)
    ctrl.set_limits(angle_deg=5.0)  # START will be refused: a depth above its limit
    refused(fd, lambda: ctrl._call("coils 0..1", raw(fd).write_coils, 0, [True, True]), RejectReason.OUT_OF_RANGE)
    st = ctrl.status()
    assert not st.enabled and ctrl.read_coils()[Coil.ENABLE] is False


# ---------------------------------------------------------------- addresses (02) / unit id (0B)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.read_coils(0, count=6, device_id=1),
        lambda c: c.read_coils(5, count=1, device_id=1),
        lambda c: c.read_discrete_inputs(0, count=14, device_id=1),
        lambda c: c.read_discrete_inputs(13, count=1, device_id=1),
        lambda c: c.read_holding_registers(16, count=1, device_id=1),
        lambda c: c.read_holding_registers(0, count=17, device_id=1),
        lambda c: c.read_input_registers(9, count=1, device_id=1),
        lambda c: c.read_input_registers(8, count=2, device_id=1),
        lambda c: c.read_input_registers(99, count=2, device_id=1),
        lambda c: c.read_input_registers(117, count=2, device_id=1),
        lambda c: c.read_input_registers(100, count=19, device_id=1),
        lambda c: c.write_register(16, 1, device_id=1),
        lambda c: c.write_registers(14, [0, 100, 0], device_id=1),
        lambda c: c.write_coil(5, True, device_id=1),
        lambda c: c.write_coils(3, [False, False, False], device_id=1),
    ],
)
def test_addresses_outside_the_document_give_02(fd, call):
    response = call(raw(fd))
    assert response.isError() and response.exception_code == 0x02


def test_every_address_of_the_document_answers(fd):
    client = raw(fd)
    for response in (client.read_coils(0, count=5, device_id=1), client.read_discrete_inputs(0, count=13, device_id=1),
                     client.read_holding_registers(0, count=16, device_id=1),
                     client.read_input_registers(0, count=9, device_id=1),
                     client.read_input_registers(100, count=18, device_id=1)):
        assert not response.isError(), response


def test_the_driver_names_an_illegal_address(fd):
    with pytest.raises(IllegalAddress) as err:
        fd.controller.read_holding(Holding.DISTRACTION_FORCE, count=17)
    assert "02" in str(err.value) and "holding DISTRACTION_FORCE" in str(err.value)


def test_a_wrong_unit_id_gives_0B(fd):
    other = FlexionController(host="127.0.0.1", port=fd.controller_port, unit_id=7, timeout_s=2.0).connect()
    try:
        with pytest.raises(WrongUnitId) as err:
            other.status()
        assert "unit id" in str(err.value)
    finally:
        other.close()


def test_another_unit_id_configured():
    with served_table(FD, seed=3, unit_id=5) as served:
        assert served.controller.identity().kind is DeviceKind.FLEXION_DISTRACTION
        assert raw(served).read_input_registers(0, count=9, device_id=1).exception_code == 0x0B


# ---------------------------------------------------------------- coils
def test_pulse_coils_read_back_0_and_enable_what_was_written(fd):
    ctrl = fd.controller
    treatment(fd, pause=5.0)
    ctrl.stop()
    ctrl.emergency_stop()
    coils = ctrl.read_coils()
    assert coils[Coil.ENABLE] is True
    assert not any(coils[c] for c in (Coil.START, Coil.STOP, Coil.ESTOP, Coil.RESET))
    fd.advance(1.0)
    ctrl.reset()
    ctrl.disable()
    assert ctrl.read_coils() == {c: False for c in Coil}


def test_enable_refused_unless_ready(fd):
    ctrl, stim = fd.controller, fd.stimulus
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert refused(fd, ctrl.enable, RejectReason.NOT_READY).code == 0x04
    stim.release(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    stim.press(StimulusCoil.MAINS_CUT)
    refused(fd, ctrl.enable, RejectReason.NOT_READY)
    stim.release(StimulusCoil.MAINS_CUT)
    ctrl.reset()  # the power loss latched
    ctrl.emergency_stop()
    refused(fd, ctrl.enable, RejectReason.LATCHED)
    ctrl.reset()
    ctrl.enable()
    st = ctrl.status()
    assert st.enabled and st.brake_engaged  # energised, nothing moving: the brake holds


def test_enable_0_while_idle_moves_nothing(fd):
    angle = stopped_off_neutral(fd)
    fd.controller.disable()
    fd.advance(3.0)
    st = fd.controller.status()
    assert not st.enabled and st.phase is Phase.IDLE and st.flexion_deg == angle and st.brake_engaged


def test_enable_0_during_a_treatment_ends_it_as_stop_then_de_energises(fd):
    ctrl = fd.controller
    treatment(fd, depth=10.0, force=50.0, pause=5.0)
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    ctrl.disable()
    st = ctrl.status()
    assert st.enabled and st.phase is Phase.CONTROLLED_END and st.running
    fd.advance_until(lambda s: not s.enabled, 10.0, STEP_S)
    st = ctrl.status()
    assert st.phase is Phase.IDLE and st.at_neutral and st.brake_engaged and st.force_n < 10.0


def test_start_refusals_in_the_contracts_order(fd):
    """Not ENABLED (2), switch unplugged (2), latched (3), a setpoint above its limit (1):
    the first failing is named."""
    ctrl, stim = fd.controller, fd.stimulus
    refused(fd, ctrl.start, RejectReason.NOT_READY)  # not enabled
    ctrl.set_depths(flexion_deg=10.0)
    ctrl.set_limits(angle_deg=5.0)
    ctrl.enable()
    refused(fd, ctrl.start, RejectReason.OUT_OF_RANGE)
    ctrl.emergency_stop()  # latched and out of range: latched first
    err = refused(fd, ctrl.start, RejectReason.LATCHED)
    assert err.fault is FaultCode.ESTOP and "FAULT_CODE 2" in str(err)
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)  # unplugged, latched, out of range: not ready first
    refused(fd, ctrl.start, RejectReason.NOT_READY)
    stim.release(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    ctrl.reset()
    ctrl.set_depths(flexion_deg=5.0)
    ctrl.start()
    assert ctrl.status().phase is Phase.MOVING_OUT


def test_start_refused_with_the_patient_switch_pressed(fd):
    ctrl, stim = fd.controller, fd.stimulus
    ctrl.enable()
    stim.press(StimulusCoil.PATIENT_SWITCH)
    refused(fd, ctrl.start, RejectReason.LATCHED)
    stim.release(StimulusCoil.PATIENT_SWITCH)
    refused(fd, ctrl.start, RejectReason.LATCHED)  # latched ESTOP_LATCHED until RESET
    ctrl.reset()
    ctrl.start()


def test_stop_while_idle_at_neutral_does_nothing(fd):
    ctrl = fd.controller
    ctrl.stop()
    ctrl.enable()
    ctrl.stop()
    fd.advance(1.0)
    st = ctrl.status()
    assert st.phase is Phase.IDLE and st.at_neutral and st.brake_engaged


def test_stop_while_idle_off_neutral_returns_to_neutral_at_speed(fd):
    angle = stopped_off_neutral(fd, depth=20.0)
    fd.controller.set_speed(10.0)
    fd.controller.stop()
    st = fd.controller.status()
    assert st.phase is Phase.CONTROLLED_END and not st.brake_engaged
    fd.advance(1.0)  # at 10 °/s (40 °/s² to reach it): well on its way, not there yet
    assert 5.0 < fd.controller.status().flexion_deg < angle - 5.0
    until_phase(fd, Phase.IDLE, 5.0)
    st = fd.controller.status()
    assert st.at_neutral and st.flexion_deg == 0.0 and st.brake_engaged and st.enabled


def test_safety_guard_refuses_a_distraction_above_the_rigs_limit_before_sending(fd):
    ctrl = fd.controller
    ctrl.safety_limit_n = 200.0
    with pytest.raises(SafetyGuardError):
        ctrl.set_distraction_force(250.0)
    assert ctrl.read_holding(Holding.DISTRACTION_FORCE) == [0]
    ctrl.set_limits(force_n=220.0, testing_interlock=True)
    refused(fd, lambda: ctrl.set_distraction_force(250.0, testing_interlock=True), RejectReason.OUT_OF_RANGE,
            IllegalValue)  # the device's own refusal, reached on purpose


# ---------------------------------------------------------------- treatment
def test_a_flexion_treatment_runs_its_cycles_and_counts_them(fd):
    ctrl = fd.controller
    treatment(fd, depth=10.0, speed=10.0, pause=1.0, rest=1.0, cycles=2)
    st = ctrl.status()
    assert st.running and st.phase is Phase.MOVING_OUT and not st.brake_engaged and st.cycle_count == 0
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    st = ctrl.status()
    assert st.flexion_deg == pytest.approx(10.0, abs=0.1) and st.lateral_deg == 0.0 and st.brake_engaged
    until_phase(fd, Phase.REST_AT_NEUTRAL)
    assert ctrl.status().at_neutral and ctrl.status().cycle_count == 0  # a cycle ends after its rest
    seen = phases_over(fd, 8.0)
    assert seen == [Phase.REST_AT_NEUTRAL, Phase.MOVING_OUT, Phase.PAUSE_AT_DEPTH, Phase.MOVING_BACK,
                    Phase.REST_AT_NEUTRAL, Phase.IDLE]  # the controlled end from neutral takes no time
    st = ctrl.status()
    assert st.cycle_count == 2 and not st.running and st.enabled and st.at_neutral and st.brake_engaged


def test_a_lateral_treatment_swings_left_then_right_with_flexion_held_at_0(fd):
    ctrl = fd.controller
    treatment(fd, mode=Mode.LATERAL, lateral=5.0, speed=10.0, pause=1.0, rest=0.5, cycles=1)
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    st = ctrl.status()
    assert st.lateral_deg == pytest.approx(5.0, abs=0.1) and st.flexion_deg == 0.0  # + towards the left
    until_phase(fd, Phase.REST_AT_NEUTRAL)
    assert ctrl.status().cycle_count == 0  # both sides make one cycle
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    st = ctrl.status()
    assert st.lateral_deg == pytest.approx(-5.0, abs=0.1) and st.flexion_deg == 0.0
    until_phase(fd, Phase.IDLE)
    assert ctrl.status().cycle_count == 1


def test_the_distraction_ramps_first_then_is_held_while_the_section_moves(fd):
    ctrl = fd.controller
    treatment(fd, depth=10.0, force=50.0, pause=1.0, cycles=1)  # 100 N/s: 0.5 s of PHASE 1
    st = ctrl.status()
    assert st.phase is Phase.DISTRACTION_RAMP_UP and st.at_neutral and st.running
    fd.advance(0.25)
    assert 10.0 < ctrl.status().force_n < 40.0
    until_phase(fd, Phase.MOVING_OUT, 2.0)
    fd.advance(0.5)
    st = ctrl.status()
    assert st.phase is Phase.MOVING_OUT and st.force_n == pytest.approx(50.0, abs=5.0)
    until_phase(fd, Phase.CONTROLLED_END)  # the move back is done: the distraction ramps down
    assert ctrl.status().at_neutral
    until_phase(fd, Phase.IDLE, 5.0)
    st = ctrl.status()
    assert st.force_n < 10.0 and st.brake_engaged and st.cycle_count == 1


def test_treatment_time_ends_mid_cycle_with_a_controlled_end(fd):
    ctrl = fd.controller
    treatment(fd, depth=10.0, speed=10.0, pause=5.0, treatment_s=3)
    fd.advance(2.9)
    assert ctrl.status().phase is Phase.PAUSE_AT_DEPTH
    fd.advance(0.2)
    st = ctrl.status()
    assert st.phase is Phase.CONTROLLED_END and 0.0 < st.flexion_deg <= 10.0
    until_phase(fd, Phase.IDLE, 5.0)
    st = ctrl.status()
    assert st.at_neutral and st.cycle_count == 0


def test_stop_while_running_is_a_controlled_end(fd):
    ctrl = fd.controller
    treatment(fd, depth=10.0, pause=5.0)
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    ctrl.stop()
    assert ctrl.status().phase is Phase.CONTROLLED_END
    until_phase(fd, Phase.IDLE, 5.0)
    assert ctrl.status().at_neutral and ctrl.status().enabled


def test_start_off_neutral_first_returns_to_neutral_phase_8(fd):
    stopped_off_neutral(fd, depth=20.0)
    ctrl = fd.controller
    ctrl.set_depths(flexion_deg=5.0)
    ctrl.start()
    st = ctrl.status()
    assert st.phase is Phase.RETURNING_TO_NEUTRAL and st.running
    until_phase(fd, Phase.MOVING_OUT, 5.0)
    assert ctrl.status().flexion_deg < 1.0  # from neutral


# ---------------------------------------------------------------- emergency stop
def pull(served, newtons: float) -> None:
    """The patient pulling back on the strap (the emulator's patient simulator, set in
    the server's thread as test_controller_contract does)."""
    served.loop.call(setattr, served.table.mechanics, "external_rate_n_s", 5000.0)
    served.loop.call(setattr, served.table.mechanics, "external_target_n", newtons)


#: trigger -> (how, FAULT_CODE, the latch it sets or None, drives still energised)
TRIGGERS = {
    "estop-coil": (lambda s: s.controller.emergency_stop(), FaultCode.ESTOP, "estop_latched", True),
    "estop-button": (lambda s: s.stimulus.press(StimulusCoil.ESTOP_BUTTON), FaultCode.ESTOP, "estop_latched", True),
    "switch-pressed": (lambda s: s.stimulus.press(StimulusCoil.PATIENT_SWITCH), FaultCode.PATIENT_SWITCH,
                       "estop_latched", True),
    "switch-unplugged": (lambda s: s.stimulus.press(StimulusCoil.PATIENT_SWITCH_UNPLUG), FaultCode.PATIENT_SWITCH,
                         None, True),
    "watchdog": (lambda s: s.advance(0.3), FaultCode.WATCHDOG, "watchdog_tripped", True),
    "overforce": (lambda s: (pull(s, 200.0), s.advance(0.1)), FaultCode.OVERFORCE, "overforce_tripped", True),
    "power-loss": (lambda s: s.stimulus.press(StimulusCoil.MAINS_CUT), FaultCode.POWER_LOSS, None, False),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_an_emergency_trigger_stops_brakes_holds_releases_and_latches(fd, trigger):
    ctrl = fd.controller
    act, code, latch, energised = TRIGGERS[trigger]
    ctrl.set_limits(force_n=150.0)
    ctrl.set_watchdog(0.2)
    treatment(fd, depth=20.0, speed=20.0, force=80.0, pause=5.0)
    while ctrl.status().phase is not Phase.MOVING_OUT:
        fd.advance(STEP_S)
        ctrl.heartbeat()
    for _ in range(10):  # cruising out at the rated speed
        fd.advance(STEP_S)
        ctrl.heartbeat()
    act(fd)
    st = ctrl.status()
    assert st.phase is Phase.EMERGENCY_STOPPED and not st.running and st.fault_code is code and st.fault
    assert st.latched and not st.ready
    if latch is not None:
        assert getattr(st, latch)
    assert st.estop_latched is (latch == "estop_latched")  # unplugging does not set ESTOP_LATCHED
    fd.advance(0.3)
    stopped = ctrl.status()
    assert stopped.brake_engaged and stopped.enabled is energised
    assert stopped.flexion_deg > 1.0  # stopped where it was: no return to neutral
    fd.advance(5.0)
    st = ctrl.status()
    assert st.flexion_deg == stopped.flexion_deg and st.phase is Phase.EMERGENCY_STOPPED  # no creep
    assert st.force_n < 10.0  # the distraction released
    refused(fd, ctrl.start, RejectReason.NOT_READY if not (energised and st.patient_switch_connected)
            else RejectReason.LATCHED)


def test_after_reset_phase_0_with_the_section_where_it_stopped(fd):
    ctrl = fd.controller
    treatment(fd, depth=20.0, speed=20.0, force=80.0, pause=5.0)
    until_phase(fd, Phase.MOVING_OUT)
    fd.advance(0.5)
    ctrl.emergency_stop()
    refused(fd, ctrl.reset, RejectReason.FORCE_PRESENT)  # the distraction not yet below RESIDUAL_FORCE
    fd.advance(3.0)
    angle = ctrl.status().flexion_deg
    refused(fd, ctrl.start, RejectReason.LATCHED)
    ctrl.reset()
    st = ctrl.status()
    assert st.phase is Phase.IDLE and st.ready and not st.latched and st.fault_code is FaultCode.NONE
    fd.advance(3.0)
    assert ctrl.status().flexion_deg == angle  # RESET moves nothing
    ctrl.start()  # a new START: back to neutral first
    assert ctrl.status().phase is Phase.RETURNING_TO_NEUTRAL


def test_reset_refused_while_the_switch_is_pressed(fd):
    ctrl, stim = fd.controller, fd.stimulus
    ctrl.enable()
    stim.press(StimulusCoil.PATIENT_SWITCH)
    st = ctrl.status()
    assert st.patient_switch_pressed and st.estop_latched and st.fault_code is FaultCode.PATIENT_SWITCH
    refused(fd, ctrl.reset, RejectReason.LATCHED)
    stim.release(StimulusCoil.PATIENT_SWITCH)
    ctrl.reset()
    assert ctrl.status().ready


def test_a_cause_still_present_latches_again_at_reset(fd):
    ctrl, stim = fd.controller, fd.stimulus
    stim.press(StimulusCoil.ESTOP_BUTTON)
    ctrl.reset()
    st = ctrl.status()
    assert st.estop_latched and st.fault_code is FaultCode.ESTOP
    stim.release(StimulusCoil.ESTOP_BUTTON)
    ctrl.reset()
    assert ctrl.status().ready


def test_the_first_fault_code_is_kept_until_reset(fd):
    ctrl = fd.controller
    ctrl.set_watchdog(0.1)
    ctrl.enable()
    ctrl.emergency_stop()
    fd.advance(0.5)  # the watchdog trips as well
    st = ctrl.status()
    assert st.watchdog_tripped and st.fault_code is FaultCode.ESTOP


def test_obstruction_stops_backs_off_and_brakes(fd):
    ctrl, stim = fd.controller, fd.stimulus
    stim.press(StimulusCoil.OBSTACLE)  # the padded load cell slid in at the bench's obstacle angle
    treatment(fd, depth=20.0, speed=20.0, force=80.0, pause=5.0)
    until_phase(fd, Phase.EMERGENCY_STOPPED, 5.0)
    st = ctrl.status()
    assert st.obstruction_tripped and st.fault_code is FaultCode.OBSTRUCTION and not st.ready
    assert st.flexion_deg > OBSTACLE_DEG  # pressing into the pad
    stopped = st.flexion_deg
    for _ in range(60):  # the stop, then the back-off, 5 ms apart
        fd.advance(0.005)
        stopped = max(stopped, ctrl.status().flexion_deg)
    fd.advance(3.0)
    st = ctrl.status()
    backed_off = st.flexion_deg
    # BACKOFF towards neutral at SPEED, then the brake (both angles read to 0.1°)
    assert backed_off == pytest.approx(stopped - ctrl.identity().backoff_deg, abs=0.2)
    assert st.brake_engaged and st.force_n < 10.0
    fd.advance(3.0)
    assert ctrl.status().flexion_deg == backed_off
    refused(fd, ctrl.start, RejectReason.LATCHED)
    stim.release(StimulusCoil.OBSTACLE)
    ctrl.reset()
    ctrl.start()
    until_phase(fd, Phase.PAUSE_AT_DEPTH, 10.0)
    assert ctrl.status().flexion_deg == pytest.approx(20.0, abs=0.1)  # withdrawn: the depth is reached


def test_the_obstacle_withdrawn_the_section_reaches_its_depth(fd):
    treatment(fd, depth=20.0, speed=20.0, pause=5.0)
    until_phase(fd, Phase.PAUSE_AT_DEPTH, 5.0)
    st = fd.controller.status()
    assert st.flexion_deg == pytest.approx(20.0, abs=0.1) and st.fault_code is FaultCode.NONE


@pytest.mark.parametrize("mode, limit", [(Mode.FLEXION, {"angle_deg": 15.0}), (Mode.LATERAL, {"lateral_deg": 8.0})])
def test_energising_beyond_a_limit_trips_overtravel_at_once(fd, mode, limit):
    ctrl = fd.controller
    treatment(fd, mode=mode, depth=20.0, lateral=10.0, speed=20.0, pause=5.0)
    until_phase(fd, Phase.PAUSE_AT_DEPTH)
    ctrl.emergency_stop()
    fd.advance(0.5)
    ctrl.reset()
    ctrl.disable()
    ctrl.set_limits(**limit)
    fd.advance(1.0)
    assert not ctrl.status().overtravel_tripped  # supervised while the drives are energised
    ctrl.enable()
    st = ctrl.status()
    assert st.overtravel_tripped and st.fault_code is FaultCode.OVERTRAVEL
    assert st.phase is Phase.EMERGENCY_STOPPED and not st.ready and st.brake_engaged


def test_power_loss_drops_the_drives_and_latches_until_reset(fd):
    ctrl, stim = fd.controller, fd.stimulus
    treatment(fd, depth=20.0, speed=20.0, force=80.0, pause=5.0)
    until_phase(fd, Phase.MOVING_OUT)
    stim.press(StimulusCoil.MAINS_CUT)
    st = ctrl.status()
    assert not st.enabled and not st.ready and st.brake_engaged and st.fault_code is FaultCode.POWER_LOSS
    fd.advance(3.0)
    assert ctrl.status().force_n < 10.0  # the carriage's brake released, the force decayed
    ctrl.reset()  # the cause still present: latched again at once
    assert ctrl.status().fault_code is FaultCode.POWER_LOSS
    stim.release(StimulusCoil.MAINS_CUT)
    ctrl.reset()
    st = ctrl.status()
    assert st.ready and not st.enabled and st.phase is Phase.IDLE
    ctrl.enable()
    assert ctrl.status().enabled


# ---------------------------------------------------------------- patient switch (DI 6, 7)
def test_unplugging_the_switch_while_running_is_an_emergency_without_estop_latched(fd):
    ctrl, stim = fd.controller, fd.stimulus
    treatment(fd, depth=10.0, pause=5.0)
    fd.advance(0.5)
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    st = ctrl.status()
    assert not st.patient_switch_connected and st.fault_code is FaultCode.PATIENT_SWITCH
    assert st.phase is Phase.EMERGENCY_STOPPED and not st.estop_latched


def test_unplugging_the_switch_while_idle_only_clears_ready(fd):
    ctrl, stim = fd.controller, fd.stimulus
    ctrl.enable()
    stim.press(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    st = ctrl.status()
    assert not st.ready and not st.patient_switch_connected and st.fault_code is FaultCode.NONE
    assert st.phase is Phase.IDLE and not st.latched
    stim.release(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert ctrl.status().ready


# ---------------------------------------------------------------- heartbeat / watchdog (HR 12, 13)
def test_the_watchdog_trips_without_a_heartbeat_while_enabled(fd):
    alive, st = heartbeats_then_silence(fd, lambda: treatment(fd, depth=10.0, pause=5.0))
    assert not alive.watchdog_tripped
    assert st.watchdog_tripped and st.fault_code is FaultCode.WATCHDOG and st.phase is Phase.EMERGENCY_STOPPED


def test_the_watchdog_is_restarted_by_reset_and_only_runs_while_enabled(fd):
    ctrl = fd.controller
    ctrl.set_watchdog(0.5)
    fd.advance(10.0)
    assert not ctrl.status().watchdog_tripped  # not ENABLED
    ctrl.enable()  # restarts it
    fd.advance(0.4)
    assert not ctrl.status().watchdog_tripped
    fd.advance(0.2)
    assert ctrl.status().watchdog_tripped
    fd.advance(1.0)
    ctrl.reset()  # restarts it
    fd.advance(0.4)
    assert not ctrl.status().watchdog_tripped
    fd.advance(0.2)
    assert ctrl.status().watchdog_tripped


def test_watchdog_0_disables_it(fd):
    fd.controller.set_watchdog(0)
    fd.controller.enable()
    fd.advance(100.0)
    assert not fd.controller.status().watchdog_tripped


# ---------------------------------------------------------------- SIO-1 on a flexion-distraction bench
def test_every_relay_incl_the_obstacle_is_driven_and_read_back(fd):
    stim = fd.stimulus
    assert stim.relays[-1] is StimulusCoil.OBSTACLE and len(stim.relays) == 5
    for relay in stim.relays:
        ack = stim.press(relay)
        assert isinstance(ack, int) and ack > 0
        assert stim.states()[relay] is True
        stim.release(relay)
        assert stim.states()[relay] is False
    stim.press(StimulusCoil.OBSTACLE)
    assert fd.table.obstacle.inserted
    assert stim.release_all() == []
    assert not fd.table.obstacle.inserted and not any(stim.states().values())


def test_sio1_addresses_and_unit_id(fd):
    client = fd.stimulus._client
    assert client.write_coil(5, True, device_id=1).exception_code == 0x02
    assert client.read_coils(0, count=6, device_id=1).exception_code == 0x02
    assert client.read_holding_registers(0, count=1, device_id=1).exception_code == 0x02
    assert client.read_coils(0, count=5, device_id=9).exception_code == 0x0B


def test_a_module_without_a_slide_answers_coil_4_with_02():
    with served_table(FD, seed=2, relays=VALID_STIMULUS_COILS) as served:
        stim = served.stimulus
        assert StimulusCoil.OBSTACLE not in stim.relays
        assert stim.release_all() == []
        with pytest.raises(DeviceProtocolError) as err:
            stim.press(StimulusCoil.OBSTACLE)
        assert "exception 2" in str(err.value) and "no obstacle slide" in str(err.value)
        assert stim._client.read_coils(0, count=5, device_id=1).exception_code == 0x02
        assert not served.table.obstacle.inserted
