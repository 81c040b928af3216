"""The reference force gauge as the rest of traction-rig sees it.

Small on purpose (labgrid style): what a suite needs from an independent force
reference, in newtons, whatever unit the gauge displays. Each reading's unit is taken
from the device (gcl replies carry it; scpi has UNIT:FORC) and converted through
drivers/units.py, so a gauge left in lbF by a colleague still reads right.

Clocks: a gauge's own periods and stamps are in the clock of the table it measures
(shared/protocols/force-gauges.md). Against an emulated table running K times faster
(`time_scale` = K) a gcl AOUTn stream arrives at n*K lines per wall second and a
scpi buffer's instrument times count K seconds per wall second. Durations and rates
passed to `stream()` are in the gauge's clock; `GaugeTrace` says which clock its `t`
is in and how to map it onto the host's perf_counter_ns.
"""

from __future__ import annotations

import abc
import datetime
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from drivers import lease
from drivers.errors import ConfigError, DeviceTimeout

HOST_ARRIVAL = "host-arrival"
INSTRUMENT = "instrument"


@dataclass(frozen=True)
class GaugeIdentity:
    """Who the reference is. For gcl gauges (no identification query) it comes from the
    rig configuration; for scpi from *IDN? and CAL:DATE?/CAL:DUE?."""

    maker: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    cal_date: datetime.date | None = None
    cal_due: datetime.date | None = None
    source: str = "configuration"  # or "device"


@dataclass
class GaugeTrace:
    """A stream of readings.

    `time_base`:
      * "host-arrival" (gcl AOUT): `t` is *wall* seconds since `host_t0_ns` (the host's
        perf_counter_ns just before AOUTn was written), stamped as each line arrived;
        its resolution is the line period plus the transport's jitter.
      * "instrument" (scpi INIT/TRAC:DATA?): `t` is the instrument's own time since
        INIT, in the *table* clock (K = `time_scale` table seconds per wall second);
        `host_t0_ns` is the host perf_counter_ns at which instrument time 0 happened,
        estimated by bracketing TRIG:TIME?, within +-`mapping_uncertainty_s` (wall).
    `force_n` is NaN where the gauge reported an overload.
    """

    t: np.ndarray
    force_n: np.ndarray
    time_base: str
    host_t0_ns: int
    time_scale: float = 1.0
    rate_hz: float = 0.0  # nominal rate, gauge (table) clock
    mapping_uncertainty_s: float = 0.0
    resource: str = ""

    def __len__(self) -> int:
        return len(self.t)

    def host_ns(self) -> np.ndarray:
        """Each sample's instant on the host's perf_counter_ns scale (float)."""
        wall_s = self.t if self.time_base == HOST_ARRIVAL else self.t / self.time_scale
        return self.host_t0_ns + wall_s * 1e9

    def head(self, n: int) -> "GaugeTrace":
        return GaugeTrace(
            self.t[:n], self.force_n[:n], self.time_base, self.host_t0_ns, self.time_scale,
            self.rate_hz, self.mapping_uncertainty_s, self.resource,
        )


