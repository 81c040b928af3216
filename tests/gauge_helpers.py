"""Helpers for the gauge tests: a force source the test writes as a function of time,
a clock the test moves by hand, and small misbehaving servers (silent, garbage).

A manual clock makes the model tests exact: every sample instant is known, so a test
can state the reply string a gauge must give, not a tolerance.
"""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from rigs.emulator.gauge_server import GaugeServerThread

HISTORY_S = 16.0


class FakeClock:
    """A table clock that only moves when the test says so."""

    def __init__(self, t: float = 0.0, time_scale: float = 1.0) -> None:
        self.t = float(t)
        self.time_scale = float(time_scale)

    def now(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t

    def set(self, t: float) -> None:
        self.t = float(t)


class FunctionSource:
    """ForceSource protocol from `fn(times: ndarray) -> ndarray` (newtons, table time).

    `fn` may be replaced at any time (the force 'changes'); `requested` records every
    instant a gauge asked for, so tests can check the sample grid.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray] | float, clock=None, record: bool = False) -> None:
        self.clock = clock if clock is not None else FakeClock()
        self.fn = fn
        self.record = record
        self.requested: list[np.ndarray] = []
        self._now = self.clock.now()

    @property
    def fn(self):
        return self._fn

    @fn.setter
    def fn(self, fn) -> None:
        if callable(fn):
            self._fn = fn
        else:
            value = float(fn)
            self._fn = lambda t: np.full(np.shape(t), value)

    def sync(self) -> float:
        self._now = self.clock.now()
        return self._now

    def force_at(self, times: np.ndarray) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        if self.record:
            self.requested.append(times.copy())
        return np.asarray(self._fn(times), dtype=float) * np.ones_like(times)

    def history_start(self) -> float:
        return max(0.0, self._now - HISTORY_S)

    def all_requested(self) -> np.ndarray:
        return np.concatenate(self.requested) if self.requested else np.zeros(0)


def resource(port: int, host: str = "127.0.0.1") -> str:
    return f"TCPIP::{host}::{port}::SOCKET"


@contextmanager
def served(*factories: Callable[[], object]) -> Iterator[GaugeServerThread]:
    """Gauge models built by `factories`, served on ephemeral 127.0.0.1 ports."""
    with GaugeServerThread(lambda: [f() for f in factories]) as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ScriptedServer:
    """A TCP server on 127.0.0.1 that answers every `terminator`-ended line with
    `reply` (None: never answers: a silent gauge). Runs in a daemon thread."""

    def __init__(self, reply: bytes | None, terminator: bytes = b"\r") -> None:
        self.reply = reply
        self.terminator = terminator
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self._accept.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop = True
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self._stop:
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.received += data
            if self.reply is not None:
                for _ in range(data.count(self.terminator)):
                    try:
                        conn.sendall(self.reply)
                    except OSError:
                        return


def raw_exchange(port: int, payload: bytes, until: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes and read until `until` has been seen (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        return read_until(s, until, timeout)


def read_until(sock: socket.socket, until: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    while until not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)
