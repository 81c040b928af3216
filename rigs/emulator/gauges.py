"""Emulated reference force gauges: the two dialects of shared/protocols/force-gauges.md.

Pure device models (no I/O): `handle(command)` takes one command without its
terminator and returns the reply without its terminator, or None when the contract
says the device answers nothing. The servers in gauge_server.py own the transport.

Both gauges measure the table's *true* cord force (ForceSource), not the controller's
load cell, with their own gain error and seeded noise, so a suite that compares the
two sees a second, independent opinion. Every instant is table time: an emulated
table running K times faster than the wall clock makes the gauge sample, stream and
time-stamp K times faster too, exactly as the contract requires.

Samples are generated lazily (vectorised) whenever a command or the server's
`poll()` arrives, from the last generated instant up to the source's present; the
source keeps ~16 s of history, so the server must poll more often than that.
"""

from __future__ import annotations

import math

import numpy as np

from drivers.units import from_newtons
from rigs.emulator.scpi_model import (  # noqa: F401 — the names gauge code and tests import from here
    E_DATA_TYPE,
    E_ILLEGAL_VALUE,
    E_MISSING_PARAM,
    E_OUT_OF_RANGE,
    E_PARAM_NOT_ALLOWED,
    E_QUEUE_OVERFLOW,
    E_SETTINGS_CONFLICT,
    E_UNDEFINED_HEADER,
    NO_ERROR,
    SCPI_BUFFER_CAP,
    SCPI_ERROR_QUEUE_DEPTH,
    TRACE_CHUNK,
    ChunkedReply,
    ScpiError,
    ScpiInstrumentModel,
    nr3,
)
from rigs.emulator.scpi_model import DUE_EPS as _DUE_EPS  # the sample-instant tolerance, shared
from rigs.emulator.scpi_model import due_index as _due_index
from rigs.emulator.source import ForceSource

#: Overload threshold as a fraction of capacity (both dialects).
OVERLOAD_FRACTION = 1.2


class _Sensor:
    """Gain error + seeded noise on the true force: what both dialects share."""

    def __init__(self, source: ForceSource, seed: int, noise_n: float, gain_error: float) -> None:
        self.source = source
        self.noise_n = float(noise_n)
        self.gain = 1.0 + float(gain_error)
        self.rng = np.random.default_rng(seed)

    def measure(self, times: np.ndarray) -> np.ndarray:
        """Raw (untared, unquantised) newtons at table `times` (not after the last sync)."""
        raw = np.asarray(self.source.force_at(times), dtype=float) * self.gain
        if self.noise_n > 0.0:
            raw = raw + self.rng.normal(0.0, self.noise_n, raw.shape)
        return raw

    def measure_one(self, t: float) -> float:
        """`measure` for one instant, in plain floats (the MEAS:FORC? hot path)."""
        raw = float(self.source.force_at(np.array((t,)))[0]) * self.gain
        if self.noise_n > 0.0:
            raw += float(self.rng.normal(0.0, self.noise_n))
        return raw


# ---------------------------------------------------------------------------------------
# gcl — Mark-10 style ASCII
# ---------------------------------------------------------------------------------------

#: Command -> displayed unit string (reply spelling).
GCL_UNITS: dict[str, str] = {
    "N": "N",
    "LB": "lbF",
    "KG": "kgF",
    "G": "gF",
    "OZ": "ozF",
    "MN": "mN",
    "KN": "kN",
}
#: Decimals shown per unit: roughly 0.1 N resolution whatever the unit.
GCL_DECIMALS: dict[str, int] = {"N": 1, "lbF": 2, "kgF": 2, "gF": 0, "ozF": 1, "mN": 0, "kN": 4}
GCL_AOUT_RATES = frozenset({0, 1, 2, 5, 10, 25, 50, 125, 250, 500, 1000})
GCL_MAX_FILTER_EXP = 10

GCL_ERR_UNKNOWN = "*10"
GCL_ERR_RANGE = "*11"
GCL_ERR_OVERLOAD = "*21"
GCL_OK = "R"


