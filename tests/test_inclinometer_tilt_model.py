"""The `tilt` inclinometer model against shared/protocols/inclinometer.md, line by line.

A manual clock and an angle source written as a function of table time make the model
exact: every sample instant is known, so a test states the reply string the instrument
must give. Each block below quotes the contract line it checks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from rigs.emulator.inclinometer import TILT_RANGE_DEG, FunctionAngleSource, TiltInclinometer
from tests.gauge_helpers import FakeClock

pytestmark = pytest.mark.timeout(30)

NR3 = re.compile(r"^[+-]\d\.\d{6}E[+-]\d{2}$")
NR3_TIME = re.compile(r"^[+-]\d\.\d{9}E[+-]\d{2}$")  # "times carry 10 significant digits"
NAN = "+9.910000E+37"


def make(angles=(10.0, -5.0), t0: float = 1.0, **kw):
    clock = FakeClock(t0)
    source = FunctionAngleSource(angles, clock)
    kw.setdefault("noise_deg", 0.0)
    return TiltInclinometer(source, seed=kw.pop("seed", 0), **kw), source, clock


def errors(m) -> list[str]:
    out = []
    while (e := m.handle("SYST:ERR?")) != '0,"No error"':
        out.append(e)
    return out


def trace(reply) -> np.ndarray:
    """TRAC:DATA?'s reply as rows (t, x, y)."""
    return np.array(str(reply).split(","), dtype=float).reshape(-1, 3)


# | `*IDN?` | `Maker,Model,Serial,Firmware` | identity |
def test_idn():
    m, _, _ = make()
    assert m.handle("*IDN?") == "TractionRig,TLT-2,EMU-I-0001,1.0"
    custom, _, _ = make(identity=("Acme", "INC-15", "77", "2.1"))
    assert custom.handle("*idn?") == "Acme,INC-15,77,2.1"


# | `*RST`, `*CLS` | none | reset (unit DEG, rate 100 Hz, no acquisition), clear the error queue |
def test_rst_restores_deg_100_hz_and_no_acquisition():
    m, _, clock = make()
    assert m.handle("UNIT:ANGL RAD;:SAMP:RATE 50;:INIT") is None
    clock.advance(0.1)
    assert m.handle("*RST") is None
    assert m.handle("UNIT:ANGL?") == "DEG" and m.handle("SAMP:RATE?") == "+1.000000E+02"
    assert m.handle("TRAC:POIN?") == "0" and not m.acquiring
    clock.advance(0.1)
    assert m.handle("TRAC:POIN?") == "0"


def test_cls_clears_the_queue_and_rst_keeps_it():
    m, _, _ = make()
    m.handle("FOO")
    m.handle("*RST")
    assert errors(m) == ['-113,"Undefined header"']
    m.handle("FOO")
    assert m.handle("*CLS") is None and errors(m) == []


# | `SYST:ERR?` | `0,"No error"` or `-113,"Undefined header"` | next error |
def test_error_queue_is_fifo_then_no_error():
    m, _, _ = make()
    m.handle("FOO")
    m.handle("UNIT:ANGL GRAD")
    assert m.handle("SYST:ERR?") == '-113,"Undefined header"'
    assert m.handle("SYSTem:ERRor?") == '-224,"Illegal parameter value"'
    assert m.handle("SYST:ERR?") == '0,"No error"'


# | `MEAS:ANGL?` | `x,y` (two NR3) | one reading of both axes, in UNIT:ANGL |
@pytest.mark.parametrize("command", ["MEAS:ANGL?", "MEASure:ANGLe?", "meas:angl?", ":MEAS:ANGL?", "  Measure:Angle?  "])
def test_measure_both_axes(command):
    m, _, _ = make((10.0, -5.25))
    reply = m.handle(command)
    x, y = reply.split(",")
    assert NR3.match(x) and NR3.match(y)
    assert (float(x), float(y)) == (10.0, -5.25)
    assert errors(m) == []


# | `MEAS:ANGL:X?`, `MEAS:ANGL:Y?` | NR3 | one axis |
def test_measure_one_axis():
    m, _, _ = make((12.5, -3.0))
    assert m.handle("MEAS:ANGL:X?") == "+1.250000E+01"
    assert m.handle("measure:angle:y?") == "-3.000000E+00"


# | `UNIT:ANGL DEG|RAD`, `UNIT:ANGL?` | none / unit | unit of readings (DEG after `*RST`) |
def test_units():
    m, _, _ = make((45.0 * 0.9, -30.0))
    assert m.handle("UNIT:ANGL?") == "DEG"
    assert m.handle("UNIT:ANGL RAD") is None and m.handle("UNIT:ANGLe?") == "RAD"
    x, y = (float(v) for v in m.handle("MEAS:ANGL?").split(","))
    assert x == pytest.approx(math.radians(40.5), abs=1e-5) and y == pytest.approx(math.radians(-30.0), abs=1e-5)
    assert m.handle("unit:angl deg") is None and m.handle("UNIT:ANGL?") == "DEG"
    assert errors(m) == []


