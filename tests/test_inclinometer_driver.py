"""The `tilt` inclinometer driver over pyvisa-py against the model's socket server (and a
serial line), as the gauge drivers are tested: identity, calibration dates, zero, unit,
immediate readings, out of range, SCPI errors and the buffered acquisition with its
instrument timestamps mapped onto the host's clock."""

from __future__ import annotations

import datetime
import math
import time

import numpy as np
import pytest

from drivers import kinds
from drivers.errors import ConfigError, DeviceProtocolError, DeviceTimeout
from drivers.inclinometer import AngleTrace, Inclinometer, TiltInclinometer, open_inclinometer
from drivers.inclinometer.tilt import CONTRACT_ERRORS, explain_error
from rigs.emulator.clock import TableClock
from rigs.emulator.gauge_server import GaugeServerThread
from rigs.emulator.inclinometer import FunctionAngleSource
from rigs.emulator.inclinometer import TiltInclinometer as TiltModel
from rigs.emulator.nullmodem import PtyLink
from tests.gauge_helpers import FakeClock, closed_port, resource, served

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def manual():
    """A noiseless inclinometer on hand-set angles (manual clock), with a mounting offset."""
    clock = FakeClock(1.0)
    source = FunctionAngleSource((10.0, -5.0), clock)
    with served(lambda: TiltModel(source, noise_deg=0.0, mount_offset_deg=(0.5, -0.25))) as srv:
        srv.model = srv.gauges[0]

        def set_angles(x, y, advance=0.01):
            def apply():
                source.fn = (x, y)
                clock.advance(advance)
                srv.model.poll()

            srv.call(apply)

        srv.set_angles = set_angles
        srv.resource = resource(srv.ports[0])
        yield srv


def test_registered_as_the_angle_dialect_tilt(manual):
    assert kinds.instrument("tilt", "angle").driver is TiltInclinometer
    with open_inclinometer(manual.resource, "TILT") as tilt:
        assert isinstance(tilt, Inclinometer) and tilt.dialect == "tilt"
    with pytest.raises(ConfigError, match="unknown angle instrument dialect 'scpi'; expected one of tilt"):
        open_inclinometer(manual.resource, "scpi")


def test_identity_and_calibration_dates(manual):
    with TiltInclinometer(manual.resource) as tilt:
        ident = tilt.identity()
    assert (ident.maker, ident.model, ident.serial, ident.firmware) == ("TractionRig", "TLT-2", "EMU-I-0001", "1.0")
    assert (ident.cal_date, ident.cal_due) == (datetime.date(2026, 3, 1), datetime.date(2027, 3, 1))
    assert ident.source == "device"


def test_immediate_reading_of_both_axes_in_degrees(manual):
    with TiltInclinometer(manual.resource) as tilt:
        reading = tilt.read()
        assert (reading.x_deg, reading.y_deg) == (10.5, -5.25) and reading.reason == ""
        assert tilt.read_axis("x").deg == 10.5 and tilt.read_axis("Y").deg == -5.25
        with pytest.raises(ConfigError, match="axis is X or Y"):
            tilt.read_axis("Z")


def test_zero_makes_both_axes_read_zero_where_the_section_stands(manual):
    with TiltInclinometer(manual.resource) as tilt:
        tilt.zero()
        assert (tilt.read().x_deg, tilt.read().y_deg) == (0.0, 0.0)
        manual.set_angles(25.0, 5.0)
        assert (tilt.read().x_deg, tilt.read().y_deg) == (15.0, 10.0)
        tilt.reset()  # *RST keeps the zero
        assert tilt.read().x_deg == 15.0


def test_the_driver_reads_degrees_whatever_the_instrument_was_left_in(manual):
    manual.call(lambda: setattr(manual.model, "unit", "RAD"))  # a colleague left it in radians
    with TiltInclinometer(manual.resource) as tilt:
        assert tilt.unit == "DEG" and manual.call(lambda: manual.model.unit) == "DEG"
        assert tilt.read().x_deg == 10.5


