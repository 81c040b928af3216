"""The scpi indicator model: headers, parameters, error queue, buffered acquisition."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rigs.emulator.gauges import ScpiGauge
from tests.gauge_helpers import FakeClock, FunctionSource

pytestmark = pytest.mark.timeout(30)

NR3 = re.compile(r"^[+-]\d\.\d{6}E[+-]\d{2}$")
NR3_TIME = re.compile(r"^[+-]\d\.\d{9}E[+-]\d{2}$")  # 10 significant digits


def make(force=100.0, t0: float = 1.0, **kw):
    clock = FakeClock(t0)
    source = FunctionSource(force, clock, record=kw.pop("record", False))
    kw.setdefault("noise_n", 0.0)
    kw.setdefault("capacity_n", 1000.0)
    return ScpiGauge(source, seed=kw.pop("seed", 0), **kw), source, clock


def errors(g) -> list[str]:
    out = []
    while (e := g.handle("SYST:ERR?")) != '0,"No error"':
        out.append(e)
    return out


# -- identity, calibration ------------------------------------------------------------------

def test_identity_and_calibration_dates():
    g, _, _ = make()
    assert g.handle("*IDN?") == "TractionRig,LCI-3000,EMU-G-0001,1.0"
    assert g.handle("CAL:DATE?") == "2026,3,1"
    assert g.handle("CAL:DUE?") == "2027,3,1"
    custom, _, _ = make(identity=("Acme", "X1", "42", "9.9"), cal_date=(2025, 12, 24), cal_due=(2026, 12, 24))
    assert custom.handle("*IDN?") == "Acme,X1,42,9.9"
    assert custom.handle("CALibration:DATE?") == "2025,12,24"
    assert custom.handle("cal:due?") == "2026,12,24"


# -- header forms ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "command", ["MEAS:FORC?", "MEASure:FORCe?", "meas:forc?", "measure:force?", ":MEAS:FORC?", "Meas:Force?", "  MEAS:FORC?  "]
)
def test_short_long_lowercase_and_leading_colon(command):
    g, _, _ = make(123.45)
    assert g.handle(command) == "+1.234500E+02"
    assert errors(g) == []


@pytest.mark.parametrize("command", ["MEASU:FORC?", "MEA:FORC?", "MEAS:FORCE", "MEAS:FORC", "FORC?", "*IDN", "ABOR?", "MEAS:FORC?X", "x"])
def test_unknown_headers_answer_nothing_and_queue_113(command):
    g, _, _ = make()
    assert g.handle(command) is None
    assert errors(g) == ['-113,"Undefined header"']


def test_optional_nodes():
    g, _, _ = make()
    g.handle("FOO")
    assert g.handle("SYSTem:ERRor:NEXT?") == '-113,"Undefined header"'
    assert g.handle("syst:err:next?") == '0,"No error"'
    assert g.handle("INITiate:IMMediate") is None
    assert g.acquiring
    assert g.handle("ABORt") is None
    assert not g.acquiring


# -- measurement, units, tare ------------------------------------------------------------------------------

def test_measure_is_nr3():
    g, _, _ = make(-7.25)
    reply = g.handle("MEAS:FORC?")
    assert NR3.match(reply) and float(reply) == -7.25


@pytest.mark.parametrize("unit, reply", [("N", "+1.000000E+02"), ("LBF", "+2.248090E+01"), ("KGF", "+1.019720E+01")])
def test_units(unit, reply):
    g, _, _ = make(100.0)
    assert g.handle(f"UNIT:FORC {unit}") is None
    assert g.handle("UNIT:FORC?") == unit
    assert g.handle("MEAS:FORC?") == reply
    assert errors(g) == []


def test_unit_is_case_insensitive_and_long_form():
    g, _, _ = make()
    g.handle("unit:force lbf")
    assert g.handle("UNIT:FORCe?") == "LBF"


@pytest.mark.parametrize(
    "command, error",
    [
        ("UNIT:FORC GF", '-224,"Illegal parameter value"'),
        ("UNIT:FORC 5", '-104,"Data type error"'),
        ("UNIT:FORC", '-109,"Missing parameter"'),
        ("UNIT:FORC N,LBF", '-108,"Parameter not allowed"'),
        ("MEAS:FORC? 5", '-108,"Parameter not allowed"'),
        ("*IDN? x", '-108,"Parameter not allowed"'),
        ("SAMP:RATE 0", '-222,"Data out of range"'),
        ("SAMP:RATE 10001", '-222,"Data out of range"'),
        ("SAMP:RATE fast", '-104,"Data type error"'),
        ("SAMP:RATE nan", '-104,"Data type error"'),
        ("SAMP:RATE", '-109,"Missing parameter"'),
        ("SAMP:RATE 10,20", '-108,"Parameter not allowed"'),
    ],
)
def test_parameter_errors(command, error):
    g, _, _ = make()
    assert g.handle(command) is None
    assert errors(g) == [error]
    assert g.handle("UNIT:FORC?") == "N"
    assert g.handle("SAMP:RATE?") == "+1.000000E+03"


def test_sense_zero_tares():
    g, source, clock = make(100.0)
    assert g.handle("SENS:ZERO") is None
    assert g.handle("MEAS:FORC?") == "+0.000000E+00"
    source.fn = 150.0
    clock.advance(0.1)
    assert g.handle("SENSe:ZERO;MEAS:FORC?") == "+0.000000E+00"
    source.fn = 160.0
    assert g.handle("MEAS:FORC?") == "+1.000000E+01"


def test_overrange_reading():
    g, source, _ = make(121.0, capacity_n=100.0)
    assert g.handle("MEAS:FORC?") == "+9.900000E+37"
    source.fn = -121.0
    assert g.handle("MEAS:FORC?") == "-9.900000E+37"
    source.fn = 119.0
    assert g.handle("MEAS:FORC?") == "+1.190000E+02"


def test_seeded_noise_is_reproducible():
    def readings(seed):
        g, _, _ = make(100.0, noise_n=1.0, seed=seed)
        return [g.handle("MEAS:FORC?") for _ in range(10)]

    assert readings(3) == readings(3)
    assert readings(3) != readings(4)


# -- sample rate, reset ----------------------------------------------------------------------------------------

def test_sample_rate_bounds_and_specials():
    g, _, _ = make()
    for value, reply in [("1", "+1.000000E+00"), ("10000", "+1.000000E+04"), ("2.5e3", "+2.500000E+03"),
                         ("MIN", "+1.000000E+00"), ("max", "+1.000000E+04"), ("DEF", "+1.000000E+03"),
                         ("500 Hz", "+5.000000E+02")]:
        assert g.handle(f"SAMP:RATE {value}") is None
        assert g.handle("SAMPle:RATE?") == reply
    assert errors(g) == []


def test_rst_restores_defaults_and_stops_acquisition():
    g, _, clock = make()
    g.handle("UNIT:FORC KGF;:SAMP:RATE 50;:INIT")
    clock.advance(0.1)
    assert int(g.handle("TRAC:POIN?")) > 0
    assert g.handle("*RST") is None
    assert g.handle("UNIT:FORC?") == "N"
    assert g.handle("SAMP:RATE?") == "+1.000000E+03"
    assert g.handle("TRAC:POIN?") == "0"
    clock.advance(0.1)
    assert g.handle("TRAC:POIN?") == "0"
    assert not g.acquiring


# -- error queue -----------------------------------------------------------------------------------------------------

def test_error_queue_is_fifo_and_cls_clears_it():
    g, _, _ = make()
    g.handle("FOO")
    g.handle("UNIT:FORC GF")
    assert g.handle("SYST:ERR?") == '-113,"Undefined header"'
    assert g.handle("SYST:ERR?") == '-224,"Illegal parameter value"'
    assert g.handle("SYST:ERR?") == '0,"No error"'
    g.handle("FOO")
    assert g.handle("*CLS") is None
    assert g.handle("SYST:ERR?") == '0,"No error"'


def test_error_queue_overflow_replaces_the_last_entry():
    g, _, _ = make()
    g.handle("UNIT:FORC 5")
    for _ in range(15):
        g.handle("BOGUS")
    got = errors(g)
    assert len(got) == 10
    assert got[0] == '-104,"Data type error"'
    assert got[1:9] == ['-113,"Undefined header"'] * 8
    assert got[9] == '-350,"Queue overflow"'


def test_rst_keeps_the_error_queue():
    g, _, _ = make()
    g.handle("FOO")
    g.handle("*RST")
    assert errors(g) == ['-113,"Undefined header"']


# -- compound messages --------------------------------------------------------------------------------------------------

def test_compound_messages():
    g, _, _ = make(100.0)
    assert g.handle("*IDN?;MEAS:FORC?") == "TractionRig,LCI-3000,EMU-G-0001,1.0;+1.000000E+02"
    assert g.handle("UNIT:FORC LBF;UNIT:FORC?") == "LBF"  # falls back to the root
    assert g.handle("UNIT:FORC KGF;FORC?") == "KGF"  # relative to UNIT: (SCPI)
    assert g.handle("SAMP:RATE 200;RATE?") == "+2.000000E+02"
    assert g.handle("FOO;MEAS:FORC?") == "+1.019720E+01"  # an error does not stop the rest
    assert errors(g) == ['-113,"Undefined header"']
    assert g.handle("UNIT:FORC N;;") is None


# -- buffered acquisition ----------------------------------------------------------------------------------------------------

def parse_trace(reply):
    """TRAC:DATA?'s reply (a ChunkedReply: the server sends it piece by piece) as fields."""
    fields = str(reply).split(",")
    return fields[0::2], fields[1::2]


