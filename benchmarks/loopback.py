"""A raw-socket loopback round trip, measured beside every benchmark figure.

It is the floor under any request/response figure on this machine in this run: a
driver cannot be faster than an echo over the same loopback, so printing both makes
the driver's own overhead visible and the figures comparable across machines.
"""

from __future__ import annotations

import socket
import threading
import time

import numpy as np


def _echo(server: socket.socket) -> None:
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn:
        while data := conn.recv(256):
            conn.sendall(data)


def loopback_round_trip(n: int = 5000, payload: bytes = b"?\r") -> dict[str, float]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    threading.Thread(target=_echo, args=(server,), daemon=True).start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = np.empty(n)
    try:
        for i in range(n):
            t0 = time.perf_counter_ns()
            client.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += client.recv(256)
            samples[i] = time.perf_counter_ns() - t0
    finally:
        client.close()
        server.close()
    return {"p50_us": float(np.percentile(samples, 50)) / 1e3, "p99_us": float(np.percentile(samples, 99)) / 1e3}
