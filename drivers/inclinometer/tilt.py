"""The `tilt` two-axis inclinometer (shared/protocols/inclinometer.md): LF-terminated SCPI.

Identity, calibration dates, settings checked through the error queue and the buffered
acquisition with instrument timestamps are the SCPI instruments' shared ones
(drivers/scpi_instrument.py, drivers/buffered.py, drivers/scpi_errors.py), so the
inclinometer's trace is mapped onto table time exactly as the SCPI force gauge's is.

Units: the driver always reads degrees. An instrument left in RAD by a colleague (`*RST`
does not clear a zero, and a unit may be whatever the last user chose) is put back to DEG
when opened, and every reading is converted with the unit the driver last confirmed, so
a reading is never a radian taken for a degree.
"""

from __future__ import annotations

import math

import numpy as np
import pyvisa

from drivers.errors import ConfigError, DeviceProtocolError, DeviceTimeout
from drivers.gauge.link import DEFAULT_TIMEOUT_MS
from drivers.inclinometer.base import AXES, OUT_OF_RANGE_REASON, AngleReading, AngleTrace, AxisReading, Inclinometer
from drivers.kinds import register_instrument
from drivers.scpi_errors import ErrorCatalogue
from drivers.scpi_instrument import ScpiInstrument
from drivers.units import DEGREES_PER_UNIT

HINT = "tilt: commands and replies end with LF"
#: readings at or beyond this magnitude are SCPI's not-a-number (9.91E+37): out of range
OUT_OF_RANGE = 9.0e37
RATE_MIN, RATE_MAX = 1.0, 1000.0
UNITS = ("DEG", "RAD")

#: What to do about each error the contract names (shared/protocols/inclinometer.md).
CONTRACT_ERRORS = {
    -104: "a parameter of the wrong type (text where a number belongs): check the value the rig sent",
    -108: "more parameters than the command takes: check the command against the tilt table",
    -109: "the command needs a parameter: check the value the rig sent",
    -113: "the inclinometer does not know this command: is it a tilt inclinometer (LF-terminated, the "
          "contract's command set)? check the rig file's dialect",
    -222: "a value outside the inclinometer's range (SAMP:RATE 1..1000 Hz): check the rate asked for",
    -224: "a value the inclinometer does not offer (UNIT:ANGL DEG or RAD): check the unit asked for",
    -350: "more than 10 errors queued, the later ones were lost: the first one above is the cause; "
          "the driver clears the queue (*CLS) at every open",
}
#: Standard SCPI codes beyond the contract's list that such an instrument is known to answer.
OTHER_ERRORS = {
    -221: "an acquisition is still running, so its settings cannot change: a run killed during a capture, or "
          "whose inclinometer link was cut, leaves it running; the driver sends ABOR on open, so opening the "
          "inclinometer again clears it; if seen mid-run, another client started an acquisition on it (only one "
          "rig may use it)",
}
CATALOGUE = ErrorCatalogue(CONTRACT_ERRORS, OTHER_ERRORS, noun="inclinometer",
                           kind="a tilt inclinometer (shared/protocols/inclinometer.md)",
                           reopen="reopen the inclinometer")


def explain_error(code: int) -> str:
    """What to do about a SCPI error of the inclinometer (see ErrorCatalogue.explain)."""
    return CATALOGUE.explain(code)


