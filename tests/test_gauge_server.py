"""The gauge socket servers at byte level: framing, junk, disconnects, AOUT streaming."""

from __future__ import annotations

import os
import socket
import struct
import time

import pytest

from rigs.emulator.clock import TableClock
from rigs.emulator.gauge_server import MAX_LINE, stream_deadline_ns
from rigs.emulator.gauges import GclGauge, ScpiGauge
from tests.gauge_helpers import FakeClock, FunctionSource, raw_exchange, read_until, served

pytestmark = pytest.mark.timeout(30)


def gcl(force=42.0, clock=None):
    return lambda: GclGauge(FunctionSource(force, clock or FakeClock(1.0)), noise_n=0.0)


def scpi(force=42.0, clock=None):
    return lambda: ScpiGauge(FunctionSource(force, clock or FakeClock(1.0)), noise_n=0.0)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def abort(s: socket.socket) -> None:
    """Close with a TCP reset, as a crashed client or a pulled cable does."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_framing_gcl_cr_in_crlf_out_and_pipelining():
    with served(gcl()) as srv:
        reply = raw_exchange(srv.ports[0], b"?\r?C\rLB\r?\r", b"lbF\r\n")
        assert reply == b"42.0 N\r\n42.0 N\r\nR\r\n9.44 lbF\r\n"


def test_framing_scpi_lf_and_split_packets():
    with served(scpi()) as srv, connect(srv.ports[0]) as s:
        for piece in (b"ME", b"AS:FO", b"RC?", b"\n"):
            s.sendall(piece)
            time.sleep(0.01)
        assert read_until(s, b"\n") == b"+4.200000E+01\n"
        s.sendall(b"MEAS:FORC?\r\n")  # a stray CR before LF is tolerated (whitespace)
        assert read_until(s, b"\n") == b"+4.200000E+01\n"


def test_gcl_lf_is_not_a_terminator():
    with served(gcl()) as srv:
        # "?\n" never completes; "\n?" after the CR is a different, unknown command
        assert raw_exchange(srv.ports[0], b"?\n\r", b"\r\n") == b"*10\r\n"


def test_binary_garbage_then_still_answers():
    junk = bytes(range(256)) * 8 + os.urandom(4096)
    with served(gcl(), scpi()) as srv:
        with connect(srv.ports[0]) as s:
            s.sendall(junk.replace(b"\r", b"") + b"\r?\r")
            data = read_until(s, b"42.0 N\r\n")
            assert data.endswith(b"*10\r\n42.0 N\r\n")
        with connect(srv.ports[1]) as s:
            s.sendall(junk.replace(b"\n", b"") + b"\n*IDN?\nSYST:ERR?\n")
            data = read_until(s, b'"\n')
            assert data == b'TractionRig,LCI-3000,EMU-G-0001,1.0\n-113,"Undefined header"\n'


@pytest.mark.parametrize("dialect", ["gcl", "scpi"])
def test_huge_line_without_terminator_is_discarded(dialect):
    factory, term, query, answer = {
        "gcl": (gcl(), b"\r", b"?", b"42.0 N\r\n"),
        "scpi": (scpi(), b"\n", b"MEAS:FORC?", b"+4.200000E+01\n"),
    }[dialect]
    with served(factory) as srv, connect(srv.ports[0]) as s:
        blob = b"A" * (MAX_LINE // 4)
        for _ in range(10):  # 160 KiB in pieces, no terminator
            s.sendall(blob)
        s.sendall(b"tail of the junk" + term + query + term)
        assert read_until(s, answer) == answer  # nothing for the junk line, then the reply


def test_abrupt_disconnects_do_not_disturb_other_clients():
    with served(gcl()) as srv:
        port = srv.ports[0]
        keeper = connect(port)
        for payload in (b"", b"?", b"?\r", b"AOUT1000\r", b"\xff" * 70000):
            s = connect(port)
            if payload:
                s.sendall(payload)
            abort(s)
        keeper.sendall(b"?C\r")
        assert read_until(keeper, b"\r\n") == b"42.0 N\r\n"
        keeper.close()
        assert raw_exchange(port, b"?\r", b"\r\n") == b"42.0 N\r\n"
        assert srv.call(lambda: srv.gauges[0].stream_rate_hz) == 0  # the streaming client left


def test_many_clients_share_one_gauge():
    with served(gcl()) as srv:
        port = srv.ports[0]
        clients = [connect(port) for _ in range(8)]
        clients[0].sendall(b"KG\r")
        assert read_until(clients[0], b"\r\n") == b"R\r\n"
        for c in clients:
            c.sendall(b"?\r")
        for c in clients:
            assert read_until(c, b"\r\n") == b"4.28 kgF\r\n"
            c.close()


def test_aout_streams_lines_until_aout0():
    clock = TableClock(time_scale=10.0)
    with served(gcl(42.0, clock)) as srv, connect(srv.ports[0]) as s:
        s.sendall(b"AOUT125\r")  # 1250 lines per wall second at K = 10
        data = b""
        while data.count(b"\r\n") < 50:
            data += s.recv(4096)
        assert set(data.split(b"\r\n")[:50]) == {b"42.0 N"}
        s.sendall(b"AOUT0\r")
        s.settimeout(0.3)
        try:
            while s.recv(65536):  # lines already under way
                pass
        except socket.timeout:
            pass
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(65536)  # quiet after AOUT0
        s.settimeout(5.0)
        s.sendall(b"?\r")
        assert read_until(s, b"\r\n") == b"42.0 N\r\n"


def test_streaming_goes_to_its_own_client_only():
    clock = TableClock(time_scale=1.0)
    with served(gcl(42.0, clock)) as srv:
        streamer, other = connect(srv.ports[0]), connect(srv.ports[0])
        streamer.sendall(b"AOUT250\r")
        assert read_until(streamer, b"\r\n").startswith(b"42.0 N\r\n")
        for _ in range(20):
            other.sendall(b"?C\r")
            assert read_until(other, b"\r\n") == b"42.0 N\r\n"
        streamer.sendall(b"AOUT0\r")
        streamer.close()
        other.close()


def test_stream_deadlines_are_absolute_and_scaled():
    # AOUTn at time scale K: n*K lines per wall second, deadline from k, not accumulated
    assert stream_deadline_ns(0, 1, 1000, 1.0) == 1_000_000
    assert stream_deadline_ns(0, 1, 1000, 10.0) == 100_000
    assert stream_deadline_ns(5, 3, 125, 1.0) == 5 + 24_000_000
    # 1/3 ms periods: the 3,000,000th line is exactly 1000 s later (no rounding drift)
    assert stream_deadline_ns(0, 3_000_000, 1000, 3.0) == 1_000_000_000_000
    assert stream_deadline_ns(0, 7, 1000, 3.0) == round(7e6 / 3)


def test_poll_task_fills_the_scpi_buffer_without_commands():
    clock = FakeClock(1.0)
    with served(scpi(10.0, clock)) as srv, connect(srv.ports[0]) as s:
        s.sendall(b"SAMP:RATE 100;:INIT;:TRAC:POIN?\n")
        assert read_until(s, b"\n") == b"1\n"  # INIT done before the clock moves
        for _ in range(40):  # 20 table seconds, more than the source's 16 s history
            srv.call(clock.advance, 0.5)
            time.sleep(0.03)  # the server polls every 20 ms (wall)
        assert srv.call(lambda: srv.gauges[0].dropped) == 0
        s.sendall(b"TRAC:POIN?\n")
        assert read_until(s, b"\n") == b"2001\n"
