"""Gauge path benchmark: how fast and how steady the reference gauge is over VISA.

    .venv/bin/python benchmarks/bench_gauge.py [--seconds 2] [--json]

The emulated gauges run in their own process (`python -m rigs.emulator.gauge_server`,
synthetic force on a real TableClock), so the client's GIL does not pace the server.
Reported, all over loopback in the same run:
  * gcl `?` readings/s polled through the pyvisa driver (goal >= 5,000/s)
  * gcl AOUT1000 arrival jitter |interval - 1 ms|, p50/p99 (goal p99 <= 1 ms)
  * scpi MEAS:FORC? readings/s through the pyvisa driver
  * raw-socket round trips (no pyvisa): `?` to the emulator, and a bare echo server,
    the floor the driver numbers should be compared with.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.gauge import GclGauge, ScpiGauge  # noqa: E402


def start_emulator(time_scale: float) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rigs.emulator.gauge_server", "--dialect", "gcl,scpi", "--time-scale", str(time_scale)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("gauge emulator did not start")
    return proc, json.loads(line)


def _echo_server(port_queue) -> None:
    """A bare blocking echo of lines: the loopback + Python floor."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port_queue.put(srv.getsockname()[1])
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while data := conn.recv(4096):
        conn.sendall(data)


def resource(port: int) -> str:
    return f"TCPIP::127.0.0.1::{port}::SOCKET"


def polled_rate(read, seconds: float) -> float:
    for _ in range(200):  # warm-up
        read()
    n = 0
    t0 = time.perf_counter_ns()
    end = t0 + int(seconds * 1e9)
    while True:
        for _ in range(100):
            read()
        n += 100
        now = time.perf_counter_ns()
        if now >= end:
            return n / ((now - t0) * 1e-9)


def raw_round_trips(port: int, payload: bytes, until: bytes, count: int) -> np.ndarray:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out = np.empty(count, dtype=np.int64)
        for i in range(count + 200):
            t0 = time.perf_counter_ns()
            s.sendall(payload)
            data = b""
            while not data.endswith(until):
                data += s.recv(4096)
            if i >= 200:
                out[i - 200] = time.perf_counter_ns() - t0
        return out


def aout_jitter(port: int, lines: int, time_scale: float) -> tuple[float, float, float, int]:
    with GclGauge(resource(port), time_scale=time_scale) as g:
        trace = g.stream(n_samples=lines + 20, rate_hz=1000)
    intervals = np.diff(trace.t[20:])  # wall seconds between arrivals, after warm-up
    period = 1e-3 / time_scale
    jitter = np.abs(intervals - period)
    return float(np.percentile(jitter, 50)), float(np.percentile(jitter, 99)), float(jitter.max()), len(intervals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per polled-rate measurement")
    parser.add_argument("--aout-lines", type=int, default=5000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()

    proc, info = start_emulator(args.time_scale)
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    echo = ctx.Process(target=_echo_server, args=(ports,), daemon=True)
    echo.start()
    echo_port = ports.get(timeout=10)
    results: dict[str, float] = {}
    try:
        with GclGauge(resource(info["gcl"])) as g:
            results["gcl_polled_per_s"] = polled_rate(g.read, args.seconds)
        p50, p99, worst, n = aout_jitter(info["gcl"], args.aout_lines, args.time_scale)
        results.update(aout_jitter_p50_ms=p50 * 1e3, aout_jitter_p99_ms=p99 * 1e3, aout_jitter_max_ms=worst * 1e3, aout_intervals=n)
        with ScpiGauge(resource(info["scpi"])) as s:
            results["scpi_polled_per_s"] = polled_rate(s.read, args.seconds)
        rt = raw_round_trips(info["gcl"], b"?\r", b"\r\n", 5000)
        results["raw_emulator_rt_p50_us"] = float(np.percentile(rt, 50)) / 1e3
        results["raw_emulator_rt_p99_us"] = float(np.percentile(rt, 99)) / 1e3
        rt = raw_round_trips(echo_port, b"?\r", b"\r", 5000)
        results["raw_echo_rt_p50_us"] = float(np.percentile(rt, 50)) / 1e3
    finally:
        proc.terminate()
        proc.wait(5)
        echo.terminate()

    r = results
    rows = [
        ("gcl `?` polled via pyvisa", f"{r['gcl_polled_per_s']:,.0f} /s", ">= 5,000 /s", r["gcl_polled_per_s"] >= 5000),
        ("  = per reading", f"{1e6 / r['gcl_polled_per_s']:.0f} us", "", None),
        ("AOUT1000 jitter p50", f"{r['aout_jitter_p50_ms']:.3f} ms", "", None),
        ("AOUT1000 jitter p99", f"{r['aout_jitter_p99_ms']:.3f} ms", "<= 1 ms", r["aout_jitter_p99_ms"] <= 1.0),
        ("AOUT1000 jitter max", f"{r['aout_jitter_max_ms']:.3f} ms", f"({r['aout_intervals']} intervals)", None),
        ("scpi MEAS:FORC? polled via pyvisa", f"{r['scpi_polled_per_s']:,.0f} /s", "", None),
        ("raw socket `?` round trip p50", f"{r['raw_emulator_rt_p50_us']:.0f} us", "emulator, no pyvisa", None),
        ("raw socket `?` round trip p99", f"{r['raw_emulator_rt_p99_us']:.0f} us", "", None),
        ("raw socket echo round trip p50", f"{r['raw_echo_rt_p50_us']:.0f} us", "bare echo server", None),
    ]
    print(f"gauge benchmark — loopback, time scale {args.time_scale:g}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    for name, value, goal, ok in rows:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {name:<36} {value:>12}  {goal}{mark}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
