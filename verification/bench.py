"""What the suites do to a table, in table seconds and newtons.

`Bench` wraps an open traction rig: bring the table to a known state, command a
treatment, wait for a phase, capture the reference gauge and express every instant in
table seconds relative to a host instant (the time scale K is applied here, once). What
does not depend on the protocol is `TableBench`'s, shared with the flexion-distraction
bench (verification/fd_bench.py), not copied into it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import allure
import numpy as np

from drivers import lease
from drivers.controller import CommandRefused
from drivers.errors import DeviceError
from drivers.gauge.base import HOST_ARRIVAL, GaugeTrace
from drivers.tcm1 import Holding, Phase, StimulusCoil
from drivers.units import n_to_dn, s_to_ds
from drivers.priority import ahead_while
from drivers.watchdog import HeartbeatKeeper
from rigs.rig import Rig
from verification.measurement import UncertaintyTerm

#: gauge rates (gauge clock): buffered scpi can go fast; gcl lines are host-stamped
GAUGE_RATE_HZ = {"scpi": 1000.0, "gcl": 250.0}
POLL_WALL_S = 0.002


def retime_stream(trace: GaugeTrace) -> tuple[np.ndarray, float]:
    """Sample instants of a streamed (host-stamped) trace, without the transport's jitter.

    A gcl gauge emits its lines on its own clock at a fixed period; the host stamps
    them late by a varying transport delay. The line index times the fitted period,
    shifted to the lower envelope of the arrivals (the least-delayed lines), gives each
    line's emission instant. Returns wall seconds since host_t0_ns and the half-width of
    that mapping (the spread of the least-delayed few percent). Falls back to arrival
    stamps when lines were evidently lost (residuals of many periods).
    """
    t = trace.t
    n = len(t)
    if n < 20:
        return t, float(np.ptp(t)) if n else 0.0
    i = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(i, t, 1)
    resid = t - (slope * i + intercept)
    nominal = 1.0 / (trace.rate_hz * trace.time_scale) if trace.rate_hz else slope
    # lost lines make the index run slow against the clock: then only arrival stamps are honest
    if np.ptp(resid) > 20 * slope or abs(slope / nominal - 1.0) > 0.01:
        jitter = np.abs(np.diff(t) - slope)
        return t, float(np.percentile(jitter, 99))
    floor = float(np.min(resid))
    # the least-delayed line was still late by its one-way delay: on a socket ~0.1 ms,
    # on a serial line at least the time to transmit one line (10 bits a character)
    serial = trace.resource.upper().startswith("ASRL")
    spread = 1e-4 + (12 * 10 / 115200 if serial else 0.0)
    return slope * i + intercept + floor, spread


class BenchTimeout(AssertionError):
    """The table did not reach a state within the (table-time) bound."""


@dataclass
class Capture:
    """A gauge trace in table seconds relative to a host reference instant."""

    t: np.ndarray
    force: np.ndarray
    trace: GaugeTrace
    ref_ns: int

    @property
    def period(self) -> float:
        return float(np.median(np.diff(self.t))) if len(self.t) > 1 else float("nan")


class TableBench:
    """What every kind of table's bench shares: the rig's controller, stimulus module and
    reference gauge, table time (K applied once), bounded waits on the controller's
    status, the trigger instants of relay and coil writes, the gauge in table seconds and
    its budget, the release mid-test. A protocol's bench (traction `Bench`,
    verification/fd_bench.py `FlexionBench`) adds how its table is prepared, told a
    treatment and captured; `IDLE` is its PHASE 0 (idle in every protocol of the family)."""

    IDLE = Phase.IDLE
    #: the phases a released table may stand in before a test (before its RESET)
    AT_REST_PHASES = (Phase.IDLE,)

    def __init__(self, rig: Rig, keeper: HeartbeatKeeper, feed=None) -> None:
        self.rig = rig
        self.feed = feed  # the panel's live feed (fixtures/live_feed.py), or None
        self.ctrl = rig.controller
        self.gauge = rig.gauge
        self.stim = rig.stimulus
        self.keeper = keeper
        self.k = rig.time_scale
        self.residual_n = self.ctrl.residual_force()
        self.dialect = rig.config.gauge.dialect
        self.rate_hz = GAUGE_RATE_HZ[self.dialect]
        self.now: dict = {}

    # ---------------------------------------------------------------- time
    def sleep(self, table_s: float) -> None:
        lease.sleep(max(0.0, table_s) / self.k)

    def table_s(self, ns_from: int, ns_to: int) -> float:
        return (ns_to - ns_from) / 1e9 * self.k

    def wait(self, predicate, table_timeout_s: float, what: str):
        deadline = time.perf_counter() + table_timeout_s / self.k + 2.0
        while True:
            st = self.ctrl.status()
            if predicate(st):
                return st
            if time.perf_counter() > deadline:
                raise BenchTimeout(
                    f"{what}: not reached within {table_timeout_s:g} s of table time "
                    f"(phase {st.phase.name}, force {st.force_n:.1f} N, fault {st.fault_code.name})"
                )
            time.sleep(POLL_WALL_S)

    def poll_until(self, predicate, table_timeout_s: float):
        """Like wait(), but a timeout is an answer (the table under test may be defective)."""
        deadline = time.perf_counter() + table_timeout_s / self.k
        while True:
            st = self.ctrl.status()
            if predicate(st):
                return st, True
            if time.perf_counter() > deadline:
                return st, False
            time.sleep(POLL_WALL_S)

    def start_refused(self) -> bool:
        """Try START: True when the controller refuses it (what a latched table must do)."""
        try:
            self.ctrl.start()
        except CommandRefused:
            return True
        return False

    def released(self, st) -> bool:
        """Released by the protocol's own rule (its status class says what that takes) and idle."""
        return st.released(self.residual_n) and st.phase == self.IDLE

    def wait_phase(self, phase, table_timeout_s: float):
        return self.wait(lambda s: s.phase is phase, table_timeout_s, f"phase {phase.name}")

    # ---------------------------------------------------------------- state
    def _rest_relays(self) -> None:
        """Relays at rest before anything moves or pulls: the stimulus module is one of the
        paths that release the table (its e-stop relay, its mains cut), and no treatment
        starts while one of them is out of order."""
        problems = self.stim.release_all()
        if problems:
            raise DeviceError(self.stim.device, f"a relay could not be set to rest ({problems[0]})",
                              "no treatment starts while a path that releases the table is out of order: "
                              "check the stimulus module's link and power")

    def _released_and_reset(self, table_timeout_s: float = 10.0):
        """Watchdog fed, the table released and idle, then RESET (refused while a cause is
        still present: tried again for up to 5 wall seconds)."""
        if self.keeper.paused:
            self.keeper.resume()
        st = self.wait(lambda s: s.released(self.residual_n) and s.phase in self.AT_REST_PHASES, table_timeout_s,
                       "released before the test")
        self.keeper.at_rest(st, self.residual_n)  # no START since: the watchdog's lease may stay open
        deadline = time.perf_counter() + 5.0
        while True:
            try:
                self.ctrl.reset()
                break
            except CommandRefused:
                if time.perf_counter() > deadline:
                    raise
                time.sleep(0.01)
        return st

    def make_safe(self) -> None:
        """Release mid-test (after a trial). A release command that failed stops the
        heartbeat's beats at once (the watchdog is then the next path) and ends the test:
        its teardown runs the whole ladder of rigs/safe_state.py and confirms the release."""
        problems = self.rig.make_safe()
        if problems:
            self.keeper.drop()
            raise DeviceError((self.rig.safety or self.ctrl).device, "the release command failed mid-test (" + "; ".join(problems) + ")",
                              "the heartbeat stopped so the controller's watchdog releases the table")

    def context(self, **fields) -> None:
        """What the panel shows as 'now' (trigger, phase, trial …); nothing is measured by it.
        Kept as `now`: a test that breaks off is reported at this step."""
        self.now = fields
        if self.feed is not None:
            self.feed.context(**fields)

    # ---------------------------------------------------------------- gauge
    def to_table(self, trace: GaugeTrace, ref_ns: int) -> Capture:
        if trace.time_base == HOST_ARRIVAL:
            t, spread = retime_stream(trace)
        else:
            t, spread = trace.t / trace.time_scale, trace.mapping_uncertainty_s
        t = ((trace.host_t0_ns - ref_ns) / 1e9 + t) * self.k
        ok = np.isfinite(trace.force_n)
        cap = Capture(t[ok], trace.force_n[ok], trace, ref_ns)
        cap.mapping_half_width_s = spread  # wall seconds
        return cap

    # ---------------------------------------------------------------- uncertainty
    def force_terms(self, samples: np.ndarray) -> list[UncertaintyTerm]:
        """Reference-force budget of a mean: calibration (k=2), resolution, noise of the mean."""
        return self.force_terms_of(float(np.std(samples)), len(samples))

    def force_terms_of(self, std: float, n: int) -> list[UncertaintyTerm]:
        g = self.rig.config.gauge
        return [
            UncertaintyTerm.expanded("gauge calibration", g.calibration.expanded_uncertainty_n, g.calibration.coverage_factor),
            UncertaintyTerm.rectangular("gauge resolution", g.resolution_n / 2.0),
            UncertaintyTerm("noise of the mean", std / n**0.5 if n > 1 else std),
        ]

    def timing_terms(self, capture: Capture, trigger_half_width_wall_s: float,
                     trigger: str = "trigger instant (write round trip, relay ≤ 1 ms)") -> list[UncertaintyTerm]:
        """Latency budget in table seconds: sampling, trigger instant, clock mapping (all x K).

        `trigger` says how the trigger instant was known (it names the budget's line)."""
        trace = capture.trace
        terms = [
            UncertaintyTerm.rectangular("gauge sample period", capture.period),
            UncertaintyTerm.rectangular(f"{trigger} × K", trigger_half_width_wall_s * self.k),
        ]
        name = ("streamed-line clock (lower envelope of arrivals) × K" if trace.time_base == HOST_ARRIVAL
                else "instrument-to-host clock mapping × K")
        terms.append(UncertaintyTerm.rectangular(name, capture.mapping_half_width_s * self.k))
        return terms

    def relay(self, relay: StimulusCoil, on: bool) -> tuple[int, float]:
        """Drive a relay; returns (trigger instant ns, its half-width in wall s).

        The module acts after receiving the write and within 1 ms of acknowledging it,
        so the relay moved somewhere in [send, ack + 1 ms]: the midpoint, ± half of it. The
        write runs ahead of ordinary work (a neighbour taking the core before the reply is
        picked up widens the instant: `drivers.priority.ahead_while`)."""
        with ahead_while():
            sent = time.perf_counter_ns()
            ack = self.stim.set(relay, on)
        return (sent + ack + 1_000_000) // 2, (ack - sent + 1_000_000) / 2e9

    def coil_trigger(self, write) -> tuple[int, float]:
        """A controller coil acts between the write's send and its ack: midpoint ± half
        (the write ahead of ordinary work, as `relay`)."""
        with ahead_while():
            sent = time.perf_counter_ns()
            ack = write()
        return (sent + ack) // 2, (ack - sent) / 2e9