def test_out_of_range_is_nan_with_a_reason_never_a_number(manual):
    with TiltInclinometer(manual.resource) as tilt:
        manual.set_angles(50.0, -5.0)
        reading = tilt.read()
        assert math.isnan(reading.x_deg) and reading.y_deg == -5.25 and not reading.x.valid
        assert reading.reason == "X beyond the inclinometer's range (SCPI not-a-number 9.91E+37)"
        assert math.isnan(tilt.read_axis("X").deg) and tilt.read_axis("X").reason
        manual.set_angles(20.0, -5.0)
        assert tilt.read().x_deg == 20.5 and tilt.read().reason == ""


def test_scpi_errors_are_read_back_as_one_line(manual):
    with TiltInclinometer(manual.resource) as tilt:
        with pytest.raises(DeviceProtocolError) as err:
            tilt._set("UNIT:ANGL GRAD")
        text = str(err.value)
        assert "'UNIT:ANGL GRAD' rejected: -224,\"Illegal parameter value\"" in text and "\n" not in text
        assert "UNIT:ANGL DEG or RAD" in text
        with pytest.raises(ConfigError, match=r"SAMP:RATE must be 1\.\.1000 Hz"):
            tilt.start_stream(2000)
        manual.call(lambda: [manual.model.handle("BOGUS") for _ in range(2)])
        with pytest.raises(DeviceProtocolError, match=r"-113,\"Undefined header\" \(and 1 more error in the queue\)"):
            tilt.check_errors("BOGUS")
        tilt.check_errors()  # the queue is empty again


@pytest.mark.parametrize("code", [*CONTRACT_ERRORS, -221, -241, -199, -333, -410, 7])
def test_every_error_code_has_a_fix_naming_the_inclinometer(code):
    fix = explain_error(code)
    assert fix and "\n" not in fix and "indicator" not in fix and "gauge" not in fix


def test_a_force_indicator_on_the_inclinometers_port_is_one_line():
    """The scpi force indicator answers *IDN? but not UNIT:ANGL? (-113): not a timeout, one line."""
    from rigs.emulator.gauges import ScpiGauge as ScpiModel
    from tests.gauge_helpers import FunctionSource

    with served(lambda: ScpiModel(FunctionSource(100.0), noise_n=0.0)) as srv:
        with pytest.raises(DeviceProtocolError) as err:
            TiltInclinometer(resource(srv.ports[0]), timeout_ms=300)
    assert "does not know 'UNIT:ANGL?' (-113): it is not a tilt inclinometer" in str(err.value)
    assert "\n" not in str(err.value)


def test_nothing_listening_is_one_line():
    with pytest.raises(Exception) as err:
        TiltInclinometer(resource(closed_port()), timeout_ms=300)
    assert "\n" not in str(err.value)


# -- buffered acquisition on a live table clock ------------------------------------------------
@pytest.fixture(params=[1.0, 10.0], ids=["K1", "K10"])
def live(request):
    clock = TableClock(request.param)
    # the section lowers at 2 °/s (table) and swings left at 0.5 °/s from where the clock stands
    source = FunctionAngleSource(lambda t: np.stack([2.0 * t, 0.5 * t], axis=1), clock)
    with served(lambda: TiltModel(source, noise_deg=0.0)) as srv:
        srv.time_scale, srv.clock = request.param, clock
        srv.resource = resource(srv.ports[0])
        yield srv


