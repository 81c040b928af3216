"""How long the emulator takes to answer: request read -> reply written, per kind of server.

The contract's devices answer at once; an emulator that answers late makes the framework
look slow (a late heartbeat ack, a trigger instant known worse than it is) and hides
whose fault a trip was. Every server of the emulator adds each reply's latency here, and
`rig emulate --stats FILE` writes the summary when it stops, so a run can say how
promptly its emulated table answered. A histogram of 1 µs bins keeps the percentiles
exact to a microsecond at a fixed cost per reply.
"""

from __future__ import annotations

import json
import time

import numpy as np

BIN_NS = 1_000
BINS = 100_000  # 100 ms; later replies count in the last bin (and in `max_us`)


class ReplyLatency:
    def __init__(self) -> None:
        self._hist: dict[str, np.ndarray] = {}
        self._max_ns: dict[str, int] = {}

    def add(self, kind: str, arrived_ns: int, replied_ns: int | None = None) -> None:
        ns = (time.perf_counter_ns() if replied_ns is None else replied_ns) - arrived_ns
        hist = self._hist.get(kind)
        if hist is None:
            hist = self._hist[kind] = np.zeros(BINS + 1, dtype=np.int64)
            self._max_ns[kind] = 0
        hist[min(ns // BIN_NS, BINS)] += 1
        if ns > self._max_ns[kind]:
            self._max_ns[kind] = ns

    def summary(self) -> dict:
        """Per kind: replies, p50, p99, p99.9 and max in microseconds (bin upper edges),
        and how many replies took longer than 1 ms."""
        out = {}
        for kind, hist in self._hist.items():
            n = int(hist.sum())
            if not n:
                continue
            cum = np.cumsum(hist)
            pct = {name: float((np.searchsorted(cum, q * n) + 1) * BIN_NS / 1e3)
                   for name, q in (("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999))}
            out[kind] = {"replies": n, **pct, "max_us": self._max_ns[kind] / 1e3,
                         "over_1ms": int(hist[1_000_000 // BIN_NS:].sum())}
        return out

    def write(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.summary(), f)


#: the emulator process's one recorder (each `rig emulate` is its own process)
REPLIES = ReplyLatency()