class Bench(TableBench):
    """A traction table's bench (TCM-1): force treatments, the gauge streamed alone."""

    # ---------------------------------------------------------------- state
    @allure.step("prepare the table: relays at rest, released, RESET, ENABLE")
    def prepare(self) -> None:
        """Relays at rest, table released, latches cleared, drive enabled, watchdog fed.

        A relay that cannot be set to rest ends the test before anything pulls: the stimulus
        module is one of the paths that release the table (its e-stop relay, its mains
        cut), and no treatment starts while one of them is out of order."""
        self._rest_relays()
        self._released_and_reset()
        self.ctrl.write_holding(Holding.MODE, 0)
        self.ctrl.write_holding(Holding.TREATMENT_TIME, 0)
        self.ctrl.enable()

    @allure.step("command the treatment: {target_n} N at {up_n_s} N/s")
    def configure(self, target_n: float, up_n_s: float, down_n_s: float | None = None, *, intermittent: bool = False,
                  rest_n: float = 0.0, hold_s: float = 1.0, rest_s: float = 1.0, treatment_s: int = 0,
                  testing_interlock: bool = False) -> None:
        if not testing_interlock:
            self.ctrl._guard(target_n, "target force", False)
        self.ctrl.write_holdings(Holding.TARGET_FORCE, [
            n_to_dn(target_n), n_to_dn(up_n_s), n_to_dn(down_n_s or up_n_s), int(intermittent),
            s_to_ds(hold_s), s_to_ds(rest_s), n_to_dn(rest_n),
        ])
        self.ctrl.write_holding(Holding.TREATMENT_TIME, int(treatment_s))

    # ---------------------------------------------------------------- gauge
    @contextmanager
    def capture(self, holder: list):
        """Stream the gauge while the block runs; appends the GaugeTrace to `holder`."""
        self.gauge.start_stream(self.rate_hz)
        if self.feed is not None:
            self.feed.capture_started(self.gauge)
        trace = None
        try:
            yield
        finally:
            try:
                trace = self.gauge.stop_stream()
                holder.append(trace)
            finally:
                if self.feed is not None:
                    self.feed.capture_ended(trace)
