"""The emulator answers at once: every request of a read is handled, long replies give way
to other clients, each reply's latency is recorded, and `--stats` writes it with the
emulator's CPU use. Plus the client side of promptness: VISA sockets without Nagle's delay.

Behaviour only; the latency figures themselves are benchmarks (bench_stability.py).
"""

from __future__ import annotations

import json
import socket
import struct
import time

import numpy as np
import pytest

from drivers.gauge.link import VisaLink
from rigs.emulator.gauges import TRACE_CHUNK, ChunkedReply, ScpiGauge
from rigs.emulator.latency import ReplyLatency
from rigs.rig import EmulatorProcess
from tests.gauge_helpers import FakeClock, FunctionSource, read_until, served

pytestmark = pytest.mark.timeout(60)


def _fc4_request(tid: int, address: int, count: int, unit: int = 1) -> bytes:
    pdu = struct.pack(">BHH", 4, address, count)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def _read_adus(sock: socket.socket, n: int, timeout: float = 5.0) -> list[tuple[int, bytes]]:
    """n Modbus TCP replies: (transaction id, PDU)."""
    sock.settimeout(timeout)
    data, out = b"", []
    while len(out) < n:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
        while len(data) >= 7:
            tid, _, length = struct.unpack(">HHH", data[:6])
            if len(data) < 6 + length:
                break
            out.append((tid, data[7 : 6 + length]))
            data = data[6 + length :]
    return out


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    stats = tmp_path_factory.mktemp("emu") / "stats.json"
    emu = EmulatorProcess.start("lumbar", seed=2, time_scale=10.0, stats_path=str(stats))
    yield emu
    emu.stop()


def test_two_requests_in_one_segment_get_two_replies(emulator):
    """pymodbus' own handler decodes one frame a read and keeps the second until more
    bytes arrive; the emulator answers both at once, in order."""
    ep = emulator.endpoints.controller
    with socket.create_connection((ep.host, ep.port), timeout=5.0) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(_fc4_request(7, 100, 1) + _fc4_request(8, 102, 1))  # PROTOCOL_VERSION, RATED_FORCE
        (tid_a, pdu_a), (tid_b, pdu_b) = _read_adus(s, 2)
    assert (tid_a, tid_b) == (7, 8)
    assert pdu_a == bytes([4, 2]) + struct.pack(">H", 0x0100)
    assert pdu_b == bytes([4, 2]) + struct.pack(">H", 8900)


def test_stats_file_holds_reply_latencies_and_cpu(tmp_path):
    stats = tmp_path / "stats.json"
    emu = EmulatorProcess.start("lumbar", seed=2, time_scale=10.0, stats_path=str(stats))
    try:
        ep = emu.endpoints.controller
        with socket.create_connection((ep.host, ep.port), timeout=5.0) as s:
            for tid in range(20):
                s.sendall(_fc4_request(tid, 0, 7))
                _read_adus(s, 1)
        link = VisaLink(emu.endpoints.gauges["scpi"].resource, read_termination="\n",
                        write_termination="\n", hint="")
        try:
            assert link.query("*IDN?").startswith("TractionRig")
        finally:
            link.close()
    finally:
        emu.stop()
    data = json.loads(stats.read_text())
    assert data["wall_s"] > 0 and data["cpu_s"] > 0 and 0 < data["cpu_s_per_wall_s"] < 2.0
    modbus, gauge = data["replies"]["modbus"], data["replies"]["gauge"]
    assert modbus["replies"] >= 20 and gauge["replies"] >= 1
    for figures in (modbus, gauge):
        assert 0 < figures["p50_us"] <= figures["p99_us"] <= figures["p999_us"]
        assert figures["max_us"] > 0 and figures["over_1ms"] >= 0


def test_latency_percentiles_are_exact_to_the_bin():
    rec = ReplyLatency()
    now = 10_000_000_000  # the instants given: a loaded machine must not turn 1000 quick replies slow
    for i in range(1000):
        rec.add("x", now + i * 1000, now + i * 1000 + 20_000)  # 20 µs each
    s = rec.summary()["x"]
    assert s["replies"] == 1000 and s["over_1ms"] == 0
    rec.add("x", now, now + 5_000_000)  # one 5 ms reply
    s = rec.summary()["x"]
    assert s["over_1ms"] == 1 and s["max_us"] >= 5000 and s["p99_us"] < 1000


# ---------------------------------------------------------------- long gauge replies
def _buffered_gauge(samples: int):
    clock = FakeClock(0.0)
    gauge = ScpiGauge(FunctionSource(lambda t: 100.0 + t, clock), noise_n=0.0)
    gauge.handle("SAMP:RATE 10000")
    gauge.handle("INIT")
    clock.advance(samples / 10000.0)
    return gauge


def test_a_long_trace_is_a_chunked_reply_with_the_same_text():
    g = _buffered_gauge(3 * TRACE_CHUNK + 5)
    reply = g.handle("TRAC:DATA?")
    assert isinstance(reply, ChunkedReply)
    text = str(reply)
    values = np.array(text.split(","), dtype=float)
    assert len(values) == 2 * (3 * TRACE_CHUNK + 6)
    t, f = values[0::2], values[1::2]
    assert np.allclose(np.diff(t), 1e-4) and np.allclose(f, 100.0 + t, atol=1e-3)
    assert text.split(",")[:2] == [f"{t[0]:+.9E}", f"{f[0]:+.6E}"]  # NR3, 10 significant digits of time
    g.handle("TRAC:DATA?;TRAC:POIN?")  # in a compound the pieces are joined: a plain string


def test_other_clients_are_answered_while_a_long_trace_is_sent():
    clock = FakeClock(0.0)
    with served(lambda: ScpiGauge(FunctionSource(42.0, clock), noise_n=0.0)) as srv:
        port = srv.ports[0]
        with socket.create_connection(("127.0.0.1", port)) as a, socket.create_connection(("127.0.0.1", port)) as b:
            for s in (a, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            a.sendall(b"SAMP:RATE 10000\nINIT\n*IDN?\n")
            assert read_until(a, b"\n").startswith(b"TractionRig")
            srv.call(clock.advance, 10.0)  # 100,000 samples waiting (inside the source's history): 250 pieces
            a.sendall(b"TRAC:DATA?\n*IDN?\n")
            time.sleep(0.001)
            b.sendall(b"*IDN?\n")
            assert read_until(b, b"\n").startswith(b"TractionRig")
            # b was answered before a's trace was complete ...
            a.setblocking(False)
            try:
                data = bytearray(a.recv(1 << 24))
            except BlockingIOError:
                data = bytearray()
            assert b"\n" not in data, "the whole trace went out before another client was answered"
            # ... and a's next reply waited its turn behind the trace
            a.settimeout(10.0)
            while data.count(b"\n") < 2:
                chunk = a.recv(1 << 20)
                assert chunk
                data += chunk
            trace, idn, _ = bytes(data).split(b"\n", 2)
            assert trace.count(b",") == 2 * 100_001 - 1 and idn.startswith(b"TractionRig")


def test_visa_sockets_send_without_nagles_delay(emulator):
    link = VisaLink(emulator.endpoints.gauges["scpi"].resource, read_termination="\n",
                    write_termination="\n", hint="")
    try:
        sock = link.inst.visalib.sessions[link.inst.session].interface
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        link.close()