@pytest.mark.parametrize("command, error", [
    ("UNIT:ANGL GRAD", '-224,"Illegal parameter value"'),
    ("UNIT:ANGL 1", '-104,"Data type error"'),
    ("UNIT:ANGL", '-109,"Missing parameter"'),
    ("UNIT:ANGL DEG,RAD", '-108,"Parameter not allowed"'),
    ("MEAS:ANGL? 5", '-108,"Parameter not allowed"'),
    ("SAMP:RATE 0", '-222,"Data out of range"'),
    ("SAMP:RATE 1001", '-222,"Data out of range"'),
    ("SAMP:RATE fast", '-104,"Data type error"'),
    ("SAMP:RATE", '-109,"Missing parameter"'),
])
def test_other_errors_use_the_standard_codes(command, error):
    # "other errors use the standard SCPI codes (-104, -108, -109, -222, -224, -350)"
    m, _, _ = make()
    assert m.handle(command) is None
    assert errors(m) == [error]
    assert m.handle("UNIT:ANGL?") == "DEG" and m.handle("SAMP:RATE?") == "+1.000000E+02"


def test_queue_overflow_is_350():
    m, _, _ = make()
    for _ in range(12):
        m.handle("BOGUS")
    got = errors(m)
    assert len(got) == 10 and got[-1] == '-350,"Queue overflow"'


# An unknown command puts `-113,"Undefined header"` in the error queue and answers nothing
@pytest.mark.parametrize("command", ["MEAS:FORC?", "MEAS:ANGL:Z?", "MEAS:ANGL", "ANGL?", "x", "*IDN"])
def test_unknown_commands_answer_nothing_and_queue_113(command):
    m, _, _ = make()
    assert m.handle(command) is None
    assert errors(m) == ['-113,"Undefined header"']


# | `SENS:ZERO` | none | the present angles become 0 on both axes |
# After `SENS:ZERO` both read 0 where the section stands; `*RST` does not clear the zero.
def test_zero_both_axes_kept_by_rst():
    m, source, clock = make((3.0, -2.0), mount_offset_deg=(0.7, -0.4))
    assert m.handle("MEAS:ANGL?") == "+3.700000E+00,-2.400000E+00"  # the mounting offset, before a zero
    assert m.handle("SENS:ZERO") is None
    assert m.handle("MEAS:ANGL?") == "+0.000000E+00,+0.000000E+00"
    source.fn = (13.0, 2.0)
    clock.advance(0.1)
    assert m.handle("MEAS:ANGL?") == "+1.000000E+01,+4.000000E+00"
    m.handle("*RST")
    assert m.handle("MEAS:ANGL:X?") == "+1.000000E+01"


# | `CAL:DATE?`, `CAL:DUE?` | `2026,3,1` / `2027,3,1` |
def test_calibration_dates():
    m, _, _ = make()
    assert m.handle("CAL:DATE?") == "2026,3,1" and m.handle("CALibration:DUE?") == "2027,3,1"
    other, _, _ = make(cal_date=(2025, 12, 24), cal_due=(2026, 12, 24))
    assert other.handle("cal:date?") == "2025,12,24" and other.handle("CAL:DUE?") == "2026,12,24"


# | `SAMP:RATE <hz>`, `SAMP:RATE?` | none / NR3 | acquisition rate, 1..1000 Hz |
def test_sample_rate_bounds():
    m, _, _ = make()
    for value, reply in [("1", "+1.000000E+00"), ("1000", "+1.000000E+03"), ("MAX", "+1.000000E+03"),
                         ("MIN", "+1.000000E+00"), ("DEF", "+1.000000E+02"), ("250 Hz", "+2.500000E+02")]:
        assert m.handle(f"SAMP:RATE {value}") is None
        assert m.handle("SAMPle:RATE?") == reply
    assert errors(m) == []


