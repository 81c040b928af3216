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
from collections import deque
from dataclasses import dataclass

import numpy as np

from drivers.units import from_newtons
from rigs.emulator.source import ForceSource

#: Overload threshold as a fraction of capacity (both dialects).
OVERLOAD_FRACTION = 1.2
#: Tolerance (in samples) when deciding whether a sample instant has been reached,
#: so t0 + n/rate == now counts as reached despite float rounding.
_DUE_EPS = 1e-6


def _due_index(elapsed_s: float, rate_hz: float) -> int:
    """Index of the last sample whose instant (n / rate) is not after `elapsed_s`."""
    return math.floor(elapsed_s * rate_hz + _DUE_EPS)


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
SCPI_ERROR_QUEUE_DEPTH = 10
SCPI_BUFFER_CAP = 2_000_000

# Nodes in SCPI "long form" spelling: upper case is the short form.
_NODES = (
    "MEASure FORCe SYSTem ERRor NEXT UNIT SENSe ZERO CALibration DATE DUE SAMPle RATE "
    "INITiate IMMediate ABORt TRACe DATA POINts TRIGger TIME"
).split()
_NODE_ALIASES: dict[str, str] = {}
for _long in _NODES:
    _short = "".join(ch for ch in _long if ch.isupper())
    _NODE_ALIASES[_short] = _long.upper()
    _NODE_ALIASES[_long.upper()] = _long.upper()


@dataclass(frozen=True)
class ScpiError:
    code: int
    message: str

    def __str__(self) -> str:
        return f'{self.code},"{self.message}"'


E_DATA_TYPE = ScpiError(-104, "Data type error")
E_PARAM_NOT_ALLOWED = ScpiError(-108, "Parameter not allowed")
E_MISSING_PARAM = ScpiError(-109, "Missing parameter")
E_UNDEFINED_HEADER = ScpiError(-113, "Undefined header")
E_SETTINGS_CONFLICT = ScpiError(-221, "Settings conflict")
E_OUT_OF_RANGE = ScpiError(-222, "Data out of range")
E_ILLEGAL_VALUE = ScpiError(-224, "Illegal parameter value")
E_QUEUE_OVERFLOW = ScpiError(-350, "Queue overflow")
NO_ERROR = '0,"No error"'


class _CommandError(Exception):
    def __init__(self, error: ScpiError) -> None:
        self.error = error


def _nr3(x: float) -> str:
    return f"{x:+.6E}"


#: TRAC:DATA? samples formatted per piece of a chunked reply (about 0.2 ms of work each)
TRACE_CHUNK = 400


class ChunkedReply:
    """A long reply made a piece at a time, so the server can answer its other clients
    between the pieces instead of after the whole reply (TRAC:DATA? of a long capture
    at a high time scale is tens of thousands of numbers). `str()` gives it whole."""

    def __init__(self, pieces) -> None:
        self._pieces = pieces

    def __iter__(self):
        return iter(self._pieces)

    def __str__(self) -> str:
        return "".join(self._pieces)


def _trace_pieces(times: list[np.ndarray], forces: list[np.ndarray], to_unit):
    """`t1,f1,t2,f2,...` (NR3, 10 significant digits for times) in pieces of TRACE_CHUNK
    samples; each piece joins, converts and formats only its own samples, so no piece,
    the first included, costs more than its share."""
    first = True
    pending_t: list[np.ndarray] = []
    pending_f: list[np.ndarray] = []
    pending = 0
    blocks = iter(zip(times, forces))
    while True:
        block = next(blocks, None)
        if block is not None:
            pending_t.append(block[0])
            pending_f.append(block[1])
            pending += len(block[0])
        while pending >= TRACE_CHUNK or (block is None and pending):
            if len(pending_t) > 1:
                pending_t, pending_f = [np.concatenate(pending_t)], [np.concatenate(pending_f)]
            t, f = pending_t[0], pending_f[0]  # a view on one block: no copy of a long tail per piece
            n = min(TRACE_CHUNK, len(t))
            pending_t, pending_f, pending = [t[n:]], [f[n:]], len(t) - n
            pairs = np.empty(2 * n)
            pairs[0::2], pairs[1::2] = t[:n], to_unit(f[:n])
            text = ",".join(["%+.9E,%+.6E"] * n) % tuple(pairs.tolist())
            yield text if first else "," + text
            first = False
        if block is None:
            return


def _nr3_time(t: float) -> str:
    return f"{t:+.9E}"


