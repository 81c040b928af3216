"""What every SCPI reference instrument's driver does the same way (`scpi` gauge, `tilt`).

Both dialects end lines with LF, answer *IDN? and CAL:DATE?/CAL:DUE?, queue errors for
SYST:ERR?, and buffer an acquisition (SAMP:RATE, INIT, TRAC:DATA?, ABOR, TRIG:TIME?) with
their own timestamps. Why a mixin: the ways such an instrument is found in an unknown
state, refuses a setting, says who it is and hands over its buffer must be written once,
so a fix to one reaches the other; a dialect's driver adds its readings and its units.

A class using it sets `CATALOGUE` (drivers/scpi_errors.py), `RATE_MIN`/`RATE_MAX` and
`OPEN_QUIET_MS`, and has `_link`, `resource`, `time_scale` and `_unexpected` (from
drivers/instrument.py).
"""

from __future__ import annotations

import datetime
from typing import ClassVar

from drivers.buffered import BufferedAcquisition, Capture
from drivers.errors import ConfigError
from drivers.instrument import InstrumentIdentity
from drivers.scpi_errors import ErrorCatalogue, check_error_queue


class ScpiInstrument:
    CATALOGUE: ClassVar[ErrorCatalogue]
    RATE_MIN: ClassVar[float]
    RATE_MAX: ClassVar[float]
    #: opening reads until the link has been quiet this long (stale replies, see _to_known_state)
    OPEN_QUIET_MS: ClassVar[float] = 50.0

    _acq: BufferedAcquisition | None = None

    def _to_known_state(self) -> None:
        """An instrument outlives the run that used it: one killed during a capture, or
        whose link was severed, leaves its acquisition running, and every later SAMP:RATE is
        refused (-221, "Settings conflict"); a serial line may also hold half a command or
        replies nobody read. A bare LF ends a partial command, ABOR stops the acquisition
        (the buffer it filled is cleared by the next INIT), *CLS empties the error queue of
        whatever the earlier session and the partial line left (so later SYST:ERR? checks
        report our own commands), and replies already on their way are read away until
        the link is quiet. None of these commands answers, so nothing of ours is drained."""
        for command in ("", "ABOR", "*CLS"):
            self._link.write(command)
        self._link.drain(quiet_ms=self.OPEN_QUIET_MS)

    # -- settings ----------------------------------------------------------------------------
    def _set(self, command: str) -> None:
        """A command that answers nothing, then SYST:ERR? so a refusal is not silent."""
        if self._acq is not None and not command.startswith(("ABOR", "INIT")):
            self._busy()
        self._link.write(command)
        self.check_errors(command)

    def check_errors(self, after: str = "the last command") -> None:
        """Drain the error queue; raise DeviceProtocolError with the first error's text and
        what to do about it (the dialect's CATALOGUE), counting the others."""
        check_error_queue(self._link, self.resource, after, self.CATALOGUE, self._unexpected)

    # -- identity -----------------------------------------------------------------------------
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

    def identity(self) -> InstrumentIdentity:
        """*IDN? and the calibration dates, from the instrument itself."""
        if self._acq is not None:
            self._busy()
        maker, model, serial, firmware = self._idn()
        return InstrumentIdentity(
            maker, model, serial, firmware, self._date("CAL:DATE?"), self._date("CAL:DUE?"), source="device"
        )

    # -- buffered acquisition -------------------------------------------------------------------
    def _start_acquisition(self, rate_hz: float, columns: int) -> None:
        if self._acq is not None:
            self._busy()
        if not self.RATE_MIN <= rate_hz <= self.RATE_MAX:
            raise ConfigError(f"{self.resource}: SAMP:RATE must be {self.RATE_MIN:g}..{self.RATE_MAX:g} Hz, "
                              f"not {rate_hz}")
        self._set(f"SAMP:RATE {rate_hz:.10g}")
        self._acq = BufferedAcquisition.start(self._link, rate_hz, columns, self.time_scale, self._unexpected)

    def _wait_for_samples(self, n: int, deadline_ns: int) -> None:
        assert self._acq is not None
        self._acq.wait_for(n, deadline_ns)

    def _stop_acquisition(self) -> Capture:
        acq = self._acq
        if acq is None:
            raise ConfigError(f"{self.resource}: stop_stream() without start_stream()")
        try:
            return acq.stop()
        finally:
            self._acq = None

    def _busy(self) -> None:
        raise ConfigError(f"{self.resource}: a buffered acquisition is running; call stop_stream() first")

    @property
    def streaming(self) -> bool:
        return self._acq is not None
