"""SCPI load-cell indicator (`scpi`) driver: LF-terminated, buffered acquisition.

Replies carry no unit, so the driver learns UNIT:FORC? at open and tracks what it
sets; readings are converted to newtons with that unit. Commands that answer nothing
are followed by SYST:ERR? where a refusal is possible, so a rejected setting raises
with the instrument's own error text instead of passing silently.

A buffered acquisition carries the instrument's timestamps (table clock). To place
them on the host's clock the driver brackets TRIG:TIME? between two host stamps, keeps
the tightest of a few tries, and reports the half round trip as the uncertainty.
"""

from __future__ import annotations

import datetime
import time

import numpy as np
import pyvisa

from drivers.errors import ConfigError, DeviceProtocolError, GaugeOverload
from drivers.gauge.base import INSTRUMENT, ForceGauge, GaugeIdentity, GaugeTrace
from drivers.gauge.link import DEFAULT_TIMEOUT_MS
from drivers.kinds import register_instrument
from drivers.units import NEWTONS_PER_UNIT, canonical_unit

HINT = "scpi: commands and replies end with LF"
#: SCPI spelling of the units such an indicator offers.
SCPI_UNIT = {"N": "N", "lbF": "LBF", "kgF": "KGF"}
#: Readings at or beyond this magnitude are SCPI's over-range marker (9.9E37).
OVERRANGE = 9.0e37
RATE_MIN, RATE_MAX = 1.0, 10000.0
#: Opening reads until the link has been quiet this long (stale replies, see _to_known_state).
OPEN_QUIET_MS = 50.0
_MAPPING_TRIES = 3
_DRAIN_PERIOD_S = 0.05