def test_buffered_trace_carries_instrument_times_mapped_as_the_scpi_gauges(live):
    rate = 500.0
    with TiltInclinometer(live.resource, time_scale=live.time_scale) as tilt:
        before = time.perf_counter_ns()
        trace = tilt.stream(n_samples=200, rate_hz=rate)
        after = time.perf_counter_ns()
    assert isinstance(trace, AngleTrace) and len(trace) == 200
    assert trace.time_scale == live.time_scale and trace.rate_hz == rate and trace.time_base == "instrument"
    np.testing.assert_array_equal(trace.t, np.arange(200) / rate)  # n / rate, the instrument's own instants
    np.testing.assert_allclose(np.diff(trace.x_deg), 2.0 / rate, atol=2e-3)  # both angles at those instants
    np.testing.assert_allclose(np.diff(trace.y_deg), 0.5 / rate, atol=2e-3)
    assert trace.out_of_range == 0 and trace.reason == ""
    assert 0 < trace.mapping_uncertainty_s < (after - before) * 1e-9
    slack = trace.mapping_uncertainty_s * 1e9 + 1e6
    assert before - slack <= trace.host_t0_ns <= after + slack
    assert trace.host_ns()[-1] <= after + slack  # no sample from the future
    # table time of a sample = the table clock at its host instant (the same mapping as the gauge's)
    assert trace.host_ns()[100] == pytest.approx(trace.host_t0_ns + 100 / rate / live.time_scale * 1e9)


def test_stream_for_a_duration_in_table_seconds(live):
    with TiltInclinometer(live.resource, time_scale=live.time_scale) as tilt:
        trace = tilt.stream(duration_s=0.3, rate_hz=100)
    assert trace.t[-1] >= 0.3 - 1 / 100
    np.testing.assert_array_equal(trace.t, np.arange(len(trace)) / 100)


def test_commands_wait_while_acquiring(live):
    with TiltInclinometer(live.resource, time_scale=live.time_scale) as tilt:
        tilt.start_stream(100)
        for call in (tilt.read, tilt.identity, tilt.zero, lambda: tilt.read_axis("X"), lambda: tilt.start_stream(10)):
            with pytest.raises(ConfigError, match="a buffered acquisition is running"):
                call()
        assert len(tilt.stop_stream()) >= 1
        with pytest.raises(ConfigError, match="stop_stream\\(\\) without start_stream\\(\\)"):
            tilt.stop_stream()


def test_a_buffer_that_cannot_deliver_n_samples_raises(live):
    with TiltInclinometer(live.resource, time_scale=live.time_scale, timeout_ms=200) as tilt:
        tilt.stream_slack_s = 0.0
        live.call(lambda: setattr(live.gauges[0], "buffer_cap", 0))
        with pytest.raises(DeviceTimeout, match="only 0 of 50 samples arrived — check the stream rate and the "
                                                "inclinometer's time_scale"):
            tilt.stream(n_samples=50, rate_hz=1000)


def test_out_of_range_samples_are_nan_with_a_reason(manual):
    with TiltInclinometer(manual.resource) as tilt:
        tilt.start_stream(10)
        manual.set_angles(10.0, -5.0, advance=0.1)
        manual.set_angles(60.0, -5.0, advance=0.1)
        trace = tilt.stop_stream()
    assert np.isnan(trace.x_deg).any() and not np.isnan(trace.y_deg).any()
    assert trace.out_of_range == int(np.isnan(trace.x_deg).sum()) and "beyond the inclinometer's range" in trace.reason


def test_opening_stops_an_acquisition_left_running(manual):
    manual.call(lambda: manual.model.handle("INIT"))
    with TiltInclinometer(manual.resource) as tilt:
        assert not manual.call(lambda: manual.model.acquiring)
        tilt.start_stream(100)  # SAMP:RATE is accepted: nothing is running any more
        tilt.stop_stream()


# -- a serial line (ASRL) ----------------------------------------------------------------------
def test_over_a_serial_line():
    clock = FakeClock(0.0)
    source = FunctionAngleSource((3.0, 4.0), clock)
    link = PtyLink()
    try:
        with GaugeServerThread(lambda: [TiltModel(source, noise_deg=0.0)], lines=[link.end_a]):
            with TiltInclinometer(f"ASRL{link.end_b}::INSTR") as tilt:
                assert tilt.identity().model == "TLT-2"
                assert (tilt.read().x_deg, tilt.read().y_deg) == (3.0, 4.0)
    finally:
        link.close()
