"""SCPI load-cell indicator (`scpi`) driver: LF-terminated, buffered acquisition.

Replies carry no unit, so the driver learns UNIT:FORC? at open and tracks what it
sets; readings are converted to newtons with that unit. Commands that answer nothing
are followed by SYST:ERR? where a refusal is possible, so a rejected setting raises
with the instrument's own error text instead of passing silently.

A buffered acquisition carries the instrument's timestamps (table clock), placed on the
host's clock by drivers/buffered.py (TRIG:TIME? bracketed between two host stamps, the
tightest of a few tries, the half round trip as the uncertainty); the error queue is read
by drivers/scpi_errors.py. Both are shared with the `tilt` inclinometer.
"""

from __future__ import annotations

import numpy as np
import pyvisa

from drivers.errors import ConfigError, GaugeOverload
from drivers.gauge.base import INSTRUMENT, ForceGauge, GaugeTrace
from drivers.gauge.link import DEFAULT_TIMEOUT_MS
from drivers.kinds import register_instrument
from drivers.scpi_errors import ErrorCatalogue
from drivers.scpi_instrument import ScpiInstrument
from drivers.units import NEWTONS_PER_UNIT, canonical_unit

HINT = "scpi: commands and replies end with LF"
#: SCPI spelling of the units such an indicator offers.
SCPI_UNIT = {"N": "N", "lbF": "LBF", "kgF": "KGF"}
#: Readings at or beyond this magnitude are SCPI's over-range marker (9.9E37).
OVERRANGE = 9.0e37
RATE_MIN, RATE_MAX = 1.0, 10000.0
#: Opening reads until the link has been quiet this long (stale replies, see _to_known_state).
OPEN_QUIET_MS = 50.0


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


#: the fixes for an indicator's errors (the SCPI classes are explained in drivers/scpi_errors.py)
CATALOGUE = ErrorCatalogue(CONTRACT_ERRORS, OTHER_ERRORS, noun="indicator", kind="a scpi indicator of this dialect",
                           reopen="reopen the gauge")


def explain_error(code: int) -> str:
    """What to do about a SCPI error, for every code (see ErrorCatalogue.explain)."""
    return CATALOGUE.explain(code)


@register_instrument("scpi", quantity="force")
class ScpiGauge(ScpiInstrument, ForceGauge):
    """Identity, settings, the error queue and the buffered acquisition are the SCPI
    instruments' shared ones (drivers/scpi_instrument.py); readings and units are here."""

    dialect = "scpi"
    CATALOGUE = CATALOGUE
    RATE_MIN, RATE_MAX = RATE_MIN, RATE_MAX
    OPEN_QUIET_MS = OPEN_QUIET_MS

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
        self._acq = None
        self._open(resource, time_scale=time_scale, timeout_ms=timeout_ms, hint=HINT, probe=self._probe, check=check,
                   read_termination=read_termination, write_termination=write_termination, backend=backend,
                   resource_manager=resource_manager)

    def _probe(self) -> None:
        """Prove at open that a scpi indicator answers, and learn its unit."""
        self._idn()
        self._learn_unit()

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

    # -- settings (_set, check_errors: drivers/scpi_instrument.py) -------------------------------
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

    # -- buffered acquisition -------------------------------------------------------------------------
    def start_stream(self, rate_hz: float) -> None:
        self._start_acquisition(rate_hz, columns=1)

    def stop_stream(self) -> GaugeTrace:
        capture = self._stop_acquisition()
        f = capture.values[:, 0]
        forces = np.where(np.abs(f) >= OVERRANGE, np.nan, f * self._npu)
        return GaugeTrace(
            t=capture.t,
            force_n=forces,
            time_base=INSTRUMENT,
            host_t0_ns=capture.host_t0_ns,
            time_scale=self.time_scale,
            rate_hz=capture.rate_hz,
            mapping_uncertainty_s=capture.mapping_uncertainty_s,
            resource=self.resource,
        )