# | `INIT` | none | start a buffered acquisition at SAMP:RATE (clears the buffer) |
# | `TRAC:DATA?` | `t1,x1,y1,t2,x2,y2,...` | drains the buffer ... an empty buffer answers an empty line |
# | `TRAC:POIN?` | integer | samples waiting |
def test_buffered_samples_are_n_over_rate_with_both_angles():
    m, source, clock = make(t0=2.0)
    source.fn = lambda t: np.stack([10.0 * t, -t], axis=1)  # degrees as a function of table time
    m.handle("SAMP:RATE 1000;:INIT")
    clock.advance(0.0105)
    assert m.handle("TRAC:POIN?") == "11"
    reply = str(m.handle("TRAC:DATA?"))
    fields = reply.split(",")
    assert all(NR3_TIME.match(t) for t in fields[0::3]) and all(NR3.match(v) for i, v in enumerate(fields) if i % 3)
    rows = trace(reply)
    t_table = 2.0 + np.arange(11) / 1000.0
    assert [f"{t:+.9E}" for t in rows[:, 0]] == [f"{n / 1000:+.9E}" for n in range(11)]
    np.testing.assert_allclose(rows[:, 1], 10.0 * t_table, atol=5e-4)
    np.testing.assert_allclose(rows[:, 2], -t_table, atol=5e-4)
    assert m.handle("TRAC:POIN?") == "0" and m.handle("TRAC:DATA?") == ""


def test_init_clears_the_buffer_and_restarts_time():
    m, _, clock = make(t0=5.0)
    m.handle("INIT")
    clock.advance(0.25)
    # | `TRIG:TIME?` | NR3 | the instrument's time since INIT now |
    assert m.handle("TRIG:TIME?") == "+2.500000000E-01"
    m.handle("INIT")
    assert m.handle("TRAC:POIN?") == "1" and m.handle("TRIG:TIME?") == "+0.000000000E+00"


# | `ABOR` | none | stop it |
def test_abort_stops_sampling_and_keeps_the_buffer():
    m, _, clock = make()
    m.handle("SAMP:RATE 100;:INIT")
    clock.advance(0.1)
    m.handle("ABOR")
    clock.advance(1.0)
    assert m.handle("TRAC:POIN?") == "11" and len(trace(m.handle("TRAC:DATA?"))) == 11


def test_rate_change_during_acquisition_is_refused():
    m, _, _ = make()
    m.handle("INIT")
    m.handle("SAMP:RATE 10")
    assert errors(m) == ['-221,"Settings conflict"']


# Every period and timestamp is in the clock of the table it measures
def test_time_is_table_time_whatever_the_wall_clock():
    m, _, clock = make()
    clock.time_scale = 10.0  # a table 10x faster: the instrument's clock is the table's
    m.handle("SAMP:RATE 10;:INIT")
    clock.advance(1.0)  # one table second
    rows = trace(m.handle("TRAC:DATA?"))
    assert len(rows) == 11 and rows[-1, 0] == 1.0


# Beyond its range (±45° on each axis) a reading is `9.91E+37` until the angle is back in range.
def test_out_of_range_is_scpi_not_a_number_per_axis_until_back():
    m, source, clock = make((TILT_RANGE_DEG + 0.5, -10.0))
    assert m.handle("MEAS:ANGL?") == f"{NAN},-1.000000E+01"
    assert m.handle("MEAS:ANGL:X?") == NAN
    source.fn = (5.0, -46.0)
    clock.advance(0.1)
    assert m.handle("MEAS:ANGL?") == f"+5.000000E+00,{NAN}"
    m.handle("UNIT:ANGL RAD")
    assert m.handle("MEAS:ANGL:Y?") == NAN  # in any unit
    source.fn = (5.0, -44.0)
    clock.advance(0.1)
    assert float(m.handle("MEAS:ANGL:Y?")) == pytest.approx(math.radians(-44.0), abs=1e-5)


def test_out_of_range_in_the_buffer():
    m, source, clock = make((10.0, 0.0))
    m.handle("SAMP:RATE 10;:INIT")
    clock.advance(0.1)
    m.poll()
    source.fn = (50.0, 0.0)
    clock.advance(0.1)
    rows = str(m.handle("TRAC:DATA?")).split(",")
    assert rows[1::3] == ["+1.000000E+01", "+1.000000E+01", NAN] and rows[2::3] == ["+0.000000E+00"] * 3


# Commands and replies end with LF; long forms and lower case are accepted, as in SCPI.
def test_terminators_and_compound_messages():
    assert (TiltInclinometer.terminator, TiltInclinometer.reply_terminator) == (b"\n", b"\n")
    m, _, _ = make((1.0, 2.0))
    assert m.handle("UNIT:ANGL DEG;ANGL?") == "DEG"  # relative to UNIT: (SCPI)
    assert m.handle("*IDN?;MEAS:ANGL:X?") == "TractionRig,TLT-2,EMU-I-0001,1.0;+1.000000E+00"


def test_seeded_noise_is_reproducible():
    def readings(seed):
        m, _, _ = make(noise_deg=0.01, seed=seed)
        return [m.handle("MEAS:ANGL?") for _ in range(5)]

    assert readings(3) == readings(3) and readings(3) != readings(4)
