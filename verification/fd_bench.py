"""What the flexion-distraction suites do to a table, in table seconds, degrees and newtons.

`FlexionBench` is verification/bench.py's `TableBench` (table time, bounded waits, the
trigger instants of relay and coil writes, the gauge in table seconds, the release
mid-test) for an FDC-1 table: it brings the section to neutral before a test, tells the
table a treatment, and captures the reference inclinometer beside the distraction gauge
(and the obstacle's load cell) in one table-time base. The inclinometer is the evidence
for every angle; the table's encoder and PHASE are what is under test.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import allure
import numpy as np

from drivers.errors import ConfigError
from drivers.flexion_controller import FlexionController, FlexionStatus
from drivers.fdc1 import Mode, Phase
from drivers.gauge.base import GaugeTrace
from drivers.inclinometer.base import AngleTrace
from verification.bench import Capture, TableBench
from verification.kinematics import Estimate
from verification.measurement import UncertaintyTerm

#: the inclinometer's rate (table clock): an emergency stop from 20 °/s lasts < 0.1 s, so
#: 500 samples a table second resolve its corner; a 60 s dwell is 30 000 samples
ANGLE_RATE_HZ = 500.0
#: the axis of the inclinometer each motion or mode is read on (X flexion, Y lateral)
AXIS = {"flexion": "x", "lateral": "y", "lateral_left": "y", "lateral_right": "y"}
#: table seconds of slack on every wait for a move (a section that moves at its SPEED
#: needs the travel over the speed; the slack covers the acceleration and the link)
MOVE_SLACK_S = 5.0
#: table seconds a command that starts a move is given to show it (PHASE no longer idle)
MOVE_START_S = 0.5


@dataclass
class AngleCapture:
    """The inclinometer's two axes and the distraction gauge (and the obstacle's load cell)
    over one block, in table seconds since `ref_ns` (the host instant the capture began).
    Samples an axis read beyond the instrument's range are left out (`out_of_range`)."""

    t: np.ndarray  # inclinometer sample instants, table s
    x: np.ndarray  # flexion axis, deg (+ lowered)
    y: np.ndarray  # lateral axis, deg (+ the patient's left)
    force: Capture  # the distraction gauge (verification.bench.Capture, same time base)
    ref_ns: int
    trace: AngleTrace
    mapping_half_width_s: float  # wall s: the inclinometer clock's mapping to the host's
    obstacle: Capture | None = None
    out_of_range: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def period(self) -> float:
        """The inclinometer's sample period (table s)."""
        return float(np.median(np.diff(self.t))) if len(self.t) > 1 else float("nan")

    def angle(self, motion_or_mode: str) -> np.ndarray:
        """The axis a motion (flexion, lateral_left, lateral_right) or mode moves."""
        return getattr(self, AXIS[motion_or_mode])

    def between(self, t0: float, t1: float) -> np.ndarray:
        """Mask of the inclinometer samples in [t0, t1] (table s)."""
        return (self.t >= t0) & (self.t <= t1)

    def force_between(self, t0: float, t1: float) -> np.ndarray:
        """The distraction gauge's samples in [t0, t1] (table s)."""
        f = self.force
        return f.force[(f.t >= t0) & (f.t <= t1)]