class ScpiGauge:
    """SCPI indicator with a buffered acquisition timed by its own (table) clock.

    Buffered sample n of an acquisition sits at table time t_init + n / rate and is
    reported with the instrument time n / rate (computed, never accumulated). Forces
    are stored in newtons (tared when sampled) and converted to UNIT:FORC when the
    buffer is read. Beyond SCPI_BUFFER_CAP samples the *newest* are dropped (counted
    in `dropped`), as a full DAQ buffer does, so the stored record stays contiguous.

    Parsing: headers resolve relative to the previous command's path inside a `;`
    compound (SCPI), falling back to the root, so `UNIT:FORC N;UNIT:FORC?` works too.
    After an error the rest of a compound message is still executed.
    Before the first INIT, instrument time counts from power-on (construction).
    """

    dialect = "scpi"
    terminator = b"\n"
    reply_terminator = b"\n"

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
        self.source = source
        self.capacity_n = float(capacity_n)
        self._sensor = _Sensor(source, seed, noise_n, gain_error)
        self.identity = tuple(identity)
        self.cal_date = tuple(cal_date)
        self.cal_due = tuple(cal_due)
        self.buffer_cap = int(buffer_cap)
        self.unit = "N"
        self.rate_hz = SCPI_RATE_DEFAULT
        self.tare_n = 0.0
        self.errors: deque[ScpiError] = deque()
        self.acquiring = False
        self.dropped = 0
        self._t_init = source.sync()
        self._acq_rate = self.rate_hz
        self._n_next = 0
        self._buf_t: list[np.ndarray] = []
        self._buf_f: list[np.ndarray] = []
        self._buf_len = 0
        self._path: tuple[str, ...] = ()
        self._now = self._t_init
        self._commands = self._command_table()

    # -- acquisition -----------------------------------------------------------------------
    def poll(self) -> None:
        """Catch up with the table so the buffer fills without queries."""
        self._update(self.source.sync())

    def _update(self, now: float) -> None:
        self._now = now
        if not self.acquiring:
            return
        rate = self._acq_rate
        n_max = _due_index(now - self._t_init, rate)
        if n_max < self._n_next:
            return
        n = np.arange(self._n_next, n_max + 1)
        self._n_next = n_max + 1
        t_rel = n / rate
        t_abs = self._t_init + t_rel
        keep = t_abs >= self.source.history_start()
        if not keep.all():  # the server did not poll for longer than the source's history
            self.dropped += int((~keep).sum())
            t_rel, t_abs = t_rel[keep], t_abs[keep]
        room = self.buffer_cap - self._buf_len
        if len(t_rel) > room:
            self.dropped += len(t_rel) - max(room, 0)
            t_rel, t_abs = t_rel[: max(room, 0)], t_abs[: max(room, 0)]
        if not len(t_rel):
            return
        raw = self._sensor.measure(t_abs)
        forces = raw - self.tare_n
        over = np.abs(raw) > OVERLOAD_FRACTION * self.capacity_n
        if over.any():
            forces[over] = np.copysign(np.inf, raw[over])
        self._buf_t.append(t_rel)
        self._buf_f.append(forces)
        self._buf_len += len(t_rel)

    def _clear_buffer(self) -> None:
        self._buf_t, self._buf_f, self._buf_len = [], [], 0

    def _start(self) -> None:
        self._t_init = self._now
        self._acq_rate = self.rate_hz
        self._n_next = 0
        self._clear_buffer()
        self.dropped = 0
        self.acquiring = True
        self._update(self._now)

    # -- formatting -------------------------------------------------------------------------
    def _unit_converter(self):
        """Newtons -> readings in the unit of UNIT:FORC now (a reply keeps the unit it was asked in)."""
        unit, decimals = self.unit, SCPI_DECIMALS[self.unit]

        def to_unit(newtons: np.ndarray) -> np.ndarray:
            values = np.round(from_newtons(newtons, unit), decimals) + 0.0
            return np.where(np.isinf(newtons), np.copysign(SCPI_OVERRANGE, newtons), values)

        return to_unit

    def _drain(self) -> str | ChunkedReply:
        if not self._buf_len:
            return ""
        times, forces = self._buf_t, self._buf_f
        self._clear_buffer()
        return ChunkedReply(_trace_pieces(times, forces, self._unit_converter()))

    def _measure_now(self) -> str:
        raw = self._sensor.measure_one(self._now)
        if abs(raw) > OVERLOAD_FRACTION * self.capacity_n:
            return _nr3(math.copysign(SCPI_OVERRANGE, raw))
        unit = self.unit
        return _nr3(round(from_newtons(raw - self.tare_n, unit), SCPI_DECIMALS[unit]) + 0.0)

    # -- error queue -------------------------------------------------------------------------
    def push_error(self, error: ScpiError) -> None:
        if len(self.errors) < SCPI_ERROR_QUEUE_DEPTH:
            self.errors.append(error)
        elif self.errors[-1] != E_QUEUE_OVERFLOW:
            self.errors[-1] = E_QUEUE_OVERFLOW

    def _next_error(self) -> str:
        return str(self.errors.popleft()) if self.errors else NO_ERROR

    # -- command table -----------------------------------------------------------------------
    def _command_table(self):
        """(path, is_query) -> handler(params) returning a reply or None."""

        def none(fn):
            def run(params):
                _no_params(params)
                return fn()

            return run

        c = {}
        c[("*IDN",), True] = none(lambda: ",".join(self.identity))
        c[("*RST",), False] = none(self._rst)
        c[("*CLS",), False] = none(self.errors.clear)
        c[("SYSTEM", "ERROR"), True] = none(self._next_error)
        c[("SYSTEM", "ERROR", "NEXT"), True] = none(self._next_error)
        c[("MEASURE", "FORCE"), True] = none(self._measure_now)
        c[("UNIT", "FORCE"), False] = self._set_unit
        c[("UNIT", "FORCE"), True] = none(lambda: self.unit)
        c[("SENSE", "ZERO"), False] = none(self._zero)
        c[("CALIBRATION", "DATE"), True] = none(lambda: "{},{},{}".format(*self.cal_date))
        c[("CALIBRATION", "DUE"), True] = none(lambda: "{},{},{}".format(*self.cal_due))
        c[("SAMPLE", "RATE"), False] = self._set_rate
        c[("SAMPLE", "RATE"), True] = none(lambda: _nr3(self.rate_hz))
        c[("INITIATE",), False] = none(self._start)
        c[("INITIATE", "IMMEDIATE"), False] = none(self._start)
        c[("ABORT",), False] = none(self._abort)
        c[("TRACE", "DATA"), True] = none(self._drain)
        c[("TRACE", "POINTS"), True] = none(lambda: str(self._buf_len))
        c[("TRIGGER", "TIME"), True] = none(lambda: _nr3_time(self._now - self._t_init))
        return c

    def _rst(self) -> None:
        self.unit = "N"
        self.rate_hz = SCPI_RATE_DEFAULT
        self.acquiring = False
        self._clear_buffer()

    def _abort(self) -> None:
        self.acquiring = False

    def _zero(self) -> None:
        # average a few readings so the tare is not one noise sample
        self.tare_n = float(self._sensor.measure(np.full(16, self._now)).mean())

    def _set_unit(self, params: list[str]) -> None:
        value = _one_param(params)
        if _is_number(value):
            raise _CommandError(E_DATA_TYPE)
        unit = value.upper()
        if unit not in SCPI_UNITS:
            raise _CommandError(E_ILLEGAL_VALUE)
        self.unit = unit

    def _set_rate(self, params: list[str]) -> None:
        value = _one_param(params).upper()
        special = {"MIN": SCPI_RATE_MIN, "MINIMUM": SCPI_RATE_MIN, "MAX": SCPI_RATE_MAX,
                   "MAXIMUM": SCPI_RATE_MAX, "DEF": SCPI_RATE_DEFAULT, "DEFAULT": SCPI_RATE_DEFAULT}
        if value in special:
            rate = special[value]
        else:
            if value.endswith("HZ"):
                value = value[:-2].rstrip()
            if not _is_number(value):
                raise _CommandError(E_DATA_TYPE)
            rate = float(value)
            if not SCPI_RATE_MIN <= rate <= SCPI_RATE_MAX:
                raise _CommandError(E_OUT_OF_RANGE)
        if self.acquiring:
            raise _CommandError(E_SETTINGS_CONFLICT)
        self.rate_hz = rate

    # -- parsing ---------------------------------------------------------------------------------
    def handle(self, command: str) -> str | None:
        self._update(self.source.sync())
        replies: list[str] = []
        self._path = ()
        for part in command.split(";"):
            part = part.strip()
            if not part:
                continue
            try:
                reply = self._execute(part)
            except _CommandError as exc:
                self.push_error(exc.error)
                continue
            if reply is not None:
                replies.append(reply)
        if len(replies) == 1:
            return replies[0]  # a ChunkedReply stays chunked when it is the whole reply
        return ";".join(map(str, replies)) if replies else None

    def _execute(self, text: str) -> str | None:
        header, _, rest = text.partition(" ")
        if not rest and "\t" in header:
            header, _, rest = header.partition("\t")
        rest = rest.strip()
        params = [p.strip() for p in rest.split(",")] if rest else []
        query = header.endswith("?")
        if query:
            header = header[:-1]
        if header.startswith("*"):
            key = (header.upper(),)
            handler = self._commands.get((key, query))
            if handler is None:
                raise _CommandError(E_UNDEFINED_HEADER)
            return handler(params)
        absolute = header.startswith(":")
        nodes = []
        for name in header.lstrip(":").split(":") if header.lstrip(":") else []:
            alias = _NODE_ALIASES.get(name.upper())
            if alias is None:
                raise _CommandError(E_UNDEFINED_HEADER)
            nodes.append(alias)
        if not nodes:
            raise _CommandError(E_UNDEFINED_HEADER)
        candidates = [tuple(nodes)]
        if not absolute and self._path:
            candidates.insert(0, self._path + tuple(nodes))
        for path in candidates:
            handler = self._commands.get((path, query))
            if handler is not None:
                self._path = path[:-1]
                return handler(params)
        raise _CommandError(E_UNDEFINED_HEADER)


def _no_params(params: list[str]) -> None:
    if params:
        raise _CommandError(E_PARAM_NOT_ALLOWED)


def _one_param(params: list[str]) -> str:
    if not params or not params[0]:
        raise _CommandError(E_MISSING_PARAM)
    if len(params) > 1:
        raise _CommandError(E_PARAM_NOT_ALLOWED)
    return params[0]


def _is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)