class GclGauge:
    """Mark-10 style gauge: 1 kHz internal sampling in table time, filters, peaks, tare.

    The internal samples sit on the absolute table-time grid k / 1000 s. A ring keeps
    the last 2^10 raw samples, enough for the widest FLTC/FLTP window. Peaks are taken
    on FLTP-filtered samples as they are generated (so a transient between two
    queries is still caught), tared, since the last CLR or Z.
    """

    dialect = "gcl"
    terminator = b"\r"
    reply_terminator = b"\r\n"
    SAMPLE_RATE_HZ = 1000.0
    RING = 1 << GCL_MAX_FILTER_EXP

    def __init__(
        self,
        source: ForceSource,
        capacity_n: float = 1000.0,
        seed: int = 0,
        noise_n: float = 0.05,
        gain_error: float = 0.0,
    ) -> None:
        self.source = source
        self.capacity_n = float(capacity_n)
        self._sensor = _Sensor(source, seed, noise_n, gain_error)
        self.unit = "N"
        self.display = "CUR"  # CUR | PT | PC
        self.fltc = 0
        self.fltp = 0
        self.tare_n = 0.0
        self.peak_tension_n = 0.0
        self.peak_compression_n = 0.0
        #: Lines per table second the server should stream (AOUTn); 0 = not streaming.
        self.stream_rate_hz = 0
        self._ring = np.zeros(0)
        self._current_raw: float | None = None  # cache of mean(ring[-2^fltc:])
        now = source.sync()
        self._k_next = _due_index(now, self.SAMPLE_RATE_HZ)
        self._update(now)

    # -- sampling ---------------------------------------------------------------------
    def poll(self) -> None:
        """Catch up with the table so peaks see every sample, even without queries."""
        self._update(self.source.sync())

    def _update(self, now: float) -> None:
        rate = self.SAMPLE_RATE_HZ
        k_max = _due_index(now, rate)
        if k_max < self._k_next:
            return
        k_lo = max(self._k_next, math.ceil(self.source.history_start() * rate - _DUE_EPS))
        if k_lo > self._k_next:  # samples lost to the source's history: do not average across the gap
            self._ring = np.zeros(0)
        self._k_next = k_max + 1
        if k_lo > k_max:
            return
        raw = self._sensor.measure(np.arange(k_lo, k_max + 1) / rate)
        self._track_peaks(raw)
        ring = np.concatenate((self._ring, raw)) if self._ring.size else raw
        self._ring = ring[-self.RING :]
        self._current_raw = None

    def _track_peaks(self, raw: np.ndarray) -> None:
        w = 1 << self.fltp
        if w == 1:
            filtered = raw
        else:
            history = self._ring[-(w - 1) :]
            ext = np.concatenate((history, raw))
            c = np.concatenate(([0.0], np.cumsum(ext)))
            end = np.arange(len(history) + 1, len(ext) + 1)
            start = np.maximum(end - w, 0)
            filtered = (c[end] - c[start]) / (end - start)
        tared = filtered - self.tare_n
        self.peak_tension_n = max(self.peak_tension_n, float(tared.max()))
        self.peak_compression_n = min(self.peak_compression_n, float(tared.min()))

    # -- readings ------------------------------------------------------------------------
    def _current(self) -> float:
        """Tared current reading (FLTC average), newtons."""
        if self._current_raw is None:
            n = 1 << self.fltc
            tail = self._ring[-n:]
            self._current_raw = float(tail.mean()) if tail.size else 0.0
        return self._current_raw - self.tare_n

    def _overloaded(self) -> bool:
        return bool(self._ring.size) and abs(float(self._ring[-1])) > OVERLOAD_FRACTION * self.capacity_n

    def _format(self, newtons: float) -> str:
        if self._overloaded():
            return GCL_ERR_OVERLOAD
        unit = self.unit
        value = round(from_newtons(newtons, unit), GCL_DECIMALS[unit]) + 0.0  # no "-0.0"
        return f"{value:.{GCL_DECIMALS[unit]}f} {unit}"

    def _displayed(self) -> str:
        if self.display == "PT":
            return self._format(self.peak_tension_n)
        if self.display == "PC":
            return self._format(self.peak_compression_n)
        return self._format(self._current())

    def stream_line(self, at: float | None = None) -> str:
        """One AOUT line: the `?` reading at table time `at` (default: now)."""
        now = self.source.sync()
        self._update(now if at is None else min(at, now))
        return self._displayed()

    # -- commands --------------------------------------------------------------------------
    def handle(self, command: str) -> str | None:
        self._update(self.source.sync())
        if command == "?":
            return self._displayed()
        if command == "?C":
            return self._format(self._current())
        if command == "?PT":
            return self._format(self.peak_tension_n)
        if command == "?PC":
            return self._format(self.peak_compression_n)
        unit = GCL_UNITS.get(command)
        if unit is not None:
            self.unit = unit
            return GCL_OK
        if command in ("CUR", "PT", "PC"):
            self.display = command
            return GCL_OK
        if command == "CLR":
            self._clear_peaks()
            return GCL_OK
        if command == "Z":
            self.tare_n = self._current() + self.tare_n
            self._clear_peaks()
            return GCL_OK
        for prefix in ("FLTC", "FLTP", "AOUT"):
            if command.startswith(prefix):
                return self._numbered(prefix, command[len(prefix) :])
        return GCL_ERR_UNKNOWN

    def _clear_peaks(self) -> None:
        self.peak_tension_n = 0.0
        self.peak_compression_n = 0.0

    def _numbered(self, prefix: str, digits: str) -> str | None:
        # str.isdigit() accepts e.g. superscripts; only plain ASCII digits are numbers here
        if not digits or not (digits.isascii() and digits.isdigit()):
            return GCL_ERR_UNKNOWN
        n = int(digits)
        if prefix == "AOUT":
            if n not in GCL_AOUT_RATES:
                return GCL_ERR_RANGE
            self.stream_rate_hz = n
            return None
        if n > GCL_MAX_FILTER_EXP:
            return GCL_ERR_RANGE
        if prefix == "FLTC":
            self.fltc = n
            self._current_raw = None
        else:
            self.fltp = n
        return GCL_OK


