"""What the drivers say when the gauge is not there, silent, misconfigured or talking
nonsense, and that the emulator keeps serving through junk. Each failure must be one
DeviceError line naming the resource, with pyvisa's exception only as the cause."""

from __future__ import annotations

import socket

import pytest

from drivers.errors import DeviceError, DeviceProtocolError, DeviceTimeout, DeviceUnreachable
from drivers.gauge import GclGauge, ScpiGauge, open_gauge
from rigs.emulator.gauges import GclGauge as GclModel
from rigs.emulator.gauges import ScpiGauge as ScpiModel
from tests.gauge_helpers import FakeClock, FunctionSource, ScriptedServer, closed_port, resource, served

pytestmark = pytest.mark.timeout(30)

FAST = 300  # ms: the drivers' bounded timeout, short so the failures are quick


def one_line(error: DeviceError, res: str) -> str:
    text = str(error)
    assert "\n" not in text and text.startswith(res)
    assert error.__cause__ is not None or isinstance(error, DeviceProtocolError)
    return text


@pytest.fixture(scope="module")
def emulators():
    source = FunctionSource(77.0, FakeClock(1.0))
    with served(lambda: GclModel(source, noise_n=0.0), lambda: ScpiModel(source, noise_n=0.0)) as srv:
        yield srv


@pytest.mark.parametrize("dialect", ["gcl", "scpi"])
def test_closed_port_is_unreachable(dialect):
    res = resource(closed_port())
    with pytest.raises(DeviceUnreachable) as info:
        open_gauge(res, dialect, timeout_ms=FAST)
    text = one_line(info.value, res)
    assert "host and port" in text


@pytest.mark.parametrize("dialect", ["gcl", "scpi"])
def test_silent_gauge_times_out_naming_termination_and_dialect(dialect):
    with ScriptedServer(reply=None) as silent:
        res = resource(silent.port)
        with pytest.raises(DeviceTimeout) as info:
            open_gauge(res, dialect, timeout_ms=FAST)
        text = one_line(info.value, res)
        assert "no reply" in text and "termination" in text and "dialect" in text


def test_silent_after_open():
    with ScriptedServer(reply=None) as silent:
        g = GclGauge(resource(silent.port), timeout_ms=FAST, check=False)
        with g, pytest.raises(DeviceTimeout, match=r"no reply to '\?' within 0\.3 s"):
            g.read()


def test_gcl_wrong_write_termination(emulators):
    res = resource(emulators.ports[0])
    with pytest.raises(DeviceTimeout) as info:  # the gauge waits for CR forever
        GclGauge(res, write_termination="\n", timeout_ms=FAST)
    assert "CR" in one_line(info.value, res)


def test_gcl_wrong_read_termination(emulators):
    res = resource(emulators.ports[0])
    with pytest.raises(DeviceProtocolError) as info:  # "77.0 N\r" does not parse
        GclGauge(res, read_termination="\n", timeout_ms=FAST)
    assert "termination" in one_line(info.value, res)


def test_scpi_wrong_write_termination(emulators):
    res = resource(emulators.ports[1])
    with pytest.raises(DeviceTimeout) as info:
        ScpiGauge(res, write_termination="\r", timeout_ms=FAST)
    assert "LF" in one_line(info.value, res)


def test_scpi_driver_on_a_gcl_gauge(emulators):
    res = resource(emulators.ports[0])
    with pytest.raises(DeviceError) as info:
        ScpiGauge(res, timeout_ms=FAST)
    assert "dialect" in one_line(info.value, res)


def test_gcl_driver_on_a_scpi_gauge(emulators):
    res = resource(emulators.ports[1])
    with pytest.raises(DeviceError) as info:
        GclGauge(res, timeout_ms=FAST)
    assert "dialect" in one_line(info.value, res)


def test_gcl_driver_on_a_scpi_gauge_with_crlf_termination(emulators):
    # with LF in the write termination the scpi side answers, in its own language
    res = resource(emulators.ports[1])
    with GclGauge(res, write_termination="\r\n", timeout_ms=FAST, check=False) as g:
        with pytest.raises(DeviceError) as info:
            g.read()
    one_line(info.value, res)


@pytest.mark.parametrize(
    "reply, dialect",
    [
        (b"\x00\xff\xfe garbage\r\n", "gcl"),
        (b"12.3\r\n", "gcl"),  # no unit
        (b"12.3 furlongs\r\n", "gcl"),
        (b"ERROR\n", "scpi"),
        (b"\xde\xad\xbe\xef\n", "scpi"),
    ],
)
def test_garbage_replies_are_protocol_errors(reply, dialect):
    term = b"\r" if dialect == "gcl" else b"\n"
    with ScriptedServer(reply=reply, terminator=term) as junk:
        res = resource(junk.port)
        with pytest.raises(DeviceProtocolError) as info:
            open_gauge(res, dialect, timeout_ms=FAST)
        assert "expected" in one_line(info.value, res)


def test_scpi_garbage_in_a_reading():
    replies = iter([b"A,B,C,D\n", b"N\n", b"not a number\n"])

    class Server(ScriptedServer):
        def _serve(self, conn):  # one scripted reply per query (*CLS answers nothing)
            buf = b""
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
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.endswith(b"?"):
                        conn.sendall(next(replies))

    with Server(reply=None, terminator=b"\n") as srv:
        res = resource(srv.port)
        with ScpiGauge(res, timeout_ms=FAST) as g:
            with pytest.raises(DeviceProtocolError, match="NR3"):
                g.read()


def test_connection_dropped_by_the_gauge():
    class Hangup(ScriptedServer):
        def _serve(self, conn):
            conn.close()

    with Hangup(reply=None) as srv:
        res = resource(srv.port)
        with pytest.raises(DeviceError) as info:
            GclGauge(res, timeout_ms=FAST)
        one_line(info.value, res)


def test_closed_driver_refuses_politely(emulators):
    g = GclGauge(resource(emulators.ports[0]))
    g.close()
    g.close()  # idempotent
    with pytest.raises(DeviceError, match="closed"):
        g.read()


def test_emulator_survives_junk_and_still_answers(emulators):
    gcl_port, scpi_port = emulators.ports
    for port in (gcl_port, scpi_port):
        for payload in (bytes(range(256)) * 300, b"\r\n" * 1000, b"x" * 200_000, b"\x00"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(payload)
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"?C\r*IDN?\n" * 10)
        s.close()  # leave with replies unread
    with GclGauge(resource(gcl_port)) as g:
        assert g.read() == 77.0
    with ScpiGauge(resource(scpi_port)) as g:
        assert g.read() == 77.0
        g.check_errors()  # *CLS at open cleared what the junk queued
