"""The emulated FDC-1 table, line by line of flexion-distraction-modbus.md, in process on
a manual clock (the table advanced by hand: exact and deterministic, no wall time).

Figures checked against the contract and the domain file's defaults; angles from the
section's true plan (`angles_at`, what the inclinometer sees) and from the encoders
(the registers), forces from the distraction winch's true strap force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers import units
from drivers.fdc1 import Coil, DiscreteInput, FaultCode, Holding, InputReg, Mode, Phase, RejectReason
from drivers.tcm1 import StimulusCoil
from rigs.emulator.controller import Refused
from rigs.emulator.fd_params import FdParams
from rigs.emulator.fd_table import FlexionDistractionTable
from rigs.emulator.section import trapezoid

STEP = 0.005  # table seconds per manual step


def make(seed: int = 0, obstacle_angle_deg: float = 10.0, **defects) -> FlexionDistractionTable:
    return FlexionDistractionTable(seed, params=FdParams.for_seed(seed, **defects),
                                   obstacle_angle_deg=obstacle_angle_deg)


class Bench:
    """A table, its controller and short names for what a test does to them."""

    def __init__(self, table: FlexionDistractionTable) -> None:
        self.table = table
        self.c = table.controller
        self.heartbeat = False

    # -- registers in SI -------------------------------------------------------------
    def set(self, **values) -> None:
        conv = {"DISTRACTION_FORCE": units.n_to_dn, "DISTRACTION_RATE": units.n_to_dn, "FORCE_LIMIT": units.n_to_dn,
                "FLEXION_DEPTH": units.deg_to_ddeg, "LATERAL_DEPTH": units.deg_to_ddeg, "SPEED": units.deg_to_ddeg,
                "ANGLE_LIMIT": units.deg_to_ddeg, "LATERAL_LIMIT": units.deg_to_ddeg, "PAUSE_TIME": units.s_to_ds,
                "REST_TIME": units.s_to_ds}
        for name, value in values.items():
            self.c.write_holding(Holding[name], [conv.get(name, int)(value)])

    def coil(self, coil: Coil, value: bool = True) -> None:
        self.c.write_coils(coil, [value])

    def refusal(self, action) -> tuple[int, RejectReason]:
        with pytest.raises(Refused) as caught:
            action()
        assert self.ir(InputReg.LAST_REJECT) == caught.value.reason
        return caught.value.code, caught.value.reason

    def relay(self, relay: StimulusCoil, on: bool = True) -> None:
        self.table.set_relay(relay, on)

    # -- reads -----------------------------------------------------------------------
    def di(self, d: DiscreteInput) -> bool:
        return self.c.discrete_inputs()[d]

    def ir(self, reg: InputReg) -> int:
        return self.c.input_register(reg)

    @property
    def phase(self) -> Phase:
        return Phase(self.ir(InputReg.PHASE))

    @property
    def fault(self) -> FaultCode:
        return FaultCode(self.ir(InputReg.FAULT_CODE))

    def encoder(self) -> tuple[float, float]:
        return (units.ddeg_to_deg(units.to_signed16(self.ir(InputReg.FLEXION_ANGLE))),
                units.ddeg_to_deg(units.to_signed16(self.ir(InputReg.LATERAL_ANGLE))))

    @property
    def now(self) -> float:
        return self.c.now

    def true_angles(self) -> tuple[float, float]:
        return tuple(self.table.angles_at(np.array([self.now]))[0])

    def speed(self, axis: int) -> float:
        return self.c.section.axes[axis].state(self.now)[1]

    def force(self) -> float:
        return float(self.table.force_at(np.array([self.mech_t()]))[0])

    def mech_t(self) -> float:
        return self.table.mechanics.s.t

    # -- time --------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-12:
            self.table.advance_to(min(end, self.now + STEP))
            if self.heartbeat:
                self.c.write_holding(Holding.HEARTBEAT, [1])

    def until(self, predicate, limit_s: float, what: str) -> None:
        end = self.now + limit_s
        while not predicate():
            assert self.now < end, f"{what} not reached within {limit_s} table s (phase {self.phase.name})"
            self.advance(STEP)

    def until_phase(self, phase: Phase, limit_s: float = 60.0) -> None:
        self.until(lambda: self.phase == phase, limit_s, phase.name)

    def cruising(self, axis: int, speed: float) -> None:
        self.until(lambda: abs(self.speed(axis)) >= speed - 1e-9, 10.0, "cruise")

    def events(self, prefix: str) -> list[tuple[float, str]]:
        return [(t, name) for t, name in self.c.events if name.startswith(prefix)]


@pytest.fixture
def bench() -> Bench:
    return Bench(make())


def flexion_treatment(b: Bench, depth=20.0, speed=20.0, pause=1.0, rest=1.0, cycles=0, force=0.0) -> None:
    b.set(FLEXION_DEPTH=depth, SPEED=speed, PAUSE_TIME=pause, REST_TIME=rest, CYCLES=cycles, MODE=0,
          DISTRACTION_FORCE=force, DISTRACTION_RATE=200.0)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)


# ---------------------------------------------------------------- identity, power-on
def test_identity_registers(bench):
    p = bench.table.params
    assert bench.ir(InputReg.DEVICE_KIND) == 4
    assert bench.ir(InputReg.PROTOCOL_VERSION) == 0x0100
    assert bench.ir(InputReg.RATED_FORCE) == 3000
    assert bench.ir(InputReg.RATED_DEPTH) == 250 and bench.ir(InputReg.RATED_LATERAL) == 150
    assert bench.ir(InputReg.RATED_SPEED) == 200 and bench.ir(InputReg.ACCEL) == 400
    assert bench.ir(InputReg.OBSTRUCTION_FORCE) == 800 and bench.ir(InputReg.BACKOFF) == 20
    serial = bytes(byte for reg in range(InputReg.SERIAL, InputReg.SERIAL + 8) for byte in divmod(bench.ir(reg), 256))
    assert serial.rstrip(b"\0").decode() == p.serial
    assert bench.c.h(Holding.RESIDUAL_FORCE) == 100


def test_power_on_state(bench):
    assert bench.di(DiscreteInput.READY) and not bench.di(DiscreteInput.ENABLED)
    assert bench.di(DiscreteInput.AT_NEUTRAL) and bench.di(DiscreteInput.BRAKE_ENGAGED)
    assert bench.di(DiscreteInput.PATIENT_SWITCH_CONNECTED) and not bench.di(DiscreteInput.RUNNING)
    assert bench.phase is Phase.IDLE and bench.fault is FaultCode.NONE
    assert bench.encoder() == (0.0, 0.0)


def test_uptime_counts_table_time(bench):
    bench.advance(70.0)  # past 16 bits of milliseconds: the high word carries
    uptime = (bench.ir(InputReg.UPTIME_MS_HI) << 16) | bench.ir(InputReg.UPTIME_MS_LO)
    assert uptime == units.elapsed_ms(bench.now) and uptime >= 70_000


# ---------------------------------------------------------------- moves
@pytest.mark.parametrize("depth", [20.0, 4.0], ids=["trapezoid", "triangle"])
def test_a_move_is_a_trapezoid_ending_exactly_at_its_depth(bench, depth):
    flexion_treatment(bench, depth=depth, speed=20.0)
    start = bench.now
    bench.until_phase(Phase.PAUSE_AT_DEPTH, 5.0)
    t = np.arange(start, bench.now, 1e-3)
    angle = bench.table.angles_at(t)[:, 0]
    v = np.diff(angle) / 1e-3
    a = np.diff(v) / 1e-3
    accel = bench.table.params.accel_deg_s2
    peak = min(20.0, math.sqrt(accel * depth))
    assert v.max() == pytest.approx(peak, abs=0.05)
    # away from the corners of the profile, the acceleration is ACCEL or 0
    profile = np.isclose(np.abs(a), 0.0, atol=1e-3) | np.isclose(np.abs(a), accel, rtol=1e-3)
    assert np.count_nonzero(~profile) <= 6  # the samples that straddle a corner
    assert np.any(np.isclose(a, accel, rtol=1e-3)) and np.any(np.isclose(a, -accel, rtol=1e-3))
    cruise = depth / peak - peak / accel if peak == 20.0 else 0.0
    assert bench.now - start == pytest.approx(2 * peak / accel + cruise, abs=2 * STEP)
    assert bench.encoder()[0] == depth  # exactly at its end angle (encoder)
    assert bench.speed(0) == 0.0


def test_trapezoid_pieces_accelerate_cruise_decelerate():
    pieces = trapezoid(0.0, 0.0, 0.0, 25.0, 40.0, 20.0)
    assert [(p.a, p.v0) for p in pieces] == [(40.0, 0.0), (0.0, 20.0), (-40.0, 20.0), (0.0, 0.0)]
    assert pieces[-1].p0 == 25.0 and pieces[-1].t0 == pytest.approx(0.5 + 0.75 + 0.5)
    short = trapezoid(0.0, 0.0, 0.0, 2.0, 40.0, 20.0)
    assert [p.a for p in short] == [40.0, -40.0, 0.0]  # triangular
    # heading away from the target: stop at ACCEL first, then the move
    back = trapezoid(0.0, 5.0, 10.0, 0.0, 40.0, 20.0)
    assert back[0].a == -40.0 and back[-1].p0 == 0.0


def test_mode0_cycle_phases_pause_rest_and_count(bench):
    flexion_treatment(bench, depth=10.0, speed=20.0, pause=0.7, rest=0.4, cycles=2)
    bench.until_phase(Phase.IDLE, 30.0)
    phases = [(t, name) for t, name in bench.events("phase:")]
    names = [n for _, n in phases]
    one = ["phase:moving_out", "phase:pause_at_depth", "phase:moving_back", "phase:rest_at_neutral"]
    assert names == one + one + ["phase:controlled_end", "phase:idle"]
    times = dict()
    for (t0, n0), (t1, _) in zip(phases, phases[1:]):
        times.setdefault(n0, []).append(t1 - t0)
    assert times["phase:pause_at_depth"] == pytest.approx([0.7, 0.7], abs=1e-9)
    assert times["phase:rest_at_neutral"] == pytest.approx([0.4, 0.4], abs=1e-9)
    assert bench.ir(InputReg.CYCLE_COUNT) == 2
    # the count completes after the last cycle's rest
    assert [n for _, n in bench.events("cycle:")] == ["cycle:1", "cycle:2"]
    assert bench.events("cycle:2")[0][0] == pytest.approx(phases[-2][0])
    assert bench.di(DiscreteInput.BRAKE_ENGAGED) and bench.di(DiscreteInput.AT_NEUTRAL)


def test_mode1_swings_left_then_right_and_holds_flexion_at_zero(bench):
    bench.set(MODE=int(Mode.LATERAL), LATERAL_DEPTH=8.0, SPEED=20.0, PAUSE_TIME=0.3, REST_TIME=0.2, CYCLES=1)
    bench.coil(Coil.ENABLE)
    bench.coil(Coil.START)
    seen = []
    while bench.phase is not Phase.IDLE:
        bench.advance(STEP)
        if bench.phase is Phase.PAUSE_AT_DEPTH and (not seen or seen[-1] != bench.encoder()[1]):
            seen.append(bench.encoder()[1])
        assert bench.encoder()[0] == 0.0
        assert bench.now < 20.0
    assert seen == [8.0, -8.0]
    assert bench.ir(InputReg.CYCLE_COUNT) == 1  # both sides make one cycle


def test_distraction_ramps_first_then_is_held_while_the_section_moves(bench):
    flexion_treatment(bench, depth=20.0, speed=20.0, force=150.0)
    assert bench.phase is Phase.DISTRACTION_RAMP_UP
    bench.until_phase(Phase.MOVING_OUT, 5.0)
    ramp = bench.now - bench.events("phase:distraction_ramp_up")[0][0]
    assert ramp == pytest.approx(150.0 / 200.0, abs=STEP + 0.002)  # the ramp, then a cycle to see it
    samples = []
    while bench.phase in (Phase.MOVING_OUT, Phase.PAUSE_AT_DEPTH, Phase.MOVING_BACK):
        bench.advance(0.05)
        samples.append(bench.force())
    assert max(abs(f - 150.0) for f in samples[10:]) < max(0.05 * 150.0, 5.0)


def test_no_distraction_skips_phase_1(bench):
    flexion_treatment(bench, force=0.0)
    assert bench.phase is Phase.MOVING_OUT


def test_treatment_time_ends_mid_cycle_with_a_controlled_end(bench):
    bench.set(TREATMENT_TIME=2)
    flexion_treatment(bench, depth=20.0, speed=10.0, force=50.0)
    start = bench.events("start")[0][0]
    bench.until_phase(Phase.CONTROLLED_END, 10.0)
    assert bench.now - start == pytest.approx(2.0, abs=STEP)
    assert bench.speed(0) > 0.0  # it was moving out: it turns back from there
    bench.until(lambda: bench.c.st.releasing, 10.0, "neutral")
    assert bench.encoder() == (0.0, 0.0)
    bench.until_phase(Phase.IDLE, 5.0)
    assert bench.force() < bench.table.params.residual_force_n
    assert bench.di(DiscreteInput.ENABLED) and bench.di(DiscreteInput.BRAKE_ENGAGED)


def test_cycles_or_treatment_time_whichever_first(bench):
    bench.set(TREATMENT_TIME=100)
    flexion_treatment(bench, depth=5.0, speed=20.0, pause=0.1, rest=0.1, cycles=3)
    bench.until_phase(Phase.IDLE, 30.0)
    assert bench.ir(InputReg.CYCLE_COUNT) == 3 and bench.now < 10.0


def stop_off_neutral(b: Bench, depth=20.0) -> None:
    """An emergency at the depth, then RESET: the section stands off neutral."""
    flexion_treatment(b, depth=depth, speed=20.0)
    b.until_phase(Phase.PAUSE_AT_DEPTH)
    b.coil(Coil.ESTOP)
    b.advance(0.5)
    b.coil(Coil.RESET)


def test_start_off_neutral_returns_first_phase_8(bench):
    stop_off_neutral(bench)
    assert bench.phase is Phase.IDLE and bench.encoder()[0] == 20.0  # RESET moves nothing
    bench.advance(5.0)
    assert bench.encoder()[0] == 20.0
    bench.set(DISTRACTION_FORCE=40.0)
    bench.coil(Coil.START)
    assert bench.phase is Phase.RETURNING_TO_NEUTRAL and bench.di(DiscreteInput.RUNNING)
    bench.until_phase(Phase.DISTRACTION_RAMP_UP, 5.0)
    assert bench.encoder() == (0.0, 0.0)
    bench.until_phase(Phase.MOVING_OUT, 5.0)


def test_stop_while_idle_off_neutral_moves_to_neutral_at_speed(bench):
    stop_off_neutral(bench)
    bench.set(SPEED=10.0)
    bench.coil(Coil.STOP)
    assert bench.phase is Phase.CONTROLLED_END
    bench.cruising(0, 10.0)
    assert bench.speed(0) == pytest.approx(-10.0)
    bench.until_phase(Phase.IDLE, 10.0)
    assert bench.encoder() == (0.0, 0.0)
    events = len(bench.c.events)
    bench.coil(Coil.STOP)  # at neutral: nothing
    assert bench.phase is Phase.IDLE and len(bench.c.events) == events


def test_stop_while_running_is_a_controlled_end(bench):
    flexion_treatment(bench, depth=20.0, force=60.0)
    bench.until_phase(Phase.PAUSE_AT_DEPTH)
    bench.coil(Coil.STOP)
    assert bench.phase is Phase.CONTROLLED_END
    bench.until(lambda: bench.c.st.releasing, 5.0, "neutral")
    assert bench.force() > 50.0  # the distraction ramps down only after the move
    bench.until_phase(Phase.IDLE, 5.0)
    assert bench.force() < 10.0


# ---------------------------------------------------------------- enable
def test_enable_refused_unless_ready(bench):
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert bench.refusal(lambda: bench.coil(Coil.ENABLE)) == (4, RejectReason.NOT_READY)
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, False)
    bench.coil(Coil.ESTOP)
    assert bench.refusal(lambda: bench.coil(Coil.ENABLE)) == (4, RejectReason.LATCHED)
    bench.coil(Coil.RESET)
    bench.relay(StimulusCoil.MAINS_CUT)
    assert bench.refusal(lambda: bench.coil(Coil.ENABLE)) == (4, RejectReason.NOT_READY)


def test_enable_0_running_ends_as_stop_then_deenergises(bench):
    flexion_treatment(bench, depth=20.0, force=60.0)
    bench.until_phase(Phase.MOVING_OUT, 5.0)
    bench.advance(0.3)
    bench.coil(Coil.ENABLE, False)
    assert bench.phase is Phase.CONTROLLED_END and bench.di(DiscreteInput.ENABLED)
    assert bench.c.coil_values()[Coil.ENABLE] is False
    bench.until_phase(Phase.IDLE, 10.0)
    assert not bench.di(DiscreteInput.ENABLED) and bench.di(DiscreteInput.BRAKE_ENGAGED)
    assert bench.encoder() == (0.0, 0.0) and bench.force() < 10.0


def test_enable_0_idle_moves_nothing(bench):
    stop_off_neutral(bench)
    angles = bench.true_angles()
    bench.coil(Coil.ENABLE, False)
    bench.advance(2.0)
    assert bench.true_angles() == angles and not bench.di(DiscreteInput.ENABLED)


# ---------------------------------------------------------------- start refusals
def test_start_refusal_reasons_and_their_order(bench):
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.NOT_READY)  # not enabled
    bench.coil(Coil.ENABLE)
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.NOT_READY)  # switch unplugged
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, False)
    bench.coil(Coil.ENABLE, False)
    bench.set(ANGLE_LIMIT=5.0)  # a limit below the depth written (10°): allowed while not enabled
    bench.coil(Coil.ENABLE)
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.OUT_OF_RANGE)
    bench.coil(Coil.ESTOP)  # latched and out of range: latched first
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.LATCHED)
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)  # unplugged, latched, out of range: not ready first
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.NOT_READY)
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG, False)
    bench.coil(Coil.RESET)
    bench.set(FLEXION_DEPTH=5.0)  # the depth lowered: START taken
    bench.coil(Coil.START)
    assert bench.di(DiscreteInput.RUNNING)


@pytest.mark.parametrize("limit, depth", [("LATERAL_LIMIT", "LATERAL_DEPTH"), ("FORCE_LIMIT", "DISTRACTION_FORCE")])
def test_start_refused_when_any_setpoint_is_above_its_limit(bench, limit, depth):
    bench.set(**{depth: 10.0})
    bench.set(**{limit: 5.0})
    bench.coil(Coil.ENABLE)
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.OUT_OF_RANGE)


def test_start_refused_with_the_switch_pressed_and_until_reset(bench):
    bench.coil(Coil.ENABLE)
    bench.relay(StimulusCoil.PATIENT_SWITCH)
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.LATCHED)
    bench.relay(StimulusCoil.PATIENT_SWITCH, False)
    assert bench.refusal(lambda: bench.coil(Coil.START)) == (4, RejectReason.LATCHED)  # latched until RESET
    bench.coil(Coil.RESET)
    bench.coil(Coil.START)


# ---------------------------------------------------------------- holding registers
def test_ranges_limits_and_read_only(bench):
    assert bench.refusal(lambda: bench.set(FLEXION_DEPTH=25.1)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(LATERAL_DEPTH=15.1)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(SPEED=20.1)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(SPEED=0.0)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(DISTRACTION_FORCE=300.1)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(ANGLE_LIMIT=25.1)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(MODE=2)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(CYCLES=10000)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.set(TREATMENT_TIME=5941)) == (3, RejectReason.OUT_OF_RANGE)
    assert bench.refusal(lambda: bench.c.write_holding(Holding.RESIDUAL_FORCE, [50])) == (4, RejectReason.READ_ONLY)
    assert bench.c.h(Holding.FLEXION_DEPTH) == 100  # a refused write is not taken
    bench.coil(Coil.ENABLE)
    for name in ("ANGLE_LIMIT", "LATERAL_LIMIT", "FORCE_LIMIT"):
        assert bench.refusal(lambda: bench.set(**{name: 5.0})) == (4, RejectReason.ENABLED)
    bench.set(FLEXION_DEPTH=24.0)  # setpoints are writable while enabled


def test_a_multiple_write_is_all_or_nothing(bench):
    with pytest.raises(Refused):
        bench.c.write_holding(Holding.FLEXION_DEPTH, [50, 50, 500])  # SPEED 50 °/s refused
    assert bench.c.h(Holding.FLEXION_DEPTH) == 100
    bench.set(ANGLE_LIMIT=5.0)  # START will be refused: a depth above the limit
    with pytest.raises(Refused):
        bench.c.write_coils(Coil.ENABLE, [True, True])
    assert not bench.di(DiscreteInput.ENABLED)
    assert not bench.table.controller.winch.st.enabled  # nor was the winch energised


# ---------------------------------------------------------------- reset
def test_reset_refusals_and_what_it_clears(bench):
    flexion_treatment(bench, depth=20.0, force=100.0)
    bench.until_phase(Phase.MOVING_OUT, 5.0)
    bench.relay(StimulusCoil.PATIENT_SWITCH)
    assert bench.refusal(lambda: bench.coil(Coil.RESET)) == (4, RejectReason.LATCHED)
    bench.relay(StimulusCoil.PATIENT_SWITCH, False)
    bench.advance(1.0)
    bench.coil(Coil.ENABLE, False)  # de-energised: the winch's brake holds the carriage
    bench.table.mechanics.external_target_n = 100.0  # the patient holds the strap taut
    bench.advance(1.0)
    assert bench.refusal(lambda: bench.coil(Coil.RESET)) == (4, RejectReason.FORCE_PRESENT)
    bench.table.mechanics.external_target_n = 0.0
    bench.advance(1.0)
    angles = bench.true_angles()
    bench.coil(Coil.RESET)
    assert bench.phase is Phase.IDLE and not bench.c.latched and bench.fault is FaultCode.NONE
    bench.advance(3.0)
    assert bench.true_angles() == angles  # RESET moves nothing


def test_a_held_estop_button_latches_again_at_reset(bench):
    bench.relay(StimulusCoil.ESTOP_BUTTON)
    bench.coil(Coil.RESET)
    assert bench.di(DiscreteInput.ESTOP_LATCHED) and bench.fault is FaultCode.ESTOP
    bench.relay(StimulusCoil.ESTOP_BUTTON, False)
    bench.coil(Coil.RESET)
    assert bench.di(DiscreteInput.READY)


def test_the_first_fault_code_is_kept(bench):
    bench.set(WATCHDOG_MS=100)
    bench.coil(Coil.ENABLE)
    bench.coil(Coil.ESTOP)
    bench.advance(0.5)  # the watchdog trips too
    assert bench.di(DiscreteInput.WATCHDOG_TRIPPED) and bench.fault is FaultCode.ESTOP


def test_watchdog_restarted_by_heartbeat_enable_and_reset(bench):
    bench.set(WATCHDOG_MS=200)
    bench.coil(Coil.ENABLE)
    for _ in range(10):
        bench.advance(0.15)
        bench.set(HEARTBEAT=1)
    assert not bench.di(DiscreteInput.WATCHDOG_TRIPPED)
    bench.advance(0.25)
    assert bench.di(DiscreteInput.WATCHDOG_TRIPPED) and bench.fault is FaultCode.WATCHDOG
    trip = bench.events("emergency:watchdog")[0][0]
    assert trip == pytest.approx(1.5 + 0.2, abs=1e-9)


# ---------------------------------------------------------------- emergency stops
TRIGGERS = {
    "estop-coil": (lambda b: b.coil(Coil.ESTOP), FaultCode.ESTOP, DiscreteInput.ESTOP_LATCHED),
    "estop-button": (lambda b: b.relay(StimulusCoil.ESTOP_BUTTON), FaultCode.ESTOP, DiscreteInput.ESTOP_LATCHED),
    "switch-pressed": (lambda b: b.relay(StimulusCoil.PATIENT_SWITCH), FaultCode.PATIENT_SWITCH,
                       DiscreteInput.ESTOP_LATCHED),
    "switch-unplugged": (lambda b: b.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG), FaultCode.PATIENT_SWITCH, None),
    "watchdog": (lambda b: setattr(b, "heartbeat", False), FaultCode.WATCHDOG, DiscreteInput.WATCHDOG_TRIPPED),
    "overforce": (lambda b: pull(b, 200.0), FaultCode.OVERFORCE, DiscreteInput.OVERFORCE_TRIPPED),
    "power-loss": (lambda b: b.relay(StimulusCoil.MAINS_CUT), FaultCode.POWER_LOSS, None),
}


def pull(b: Bench, newtons: float, rate: float = 5000.0) -> None:
    """The patient simulator: a pull on the strap rising at `rate` N/s."""
    b.table.mechanics.external_rate_n_s = rate
    b.table.mechanics.external_target_n = newtons


def into_phase(b: Bench, phase: Phase) -> None:
    """The section cruising at the rated speed in `phase`."""
    if phase is Phase.RETURNING_TO_NEUTRAL:
        stop_off_neutral(b)
        b.set(DISTRACTION_FORCE=80.0)
        b.coil(Coil.START)
    else:
        flexion_treatment(b, depth=20.0, speed=20.0, force=80.0)
        if phase is Phase.CONTROLLED_END:
            b.until_phase(Phase.PAUSE_AT_DEPTH)
            b.coil(Coil.STOP)
    b.until_phase(phase)
    b.cruising(0, 20.0)


@pytest.mark.parametrize("phase", [Phase.MOVING_OUT, Phase.MOVING_BACK, Phase.CONTROLLED_END,
                                   Phase.RETURNING_TO_NEUTRAL], ids=lambda p: p.name.lower())
@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_every_trigger_in_every_moving_phase_stops_brakes_and_releases(trigger, phase):
    b = Bench(make(seed=4))
    b.set(FORCE_LIMIT=150.0, WATCHDOG_MS=100)
    b.heartbeat = True
    into_phase(b, phase)
    act, code, latch = TRIGGERS[trigger]
    if trigger == "watchdog" or trigger == "overforce":  # the causes act after a delay of their own
        t_cause = b.now
        act(b)
        b.until(lambda: b.phase is Phase.EMERGENCY_STOPPED, 1.0, "the trip")
        t0 = [t for t, n in b.c.events if n.startswith("emergency:")][-1]
        assert t_cause <= t0 < t_cause + 0.2
    else:
        t0 = b.now
        act(b)
    b.heartbeat = False
    held = float(b.table.force_at(np.array([t0]))[0])
    before = float(b.table.angles_at(np.array([t0]))[0, 0])
    assert b.phase is Phase.EMERGENCY_STOPPED and b.fault is code
    if latch is not None:
        assert b.di(latch)
    if trigger == "switch-unplugged":
        assert not b.di(DiscreteInput.ESTOP_LATCHED)
    b.advance(6.0)
    t = np.arange(t0, t0 + 6.0, 1e-3)
    angle = b.table.angles_at(t)[:, 0]
    speed = np.abs(np.gradient(angle, t))
    moving = np.nonzero(speed >= 0.5)[0]
    stop_time = t[moving[-1]] - t0 if len(moving) else 0.0
    travel = abs(angle[-1] - b.table.angles_at(np.array([t0]))[0, 0])
    limit_time, limit_travel = (0.2, 1.5) if trigger == "power-loss" else (0.1, 1.0)
    assert stop_time < limit_time and travel < limit_travel
    rest = angle[t > t0 + stop_time + 0.01]
    assert np.ptp(rest) < 1e-9  # no creep, no return to neutral
    assert abs(before) > 1.0 and abs(angle[-1]) > 1.0
    assert b.di(DiscreteInput.BRAKE_ENGAGED) and b.phase is Phase.EMERGENCY_STOPPED
    # the distraction released as TCM-1 releases: no rise above the force held, then below residual
    tf = np.arange(t0, b.mech_t(), 1e-3)
    force = b.table.force_at(tf)
    if trigger == "overforce":  # tripped at the crossing of FORCE_LIMIT; the patient's pull keeps rising
        assert 150.0 <= held < 160.0
    else:
        assert force.max() <= held + 1.0
    assert force[tf > t0 + 3.0].max() < b.table.params.residual_force_n
    assert b.refusal(lambda: b.coil(Coil.START))[0] == 4
    if trigger == "power-loss":
        assert not b.di(DiscreteInput.ENABLED)
    else:
        assert b.di(DiscreteInput.ENABLED)  # the drives stay energised with the brake engaged


def test_power_loss_the_brake_alone_stops_and_the_winch_freewheels(bench):
    flexion_treatment(bench, depth=20.0, force=100.0)
    bench.until_phase(Phase.MOVING_OUT)
    bench.cruising(0, 20.0)
    t0 = bench.now
    bench.relay(StimulusCoil.MAINS_CUT)
    assert bench.di(DiscreteInput.BRAKE_ENGAGED) and not bench.di(DiscreteInput.READY)
    p = bench.table.params
    at_rest = t0 + p.brake_reaction_s + 20.0 / p.brake_decel_deg_s2
    assert bench.c.section.axes[0].settled_at() == pytest.approx(at_rest)
    bench.advance(3.0)
    assert bench.force() < p.residual_force_n
    bench.relay(StimulusCoil.MAINS_CUT, False)  # mains back: still latched until RESET
    assert bench.fault is FaultCode.POWER_LOSS and not bench.di(DiscreteInput.READY)
    bench.relay(StimulusCoil.MAINS_CUT)
    bench.coil(Coil.RESET)  # the cause still present: latched again at once
    assert bench.fault is FaultCode.POWER_LOSS
    bench.relay(StimulusCoil.MAINS_CUT, False)
    bench.coil(Coil.RESET)
    assert bench.di(DiscreteInput.READY) and bench.phase is Phase.IDLE and not bench.di(DiscreteInput.ENABLED)


def test_unplugging_the_switch_while_idle_is_not_a_trigger(bench):
    bench.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert bench.fault is FaultCode.NONE and not bench.di(DiscreteInput.READY)
    assert not bench.di(DiscreteInput.PATIENT_SWITCH_CONNECTED)


# ---------------------------------------------------------------- over-travel
def test_energising_beyond_a_limit_trips_at_once(bench):
    stop_off_neutral(bench, depth=20.0)
    bench.coil(Coil.ENABLE, False)
    bench.set(ANGLE_LIMIT=15.0)
    bench.coil(Coil.ENABLE)
    assert bench.di(DiscreteInput.OVERTRAVEL_TRIPPED) and bench.fault is FaultCode.OVERTRAVEL
    assert bench.phase is Phase.EMERGENCY_STOPPED and not bench.di(DiscreteInput.READY)


def test_a_section_driven_beyond_the_limit_trips_at_the_crossing():
    b = Bench(make(depth_offset_deg=2.0))  # a drive overrunning its depth by 2°
    b.set(ANGLE_LIMIT=21.0)
    flexion_treatment(b, depth=20.0, speed=20.0)
    b.until_phase(Phase.EMERGENCY_STOPPED, 5.0)
    t_trip = b.events("emergency:overtravel")[0][0]
    encoder_at_trip = b.c._encoder(0, b.table.angles_at(np.array([t_trip]))[0, 0])
    assert encoder_at_trip == pytest.approx(21.0, abs=1e-5)
    assert b.fault is FaultCode.OVERTRAVEL


def test_lateral_overtravel_on_either_side():
    b = Bench(make(side_depth_factor=(1.0, 1.2)))
    b.set(MODE=1, LATERAL_DEPTH=10.0, LATERAL_LIMIT=11.0, SPEED=20.0, PAUSE_TIME=0.1, REST_TIME=0.1)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    b.until_phase(Phase.EMERGENCY_STOPPED, 10.0)
    assert b.fault is FaultCode.OVERTRAVEL and b.c.encoder_angles()[1] < -11.0


# ---------------------------------------------------------------- obstruction
def test_obstruction_stops_backs_off_and_brakes(bench):
    bench.relay(StimulusCoil.OBSTACLE)
    flexion_treatment(bench, depth=20.0, speed=20.0, force=80.0)
    bench.until_phase(Phase.EMERGENCY_STOPPED, 5.0)
    t0 = bench.events("emergency:obstruction")[0][0]
    assert bench.fault is FaultCode.OBSTRUCTION and bench.di(DiscreteInput.OBSTRUCTION_TRIPPED)
    p = bench.table.params
    cell = bench.table.obstacle_cell
    assert cell.force_at(np.array([t0]))[0] == pytest.approx(p.obstruction_force_n, rel=1e-6)
    bench.advance(3.0)
    t = np.arange(t0 - 0.5, bench.now, 1e-3)
    contact = cell.force_at(t)
    angle = bench.table.angles_at(t)[:, 0]
    peak = int(np.argmax(angle))
    assert contact.max() < 130.0
    assert angle[peak] - angle[-1] == pytest.approx(p.backoff_deg, rel=0.01)
    assert t[np.nonzero(contact < 10.0)[0][np.nonzero(contact < 10.0)[0] > peak][0]] - t[peak] < 1.0
    assert np.ptp(angle[t > t[-1] - 1.0]) < 1e-9 and bench.di(DiscreteInput.BRAKE_ENGAGED)
    assert bench.force() < p.residual_force_n  # the distraction released


def test_without_the_slide_the_section_reaches_its_depth(bench):
    flexion_treatment(bench, depth=20.0)
    bench.until_phase(Phase.PAUSE_AT_DEPTH, 5.0)
    assert bench.encoder()[0] == 20.0 and bench.fault is FaultCode.NONE


def test_the_obstacle_is_met_only_when_moving_towards_it():
    b = Bench(make(obstacle_angle_deg=12.0))
    flexion_treatment(b, depth=10.0, speed=20.0, pause=0.5)
    b.until_phase(Phase.PAUSE_AT_DEPTH, 5.0)
    b.relay(StimulusCoil.OBSTACLE)  # slid in beyond the section: the section moves away from it
    b.until_phase(Phase.REST_AT_NEUTRAL, 5.0)
    assert b.fault is FaultCode.NONE


# ---------------------------------------------------------------- neutral, encoders, angle source
@pytest.mark.parametrize("depth, neutral", [(0.4, True), (0.6, False)])
def test_at_neutral_band(bench, depth, neutral):
    flexion_treatment(bench, depth=depth)
    bench.until_phase(Phase.PAUSE_AT_DEPTH, 5.0)
    assert bench.di(DiscreteInput.AT_NEUTRAL) is neutral


def test_encoders_agree_with_the_true_angles_within_half_a_degree():
    b = Bench(make(seed=11))
    flexion_treatment(b, depth=20.0)
    b.until_phase(Phase.PAUSE_AT_DEPTH, 5.0)
    assert abs(b.encoder()[0] - b.true_angles()[0]) < 0.5


def test_angles_at_past_times_are_the_plan_that_was_run(bench):
    flexion_treatment(bench, depth=15.0, pause=0.2, rest=0.2)
    seen = []
    while bench.now < 6.0:
        bench.advance(0.1)
        seen.append((bench.now, bench.true_angles()[0]))
    past = bench.table.angles_at(np.array([t for t, _ in seen]))[:, 0]
    assert np.allclose(past, [a for _, a in seen], atol=1e-12)
    assert bench.table.history_start() <= 0.0


# ---------------------------------------------------------------- defect hooks (parameters, not branches)
def test_overrun_defect_adds_travel_after_a_stop():
    travel = {}
    for overrun in (0.0, 0.5):
        b = Bench(make(stop_overrun_deg=overrun))
        flexion_treatment(b, depth=20.0)
        b.until_phase(Phase.MOVING_OUT)
        b.cruising(0, 20.0)
        a0 = b.true_angles()[0]
        b.coil(Coil.ESTOP)
        b.advance(1.0)
        travel[overrun] = b.true_angles()[0] - a0
    assert travel[0.5] - travel[0.0] == pytest.approx(0.5, abs=1e-9)


def test_creeping_brake_defect_lets_the_section_drift():
    b = Bench(make(brake_creep_deg_s=0.05))
    stop_off_neutral(b)
    a0 = b.true_angles()[0]
    b.advance(4.0)
    assert b.true_angles()[0] - a0 == pytest.approx(0.2, abs=1e-6)


def test_auto_return_after_reset_defect():
    b = Bench(make(reset_returns_to_neutral=True))
    stop_off_neutral(b)
    assert b.phase is Phase.CONTROLLED_END
    b.until_phase(Phase.IDLE, 5.0)
    assert b.encoder() == (0.0, 0.0)


def test_obstruction_threshold_defect_presses_harder():
    b = Bench(make(obstruction_trip_factor=2.5))
    b.relay(StimulusCoil.OBSTACLE)
    flexion_treatment(b, depth=20.0)
    b.until_phase(Phase.EMERGENCY_STOPPED, 5.0)
    b.advance(1.0)
    t = np.arange(0.0, b.now, 1e-3)
    assert b.table.obstacle_cell.force_at(t).max() > 200.0


def test_winch_is_the_traction_force_loop(bench):
    from rigs.emulator.controller import ControllerModel
    from rigs.emulator.physics import Mechanics

    assert isinstance(bench.c.winch, ControllerModel) and isinstance(bench.table.mechanics, Mechanics)
    assert bench.c.winch.mech is bench.table.mechanics


def _phase_lengths(b: Bench) -> dict[str, float]:
    phases = b.events("phase:")
    return {name: t1 - t0 for (t0, name), (t1, _) in zip(phases, phases[1:])}


def _cycle_measures(b: Bench) -> dict:
    b.set(TREATMENT_TIME=0)
    flexion_treatment(b, depth=20.0, speed=10.0, pause=0.5, rest=0.5, cycles=2)
    out = {"accel": None, "speed": 0.0}
    while b.phase is not Phase.IDLE:
        b.advance(0.002)
        out["speed"] = max(out["speed"], abs(b.speed(0)))
        assert b.now < 60.0
    seg = b.c.section.axes[0].segs
    out["accel"] = max(abs(s.a) for s in seg if s.motion.name == "MOVE")
    lengths = _phase_lengths(b)
    out.update(pause=lengths["phase:pause_at_depth"], rest=lengths["phase:rest_at_neutral"],
               cycles=b.ir(InputReg.CYCLE_COUNT))
    return out


@pytest.mark.parametrize("hook, value, measure, nominal, defective", [
    ("speed_factor", 0.8, "speed", 10.0, 8.0),
    ("accel_factor", 0.5, "accel", 40.0, 20.0),
    ("pause_factor", 1.5, "pause", 0.5, 0.75),
    ("rest_factor", 0.5, "rest", 0.5, 0.25),
    ("extra_cycles", 1, "cycles", 2, 3),
])
def test_cycle_defect_hooks_change_what_the_suites_measure(hook, value, measure, nominal, defective):
    assert _cycle_measures(Bench(make()))[measure] == pytest.approx(nominal, rel=1e-6)
    assert _cycle_measures(Bench(make(**{hook: value})))[measure] == pytest.approx(defective, rel=1e-6)


@pytest.mark.parametrize("factor, expected", [(1.0, 3.0), (1.5, 4.5)])
def test_treatment_time_hook(factor, expected):
    b = Bench(make(treatment_time_factor=factor))
    b.set(TREATMENT_TIME=3)
    flexion_treatment(b, depth=5.0, pause=0.2, rest=0.2)
    b.until_phase(Phase.CONTROLLED_END, 10.0)
    assert b.now - b.events("start")[0][0] == pytest.approx(expected, abs=STEP)


@pytest.mark.parametrize("margin, trips", [(0.0, True), (1.0, False)])
def test_overtravel_margin_hook(margin, trips):
    b = Bench(make(overtravel_margin_deg=margin))
    stop_off_neutral(b, depth=20.0)
    b.coil(Coil.ENABLE, False)
    b.set(ANGLE_LIMIT=19.5)
    b.coil(Coil.ENABLE)
    assert b.di(DiscreteInput.OVERTRAVEL_TRIPPED) is trips


@pytest.mark.parametrize("locked", [True, False])
def test_limit_lock_hook(locked):
    b = Bench(make(limits_locked_while_enabled=locked))
    b.coil(Coil.ENABLE)
    if locked:
        assert b.refusal(lambda: b.set(ANGLE_LIMIT=10.0)) == (4, RejectReason.ENABLED)
    else:
        b.set(ANGLE_LIMIT=10.0)
        assert b.c.h(Holding.ANGLE_LIMIT) == 100


@pytest.mark.parametrize("trigger", [True, False])
def test_unplug_hook(trigger):
    b = Bench(make(unplug_is_trigger=trigger))
    flexion_treatment(b, depth=20.0)
    b.until_phase(Phase.MOVING_OUT)
    b.relay(StimulusCoil.PATIENT_SWITCH_UNPLUG)
    assert (b.phase is Phase.EMERGENCY_STOPPED) is trigger


@pytest.mark.parametrize("factor", [1.0, 0.0])
def test_backoff_hook(factor):
    b = Bench(make(backoff_factor=factor))
    b.relay(StimulusCoil.OBSTACLE)
    flexion_treatment(b, depth=20.0)
    b.until_phase(Phase.EMERGENCY_STOPPED, 5.0)
    b.advance(2.0)
    t = np.arange(b.events("emergency:obstruction")[0][0], b.now, 1e-3)
    angle = b.c._encoder(0, b.table.angles_at(t)[:, 0])  # BACKOFF is the drive's travel, on its encoder
    assert angle.max() - angle[-1] == pytest.approx(2.0 * factor, abs=1e-4)  # the peak between samples


def test_lateral_one_side_short_hook():
    b = Bench(make(side_depth_factor=(1.0, 0.8)))
    b.set(MODE=1, LATERAL_DEPTH=10.0, SPEED=20.0, PAUSE_TIME=0.2, REST_TIME=0.2, CYCLES=1)
    b.coil(Coil.ENABLE)
    b.coil(Coil.START)
    b.until_phase(Phase.IDLE, 20.0)
    t = np.arange(0.0, b.now, 1e-3)
    lateral = b.table.angles_at(t)[:, 1]
    assert lateral.max() == pytest.approx(10.0, abs=0.1) and lateral.min() == pytest.approx(-8.0, abs=0.1)


# ---------------------------------------------------------------- CYCLE_COUNT from START
def _before_start(b: Bench, mode: Mode, before: str) -> None:
    """What the table went through before the START under test (the emergency suite's
    trials follow one another this way)."""
    depth = {"FLEXION_DEPTH": 10.0} if mode is Mode.FLEXION else {"LATERAL_DEPTH": 8.0}
    b.set(MODE=int(mode), SPEED=20.0, PAUSE_TIME=0.2, REST_TIME=0.2, CYCLES=2, DISTRACTION_FORCE=50.0,
          DISTRACTION_RATE=200.0, **depth)
    b.coil(Coil.ENABLE)
    if before == "fresh":
        return
    if before == "treatment-time":  # ended mid-cycle, in the second cycle's (right) move out
        b.set(TREATMENT_TIME=4 if mode is Mode.FLEXION else 7)
    b.coil(Coil.START)
    # the second cycle's move out (MODE 1: its right swing), so a count or a side carried
    # over would show
    b.until(lambda: b.phase is Phase.MOVING_OUT and b.ir(InputReg.CYCLE_COUNT) == 1
            and (mode is Mode.FLEXION or b.encoder()[1] < 0.0), 20.0, "the struck move")
    if before == "treatment-time":
        b.until_phase(Phase.IDLE, 20.0)
        b.set(TREATMENT_TIME=0)
        return
    b.relay(StimulusCoil.PATIENT_SWITCH)
    assert b.phase is Phase.EMERGENCY_STOPPED
    b.advance(0.5)
    b.relay(StimulusCoil.PATIENT_SWITCH, False)
    b.until(lambda: b.force() < b.table.params.residual_force_n, 5.0, "the release")
    b.coil(Coil.RESET)
    if before == "estop-reset-stop":  # STOP while idle off neutral: the return (PHASE 6)
        b.coil(Coil.STOP)
        assert b.phase is Phase.CONTROLLED_END
        b.until_phase(Phase.IDLE, 10.0)
    # "estop-reset": START itself returns the section first (PHASE 8)


@pytest.mark.parametrize("before", ["fresh", "estop-reset-stop", "estop-reset", "treatment-time"])
@pytest.mark.parametrize("mode", [Mode.FLEXION, Mode.LATERAL], ids=lambda m: m.name.lower())
def test_cycle_count_is_0_until_the_first_cycles_last_rest_ends(mode, before):
    """CYCLE_COUNT counts cycles since the last START: 0 through the whole first cycle
    (in MODE 1 both swings, each with its pause and rest), 1 from the end of its last rest.
    Read as the served emulator reads (whole winch cycles, `exact=False`) between writes."""
    b = Bench(make())
    _before_start(b, mode, before)
    b.coil(Coil.START)
    start = b.now
    reads: list[tuple[float, Phase, int, float]] = []  # (t, PHASE, CYCLE_COUNT, encoder on the cycled axis)
    axis = 0 if mode is Mode.FLEXION else 1
    while b.phase is not Phase.IDLE:
        b.table.advance_to(b.now + STEP, exact=False)
        reads.append((b.now, b.phase, b.ir(InputReg.CYCLE_COUNT), b.encoder()[axis]))
        assert b.now - start < 60.0, f"the treatment did not end (phase {b.phase.name})"
    cycles = [t for t, name in b.events("cycle:") if t >= start]
    assert len(cycles) == 2 and [n for t, n in b.events("cycle:") if t >= start] == ["cycle:1", "cycle:2"]
    first = [r for r in reads if r[0] < cycles[0]]
    assert {count for _, _, count, _ in first} == {0}, "CYCLE_COUNT above 0 before the first cycle's last rest ended"
    # the whole first cycle was run while the count read 0: its pauses, on each side, and its rests
    pauses = sorted({round(angle) for _, phase, _, angle in first if phase is Phase.PAUSE_AT_DEPTH})
    assert pauses == ([10] if mode is Mode.FLEXION else [-8, 8])
    rests = [r for r, s in zip(first[1:], first) if r[1] is Phase.REST_AT_NEUTRAL and s[1] is not r[1]]
    assert len(rests) == (1 if mode is Mode.FLEXION else 2)
    assert first[-1][1] is Phase.REST_AT_NEUTRAL  # the count rose as that rest ended
    assert {count for t, _, count, _ in reads if cycles[0] <= t < cycles[1]} == {1}
    assert b.ir(InputReg.CYCLE_COUNT) == 2