class ForceGauge(abc.ABC):
    """A reference force gauge. Forces in newtons (tension positive), times in seconds."""

    dialect: ClassVar[str]
    resource: str
    time_scale: float
    #: Wall seconds stream(n_samples=...) waits beyond twice the expected duration.
    stream_slack_s: float = 5.0

    # -- readings ----------------------------------------------------------------------
    @abc.abstractmethod
    def read(self) -> float:
        """The displayed reading, newtons."""

    @abc.abstractmethod
    def read_current(self) -> float:
        """The current (not peak) reading, newtons."""

    @abc.abstractmethod
    def peak_tension(self) -> float:
        """Peak tension since clear_peaks()/tare(), newtons (>= 0)."""

    @abc.abstractmethod
    def peak_compression(self) -> float:
        """Peak compression since clear_peaks()/tare(), newtons (<= 0)."""

    # -- settings ------------------------------------------------------------------------
    @abc.abstractmethod
    def tare(self) -> None: ...

    @abc.abstractmethod
    def clear_peaks(self) -> None: ...

    @abc.abstractmethod
    def set_unit(self, unit: str) -> None:
        """Change the gauge's display unit; readings stay in newtons."""

    @abc.abstractmethod
    def identity(self) -> GaugeIdentity: ...

    # -- streaming --------------------------------------------------------------------------
    @abc.abstractmethod
    def start_stream(self, rate_hz: float) -> None:
        """Start streaming at `rate_hz` (gauge clock). Other commands wait for stop_stream()."""

    @abc.abstractmethod
    def stop_stream(self) -> GaugeTrace: ...

    def live_samples(self, since: int) -> tuple[int, list[int], list[float]]:
        """Samples of the running stream from index `since` on, without a word to the gauge:
        (next index, host perf_counter_ns stamps, newtons). A gauge that buffers its
        acquisition (scpi) has none until stop_stream(); safe from another thread."""
        return since, [], []

    @abc.abstractmethod
    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        """Block until n samples were collected or the host's perf_counter_ns passes deadline_ns."""

    def stream(
        self, duration_s: float | None = None, n_samples: int | None = None, rate_hz: float = 1000.0
    ) -> GaugeTrace:
        """Record a trace of `duration_s` (gauge clock) or of `n_samples` readings."""
        if (duration_s is None) == (n_samples is None):
            raise ConfigError(f"{self.resource}: stream() needs exactly one of duration_s or n_samples")
        self.start_stream(rate_hz)
        try:
            if n_samples is not None:
                expected_wall_s = n_samples / rate_hz / self.time_scale
                deadline_s = 2.0 * expected_wall_s + self.stream_slack_s
                self._wait_for_samples(n_samples, time.perf_counter_ns() + int(deadline_s * 1e9))
            else:
                lease.sleep(max(0.0, duration_s) / self.time_scale)
        finally:
            trace = self.stop_stream()
        if n_samples is None:
            return trace
        if len(trace) < n_samples:
            raise DeviceTimeout(
                self.resource,
                f"only {len(trace)} of {n_samples} samples arrived",
                "check the stream rate and the gauge's time_scale",
            )
        return trace.head(n_samples)

    # -- lifetime ------------------------------------------------------------------------------
    def _open(self, resource: str, *, time_scale: float, timeout_ms: int, hint: str, probe, check: bool,
              **link_options) -> None:
        """Open the VISA link and, unless `check` is off, prove the gauge answers in this
        dialect (pyvisa-py "opens" a closed TCP port without complaint)."""
        from drivers.gauge.link import VisaLink

        self.resource = resource
        self.hint = hint
        self.time_scale = float(time_scale)
        self.stream_slack_s = 2.0 * timeout_ms / 1000.0
        self._link = VisaLink(resource, hint=hint, timeout_ms=timeout_ms, **link_options)
        if check:
            try:
                self._to_known_state()
                probe()
            except BaseException:
                self._link.close()
                raise

    @abc.abstractmethod
    def _to_known_state(self) -> None:
        """At open, before the gauge is asked who it is: stop any acquisition in progress,
        clear its error state and drain the stale bytes on the link. A gauge outlives the
        run that used it: a run killed mid-capture, or a severed link, leaves it streaming
        or acquiring (and a serial line with half a command or old replies in flight); the
        next run must find it as the contract's commands leave it, not need a hand-sent ABOR."""

    def _unexpected(self, command: str, reply: str, expected: str):
        from drivers.errors import DeviceProtocolError

        return DeviceProtocolError(
            self.resource,
            f"unexpected reply {reply[:60]!r} to {command!r}, expected {expected}",
            f"wrong dialect or termination? ({self.hint})",
        )

    @property
    @abc.abstractmethod
    def streaming(self) -> bool:
        """A stream or buffered acquisition is running."""

    def close(self) -> None:
        """Stop any stream (best effort: closing must not fail on a dead gauge), then the link."""
        if self.streaming:
            try:
                self.stop_stream()
            except Exception:  # noqa: BLE001
                pass
        self._link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.resource}>"