class FlexionBench(TableBench):
    """An FDC-1 table's bench: `.ctrl` (FlexionController), `.stim`, `.tilt` (the reference
    inclinometer), `.gauge` (distraction), `.obstacle` (the obstacle's load cell, or None),
    `.k`, `.keeper`, `.identity` (what the controller states: rated travel, speed, ACCEL)."""

    IDLE = Phase.IDLE
    #: an emergency stop leaves PHASE 7 until RESET (a traction table goes idle)
    AT_REST_PHASES = (Phase.IDLE, Phase.EMERGENCY_STOPPED)

    def __init__(self, rig, keeper, feed=None) -> None:
        super().__init__(rig, keeper, feed)
        if not isinstance(self.ctrl, FlexionController):
            raise TypeError(f"FlexionBench on {type(self.ctrl).__name__}: a flexion-distraction bench needs an "
                            "FDC-1 controller (rig file table.kind flexion-distraction)")
        self.tilt = rig.inclinometer
        self.obstacle = rig.obstacle_gauge
        self.identity = self.ctrl.identity()
        self.tilt_config = rig.config.inclinometer
        self.angle_rate_hz = ANGLE_RATE_HZ

    # ---------------------------------------------------------------- state
    def travel_s(self, travel_deg: float, speed_deg_s: float) -> float:
        """Table seconds a move of `travel_deg` at `speed_deg_s` may take (with the slack)."""
        return abs(travel_deg) / max(speed_deg_s, 0.1) + MOVE_SLACK_S

    @allure.step("prepare the table: relays at rest, released, RESET, ENABLE, section at neutral")
    def prepare(self) -> None:
        """Relays at rest (the obstacle withdrawn), the table released and braked, latches
        cleared, the travel limits at the rated travel, drives enabled, the section back at
        neutral (STOP at the rated speed: an emergency stop leaves it where it stopped), a
        harmless treatment set (no distraction, flexion), idle; the watchdog fed."""
        self._rest_relays()
        self._released_and_reset()
        c = self.ctrl
        # the travel limits at the rated travel (writable only now, before ENABLE): what a
        # test before this one lowered does not refuse this one's depths
        c.disable()  # idle: moves nothing
        c.set_limits(angle_deg=self.identity.rated_depth_deg, lateral_deg=self.identity.rated_lateral_deg)
        c.set_distraction_force(0.0)
        c.set_mode(Mode.FLEXION)
        c.set_times(treatment_s=0)
        c.set_speed(self.identity.rated_speed_deg_s)
        c.enable()
        st = c.status()
        if not st.at_neutral:
            off = max(abs(st.flexion_deg), abs(st.lateral_deg))
            c.stop()  # idle and off neutral: STOP moves the section back at SPEED (PHASE 6)
            # the end of that move, by the table's own word (idle, released, braked), not
            # AT_NEUTRAL: the encoder is under test, and a table whose return stops short is
            # the kinematics suite's finding, not a test that cannot be set up
            self.poll_until(lambda s: s.phase != Phase.IDLE, MOVE_START_S)
            self.wait(lambda s: s.phase == Phase.IDLE and s.released(self.residual_n),
                      self.travel_s(off, self.identity.rated_speed_deg_s), "the section's return to neutral (STOP)")

    @allure.step("command the treatment: {mode} to {depth_deg}° at {speed_deg_s} °/s")
    def configure(self, mode: str, depth_deg: float, speed_deg_s: float, *, pause_s: float = 0.0, rest_s: float = 0.0,
                  cycles: int = 0, treatment_s: float = 0, distraction_n: float = 0.0,
                  distraction_rate_n_s: float | None = None, testing_interlock: bool = False) -> None:
        """Every setting of a treatment (FDC-1 holdings): MODE, the mode's depth, SPEED,
        PAUSE_TIME, REST_TIME, CYCLES, TREATMENT_TIME, DISTRACTION_FORCE and its rate.
        `testing_interlock`: a distraction above the rig's safety limit is written anyway."""
        c = self.ctrl
        c.set_mode(mode)
        if Mode[mode.upper()] is Mode.FLEXION:
            c.set_depths(flexion_deg=depth_deg)
        else:
            c.set_depths(lateral_deg=depth_deg)
        c.set_speed(speed_deg_s)
        c.set_times(pause_s=pause_s, rest_s=rest_s, treatment_s=treatment_s)
        c.set_cycles(cycles)
        if distraction_rate_n_s is not None:
            c.set_distraction_rate(distraction_rate_n_s)
        c.set_distraction_force(distraction_n, testing_interlock=testing_interlock)

    def wait_idle(self, table_timeout_s: float, what: str = "end of the treatment") -> FlexionStatus:
        """Until the treatment has ended: idle, the distraction released and the section braked."""
        return self.wait(self.released, table_timeout_s, what)

    # ---------------------------------------------------------------- the instruments
    @contextmanager
    def capture(self, holder: list, *, obstacle: bool = False, rate_hz: float | None = None):
        """Buffer the inclinometer and the distraction gauge (and, with `obstacle`, the
        obstacle's load cell) while the block runs; appends one AngleCapture to `holder`,
        every instant in table seconds since the capture began."""
        ref_ns = time.perf_counter_ns()
        traces: dict[str, object] = {}
        with ExitStack() as stack:
            self.tilt.start_stream(rate_hz or self.angle_rate_hz)
            stack.callback(lambda: traces.__setitem__("tilt", self.tilt.stop_stream()))
            self.gauge.start_stream(self.rate_hz)
            stack.callback(self._stop_gauge, self.gauge, traces, "gauge")
            if obstacle:
                if self.obstacle is None:
                    raise ConfigError(f"{self.rig.config.source or self.rig.config.name}: the obstacle's load cell "
                                      "was asked for, but this rig has no obstacle (add the rig file's obstacle:)")
                self.obstacle.start_stream(self.rate_hz)
                stack.callback(self._stop_gauge, self.obstacle, traces, "obstacle")
            if self.feed is not None:
                self.feed.capture_started(self.gauge)
            yield
        if self.feed is not None:
            self.feed.capture_ended(traces.get("gauge"))
        holder.append(self.angles_to_table(traces["tilt"], traces["gauge"], ref_ns, traces.get("obstacle")))

    def _stop_gauge(self, gauge, traces: dict, key: str) -> None:
        traces[key] = gauge.stop_stream()

    def angles_to_table(self, trace: AngleTrace, gauge: GaugeTrace, ref_ns: int,
                        obstacle: GaugeTrace | None = None) -> AngleCapture:
        t = ((trace.host_t0_ns - ref_ns) / 1e9 + trace.t / trace.time_scale) * self.k
        ok = np.isfinite(trace.x_deg) & np.isfinite(trace.y_deg)
        return AngleCapture(t[ok], trace.x_deg[ok], trace.y_deg[ok], self.to_table(gauge, ref_ns), ref_ns, trace,
                            trace.mapping_uncertainty_s,
                            obstacle=None if obstacle is None else self.to_table(obstacle, ref_ns),
                            out_of_range=int(np.count_nonzero(~ok)))

    def encoder(self, st: FlexionStatus, motion_or_mode: str) -> float:
        """The table's own encoder angle on a motion's axis (deg)."""
        return st.flexion_deg if AXIS[motion_or_mode] == "x" else st.lateral_deg

    # ---------------------------------------------------------------- uncertainty
    def angle_terms(self, estimate: Estimate | None = None, *, calibration: bool = True) -> list[UncertaintyTerm]:
        """An angle's budget: the inclinometer's calibration (k from its certificate), its
        resolution (rectangular over one count, unless the estimate already has it), and
        the estimate's own terms (the fit, the noise of a mean). `calibration=False` for a
        difference of two readings close in angle, where the calibration error cancels."""
        cfg = self.tilt_config
        own = list(estimate.budget) if estimate is not None else []
        terms = []
        if calibration:
            terms.append(UncertaintyTerm.expanded("inclinometer calibration", cfg.calibration.expanded_uncertainty_deg,
                                                  cfg.calibration.coverage_factor))
        if not any(t.name.startswith("inclinometer resolution") for t in own):
            terms.append(UncertaintyTerm.rectangular("inclinometer resolution", cfg.resolution_deg / 2.0))
        return terms + own

    def speed_terms(self, estimate: Estimate, travel_deg: float) -> list[UncertaintyTerm]:
        """A fitted speed's budget: the slope's standard error and the calibration as a
        relative error over the travel it was fitted on (a scale error of the reading)."""
        cal = self.tilt_config.calibration
        speed = abs(estimate.value)
        return [*estimate.budget,
                UncertaintyTerm.expanded("inclinometer calibration (relative over the travel)",
                                         speed * cal.expanded_uncertainty_deg / max(abs(travel_deg), 1.0),
                                         cal.coverage_factor)]

    def timing_terms(self, capture: AngleCapture, trigger_half_width_wall_s: float,
                     trigger: str = "trigger instant (write round trip, relay ≤ 1 ms)") -> list[UncertaintyTerm]:
        """An instant's budget on the angle trace in table seconds: the inclinometer's
        sampling, the trigger instant and the instrument-to-host clock mapping (× K)."""
        return [
            UncertaintyTerm.rectangular("inclinometer sample period", capture.period),
            UncertaintyTerm.rectangular(f"{trigger} × K", trigger_half_width_wall_s * self.k),
            UncertaintyTerm.rectangular("inclinometer-to-host clock mapping × K",
                                        capture.mapping_half_width_s * self.k),
        ]


__all__ = ["ANGLE_RATE_HZ", "AXIS", "AngleCapture", "FlexionBench", "MOVE_SLACK_S", "MOVE_START_S"]
