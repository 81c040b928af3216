"""Both gauge drivers over pyvisa-py against the emulator's socket servers (loopback)."""

from __future__ import annotations

import datetime
import time

import numpy as np
import pytest

from drivers.errors import ConfigError, DeviceProtocolError, DeviceTimeout, GaugeOverload
from drivers.gauge import HOST_ARRIVAL, INSTRUMENT, ForceGauge, GaugeIdentity, GclGauge, ScpiGauge, open_gauge
from drivers.units import NEWTONS_PER_UNIT
from rigs.emulator.clock import TableClock
from rigs.emulator import gauges as models
from tests.gauge_helpers import FakeClock, FunctionSource, resource, served

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def manual():
    """A gcl and a scpi gauge on one hand-driven table force (no noise)."""
    clock = FakeClock(1.0)
    source = FunctionSource(100.0, clock)

    def gcl():
        return models.GclGauge(source, capacity_n=500.0, noise_n=0.0)

    def scpi():
        return models.ScpiGauge(source, capacity_n=500.0, noise_n=0.0)

    with served(gcl, scpi) as srv:
        srv.clock, srv.source = clock, source

        def set_force(value, advance=0.01):
            """The force is `value` for the next `advance` table seconds."""

            def apply():
                source.fn = value
                clock.advance(advance)
                for gauge in srv.gauges:  # sample now: the fake source keeps no history
                    gauge.poll()

            srv.call(apply)

        srv.set_force = set_force
        yield srv


# -- gcl -----------------------------------------------------------------------------------------

def test_gcl_readings_in_newtons_whatever_the_unit(manual):
    with open_gauge(resource(manual.ports[0]), "gcl") as g:
        assert isinstance(g, ForceGauge) and isinstance(g, GclGauge)
        assert g.read() == pytest.approx(100.0)
        assert g.read_current() == pytest.approx(100.0)
        for unit in ("lbF", "kgF", "gF", "ozF", "mN", "kN", "N"):
            g.set_unit(unit)
            # the reply carries the unit; the driver converts (display resolution ~0.1 N)
            assert g.read() == pytest.approx(100.0, abs=0.06), unit
        g.set_unit("LBF")  # any spelling drivers/units.py knows
        assert manual.call(lambda: manual.gauges[0].unit) == "lbF"


def test_gcl_tare_and_peaks(manual):
    with GclGauge(resource(manual.ports[0])) as g:
        manual.set_force(250.0)
        manual.set_force(-30.0)
        manual.set_force(80.0)
        assert g.peak_tension() == pytest.approx(250.0)
        assert g.peak_compression() == pytest.approx(-30.0)
        g.clear_peaks()
        assert g.peak_tension() == 0.0
        g.tare()
        assert g.read() == 0.0
        manual.set_force(90.0)
        assert g.read() == pytest.approx(10.0)
        assert g.peak_tension() == pytest.approx(10.0)


def test_gcl_display_and_filters(manual):
    with GclGauge(resource(manual.ports[0])) as g:
        manual.set_force(300.0)
        manual.set_force(100.0)
        g.set_display("PT")
        assert g.read() == pytest.approx(300.0)
        assert g.read_current() == pytest.approx(100.0)
        g.set_display("CUR")
        g.set_filters(current_exp=3, peak_exp=10)
        with pytest.raises(ConfigError):
            g.set_filters(current_exp=11)
        with pytest.raises(ConfigError):
            g.set_display("MAX")


def test_gcl_overload_raises_and_recovers(manual):
    with GclGauge(resource(manual.ports[0])) as g:
        manual.set_force(700.0)  # capacity 500 N: overload above 600 N
        with pytest.raises(GaugeOverload) as info:
            g.read()
        assert resource(manual.ports[0]) in str(info.value) and "*21" in str(info.value)
        manual.set_force(100.0)
        assert g.read() == pytest.approx(100.0)


def test_gcl_opens_even_when_overloaded(manual):
    manual.set_force(700.0)
    with GclGauge(resource(manual.ports[0])) as g:
        with pytest.raises(GaugeOverload):
            g.read_current()


def test_gcl_identity_comes_from_configuration(manual):
    ident = GaugeIdentity("Mark-10", "M7-200", "1234567", "", datetime.date(2026, 1, 5), datetime.date(2027, 1, 5))
    with GclGauge(resource(manual.ports[0]), identity=ident) as g:
        assert g.identity() == ident
    with GclGauge(resource(manual.ports[0])) as g:
        assert g.identity().source == "configuration"


