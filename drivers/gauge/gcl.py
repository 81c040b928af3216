"""Mark-10 style (`gcl`) gauge driver: CR-terminated commands, CR LF replies.

The read path is one query and one parse (partition + float + dict lookup), so a
loopback emulator can be polled several thousand times a second. The gauge has no
identification query: who it is comes from the rig configuration.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pyvisa
from pyvisa import constants

from drivers import lease
from drivers.errors import ConfigError, DeviceError, DeviceProtocolError, DeviceTimeout, GaugeOverload
from drivers.gauge.base import HOST_ARRIVAL, ForceGauge, GaugeIdentity, GaugeTrace
from drivers.gauge.link import DEFAULT_TIMEOUT_MS, VisaLink
from drivers.kinds import register_instrument
from drivers.units import NEWTONS_PER_UNIT, canonical_unit

AOUT_RATES = (1, 2, 5, 10, 25, 50, 125, 250, 500, 1000)
UNIT_COMMANDS = {"N": "N", "lbF": "LB", "kgF": "KG", "gF": "G", "ozF": "OZ", "mN": "MN", "kN": "KN"}
HINT = "gcl: commands end with CR, replies with CR LF"
_EXPECTED = "'<value> <unit>' such as '123.4 N'"
#: Opening a gcl gauge reads until the link has been quiet this long (see _to_known_state).
RESYNC_QUIET_MS = 50.0


@register_instrument("gcl", quantity="force")
class GclGauge(ForceGauge):
    dialect = "gcl"

    def __init__(
        self,
        resource: str,
        *,
        backend: str = "@py",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        time_scale: float = 1.0,
        identity: GaugeIdentity | None = None,
        read_termination: str = "\r\n",
        write_termination: str = "\r",
        check: bool = True,
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self._identity = identity or GaugeIdentity()
        self._stream: _LineCollector | None = None
        self._open(resource, time_scale=time_scale, timeout_ms=timeout_ms, hint=HINT, probe=self._probe, check=check,
                   read_termination=read_termination, write_termination=write_termination, backend=backend,
                   resource_manager=resource_manager)

    def _probe(self) -> None:
        """Prove at open that a gcl gauge answers (an overload answer counts), then show the
        current reading: `?` and AOUT report what the display shows, and a gauge left in
        peak-tension mode by an earlier session would stream peaks as if they were forces."""
        try:
            self.read_current()
        except GaugeOverload:
            pass
        self.set_display("CUR")

    def _to_known_state(self) -> None:
        """A gauge outlives its clients: an earlier session may have left half a command in
        its buffer or an AOUT stream running. Over a serial line always; over a socket too
        when the socket ends at a serial device server, or when the gauge still streams to
        a client whose link was severed (nothing closed that connection). A bare CR ends
        the partial line, AOUT0 stops the stream (the contract's only stop), and whatever
        was already on its way (the *10 for the partial line, stream lines) is read away
        until the link is quiet. gcl has no error queue: nothing else to clear."""
        self._link.write("\rAOUT0")
        self._link.drain(quiet_ms=RESYNC_QUIET_MS)

    # -- readings ------------------------------------------------------------------------
    def _reading(self, command: str) -> float:
        if self._stream is not None:
            self._busy()
        return self._parse(command, self._link.query(command))

    def _parse(self, command: str, reply: str) -> float:
        """A `123.4 N` reply in newtons, or the error the reply stands for."""
        value, _, unit = reply.partition(" ")
        npu = NEWTONS_PER_UNIT.get(unit)
        if npu is not None:
            try:
                return float(value) * npu
            except ValueError:
                pass
        raise self._reply_error(command, reply, _EXPECTED)

    def read(self) -> float:
        return self._reading("?")

    def read_current(self) -> float:
        return self._reading("?C")

    def peak_tension(self) -> float:
        return self._reading("?PT")

    def peak_compression(self) -> float:
        return self._reading("?PC")

    # -- settings ------------------------------------------------------------------------------
    def _command(self, command: str) -> None:
        if self._stream is not None:
            self._busy()
        reply = self._link.query(command)
        if reply != "R":
            raise self._reply_error(command, reply, "'R'")

    def tare(self) -> None:
        self._command("Z")

    def clear_peaks(self) -> None:
        self._command("CLR")

    def set_unit(self, unit: str) -> None:
        try:
            self._command(UNIT_COMMANDS[canonical_unit(unit)])
        except ValueError as exc:
            raise ConfigError(f"{self.resource}: {exc}") from None

    def set_display(self, mode: str) -> None:
        """What `?` (and AOUT) report: 'CUR', 'PT' (peak tension) or 'PC' (peak compression)."""
        if mode not in ("CUR", "PT", "PC"):
            raise ConfigError(f"{self.resource}: display mode must be CUR, PT or PC, not {mode!r}")
        self._command(mode)

    def set_filters(self, current_exp: int | None = None, peak_exp: int | None = None) -> None:
        """Average current / peak readings over 2^n internal samples (n 0..10)."""
        for prefix, n in (("FLTC", current_exp), ("FLTP", peak_exp)):
            if n is not None:
                if not 0 <= int(n) <= 10:
                    raise ConfigError(f"{self.resource}: filter exponent must be 0..10, not {n}")
                self._command(f"{prefix}{int(n)}")

    def identity(self) -> GaugeIdentity:
        return self._identity

    # -- streaming --------------------------------------------------------------------------------
    def start_stream(self, rate_hz: float) -> None:
        if self._stream is not None:
            self._busy()
        n = int(rate_hz)
        if n != rate_hz or n not in AOUT_RATES:
            raise ConfigError(
                f"{self.resource}: gcl streams at {', '.join(map(str, AOUT_RATES))} lines/s, not {rate_hz}"
            )
        # a read only times out when the stream really stalls: a timeout cuts a line in
        # two (pyvisa drops the part it had), and the tail could parse as a wrong value
        period_wall_ms = 1000.0 / (n * self.time_scale)
        self._link.set_timeout(max(self._link.timeout_ms, 3.0 * period_wall_ms))
        collector = _LineCollector(self._link, rate_hz=n)
        collector.host_t0_ns = time.perf_counter_ns()
        try:
            self._link.write(f"AOUT{n}")
        except BaseException:
            self._link.restore_timeout()
            raise
        self._stream = collector
        collector.start()

    def live_samples(self, since: int) -> tuple[int, list[int], list[float]]:
        collector = self._stream
        if collector is None:
            return since, [], []
        n = min(len(collector.stamps), len(collector.lines))  # the collector appends stamp, then line
        stamps, lines = collector.stamps[since:n], collector.lines[since:n]
        values = []
        for line in lines:
            try:
                values.append(self._stream_value(line))
            except Exception:  # noqa: BLE001 — a line stop_stream() will judge; the panel shows a gap
                values.append(float("nan"))
        return n, stamps, values

    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        collector = self._stream
        assert collector is not None
        collector.target = n
        while len(collector.stamps) < n and collector.is_alive():
            remaining = (deadline_ns - time.perf_counter_ns()) * 1e-9
            if remaining <= 0:
                break
            collector.reached.wait(min(remaining, 0.02))
            lease.progress()  # a bounded wait for the stream: the runner is alive and on time

    def stop_stream(self) -> GaugeTrace:
        collector = self._stream
        if collector is None:
            raise ConfigError(f"{self.resource}: stop_stream() without start_stream()")
        self._stream = None
        collector.stop = True
        try:
            self._link.write("AOUT0")
            # the collector is blocked in a read: a reading's reply wakes it at once,
            # instead of after its timeout when the stream is slow
            self._link.write("?C")
            collector.join(self._link.inst.timeout / 1000.0 + 1.0)
            # lines already on their way, and the wake-up reply; reading until quiet also
            # empties pyvisa-py's pending buffer, so no clear() is needed
            self._link.drain(quiet_ms=50.0)
        finally:
            self._link.restore_timeout()
        if collector.error is not None:
            raise collector.error
        n = len(collector.lines)
        return GaugeTrace(
            t=(np.array(collector.stamps[:n], dtype=np.int64) - collector.host_t0_ns) * 1e-9,
            force_n=np.array([self._stream_value(line) for line in collector.lines], dtype=float),
            time_base=HOST_ARRIVAL,
            host_t0_ns=collector.host_t0_ns,
            time_scale=self.time_scale,
            rate_hz=float(collector.rate_hz),
            resource=self.resource,
        )

    def _stream_value(self, line: str) -> float:
        if line == "*21":
            return float("nan")
        return self._parse("AOUT stream", line)

    # -- errors -----------------------------------------------------------------------------------
    def _reply_error(self, command: str, reply: str, expected: str) -> DeviceError:
        if reply == "*21":
            return GaugeOverload(self.resource, f"overload (*21) on {command!r}", "reduce the force below 120 % of the gauge's capacity")
        if reply == "*10":
            return DeviceProtocolError(self.resource, f"gauge did not understand {command!r} (*10)", f"is it a gcl gauge? ({HINT})")
        if reply == "*11":
            return DeviceProtocolError(self.resource, f"value out of range in {command!r} (*11)", "see the gcl command table")
        return self._unexpected(command, reply, expected)

    def _busy(self) -> None:
        raise ConfigError(f"{self.resource}: the gauge is streaming; call stop_stream() first")

    @property
    def streaming(self) -> bool:
        return self._stream is not None


class _LineCollector(threading.Thread):
    """Reads AOUT lines and stamps each one the moment its read returns.

    Lines read after stop was requested are not kept: they arrived after the caller
    decided the trace ends (and one of them is the wake-up reply).
    """

    def __init__(self, link: VisaLink, rate_hz: int) -> None:
        super().__init__(name=f"gcl-stream {link.resource}", daemon=True)
        self.link = link
        self.rate_hz = rate_hz
        self.host_t0_ns = 0
        self.stamps: list[int] = []
        self.lines: list[str] = []
        self.stop = False
        self.target = 0
        self.reached = threading.Event()
        self.error: DeviceError | None = None

    def run(self) -> None:
        read = self.link.inst.read
        now = time.perf_counter_ns
        stamps, lines = self.stamps, self.lines
        try:
            while not self.stop:
                try:
                    line = read()
                except Exception as exc:
                    if not self.stop:
                        self.error = self._failure(exc)
                    return
                stamp = now()
                if self.stop:
                    return
                stamps.append(stamp)
                lines.append(line)
                if self.target and len(lines) >= self.target:
                    self.reached.set()
        finally:
            self.reached.set()

    def _failure(self, exc: BaseException) -> DeviceError:
        if isinstance(exc, pyvisa.VisaIOError) and exc.error_code == constants.StatusCode.error_timeout:
            error: DeviceError = DeviceTimeout(
                self.link.resource, f"AOUT{self.rate_hz} lines stopped arriving", f"check the cable and dialect ({HINT})"
            )
        else:
            error = self.link.error(exc, None)
        error.__cause__ = exc
        return error