@register_instrument("scpi", quantity="force")
class ScpiGauge(ForceGauge):
    dialect = "scpi"

    def __init__(
        self,
        resource: str,
        *,
        backend: str = "@py",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        time_scale: float = 1.0,
        read_termination: str = "\n",
        write_termination: str = "\n",
        check: bool = True,
        resource_manager: pyvisa.ResourceManager | None = None,
    ) -> None:
        self._unit = "N"
        self._npu = 1.0
        self._acq: _Acquisition | None = None
        self._open(resource, time_scale=time_scale, timeout_ms=timeout_ms, hint=HINT, probe=self._probe, check=check,
                   read_termination=read_termination, write_termination=write_termination, backend=backend,
                   resource_manager=resource_manager)

    def _probe(self) -> None:
        """Prove at open that a scpi indicator answers, and learn its unit."""
        self._idn()
        self._learn_unit()

    def _to_known_state(self) -> None:
        """An indicator outlives the run that used it: one killed during a capture, or whose
        link was severed, leaves its acquisition running, and every later SAMP:RATE is
        refused (-221, "Settings conflict"); a serial line may also hold half a command or
        replies nobody read. A bare LF ends a partial command, ABOR stops the acquisition
        (the buffer it filled is cleared by the next INIT), *CLS empties the error queue of
        whatever the earlier session and the partial line left (so later SYST:ERR? checks
        report our own commands), and replies already on their way are read away until
        the link is quiet. None of these commands answers, so nothing of ours is drained."""
        for command in ("", "ABOR", "*CLS"):
            self._link.write(command)
        self._link.drain(quiet_ms=OPEN_QUIET_MS)

    # -- readings ---------------------------------------------------------------------------
    def read(self) -> float:
        if self._acq is not None:
            self._busy()
        reply = self._link.query("MEAS:FORC?")
        try:
            value = float(reply)
        except ValueError:
            raise self._unexpected("MEAS:FORC?", reply, "an NR3 number such as '+1.234500E+02'") from None
        if abs(value) >= OVERRANGE:
            raise GaugeOverload(self.resource, "over-range reading (9.9E37)", "reduce the force below 120 % of the gauge's capacity")
        return value * self._npu

    read_current = read

    def peak_tension(self) -> float:
        raise self._no_peaks()

    def peak_compression(self) -> float:
        raise self._no_peaks()

    def clear_peaks(self) -> None:
        raise self._no_peaks()

    def _no_peaks(self) -> ConfigError:
        return ConfigError(f"{self.resource}: a scpi indicator keeps no peaks; stream() and take the extremes")

    # -- settings ------------------------------------------------------------------------------
    def _set(self, command: str) -> None:
        """A command that answers nothing, then SYST:ERR? so a refusal is not silent."""
        if self._acq is not None and not command.startswith(("ABOR", "INIT")):
            self._busy()
        self._link.write(command)
        self.check_errors(command)

    def check_errors(self, after: str = "the last command") -> None:
        """Drain the error queue; raise DeviceProtocolError with the first error's text and
        what to do about it (explain_error), counting the others."""
        errors = []
        for _ in range(11):  # queue depth 10 + the overflow entry
            reply = self._link.query("SYST:ERR?")
            code_text, _, message = reply.partition(",")
            try:
                code = int(code_text)
            except ValueError:
                raise self._unexpected("SYST:ERR?", reply, "'<code>,\"<message>\"'") from None
            if code == 0:
                break
            errors.append((code, message.strip().strip('"')))
        if errors:
            (code, message), more = errors[0], len(errors) - 1
            also = f" (and {more} more error{'s' if more > 1 else ''} in the queue)" if more else ""
            raise DeviceProtocolError(self.resource, f"{after!r} rejected: {code},\"{message}\"{also}",
                                      explain_error(code))

    def tare(self) -> None:
        self._set("SENS:ZERO")

    def set_unit(self, unit: str) -> None:
        try:
            canonical = canonical_unit(unit)
        except ValueError as exc:
            raise ConfigError(f"{self.resource}: {exc}") from None
        if canonical not in SCPI_UNIT:
            raise ConfigError(f"{self.resource}: a scpi indicator offers N, LBF or KGF, not {unit!r}")
        self._set(f"UNIT:FORC {SCPI_UNIT[canonical]}")
        self._unit, self._npu = canonical, NEWTONS_PER_UNIT[canonical]

    def _learn_unit(self) -> None:
        reply = self._link.query("UNIT:FORC?")
        try:
            canonical = canonical_unit(reply)
        except ValueError:
            raise self._unexpected("UNIT:FORC?", reply, "N, LBF or KGF") from None
        self._unit, self._npu = canonical, NEWTONS_PER_UNIT[canonical]

    @property
    def unit(self) -> str:
        return self._unit

    def reset(self) -> None:
        """*RST: unit N, 1000 Hz, acquisition stopped, buffer cleared."""
        self._link.write("*RST")
        self._learn_unit()

    # -- identity ---------------------------------------------------------------------------------
    def _idn(self) -> list[str]:
        reply = self._link.query("*IDN?")
        fields = [f.strip() for f in reply.split(",")]
        if len(fields) != 4 or not all(fields[:2]):
            raise self._unexpected("*IDN?", reply, "'Maker,Model,Serial,Firmware'")
        return fields

    def _date(self, command: str) -> datetime.date:
        reply = self._link.query(command)
        try:
            year, month, day = (int(p) for p in reply.split(","))
            return datetime.date(year, month, day)
        except ValueError:
            raise self._unexpected(command, reply, "'year,month,day'") from None

    def identity(self) -> GaugeIdentity:
        if self._acq is not None:
            self._busy()
        maker, model, serial, firmware = self._idn()
        return GaugeIdentity(
            maker, model, serial, firmware, self._date("CAL:DATE?"), self._date("CAL:DUE?"), source="device"
        )

    # -- buffered acquisition -------------------------------------------------------------------------
    def start_stream(self, rate_hz: float) -> None:
        if self._acq is not None:
            self._busy()
        if not RATE_MIN <= rate_hz <= RATE_MAX:
            raise ConfigError(f"{self.resource}: SAMP:RATE must be {RATE_MIN:g}..{RATE_MAX:g} Hz, not {rate_hz}")
        self._set(f"SAMP:RATE {rate_hz:.10g}")
        self._link.write("INIT")
        acq = _Acquisition(rate_hz)
        acq.host_t0_ns, acq.uncertainty_s = self._map_clock()
        self._acq = acq

    def _map_clock(self) -> tuple[int, float]:
        """Host perf_counter_ns of instrument time 0, and the half round trip (s)."""
        best = None
        for _ in range(_MAPPING_TRIES):
            before = time.perf_counter_ns()
            reply = self._link.query("TRIG:TIME?")
            after = time.perf_counter_ns()
            try:
                instrument_s = float(reply)
            except ValueError:
                raise self._unexpected("TRIG:TIME?", reply, "an NR3 time") from None
            half = (after - before) // 2
            if best is None or half < best[1]:
                best = (before + half - round(instrument_s / self.time_scale * 1e9), half)
        return best[0], best[1] * 1e-9

    def _drain(self) -> None:
        acq = self._acq
        reply = self._link.query("TRAC:DATA?")
        if not reply:
            return
        try:
            values = np.array(reply.split(","), dtype=float)
        except ValueError:
            raise self._unexpected("TRAC:DATA?", reply, "'t1,f1,t2,f2,...' NR3 numbers") from None
        if values.size % 2:
            raise self._unexpected("TRAC:DATA?", reply, "pairs 't,f' (an even count of numbers)")
        acq.t.append(values[0::2])
        acq.f.append(values[1::2])
        acq.count += values.size // 2

    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        acq = self._acq
        assert acq is not None
        while acq.count < n:
            self._drain()
            if acq.count >= n:
                break
            remaining_s = (deadline_ns - time.perf_counter_ns()) * 1e-9
            if remaining_s <= 0:
                break
            missing_wall_s = (n - acq.count) / acq.rate_hz / self.time_scale
            time.sleep(min(max(missing_wall_s, 0.001), _DRAIN_PERIOD_S, remaining_s))

    def stop_stream(self) -> GaugeTrace:
        acq = self._acq
        if acq is None:
            raise ConfigError(f"{self.resource}: stop_stream() without start_stream()")
        try:
            self._link.write("ABOR")
            self._drain()
        finally:
            self._acq = None
        t = np.concatenate(acq.t) if acq.t else np.zeros(0)
        f = np.concatenate(acq.f) if acq.f else np.zeros(0)
        forces = np.where(np.abs(f) >= OVERRANGE, np.nan, f * self._npu)
        return GaugeTrace(
            t=t,
            force_n=forces,
            time_base=INSTRUMENT,
            host_t0_ns=acq.host_t0_ns,
            time_scale=self.time_scale,
            rate_hz=acq.rate_hz,
            mapping_uncertainty_s=acq.uncertainty_s,
            resource=self.resource,
        )

    # -- errors ------------------------------------------------------------------------------------------
    def _busy(self) -> None:
        raise ConfigError(f"{self.resource}: a buffered acquisition is running; call stop_stream() first")

    @property
    def streaming(self) -> bool:
        return self._acq is not None