def test_gcl_rejects_invalid_stream_rates_and_units(manual):
    with GclGauge(resource(manual.ports[0])) as g:
        for rate in (0, 3, 100, 999.5, 2000):
            with pytest.raises(ConfigError):
                g.start_stream(rate)
        with pytest.raises(ConfigError):
            g.set_unit("furlong")
        with pytest.raises(ConfigError):
            g.stop_stream()
        with pytest.raises(ConfigError):
            g.stream()
        assert g.read() == pytest.approx(100.0)


# -- scpi -------------------------------------------------------------------------------------------

def test_scpi_identity_and_calibration(manual):
    with open_gauge(resource(manual.ports[1]), "SCPI") as g:
        assert isinstance(g, ScpiGauge)
        ident = g.identity()
        assert (ident.maker, ident.model, ident.serial, ident.firmware) == ("TractionRig", "LCI-3000", "EMU-G-0001", "1.0")
        assert ident.cal_date == datetime.date(2026, 3, 1)
        assert ident.cal_due == datetime.date(2027, 3, 1)
        assert ident.source == "device"


def test_scpi_readings_units_and_tare(manual):
    with ScpiGauge(resource(manual.ports[1])) as g:
        assert g.read() == 100.0
        for unit in ("lbF", "kgF", "N"):
            g.set_unit(unit)
            assert g.unit == unit
            assert g.read() == pytest.approx(100.0, abs=NEWTONS_PER_UNIT[unit] * 1e-3)
        with pytest.raises(ConfigError):
            g.set_unit("ozF")  # not offered by the indicator: refused before talking
        g.set_unit("kgF")
        g.tare()
        assert g.read() == 0.0
        manual.set_force(150.0)
        assert g.read() == pytest.approx(50.0, abs=1e-3)
        assert g.read_current() == pytest.approx(50.0, abs=1e-3)


def test_scpi_learns_the_unit_left_by_someone_else(manual):
    manual.call(lambda: manual.gauges[1].handle("UNIT:FORC LBF"))
    with ScpiGauge(resource(manual.ports[1])) as g:
        assert g.unit == "lbF"
        assert g.read() == pytest.approx(100.0, abs=0.005)
        g.reset()
        assert g.unit == "N"


def test_scpi_errors_carry_the_instruments_text(manual):
    with ScpiGauge(resource(manual.ports[1])) as g:
        g._link.write("UNIT:FORC STONE")
        with pytest.raises(DeviceProtocolError) as info:
            g.check_errors("UNIT:FORC STONE")
        assert '-224,"Illegal parameter value"' in str(info.value)
        g.check_errors()  # drained
        with pytest.raises(ConfigError):
            g.peak_tension()
        with pytest.raises(ConfigError):
            g.start_stream(20000)


def test_scpi_overrange_raises(manual):
    with ScpiGauge(resource(manual.ports[1])) as g:
        manual.set_force(-650.0)
        with pytest.raises(GaugeOverload):
            g.read()


# -- streaming (live table clock) ---------------------------------------------------------------------

@pytest.fixture(params=[1.0, 10.0], ids=["K1", "K10"])
def live(request):
    clock = TableClock(request.param)
    source = FunctionSource(lambda t: 100.0 + 10.0 * t, clock)  # 10 N per table second
    with served(lambda: models.GclGauge(source, noise_n=0.0), lambda: models.ScpiGauge(source, noise_n=0.0)) as srv:
        srv.time_scale = request.param
        srv.clock = clock
        yield srv


def test_gcl_stream_is_stamped_on_host_arrival(live):
    with GclGauge(resource(live.ports[0]), time_scale=live.time_scale) as g:
        before = time.perf_counter_ns()
        trace = g.stream(n_samples=100, rate_hz=250)
        after = time.perf_counter_ns()
        assert len(trace) == 100
        assert trace.time_base == HOST_ARRIVAL
        assert trace.time_scale == live.time_scale and trace.rate_hz == 250
        assert before <= trace.host_t0_ns and trace.host_ns()[-1] <= after
        assert np.all(np.diff(trace.t) >= 0) and trace.t[0] >= 0
        assert np.all(np.isfinite(trace.force_n)) and np.all(np.diff(trace.force_n) >= 0)
        # the gauge is usable again: the stream was stopped and flushed
        assert 100.0 <= g.read() <= 100.0 + 10.0 * live.clock.now() + 0.1
        assert live.call(lambda: live.gauges[0].stream_rate_hz) == 0


def test_gcl_stream_for_a_duration(live):
    with GclGauge(resource(live.ports[0]), time_scale=live.time_scale) as g:
        trace = g.stream(duration_s=0.2, rate_hz=50)
        assert len(trace) >= 1
        assert trace.t[-1] <= 10.0  # wall seconds, bounded
        assert g.read() > 0


