"""Both gauge drivers against pyvisa-sim (tests/sim/gauges.yaml): a static device
description written from the contract alone, independent of the emulator."""

from __future__ import annotations

import datetime
from pathlib import Path

import numpy as np
import pytest

from pyvisa import constants

from drivers.errors import ConfigError, DeviceProtocolError, DeviceUnreachable, GaugeOverload
from drivers.gauge import INSTRUMENT, GclGauge, ScpiGauge, open_gauge
from drivers.units import NEWTONS_PER_UNIT

pytestmark = pytest.mark.timeout(30)

SIM = f"{Path(__file__).parent / 'sim' / 'gauges.yaml'}@sim"
LBF, KGF = NEWTONS_PER_UNIT["lbF"], NEWTONS_PER_UNIT["kgF"]


@pytest.mark.parametrize("res", ["TCPIP::sim-gauge::5001::SOCKET", "ASRL1::INSTR"])
def test_gcl_reading_peaks_and_settings(res):
    with open_gauge(res, "gcl", backend=SIM) as g:
        assert g.read() == 123.4
        assert g.read_current() == 123.4
        assert g.peak_tension() == 130.2
        assert g.peak_compression() == -5.0
        for unit in NEWTONS_PER_UNIT:
            g.set_unit(unit)
        g.tare()
        g.clear_peaks()
        g.set_display("PT")
        g.set_filters(0, 0)


def test_gcl_serial_link_is_115200_8n1():
    with GclGauge("ASRL1::INSTR", backend=SIM) as g:
        inst = g._link.inst
        assert (inst.baud_rate, inst.data_bits) == (115200, 8)
        assert (inst.parity, inst.stop_bits) == (constants.Parity.none, constants.StopBits.one)
        assert (inst.read_termination, inst.write_termination) == ("\r\n", "\r")


def test_gcl_converts_each_replys_unit():
    with GclGauge("TCPIP::sim-gauge::5002::SOCKET", backend=SIM) as g:
        assert g.read() == pytest.approx(27.74 * LBF)
        assert g.peak_tension() == pytest.approx(1.50 * KGF)
        assert g.peak_compression() == pytest.approx(-0.25)


def test_gcl_overload_and_unknown_command():
    with GclGauge("TCPIP::sim-gauge::5003::SOCKET", backend=SIM) as g:  # opens although overloaded
        with pytest.raises(GaugeOverload, match="5003"):
            g.read()
        with pytest.raises(DeviceProtocolError, match=r"did not understand 'Z' \(\*10\)"):
            g.tare()
    with GclGauge("TCPIP::sim-gauge::5001::SOCKET", backend=SIM) as g:
        with pytest.raises(DeviceProtocolError, match=r"\*10"):
            g.set_filters(current_exp=5)  # the static device only knows FLTC0


def test_gcl_garbage_replies():
    res = "TCPIP::sim-gauge::5004::SOCKET"
    with pytest.raises(DeviceProtocolError, match="expected '<value> <unit>'") as info:
        GclGauge(res, backend=SIM)
    assert res in str(info.value) and "\n" not in str(info.value)
    with GclGauge(res, backend=SIM, check=False) as g:
        with pytest.raises(DeviceProtocolError, match="12,3 Newton"):
            g.read()
        with pytest.raises(DeviceProtocolError, match="expected 'R'"):
            g.tare()


@pytest.mark.parametrize("res", ["TCPIP::sim-indicator::5025::SOCKET", "ASRL2::INSTR"])
def test_scpi_identity_reading_units_tare(res):
    with open_gauge(res, "scpi", backend=SIM) as g:
        ident = g.identity()
        assert (ident.maker, ident.model, ident.serial, ident.firmware) == ("SimCo", "LCI-SIM", "SIM-0042", "2.3")
        assert (ident.cal_date, ident.cal_due) == (datetime.date(2025, 6, 15), datetime.date(2026, 6, 15))
        g.set_unit("N")  # pyvisa-sim keeps device state between tests
        assert g.unit == "N"
        assert g.read() == 123.45
        g.set_unit("lbF")
        assert g.unit == "lbF"
        assert g.read() == pytest.approx(123.45 * LBF)  # the static device does not convert
        g.tare()


def test_scpi_buffered_trace_from_the_static_device():
    with ScpiGauge("TCPIP::sim-indicator::5025::SOCKET", backend=SIM) as g:
        g.set_unit("N")  # pyvisa-sim keeps device state between tests
        trace = g.stream(n_samples=3, rate_hz=1000)
        assert trace.time_base == INSTRUMENT
        np.testing.assert_array_equal(trace.t, [0.0, 0.001, 0.002])
        assert trace.force_n[:2].tolist() == [100.0, 101.0]
        assert np.isnan(trace.force_n[2])  # +9.9E37: over-range
        assert trace.mapping_uncertainty_s >= 0


def test_scpi_refusal_is_reported_with_the_error_text():
    with ScpiGauge("TCPIP::sim-indicator::5026::SOCKET", backend=SIM) as g:
        assert g.unit == "kgF"
        assert g.read() == pytest.approx(10.0 * KGF)
        # the one error of the queue (nothing left over from the open), and what to do about it
        with pytest.raises(DeviceProtocolError, match=r"'SENS:ZERO' rejected: -113,\"Undefined header\" — the "
                                                      r"indicator does not know this command"):
            g.tare()


def test_scpi_wrong_identity_reply():
    with pytest.raises(DeviceProtocolError, match=r"\*IDN\?.*Maker,Model,Serial,Firmware"):
        ScpiGauge("TCPIP::sim-indicator::5027::SOCKET", backend=SIM)


def test_unknown_sim_resource_and_bad_backend():
    with pytest.raises(DeviceUnreachable, match="sim-nowhere"):
        GclGauge("TCPIP::sim-nowhere::1::SOCKET", backend=SIM)
    with pytest.raises(ConfigError, match="backend"):
        ScpiGauge("TCPIP::sim-indicator::5025::SOCKET", backend="/nonexistent/gauges.yaml@sim")