#: What to do about each error the contract names (shared/protocols/force-gauges.md): -113
#: for an unknown command, the standard codes for the others.
CONTRACT_ERRORS = {
    -104: "a parameter of the wrong type (text where a number belongs): check the value the rig sent",
    -108: "more parameters than the command takes: check the command against the scpi table",
    -109: "the command needs a parameter: check the value the rig sent",
    -113: "the indicator does not know this command: is it a scpi indicator (LF-terminated, the contract's "
          "command set)? check the rig file's dialect",
    -222: "a value outside the indicator's range (SAMP:RATE 1..10000 Hz): check the rate or setting asked for",
    -224: "a value the indicator does not offer (UNIT:FORC N, LBF or KGF): check the unit asked for",
    -350: "more than 10 errors queued, the later ones were lost: the first one above is the cause; "
          "the driver clears the queue (*CLS) at every open",
}
#: Standard SCPI codes beyond the contract's list that an indicator is known to answer.
OTHER_ERRORS = {
    -221: "an acquisition is still running, so its settings cannot change: a run killed during a capture, or "
          "whose gauge link was cut, leaves it running; the driver sends ABOR on open, so opening the gauge "
          "again clears it; if seen mid-run, another client started an acquisition on this gauge (only one "
          "rig may use it)",
    -213: "INIT while an acquisition was running: reopen the gauge (ABOR on open); only one rig may use it",
    -200: "the indicator could not execute the command in its present state: reopen the gauge (the driver "
          "stops any acquisition and clears errors on open); if it persists, power-cycle the indicator",
    -310: "the indicator reports an internal fault: power-cycle it; if it persists it needs service",
    -363: "the indicator's input buffer overran (commands sent faster than it reads): reopen the gauge and "
          "check the serial line's baud rate (115200 8N1)",
    -410: "a query was interrupted (a new command before its reply was read, e.g. after a cut link): reopen "
          "the gauge, which drains stale replies",
    -420: "a reply was asked for but nothing was queried (e.g. after a cut link): reopen the gauge",
}


def explain_error(code: int) -> str:
    """What to do about a SCPI error, for every code: the contract's list, the standard
    codes known beyond it, else the SCPI class the code belongs to (an unknown code must
    still say which way to look, not "see the command table")."""
    if code in CONTRACT_ERRORS:
        return CONTRACT_ERRORS[code]
    if code in OTHER_ERRORS:
        return OTHER_ERRORS[code]
    if -199 <= code <= -100:
        return (f"a command error (SCPI class -100) the contract does not list: the indicator did not accept the "
                f"command's form; check it is a scpi indicator of this dialect and see its manual for {code}")
    if -299 <= code <= -200:
        return (f"an execution error (SCPI class -200) the contract does not list: the command was understood but "
                f"not possible in the indicator's present state; reopen the gauge (ABOR and *CLS on open), and see "
                f"its manual for {code} if it persists")
    if -399 <= code <= -300:
        return (f"a device-specific error (SCPI class -300) the contract does not list: the indicator reports a "
                f"fault of its own; see its manual for {code}, power-cycle it, and have it serviced if it persists")
    if -499 <= code <= -400:
        return (f"a query error (SCPI class -400) the contract does not list: a reply was lost or interrupted; "
                f"reopen the gauge, which drains stale replies")
    return (f"an error code the contract does not list: see the indicator's manual for {code}; reopen the gauge "
            "(ABOR and *CLS on open) and power-cycle it if it persists")


class _Acquisition:
    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.t: list[np.ndarray] = []
        self.f: list[np.ndarray] = []
        self.count = 0
        self.host_t0_ns = 0
        self.uncertainty_s = 0.0