def test_gcl_commands_wait_while_streaming(live):
    with GclGauge(resource(live.ports[0]), time_scale=live.time_scale) as g:
        g.start_stream(25)
        with pytest.raises(ConfigError):
            g.read()
        with pytest.raises(ConfigError):
            g.start_stream(25)
        trace = g.stop_stream()
        assert trace.time_base == HOST_ARRIVAL
        assert g.read() > 0


def test_scpi_buffered_trace_carries_instrument_times(live):
    rate = 1000.0
    with ScpiGauge(resource(live.ports[1]), time_scale=live.time_scale) as g:
        before = time.perf_counter_ns()
        trace = g.stream(n_samples=300, rate_hz=rate)
        after = time.perf_counter_ns()
        assert len(trace) == 300
        assert trace.time_base == INSTRUMENT and trace.time_scale == live.time_scale
        np.testing.assert_array_equal(trace.t, np.arange(300) / rate)  # n / rate (10 digits, exact here)
        # the force follows the table's ramp at the instrument's own instants
        np.testing.assert_allclose(np.diff(trace.force_n), 10.0 / rate, atol=1.5e-3)
        # instrument time 0 lies within the host's bracket of the acquisition
        assert 0 < trace.mapping_uncertainty_s < (after - before) * 1e-9
        slack = trace.mapping_uncertainty_s * 1e9 + 1e6
        assert before - slack <= trace.host_t0_ns <= after + slack
        assert trace.host_ns()[-1] <= after + slack  # no sample from the future
        assert g.read() > 100.0


def test_scpi_stream_duration_in_table_seconds(live):
    with ScpiGauge(resource(live.ports[1]), time_scale=live.time_scale) as g:
        trace = g.stream(duration_s=0.3, rate_hz=200)
        # INIT precedes the wait and ABOR follows it: at least the duration was recorded
        assert trace.t[-1] >= 0.3 - 1 / 200
        np.testing.assert_array_equal(trace.t, np.arange(len(trace)) / 200)


def test_scpi_commands_wait_while_acquiring(live):
    with ScpiGauge(resource(live.ports[1]), time_scale=live.time_scale) as g:
        g.start_stream(100)
        with pytest.raises(ConfigError):
            g.read()
        with pytest.raises(ConfigError):
            g.identity()
        trace = g.stop_stream()
        assert trace.time_base == INSTRUMENT and len(trace) >= 1


def test_close_stops_a_running_stream(live):
    g = GclGauge(resource(live.ports[0]), time_scale=live.time_scale)
    g.start_stream(125)
    g.close()
    with GclGauge(resource(live.ports[0]), time_scale=live.time_scale) as again:
        assert again.read() > 0


def test_unknown_dialect():
    with pytest.raises(ConfigError, match="dialect"):
        open_gauge("TCPIP::127.0.0.1::1::SOCKET", "modbus")


def test_stream_that_cannot_deliver_n_samples_raises(manual):
    # the hand-driven clock stands still: the instrument's buffer never fills
    with ScpiGauge(resource(manual.ports[1]), timeout_ms=200) as g:
        with pytest.raises(DeviceTimeout, match="only 1 of 50 samples"):
            g.stream(n_samples=50, rate_hz=1000)
        assert g.read() == 100.0  # and the acquisition was stopped


def test_gcl_slow_stream_stops_promptly_and_keeps_whole_lines(live):
    with GclGauge(resource(live.ports[0]), time_scale=live.time_scale, timeout_ms=500) as g:
        trace = g.stream(n_samples=2, rate_hz=1)  # lines 1 s / K apart: longer than a poll
        assert len(trace) == 2 and np.all(trace.force_n >= 100.0)
        assert g.read() >= 100.0


def test_closing_one_instrument_leaves_the_others_of_the_bench_open():
    """pyvisa shares one ResourceManager per backend: a flexion-distraction bench's gauge,
    obstacle gauge and inclinometer must each survive the others closing."""
    source = FunctionSource(250.0)
    with served(lambda: models.GclGauge(source, noise_n=0.0), lambda: models.ScpiGauge(source, noise_n=0.0)) as srv:
        first = GclGauge(resource(srv.ports[0]))
        second = ScpiGauge(resource(srv.ports[1]))
        third = ScpiGauge(resource(srv.ports[1]))
        try:
            first.close()
            assert second.read() == pytest.approx(250.0, abs=0.1)
            second.close()
            assert third.read() == pytest.approx(250.0, abs=0.1)
        finally:
            for g in (first, second, third):
                g.close()
        again = ScpiGauge(resource(srv.ports[1]))  # the last close ended the manager; a new one opens
        try:
            assert again.read() == pytest.approx(250.0, abs=0.1)
        finally:
            again.close()