def test_buffered_samples_are_exactly_n_over_rate():
    g, source, clock = make(lambda t: 10.0 * t, t0=2.0, record=True)
    g.handle("SAMP:RATE 1000")
    g.handle("INIT")
    source.requested.clear()
    clock.advance(0.0105)
    assert g.handle("TRAC:POIN?") == "11"  # samples at 0, 1, ... 10 ms
    times, forces = parse_trace(g.handle("TRAC:DATA?"))
    assert times == [f"{n / 1000:+.9E}" for n in range(11)]
    assert all(NR3_TIME.match(t) for t in times)
    assert all(NR3.match(f) for f in forces)
    np.testing.assert_array_equal(source.all_requested(), 2.0 + np.arange(1, 11) / 1000.0)
    np.testing.assert_allclose([float(f) for f in forces], 10.0 * (2.0 + np.arange(11) / 1000.0), atol=5e-4)
    assert g.handle("TRAC:POIN?") == "0"
    assert g.handle("TRAC:DATA?") == ""  # drained: an empty line


@pytest.mark.parametrize("rate", [3.0, 7.0, 1234.0, 10000.0])
def test_times_keep_10_significant_digits_without_accumulating(rate):
    g, _, clock = make()
    g.handle(f"SAMP:RATE {rate}")
    g.handle("INIT")
    for _ in range(7):
        clock.advance(0.37)
        g.poll()
    times, _ = parse_trace(g.handle("TRAC:DATA?"))
    n = np.arange(len(times))
    assert len(times) == int(np.floor(7 * 0.37 * rate + 1e-6)) + 1
    assert times == [f"{k / rate:+.9E}" for k in n]


