"""A reference instrument on a VISA link: what every gauge and inclinometer driver shares.

A reference instrument (force gauge, inclinometer) is opened at a VISA resource, proved to
answer in its dialect, brought to a known state, streams or buffers readings, and is
closed without failing on a dead link. Those steps are the same whatever it measures, so
they live here once; each quantity's base class (drivers/gauge/base.py `ForceGauge`,
drivers/inclinometer/base.py `Inclinometer`) adds its readings in SI.
"""

from __future__ import annotations

import abc
import datetime
import time
from dataclasses import dataclass
from typing import ClassVar

from drivers import lease
from drivers.errors import ConfigError, DeviceProtocolError, DeviceTimeout


@dataclass(frozen=True)
class InstrumentIdentity:
    """Who the reference is. For gcl gauges (no identification query) it comes from the
    rig configuration; for SCPI instruments (scpi, tilt) from *IDN? and CAL:DATE?/CAL:DUE?."""

    maker: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    cal_date: datetime.date | None = None
    cal_due: datetime.date | None = None
    source: str = "configuration"  # or "device"


class ReferenceInstrument(abc.ABC):
    """Opening, the known state, protocol errors and closing of a VISA instrument."""

    dialect: ClassVar[str]
    resource: str
    time_scale: float
    #: what a message calls it ("gauge", "inclinometer")
    noun: ClassVar[str] = "instrument"
    #: stream()'s rate when none is given (Hz, the instrument's clock)
    default_rate_hz: ClassVar[float] = 100.0
    #: Wall seconds stream(n_samples=...) waits beyond twice the expected duration.
    stream_slack_s: float = 5.0

    def _open(self, resource: str, *, time_scale: float, timeout_ms: int, hint: str, probe, check: bool,
              **link_options) -> None:
        """Open the VISA link and, unless `check` is off, prove the instrument answers in
        this dialect (pyvisa-py "opens" a closed TCP port without complaint)."""
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
        """At open, before the instrument is asked who it is: stop any acquisition in
        progress, clear its error state and drain the stale bytes on the link. An
        instrument outlives the run that used it: a run killed mid-capture, or a severed
        link, leaves it streaming or acquiring (and a serial line with half a command or old
        replies in flight); the next run must find it as the contract's commands leave it,
        not need a hand-sent ABOR."""

    def _unexpected(self, command: str, reply: str, expected: str) -> DeviceProtocolError:
        return DeviceProtocolError(
            self.resource,
            f"unexpected reply {reply[:60]!r} to {command!r}, expected {expected}",
            f"wrong dialect or termination? ({self.hint})",
        )

    @property
    @abc.abstractmethod
    def streaming(self) -> bool:
        """A stream or buffered acquisition is running."""

    @abc.abstractmethod
    def start_stream(self, rate_hz: float) -> None:
        """Start streaming or acquiring at `rate_hz` (the instrument's clock)."""

    @abc.abstractmethod
    def stop_stream(self):
        """End the stream or acquisition; the trace it collected (with `head(n)` and `len`)."""

    @abc.abstractmethod
    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        """Block until n samples were collected or the host's perf_counter_ns passes deadline_ns."""

    def stream(self, duration_s: float | None = None, n_samples: int | None = None, rate_hz: float | None = None):
        """Record a trace of `duration_s` (the instrument's clock) or of `n_samples` readings."""
        if (duration_s is None) == (n_samples is None):
            raise ConfigError(f"{self.resource}: stream() needs exactly one of duration_s or n_samples")
        rate_hz = self.default_rate_hz if rate_hz is None else rate_hz
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
                f"check the stream rate and the {self.noun}'s time_scale",
            )
        return trace.head(n_samples)

    def close(self) -> None:
        """Stop any stream (best effort: closing must not fail on a dead instrument), then the link."""
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