@register_instrument("tilt", quantity="angle")
class TiltInclinometer(ScpiInstrument, Inclinometer):
    dialect = "tilt"
    CATALOGUE = CATALOGUE
    RATE_MIN, RATE_MAX = RATE_MIN, RATE_MAX

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
        self._acq = None
        self._dpu = 1.0  # degrees per unit of the readings (DEG unless a RAD was confirmed)
        self._open(resource, time_scale=time_scale, timeout_ms=timeout_ms, hint=HINT, probe=self._probe, check=check,
                   read_termination=read_termination, write_termination=write_termination, backend=backend,
                   resource_manager=resource_manager)

    def _probe(self) -> None:
        """Prove at open that a tilt inclinometer answers, and put it in degrees."""
        self._idn()
        self._ensure_degrees()

    # -- units -----------------------------------------------------------------------------
    def _unit_now(self) -> str:
        try:
            reply = self._link.query("UNIT:ANGL?")
        except DeviceTimeout:
            self._not_this_dialect("UNIT:ANGL?")
            raise
        unit = reply.strip().upper()
        if unit not in UNITS:
            raise self._unexpected("UNIT:ANGL?", reply, "DEG or RAD")
        return unit

    def _not_this_dialect(self, command: str) -> None:
        """A SCPI instrument that answered *IDN? but not `command`: if it queued -113, it is
        another SCPI instrument (a force indicator on the inclinometer's port): say so in
        one line rather than as a timeout."""
        try:
            reply = self._link.query("SYST:ERR?")
        except DeviceTimeout:
            return
        if reply.startswith("-113"):
            raise DeviceProtocolError(self.resource, f"the instrument does not know {command!r} (-113): it is not a "
                                      "tilt inclinometer", "check the rig file's inclinometer address and dialect")

    def _ensure_degrees(self) -> None:
        """DEG whatever the instrument was left in, confirmed by asking again."""
        unit = self._unit_now()
        if unit != "DEG":
            self._set("UNIT:ANGL DEG")
            unit = self._unit_now()
        self._dpu = DEGREES_PER_UNIT[unit]

    @property
    def unit(self) -> str:
        return "DEG" if self._dpu == 1.0 else "RAD"

    def reset(self) -> None:
        """*RST: unit DEG, 100 Hz, no acquisition (the zero is kept)."""
        self._link.write("*RST")
        self._ensure_degrees()

    def zero(self) -> None:
        self._set("SENS:ZERO")

    # -- readings ----------------------------------------------------------------------------
    def _value(self, command: str, text: str, reply: str) -> AxisReading:
        try:
            value = float(text)
        except ValueError:
            raise self._unexpected(command, reply, "NR3 numbers such as '+1.234500E+01'") from None
        if abs(value) >= OUT_OF_RANGE or math.isnan(value):
            return AxisReading(math.nan, OUT_OF_RANGE_REASON)
        return AxisReading(value * self._dpu)

    def read(self) -> AngleReading:
        if self._acq is not None:
            self._busy()
        reply = self._link.query("MEAS:ANGL?")
        fields = reply.split(",")
        if len(fields) != 2:
            raise self._unexpected("MEAS:ANGL?", reply, "'x,y' (two NR3 numbers)")
        return AngleReading(*(self._value("MEAS:ANGL?", f, reply) for f in fields))

    def read_axis(self, axis: str) -> AxisReading:
        axis = axis.strip().upper()
        if axis not in AXES:
            raise ConfigError(f"{self.resource}: an inclinometer axis is X or Y, not {axis!r}")
        if self._acq is not None:
            self._busy()
        command = f"MEAS:ANGL:{axis}?"
        reply = self._link.query(command)
        return self._value(command, reply, reply)

    # -- buffered acquisition -------------------------------------------------------------------
    def start_stream(self, rate_hz: float) -> None:
        self._start_acquisition(rate_hz, columns=2)

    def stop_stream(self) -> AngleTrace:
        capture = self._stop_acquisition()
        raw = capture.values
        out = (np.abs(raw) >= OUT_OF_RANGE) | np.isnan(raw)
        degrees = np.where(out, np.nan, raw * self._dpu)
        return AngleTrace(
            t=capture.t,
            x_deg=degrees[:, 0],
            y_deg=degrees[:, 1],
            host_t0_ns=capture.host_t0_ns,
            time_scale=self.time_scale,
            rate_hz=capture.rate_hz,
            mapping_uncertainty_s=capture.mapping_uncertainty_s,
            resource=self.resource,
        )
