"""The gcl driver over an ASRL resource (pyvisa-py, 115200 8N1) against the emulator's
gauge served on one end of a pty null-modem: what test_gauge_driver_socket checks over a
socket, on a serial line, plus what only a line has — no connection, so a stream or a
half command left by an earlier client is still there when the next one opens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drivers.errors import DeviceError, DeviceTimeout, DeviceUnreachable, GaugeOverload
from drivers.gauge import HOST_ARRIVAL, GclGauge, open_gauge
from rigs.emulator import gauges as models
from rigs.emulator.gauge_server import GaugeServerThread
from rigs.emulator.nullmodem import PtyLink
from tests.gauge_helpers import FakeClock, FunctionSource

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parent.parent
FAST = 300  # ms: short bounded timeouts for the failures


@pytest.fixture
def line():
    """A noiseless gcl gauge on a hand-driven force, served on `end_a`; `resource` is `end_b`."""
    clock = FakeClock(0.0, 1.0)
    source = FunctionSource(100.0, clock)
    link = PtyLink()
    try:
        with GaugeServerThread(lambda: [models.GclGauge(source, capacity_n=500.0, noise_n=0.0)],
                               lines=[link.end_a]) as srv:
            srv.resource = f"ASRL{link.end_b}::INSTR"
            srv.model = srv.gauges[0]

            def set_force(value, advance=0.01):
                def apply():
                    source.fn = value
                    clock.advance(advance)
                    srv.model.poll()

                srv.call(apply)

            srv.set_force = set_force
            yield srv
    finally:
        link.close()


def one_line(error: DeviceError, resource: str) -> str:
    text = str(error)
    assert "\n" not in text and text.startswith(resource)
    return text


def test_readings_in_newtons_whatever_the_unit(line):
    with open_gauge(line.resource, "gcl") as g:
        assert isinstance(g, GclGauge)
        assert g.read() == pytest.approx(100.0)
        assert g.read_current() == pytest.approx(100.0)
        for unit in ("lbF", "kgF", "gF", "ozF", "mN", "kN", "N"):
            g.set_unit(unit)
            assert g.read() == pytest.approx(100.0, abs=0.06), unit
        g.set_unit("lbF")
        assert line.call(lambda: line.model.unit) == "lbF"  # the gauge displays lbF; we read N
        assert g.read() == pytest.approx(100.0, abs=0.06)


def test_peaks_tare_and_overload(line):
    with GclGauge(line.resource) as g:
        line.set_force(250.0)
        line.set_force(-30.0)
        line.set_force(80.0)
        assert g.peak_tension() == pytest.approx(250.0)
        assert g.peak_compression() == pytest.approx(-30.0)
        g.clear_peaks()
        assert g.peak_tension() == 0.0
        g.tare()
        line.set_force(90.0)
        assert g.read() == pytest.approx(10.0)
        line.set_force(700.0)  # capacity 500 N: overload above 600 N
        with pytest.raises(GaugeOverload) as info:
            g.read()
        assert "*21" in one_line(info.value, line.resource)


def test_aout_stream_over_the_line(line):
    line.set_force(42.0)
    with GclGauge(line.resource) as g:
        trace = g.stream(n_samples=40, rate_hz=125)
        assert len(trace) == 40 and trace.time_base == HOST_ARRIVAL and trace.resource == line.resource
        assert np.all(trace.force_n == 42.0)
        assert np.all(np.diff(trace.t) > 0)
        assert line.call(lambda: line.model.stream_rate_hz) == 0  # AOUT0 reached the gauge
        assert g.read() == pytest.approx(42.0)  # nothing of the stream is left on the line


def test_a_stream_left_running_by_a_dead_client_is_stopped_on_open(line):
    """Over a socket the server sees the client go; a serial gauge keeps streaming."""
    code = ("import os, time; from drivers.gauge import GclGauge; "
            f"g = GclGauge({line.resource!r}); g.start_stream(125); time.sleep(0.2); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=20,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert line.call(lambda: line.model.stream_rate_hz) == 125
    line.set_force(61.0)
    with GclGauge(line.resource) as g:
        assert line.call(lambda: line.model.stream_rate_hz) == 0
        assert [g.read() for _ in range(5)] == [pytest.approx(61.0)] * 5


def test_wrong_dialect_is_one_line_and_leaves_the_line_usable(line):
    """scpi's LF-terminated *IDN? is half a gcl command: no reply, then a timeout naming
    termination and dialect; the next gcl client finishes that half line and reads."""
    with pytest.raises(DeviceTimeout) as info:
        open_gauge(line.resource, "scpi", timeout_ms=FAST)
    text = one_line(info.value, line.resource)
    assert "no reply" in text and "termination" in text and "dialect" in text
    assert info.value.__cause__ is not None
    with GclGauge(line.resource) as g:
        assert g.read() == pytest.approx(100.0)


def test_missing_serial_device_is_one_line():
    resource = "ASRL/dev/ttyNOPE9::INSTR"
    with pytest.raises(DeviceUnreachable) as info:
        open_gauge(resource, "gcl", timeout_ms=FAST)
    assert "serial device path" in one_line(info.value, resource)