# ---------------------------------------------------------------------------------------
# scpi — load-cell indicator / DAQ
# ---------------------------------------------------------------------------------------

SCPI_UNITS = ("N", "LBF", "KGF")
#: Decimals of the readings per unit (then printed as NR3 with 7 significant digits).
SCPI_DECIMALS = {"N": 3, "LBF": 4, "KGF": 4}
#: Over-range marker for readings beyond 120 % of capacity (SCPI's "infinity", 9.9E37).
SCPI_OVERRANGE = 9.9e37
SCPI_RATE_MIN, SCPI_RATE_MAX, SCPI_RATE_DEFAULT = 1.0, 10000.0, 1000.0


class ScpiGauge(ScpiInstrumentModel):
    """SCPI indicator with a buffered acquisition timed by its own (table) clock.

    Parsing, the error queue and the buffered acquisition are the SCPI instruments'
    shared model (rigs/emulator/scpi_model.py); here: MEAS:FORC?, UNIT:FORC, the tare
    and the over-range marker. Forces are stored in newtons (tared when sampled) and
    converted to UNIT:FORC when the buffer is read.
    """

    dialect = "scpi"
    NODES = "FORCe"
    COLUMNS = 1
    RATE_MIN, RATE_MAX, RATE_DEFAULT = SCPI_RATE_MIN, SCPI_RATE_MAX, SCPI_RATE_DEFAULT

    def __init__(
        self,
        source: ForceSource,
        capacity_n: float = 1000.0,
        seed: int = 0,
        noise_n: float = 0.05,
        gain_error: float = 0.0,
        identity: tuple[str, str, str, str] = ("TractionRig", "LCI-3000", "EMU-G-0001", "1.0"),
        cal_date: tuple[int, int, int] = (2026, 3, 1),
        cal_due: tuple[int, int, int] = (2027, 3, 1),
        buffer_cap: int = SCPI_BUFFER_CAP,
    ) -> None:
        self.capacity_n = float(capacity_n)
        self._sensor = _Sensor(source, seed, noise_n, gain_error)
        self.unit = "N"
        self.tare_n = 0.0
        super().__init__(source, identity, cal_date, cal_due, buffer_cap)

    # -- sampling ------------------------------------------------------------------------------
    def _sample(self, t_abs: np.ndarray) -> np.ndarray:
        raw = self._sensor.measure(t_abs)
        forces = raw - self.tare_n
        over = np.abs(raw) > OVERLOAD_FRACTION * self.capacity_n
        if over.any():
            forces[over] = np.copysign(np.inf, raw[over])
        return forces[:, None]

    def _reply_converter(self):
        """Newtons -> readings in the unit of UNIT:FORC now (a reply keeps the unit it was asked in)."""
        unit, decimals = self.unit, SCPI_DECIMALS[self.unit]

        def to_unit(newtons: np.ndarray) -> np.ndarray:
            values = np.round(from_newtons(newtons, unit), decimals) + 0.0
            return np.where(np.isinf(newtons), np.copysign(SCPI_OVERRANGE, newtons), values)

        return to_unit

    def _measure_now(self) -> str:
        raw = self._sensor.measure_one(self._now)
        if abs(raw) > OVERLOAD_FRACTION * self.capacity_n:
            return nr3(math.copysign(SCPI_OVERRANGE, raw))
        unit = self.unit
        return nr3(round(from_newtons(raw - self.tare_n, unit), SCPI_DECIMALS[unit]) + 0.0)

    # -- commands ------------------------------------------------------------------------------
    def _dialect_commands(self, c: dict) -> None:
        none = self.none
        c[("MEASURE", "FORCE"), True] = none(self._measure_now)
        c[("UNIT", "FORCE"), False] = self._set_unit
        c[("UNIT", "FORCE"), True] = none(lambda: self.unit)
        c[("SENSE", "ZERO"), False] = none(self._zero)

    def _reset_settings(self) -> None:
        self.unit = "N"

    def _zero(self) -> None:
        # average a few readings so the tare is not one noise sample
        self.tare_n = float(self._sensor.measure(np.full(16, self._now)).mean())

    def _set_unit(self, params: list[str]) -> None:
        self.unit = self._choice(params, SCPI_UNITS)


__all__ = [
    "GCL_AOUT_RATES", "GclGauge", "OVERLOAD_FRACTION", "ScpiGauge", "SCPI_OVERRANGE", "SCPI_UNITS",
    # the shared SCPI model's names, as gauge code and tests import them from here
    "E_DATA_TYPE", "E_ILLEGAL_VALUE", "E_MISSING_PARAM", "E_OUT_OF_RANGE", "E_PARAM_NOT_ALLOWED", "E_QUEUE_OVERFLOW",
    "E_SETTINGS_CONFLICT", "E_UNDEFINED_HEADER", "NO_ERROR", "SCPI_BUFFER_CAP", "SCPI_ERROR_QUEUE_DEPTH",
    "TRACE_CHUNK", "ChunkedReply", "ScpiError",
]
