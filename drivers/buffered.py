"""Buffered acquisition on a SCPI instrument, its timestamps mapped onto the host's clock.

Shared by every instrument that buffers its own samples with its own timestamps (the
`scpi` force indicator, the `tilt` inclinometer): INIT starts the buffer, TRAC:DATA?
drains it as `t1,v1[,w1],t2,...` (instrument seconds since INIT, then the sample's
values), ABOR stops it. Why the instrument's timestamps: its time resolution is one
sample period, whatever the transport's jitter.

Clocks: instrument times are in the clock of the table the instrument measures (K table
seconds per wall second on an emulator running K times faster). To place them on the
host's perf_counter_ns, TRIG:TIME? is bracketed between two host stamps a few times; the
tightest bracket wins, its midpoint is taken as the instant the instrument read its
clock, and half its round trip is the mapping's uncertainty (wall seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: TRIG:TIME? brackets tried; the tightest is kept
MAPPING_TRIES = 3
#: longest wall sleep between two drains while waiting for samples
DRAIN_PERIOD_S = 0.05


def instrument_to_host_ns(t: np.ndarray, host_t0_ns: int, time_scale: float) -> np.ndarray:
    """Instrument seconds since INIT (table clock) as host perf_counter_ns (float)."""
    return host_t0_ns + np.asarray(t, dtype=float) / time_scale * 1e9


@dataclass
class Capture:
    """What one acquisition collected: instrument times `t` (table s since INIT) and the
    raw values of each sample as the instrument sent them (`values[:, i]`, column i)."""

    t: np.ndarray
    values: np.ndarray
    host_t0_ns: int
    mapping_uncertainty_s: float
    rate_hz: float


class BufferedAcquisition:
    """One running acquisition on `link` (a VisaLink): started by `start`, drained by
    `drain`/`wait_for`, ended by `stop`. `columns` is the count of values after each
    timestamp; `unexpected(command, reply, expected)` is the dialect's error for a reply
    outside the contract."""

    def __init__(self, link, rate_hz: float, columns: int, time_scale: float, unexpected) -> None:
        self.link = link
        self.rate_hz = float(rate_hz)
        self.columns = int(columns)
        self.time_scale = float(time_scale)
        self.unexpected = unexpected
        self._t: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self.count = 0
        self.host_t0_ns = 0
        self.uncertainty_s = 0.0

    @classmethod
    def start(cls, link, rate_hz: float, columns: int, time_scale: float, unexpected) -> "BufferedAcquisition":
        """INIT (SAMP:RATE already set and checked by the caller), then map the clocks."""
        acq = cls(link, rate_hz, columns, time_scale, unexpected)
        link.write("INIT")
        acq.host_t0_ns, acq.uncertainty_s = acq.map_clock()
        return acq

    def map_clock(self) -> tuple[int, float]:
        """Host perf_counter_ns of instrument time 0, and the half round trip (s)."""
        best = None
        for _ in range(MAPPING_TRIES):
            before = time.perf_counter_ns()
            reply = self.link.query("TRIG:TIME?")
            after = time.perf_counter_ns()
            try:
                instrument_s = float(reply)
            except ValueError:
                raise self.unexpected("TRIG:TIME?", reply, "an NR3 time") from None
            half = (after - before) // 2
            if best is None or half < best[1]:
                best = (before + half - round(instrument_s / self.time_scale * 1e9), half)
        return best[0], best[1] * 1e-9

    def drain(self) -> None:
        """TRAC:DATA? once: the samples waiting, appended (an empty line: none)."""
        reply = self.link.query("TRAC:DATA?")
        if not reply:
            return
        width = 1 + self.columns
        try:
            flat = np.array(reply.split(","), dtype=float)
        except ValueError:
            raise self.unexpected("TRAC:DATA?", reply, f"'{self._form()}' NR3 numbers") from None
        if flat.size % width:
            expected = ("pairs 't,f' (an even count of numbers)" if width == 2 else
                        f"groups '{self._form(1)}' (a multiple of {width} numbers)")
            raise self.unexpected("TRAC:DATA?", reply, expected)
        rows = flat.reshape(-1, width)
        self._t.append(rows[:, 0])
        self._v.append(rows[:, 1:])
        self.count += rows.shape[0]

    def _form(self, samples: int = 2) -> str:
        names = ["f"] if self.columns == 1 else ["x", "y", "z", "w"][: self.columns]
        one = lambda i: ",".join([f"t{i}"] + [f"{n}{i}" for n in names])  # noqa: E731
        return ",".join(one(i) for i in range(1, samples + 1)) + (",..." if samples > 1 else "")

    def wait_for(self, n: int, deadline_ns: int) -> None:
        """Drain until `n` samples were collected or the host's perf_counter_ns passes deadline_ns."""
        while self.count < n:
            self.drain()
            if self.count >= n:
                break
            remaining_s = (deadline_ns - time.perf_counter_ns()) * 1e-9
            if remaining_s <= 0:
                break
            missing_wall_s = (n - self.count) / self.rate_hz / self.time_scale
            time.sleep(min(max(missing_wall_s, 0.001), DRAIN_PERIOD_S, remaining_s))

    def stop(self) -> Capture:
        """ABOR, then drain what is left: everything this acquisition collected."""
        self.link.write("ABOR")
        self.drain()
        t = np.concatenate(self._t) if self._t else np.zeros(0)
        v = np.concatenate(self._v) if self._v else np.zeros((0, self.columns))
        return Capture(t, v, self.host_t0_ns, self.uncertainty_s, self.rate_hz)
