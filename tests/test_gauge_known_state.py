"""Instruments to a known state on open (issue 22, item 5), against the emulator's gauge
servers: a gauge left acquiring or streaming by a run that was SIGKILLed during a capture,
or whose link was severed (the connection never closed), works on the next open without a
hand-sent ABOR; and a SCPI error, in the contract's list or not, is one line naming the
gauge, the code, the message and what to do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.errors import DeviceProtocolError
from drivers.gauge import GclGauge, ScpiGauge
from drivers.gauge.scpi import CONTRACT_ERRORS, explain_error
from rigs.emulator import gauges as models
from rigs.emulator.clock import TableClock
from tests.gauge_helpers import FunctionSource, read_until, resource, served

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 20.0


@pytest.fixture
def gauges():
    """A gcl and a scpi gauge on a running table clock (K = 10), force 100 N."""
    source = FunctionSource(100.0, TableClock(10.0))
    with served(lambda: models.GclGauge(source, noise_n=0.0), lambda: models.ScpiGauge(source, noise_n=0.0)) as srv:
        srv.gcl, srv.scpi = srv.gauges
        yield srv


def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S} s: {what}")
        time.sleep(0.01)


class Lines:
    """Reply lines of a bare socket client, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> bytes:
        while b"\n" not in self.buffer:
            self.buffer += read_until(self.sock, b"\n")
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.strip()


def scpi_error_after(port: int, command: bytes) -> bytes:
    """What a bare client sees: `command`, then the next error of the queue."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(command + b"\nSYST:ERR?\n")
        return Lines(s).next()


def killed_during_a_capture(gauges, dialect: str) -> None:
    """A driver in another process starts a capture and is SIGKILLed in the middle of it."""
    port = gauges.ports[1 if dialect == "scpi" else 0]
    cls = "ScpiGauge" if dialect == "scpi" else "GclGauge"
    code = (f"import sys, time; from drivers.gauge import {cls}; "
            f"g = {cls}({resource(port)!r}, time_scale=10.0); g.start_stream(125); "
            "print('capturing', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout.readline().strip() == "capturing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


# ------------------------------------------------------------------ scpi

def test_scpi_left_acquiring_by_a_sigkilled_run_works_on_the_next_open(gauges):
    killed_during_a_capture(gauges, "scpi")
    assert gauges.call(lambda: gauges.scpi.acquiring)  # the indicator outlives its client
    # the wedge the issue saw: without ABOR every setting is refused
    assert scpi_error_after(gauges.ports[1], b"SAMP:RATE 500") == b'-221,"Settings conflict"'
    with ScpiGauge(resource(gauges.ports[1]), time_scale=10.0) as g:
        assert not gauges.call(lambda: gauges.scpi.acquiring)  # ABOR on open
        assert gauges.call(lambda: list(gauges.scpi.errors)) == []  # *CLS on open
        trace = g.stream(n_samples=200, rate_hz=500)  # capture again: SAMP:RATE accepted
        assert len(trace) == 200 and trace.t[0] == 0.0 and trace.force_n[0] == pytest.approx(100.0)
        g.check_errors()


def test_scpi_left_acquiring_behind_a_severed_link_works_on_the_next_open(gauges):
    """The old connection is never closed (a cut cable, a stalled proxy): the indicator
    keeps acquiring for it until the next open stops it."""
    with socket.create_connection(("127.0.0.1", gauges.ports[1]), timeout=5) as severed:
        severed.sendall(b"SAMP:RATE 100\nINIT\nSAMP:RATE 200\n")  # and an error left in the queue
        wait_for(lambda: gauges.call(lambda: gauges.scpi.acquiring and bool(gauges.scpi.errors)), "INIT")
        with ScpiGauge(resource(gauges.ports[1]), time_scale=10.0) as g:
            assert not gauges.call(lambda: gauges.scpi.acquiring)
            assert gauges.call(lambda: list(gauges.scpi.errors)) == []
            trace = g.stream(n_samples=100, rate_hz=1000)
            assert len(trace) == 100
            g.check_errors()


def test_scpi_stale_replies_and_a_partial_command_are_drained_before_identifying(gauges):
    """A serial-like leftover on the line: replies nobody read and half a command. The
    driver's first query must read its own reply."""
    port = gauges.ports[1]
    with ScpiGauge(resource(port), time_scale=10.0) as g:
        # replies queued on this very connection, unread, then half a command
        g._link.inst.write_raw(b"*IDN?\nMEAS:FORC?\nTRIG:TIME?\nUNIT:FO")
        time.sleep(0.05)
        g._to_known_state()
        assert g.identity().serial == "EMU-G-0001"
        assert g.read() == pytest.approx(100.0)
        g.check_errors()  # the half command's -113 was cleared by *CLS