def test_samples_are_generated_lazily_between_commands_by_poll():
    g, _, clock = make()
    g.handle("INIT")
    for _ in range(20):
        clock.advance(0.5)
        g.poll()  # history is 16 s: without polls the oldest samples would be gone
    assert g.handle("TRAC:POIN?") == str(10 * 1000 + 1)
    assert g.dropped == 0


def test_init_restarts_and_clears_the_buffer_and_trig_time():
    g, _, clock = make(t0=5.0)
    g.handle("INIT")
    clock.advance(0.25)
    assert g.handle("TRIG:TIME?") == "+2.500000000E-01"
    assert NR3_TIME.match(g.handle("TRIG:TIME?"))
    g.handle("INIT")
    assert g.handle("TRAC:POIN?") == "1"
    assert g.handle("TRIG:TIME?") == "+0.000000000E+00"


def test_trig_time_before_any_init_counts_from_power_on():
    g, _, clock = make(t0=3.0)
    clock.advance(1.5)
    assert g.handle("TRIG:TIME?") == "+1.500000000E+00"


def test_abort_stops_sampling_but_keeps_the_buffer():
    g, _, clock = make()
    g.handle("SAMP:RATE 100;:INIT")
    clock.advance(0.1)
    g.handle("ABOR")
    clock.advance(1.0)
    assert g.handle("TRAC:POIN?") == "11"
    assert len(parse_trace(g.handle("TRAC:DATA?"))[0]) == 11


def test_rate_change_during_acquisition_is_refused():
    g, _, _ = make()
    g.handle("INIT")
    g.handle("SAMP:RATE 10")
    assert errors(g) == ['-221,"Settings conflict"']
    g.handle("ABOR;:SAMP:RATE 10")
    assert g.handle("SAMP:RATE?") == "+1.000000E+01"


def test_buffer_cap_drops_the_newest():
    g, _, clock = make(buffer_cap=100)
    g.handle("INIT")
    clock.advance(0.5)
    assert g.handle("TRAC:POIN?") == "100"
    assert g.dropped == 401
    times, _ = parse_trace(g.handle("TRAC:DATA?"))
    assert times[0] == "+0.000000000E+00" and times[-1] == f"{99 / 1000:+.9E}"


def test_buffer_forces_follow_unit_and_tare_and_overrange():
    g, source, clock = make(100.0, capacity_n=100.0)
    g.handle("SAMP:RATE 10;:INIT")
    clock.advance(0.1)  # 2 samples at 100 N
    g.poll()  # the fake source has no history: sample before the force changes
    source.fn = 130.0
    clock.advance(0.1)  # 1 over-range sample
    g.handle("UNIT:FORC KGF")
    _, forces = parse_trace(g.handle("TRAC:DATA?"))
    assert forces == ["+1.019720E+01", "+1.019720E+01", "+9.900000E+37"]
