"""The SCPI instrument model every emulated SCPI reference shares (`scpi` gauge, `tilt`).

A pure device model (no I/O), as the gauge models: `handle(command)` takes one command
without its terminator and returns the reply without it, or None when the contract says
the instrument answers nothing; rigs/emulator/gauge_server.py owns the transport.

What is shared, written once: SCPI header parsing (long and short forms, lower case, a
leading colon, `;` compounds resolved relative to the previous command's path), the
parameter errors (-104, -108, -109, -113, -222, -224), the error queue (10 deep, -350 on
overflow), *IDN?, *RST, *CLS, CAL:DATE?/CAL:DUE?, SAMP:RATE, and the buffered acquisition
(INIT, ABOR, TRAC:DATA?, TRAC:POIN?, TRIG:TIME?) timed by the instrument's own (table)
clock. A dialect's model adds its nodes, its measurement commands, its units and how a
sample is taken (`_sample`) and written (`_reply_converter`).

Buffered sample n of an acquisition sits at table time t_init + n / rate and is reported
with the instrument time n / rate (computed, never accumulated). Beyond `buffer_cap`
samples the *newest* are dropped (counted in `dropped`), as a full DAQ buffer does, so
the stored record stays contiguous. After an error the rest of a compound message is
still executed. Before the first INIT, instrument time counts from power-on.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

SCPI_ERROR_QUEUE_DEPTH = 10
SCPI_BUFFER_CAP = 2_000_000
#: Tolerance (in samples) when deciding whether a sample instant has been reached,
#: so t0 + n/rate == now counts as reached despite float rounding.
DUE_EPS = 1e-6


def due_index(elapsed_s: float, rate_hz: float) -> int:
    """Index of the last sample whose instant (n / rate) is not after `elapsed_s`."""
    return math.floor(elapsed_s * rate_hz + DUE_EPS)


#: nodes every SCPI instrument of this family knows, in SCPI long form (upper case is the short form)
COMMON_NODES = "SYSTem ERRor NEXT UNIT SENSe ZERO CALibration DATE DUE SAMPle RATE INITiate IMMediate ABORt " \
               "TRACe DATA POINts TRIGger TIME MEASure"


def node_aliases(nodes: str) -> dict[str, str]:
    """Short and long spellings (upper case) of each node -> its long form."""
    aliases: dict[str, str] = {}
    for long in nodes.split():
        short = "".join(ch for ch in long if ch.isupper())
        aliases[short] = long.upper()
        aliases[long.upper()] = long.upper()
    return aliases


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


class CommandError(Exception):
    def __init__(self, error: ScpiError) -> None:
        self.error = error


def nr3(x: float) -> str:
    return f"{x:+.6E}"


def nr3_time(t: float) -> str:
    return f"{t:+.9E}"


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


def trace_pieces(times: list[np.ndarray], values: list[np.ndarray], to_unit):
    """`t1,v1[,w1],t2,...` (NR3, 10 significant digits for times) in pieces of TRACE_CHUNK
    samples; `values` are (n, k) blocks. Each piece joins, converts and formats only its
    own samples, so no piece, the first included, costs more than its share."""
    first = True
    pending_t: list[np.ndarray] = []
    pending_v: list[np.ndarray] = []
    pending = 0
    blocks = iter(zip(times, values))
    while True:
        block = next(blocks, None)
        if block is not None:
            pending_t.append(block[0])
            pending_v.append(block[1])
            pending += len(block[0])
        while pending >= TRACE_CHUNK or (block is None and pending):
            if len(pending_t) > 1:
                pending_t, pending_v = [np.concatenate(pending_t)], [np.concatenate(pending_v)]
            t, v = pending_t[0], pending_v[0]  # a view on one block: no copy of a long tail per piece
            n = min(TRACE_CHUNK, len(t))
            pending_t, pending_v, pending = [t[n:]], [v[n:]], len(t) - n
            k = v.shape[1]
            rows = np.empty((n, 1 + k))
            rows[:, 0], rows[:, 1:] = t[:n], to_unit(v[:n])
            text = ",".join(["%+.9E" + ",%+.6E" * k] * n) % tuple(rows.ravel().tolist())
            yield text if first else "," + text
            first = False
        if block is None:
            return


def no_params(params: list[str]) -> None:
    if params:
        raise CommandError(E_PARAM_NOT_ALLOWED)


def one_param(params: list[str]) -> str:
    if not params or not params[0]:
        raise CommandError(E_MISSING_PARAM)
    if len(params) > 1:
        raise CommandError(E_PARAM_NOT_ALLOWED)
    return params[0]


def is_number(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value)


class ScpiInstrumentModel:
    """The shared SCPI instrument; a dialect subclasses it (see the module docstring).

    A subclass sets `NODES` (its own nodes beyond COMMON_NODES), `COLUMNS` (values per
    buffered sample), the SAMP:RATE bounds and default, and implements `_sample(t_abs)`
    -> (n, COLUMNS) values in its internal unit (±inf: out of range), `_reply_converter()`
    and `_reset_settings()`; it adds its commands in `_dialect_commands(table)`.
    """

    terminator = b"\n"
    reply_terminator = b"\n"
    NODES: ClassVar[str] = ""
    COLUMNS: ClassVar[int] = 1
    RATE_MIN: ClassVar[float]
    RATE_MAX: ClassVar[float]
    RATE_DEFAULT: ClassVar[float]

    def __init__(self, source, identity: tuple[str, str, str, str], cal_date: tuple[int, int, int],
                 cal_due: tuple[int, int, int], buffer_cap: int = SCPI_BUFFER_CAP) -> None:
        self.source = source
        self.identity = tuple(identity)
        self.cal_date = tuple(cal_date)
        self.cal_due = tuple(cal_due)
        self.buffer_cap = int(buffer_cap)
        self.rate_hz = self.RATE_DEFAULT
        self.errors: deque[ScpiError] = deque()
        self.acquiring = False
        self.dropped = 0
        self._aliases = node_aliases(COMMON_NODES + " " + self.NODES)
        self._t_init = source.sync()
        self._acq_rate = self.rate_hz
        self._n_next = 0
        self._buf_t: list[np.ndarray] = []
        self._buf_v: list[np.ndarray] = []
        self._buf_len = 0
        self._path: tuple[str, ...] = ()
        self._now = self._t_init
        self._commands = self._command_table()

    # -- what a dialect provides ------------------------------------------------------------
    def _sample(self, t_abs: np.ndarray) -> np.ndarray:
        """Buffered values at table times `t_abs`, shape (n, COLUMNS), internal unit."""
        raise NotImplementedError

    def _reply_converter(self) -> Callable[[np.ndarray], np.ndarray]:
        """Internal values -> reply values in the unit set now (a reply keeps the unit it was asked in)."""
        raise NotImplementedError

    def _reset_settings(self) -> None:
        """*RST's effect on the dialect's own settings (units)."""

    def _dialect_commands(self, c: dict) -> None:
        """Add the dialect's commands to the table c[(path, is_query)] = handler(params)."""

    # -- acquisition -----------------------------------------------------------------------
    def poll(self) -> None:
        """Catch up with the table so the buffer fills without queries."""
        self._update(self.source.sync())

    def _update(self, now: float) -> None:
        self._now = now
        if not self.acquiring:
            return
        rate = self._acq_rate
        n_max = due_index(now - self._t_init, rate)
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
        self._buf_t.append(t_rel)
        self._buf_v.append(self._sample(t_abs))
        self._buf_len += len(t_rel)

    def _clear_buffer(self) -> None:
        self._buf_t, self._buf_v, self._buf_len = [], [], 0

    def _start(self) -> None:
        self._t_init = self._now
        self._acq_rate = self.rate_hz
        self._n_next = 0
        self._clear_buffer()
        self.dropped = 0
        self.acquiring = True
        self._update(self._now)

    def _drain(self) -> str | ChunkedReply:
        if not self._buf_len:
            return ""
        times, values = self._buf_t, self._buf_v
        self._clear_buffer()
        return ChunkedReply(trace_pieces(times, values, self._reply_converter()))

    # -- error queue -------------------------------------------------------------------------
    def push_error(self, error: ScpiError) -> None:
        if len(self.errors) < SCPI_ERROR_QUEUE_DEPTH:
            self.errors.append(error)
        elif self.errors[-1] != E_QUEUE_OVERFLOW:
            self.errors[-1] = E_QUEUE_OVERFLOW

    def _next_error(self) -> str:
        return str(self.errors.popleft()) if self.errors else NO_ERROR

    # -- command table -----------------------------------------------------------------------
    @staticmethod
    def none(fn):
        """A handler for a command that takes no parameters."""

        def run(params):
            no_params(params)
            return fn()

        return run

    def _command_table(self):
        """(path, is_query) -> handler(params) returning a reply or None."""
        none = self.none
        c = {}
        c[("*IDN",), True] = none(lambda: ",".join(self.identity))
        c[("*RST",), False] = none(self._rst)
        c[("*CLS",), False] = none(self.errors.clear)
        c[("SYSTEM", "ERROR"), True] = none(self._next_error)
        c[("SYSTEM", "ERROR", "NEXT"), True] = none(self._next_error)
        c[("CALIBRATION", "DATE"), True] = none(lambda: "{},{},{}".format(*self.cal_date))
        c[("CALIBRATION", "DUE"), True] = none(lambda: "{},{},{}".format(*self.cal_due))
        c[("SAMPLE", "RATE"), False] = self._set_rate
        c[("SAMPLE", "RATE"), True] = none(lambda: nr3(self.rate_hz))
        c[("INITIATE",), False] = none(self._start)
        c[("INITIATE", "IMMEDIATE"), False] = none(self._start)
        c[("ABORT",), False] = none(self._abort)
        c[("TRACE", "DATA"), True] = none(self._drain)
        c[("TRACE", "POINTS"), True] = none(lambda: str(self._buf_len))
        c[("TRIGGER", "TIME"), True] = none(lambda: nr3_time(self._now - self._t_init))
        self._dialect_commands(c)
        return c

    def _rst(self) -> None:
        self._reset_settings()
        self.rate_hz = self.RATE_DEFAULT
        self.acquiring = False
        self._clear_buffer()

    def _abort(self) -> None:
        self.acquiring = False

    def _set_rate(self, params: list[str]) -> None:
        value = one_param(params).upper()
        special = {"MIN": self.RATE_MIN, "MINIMUM": self.RATE_MIN, "MAX": self.RATE_MAX,
                   "MAXIMUM": self.RATE_MAX, "DEF": self.RATE_DEFAULT, "DEFAULT": self.RATE_DEFAULT}
        if value in special:
            rate = special[value]
        else:
            if value.endswith("HZ"):
                value = value[:-2].rstrip()
            if not is_number(value):
                raise CommandError(E_DATA_TYPE)
            rate = float(value)
            if not self.RATE_MIN <= rate <= self.RATE_MAX:
                raise CommandError(E_OUT_OF_RANGE)
        if self.acquiring:
            raise CommandError(E_SETTINGS_CONFLICT)
        self.rate_hz = rate

    def _choice(self, params: list[str], allowed) -> str:
        """One text parameter that must be one of `allowed` (upper case): -104 for a number,
        -224 for anything else not allowed."""
        value = one_param(params)
        if is_number(value):
            raise CommandError(E_DATA_TYPE)
        choice = value.upper()
        if choice not in allowed:
            raise CommandError(E_ILLEGAL_VALUE)
        return choice

    # -- parsing ---------------------------------------------------------------------------------
    def handle(self, command: str) -> str | ChunkedReply | None:
        self._update(self.source.sync())
        replies: list = []
        self._path = ()
        for part in command.split(";"):
            part = part.strip()
            if not part:
                continue
            try:
                reply = self._execute(part)
            except CommandError as exc:
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
                raise CommandError(E_UNDEFINED_HEADER)
            return handler(params)
        absolute = header.startswith(":")
        nodes = []
        for name in header.lstrip(":").split(":") if header.lstrip(":") else []:
            alias = self._aliases.get(name.upper())
            if alias is None:
                raise CommandError(E_UNDEFINED_HEADER)
            nodes.append(alias)
        if not nodes:
            raise CommandError(E_UNDEFINED_HEADER)
        candidates = [tuple(nodes)]
        if not absolute and self._path:
            candidates.insert(0, self._path + tuple(nodes))
        for path in candidates:
            handler = self._commands.get((path, query))
            if handler is not None:
                self._path = path[:-1]
                return handler(params)
        raise CommandError(E_UNDEFINED_HEADER)