def test_a_setting_refused_mid_run_says_what_to_do(gauges):
    """-221 is outside the contract's list of codes: still one line naming the gauge, the
    code, the message and the fix."""
    res = resource(gauges.ports[1])
    with ScpiGauge(res, time_scale=10.0) as g:
        with socket.create_connection(("127.0.0.1", gauges.ports[1]), timeout=5) as other:
            other.sendall(b"INIT\n")  # another client starts an acquisition on this gauge
            wait_for(lambda: gauges.call(lambda: gauges.scpi.acquiring), "the other client's INIT")
            with pytest.raises(DeviceProtocolError) as info:
                g.start_stream(500)
    text = str(info.value)
    assert "\n" not in text and text.startswith(res)
    assert "'SAMP:RATE 500' rejected: -221,\"Settings conflict\"" in text
    assert "acquisition is still running" in text and "ABOR on open" in text and "mid-run" in text


def test_an_unknown_code_is_explained_by_its_class(gauges):
    res = resource(gauges.ports[1])
    with ScpiGauge(res, time_scale=10.0) as g:
        gauges.call(lambda: [gauges.scpi.push_error(e) for e in (models.ScpiError(-241, "Hardware missing"),
                                                                   models.E_UNDEFINED_HEADER)])
        with pytest.raises(DeviceProtocolError) as info:
            g.check_errors("SENS:ZERO")
    text = str(info.value)
    assert text.startswith(res) and "\n" not in text
    assert "'SENS:ZERO' rejected: -241,\"Hardware missing\" (and 1 more error in the queue)" in text
    assert "execution error" in text and "manual for -241" in text


@pytest.mark.parametrize("code", [*CONTRACT_ERRORS, -221, -213, -241, -199, -333, -410, -499, 7, -1000])
def test_every_code_has_a_fix(code):
    fix = explain_error(code)
    assert fix and "\n" not in fix and "see the scpi command table" not in fix
    if code not in CONTRACT_ERRORS and code not in (-221, -213, -410):
        assert str(code) in fix or "query" in fix  # an unlisted code names itself (where to look in the manual)


# ------------------------------------------------------------------ gcl

def test_gcl_left_streaming_by_a_sigkilled_run_works_on_the_next_open(gauges):
    killed_during_a_capture(gauges, "gcl")
    with GclGauge(resource(gauges.ports[0]), time_scale=10.0) as g:
        assert gauges.call(lambda: gauges.gcl.stream_rate_hz) == 0
        trace = g.stream(n_samples=50, rate_hz=250)
        assert len(trace) == 50 and trace.force_n[0] == pytest.approx(100.0)
        assert g.read() == pytest.approx(100.0)


def test_gcl_left_streaming_behind_a_severed_link_is_stopped_on_open(gauges):
    """The old client's connection stays open and unread: the gauge streams to it until
    the next open's AOUT0 (over a socket the server never learns the client is gone)."""
    with socket.create_connection(("127.0.0.1", gauges.ports[0]), timeout=5) as severed:
        severed.sendall(b"AOUT250\r")
        wait_for(lambda: gauges.call(lambda: gauges.gcl.stream_rate_hz) == 250, "AOUT250")
        with GclGauge(resource(gauges.ports[0]), time_scale=10.0) as g:
            assert gauges.call(lambda: gauges.gcl.stream_rate_hz) == 0  # AOUT0 on open
            assert g.read() == pytest.approx(100.0)
            trace = g.stream(n_samples=50, rate_hz=125)
            assert len(trace) == 50


# ------------------------------------------------------------------ the emulated indicator keeps the contract

def test_the_emulated_indicator_keeps_acquiring_after_its_client_is_gone_and_abor_stops_it(gauges):
    port = gauges.ports[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INIT\n")
        wait_for(lambda: gauges.call(lambda: gauges.scpi.acquiring), "INIT")
    time.sleep(0.05)
    assert gauges.call(lambda: gauges.scpi.acquiring)  # a closed connection stops nothing
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        lines = Lines(s)
        s.sendall(b"\nABOR\nSYST:ERR?\nTRAC:POIN?\n")
        assert lines.next() == b'0,"No error"'  # the bare LF and ABOR queued nothing
        assert int(lines.next()) > 0  # ABOR stops the acquisition, the buffer stays for TRAC:DATA?
        s.sendall(b"SAMP:RATE 100\nSYST:ERR?\nSAMP:RATE?\n")
        assert lines.next() == b'0,"No error"'
        assert float(lines.next()) == 100.0  # accepted once stopped
        s.sendall(b"BOGUS\n*CLS\nSYST:ERR?\n")
        assert lines.next() == b'0,"No error"'  # *CLS empties the queue
    assert not gauges.call(lambda: gauges.scpi.acquiring)


def test_a_gcl_gauge_left_showing_peaks_shows_the_current_force_again(gauges):
    """`?` and AOUT report what the display shows: a gauge an earlier session left in
    peak-tension mode would stream peaks as forces. Opening it puts the display on CUR."""
    port = gauges.ports[0]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PT\r")
        assert Lines(s).next() == b"R"
    assert gauges.gcl.display == "PT"
    g = GclGauge(resource(port), time_scale=10.0)
    try:
        assert gauges.gcl.display == "CUR"
    finally:
        g.close()
