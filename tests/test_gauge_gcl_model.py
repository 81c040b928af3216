"""The gcl (Mark-10 style) gauge model, command by command, on a manual clock."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.units import NEWTONS_PER_UNIT
from rigs.emulator.gauges import GCL_AOUT_RATES, GclGauge
from tests.gauge_helpers import FakeClock, FunctionSource

pytestmark = pytest.mark.timeout(30)


def make(force=100.0, t0: float = 1.0, **kw):
    clock = FakeClock(t0)
    source = FunctionSource(force, clock, record=kw.pop("record", False))
    kw.setdefault("noise_n", 0.0)
    kw.setdefault("capacity_n", 1000.0)
    return GclGauge(source, seed=kw.pop("seed", 0), **kw), source, clock


# -- readings and units ---------------------------------------------------------------------

def test_reading_and_current():
    g, _, _ = make(123.44)
    assert g.handle("?") == "123.4 N"
    assert g.handle("?C") == "123.4 N"


@pytest.mark.parametrize(
    "command, reply",
    [
        ("N", "100.0 N"),
        ("LB", "22.48 lbF"),
        ("KG", "10.20 kgF"),
        ("G", "10197 gF"),
        ("OZ", "359.7 ozF"),
        ("MN", "100000 mN"),
        ("KN", "0.1000 kN"),
    ],
)
def test_units_and_decimals(command, reply):
    g, _, _ = make(100.0)
    assert g.handle(command) == "R"
    assert g.handle("?") == reply
    value, unit = reply.split(" ")
    assert float(value) * NEWTONS_PER_UNIT[unit] == pytest.approx(100.0, rel=2e-3)


def test_negative_force_and_no_negative_zero():
    g, source, clock = make(-12.34)
    assert g.handle("?") == "-12.3 N"
    source.fn = -0.01
    clock.advance(0.01)
    assert g.handle("?") == "0.0 N"


def test_commands_are_case_sensitive_and_only_cr_terminates():
    g, _, _ = make()
    for junk in ("n", "?c", "lb", "clr", "z", "?\n", "\n?", "? ", "", "FOO", "\x00\xff", "aout10"):
        assert g.handle(junk) == "*10", junk


def test_gain_error_and_seeded_noise():
    g, _, _ = make(100.0, gain_error=0.01)
    assert g.handle("?") == "101.0 N"

    def readings(seed):
        g, _, clock = make(100.0, noise_n=5.0, seed=seed)
        out = []
        for _ in range(20):
            clock.advance(0.001)
            out.append(g.handle("?"))
        return out

    assert readings(7) == readings(7)
    assert readings(7) != readings(8)


def test_samples_sit_on_the_1khz_table_time_grid():
    g, source, clock = make(50.0, t0=0.5, record=True)
    source.requested.clear()
    clock.advance(0.0205)
    g.poll()
    clock.advance(0.0105)
    g.handle("?")
    times = source.all_requested()
    k = np.arange(501, 532)  # 0.5 s < k / 1000 <= 0.531 s
    np.testing.assert_array_equal(times, k / 1000.0)


# -- tare and peaks ---------------------------------------------------------------------------------

def test_tare_zeroes_and_clears_peaks():
    g, source, clock = make(100.0)
    clock.advance(0.01)
    assert g.handle("?PT") == "100.0 N"
    assert g.handle("Z") == "R"
    assert g.handle("?") == "0.0 N"
    assert g.handle("?PT") == "0.0 N"
    source.fn = 120.0
    clock.advance(0.01)
    assert g.handle("?") == "20.0 N"
    assert g.handle("?PT") == "20.0 N"


def test_peaks_catch_a_transient_between_queries():
    pulse = lambda t: np.where((t >= 1.2) & (t < 1.3), 300.0, np.where((t >= 1.4) & (t < 1.45), -40.0, 50.0))
    g, _, clock = make(pulse)
    assert g.handle("?PT") == "50.0 N"
    assert g.handle("?PC") == "0.0 N"  # compression peak is <= 0
    clock.set(2.0)  # the whole pulse happened without a query
    assert g.handle("?") == "50.0 N"
    assert g.handle("?PT") == "300.0 N"
    assert g.handle("?PC") == "-40.0 N"
    assert g.handle("CLR") == "R"
    assert g.handle("?PT") == "0.0 N"
    assert g.handle("?PC") == "0.0 N"
    clock.advance(0.002)
    assert g.handle("?PT") == "50.0 N"


def test_poll_keeps_peaks_without_commands():
    pulse = lambda t: np.where((t >= 1.1) & (t < 1.101), 500.0, 0.0)
    g, _, clock = make(pulse)
    for _ in range(100):
        clock.advance(0.01)
        g.poll()
    assert g.handle("?PT") == "500.0 N"


def test_display_modes():
    pulse = lambda t: np.where((t >= 1.01) & (t < 1.02), 200.0, np.where((t >= 1.03) & (t < 1.04), -20.0, 10.0))
    g, _, clock = make(pulse)
    clock.set(1.1)
    assert g.handle("PT") == "R"
    assert g.handle("?") == "200.0 N"
    assert g.handle("?C") == "10.0 N"
    assert g.handle("PC") == "R"
    assert g.handle("?") == "-20.0 N"
    assert g.handle("CUR") == "R"
    assert g.handle("?") == "10.0 N"


def test_fltp_averages_peaks_over_2_to_the_n_samples():
    # four samples (k = 1100..1103) at 400 N on a 0 N baseline
    pulse = lambda t: np.where((t > 1.0995) & (t < 1.1035), 400.0, 0.0)
    expected = {0: "400.0 N", 2: "400.0 N", 3: "200.0 N", 4: "100.0 N"}
    for n, reply in expected.items():
        g, _, clock = make(pulse)
        assert g.handle(f"FLTP{n}") == "R"
        clock.set(1.2)
        assert g.handle("?PT") == reply, n


def test_fltc_averages_the_current_reading():
    g, _, clock = make(lambda t: 200.0 * t, t0=0.0)  # 0.2 N per sample
    clock.set(2.0)
    assert g.handle("?C") == "400.0 N"
    assert g.handle("FLTC2") == "R"
    assert g.handle("?C") == "399.7 N"  # mean of 399.4, 399.6, 399.8, 400.0
    assert g.handle("FLTC10") == "R"
    assert g.handle("?C") == "297.7 N"  # mean of the last 1024 samples, 195.4..400.0


def test_filters_only_average_samples_since_power_on():
    g, _, clock = make(lambda t: 1000.0 * t, t0=0.0)
    clock.set(0.01)
    g.handle("FLTC10")
    assert g.handle("?C") == "5.0 N"  # 11 samples (0..10 ms) exist


@pytest.mark.parametrize("command", ["FLTC11", "FLTP11", "FLTC99", "AOUT3", "AOUT4", "AOUT1001", "AOUT100"])
def test_out_of_range_is_star_11(command):
    g, _, _ = make()
    assert g.handle(command) == "*11"


@pytest.mark.parametrize("command", ["FLTC", "FLTP", "AOUT", "FLTC-1", "AOUT1.5", "FLTC 2", "AOUT²"])
def test_malformed_numbers_are_star_10(command):
    g, _, _ = make()
    assert g.handle(command) == "*10"


# -- overload ------------------------------------------------------------------------------------------

def test_overload_replies_star_21_to_every_reading_until_back():
    g, source, clock = make(119.0, capacity_n=100.0)
    assert g.handle("?") == "119.0 N"
    source.fn = 121.0
    clock.advance(0.005)
    for command in ("?", "?C", "?PT", "?PC"):
        assert g.handle(command) == "*21"
    assert g.stream_line() == "*21"
    assert g.handle("LB") == "R"  # settings still work
    source.fn = -121.0
    clock.advance(0.005)
    assert g.handle("?") == "*21"  # compression overloads too
    source.fn = 50.0
    clock.advance(0.005)
    assert g.handle("?") == "11.24 lbF"
    assert g.handle("N") == "R"
    assert g.handle("?PT") == "121.0 N"


def test_tare_does_not_hide_an_overload():
    g, source, clock = make(100.0, capacity_n=100.0)
    g.handle("Z")
    source.fn = 121.0
    clock.advance(0.002)
    assert g.handle("?") == "*21"


# -- AOUT ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", sorted(GCL_AOUT_RATES - {0}))
def test_aout_valid_rates_start_streaming_without_reply(n):
    g, _, _ = make(42.0)
    assert g.handle(f"AOUT{n}") is None
    assert g.stream_rate_hz == n
    assert g.stream_line() == "42.0 N"
    assert g.handle("AOUT0") is None
    assert g.stream_rate_hz == 0


def test_aout_invalid_rate_keeps_the_current_stream():
    g, _, _ = make()
    g.handle("AOUT50")
    assert g.handle("AOUT3") == "*11"
    assert g.stream_rate_hz == 50


def test_stream_line_follows_display_mode_and_unit():
    g, _, _ = make(100.0)
    g.handle("KG")
    assert g.stream_line() == "10.20 kgF"
    g.handle("PT")
    assert g.stream_line() == "10.20 kgF"


def test_history_gap_does_not_break_sampling():
    g, source, clock = make(10.0)
    clock.advance(100.0)  # far beyond the source's 16 s history, no poll meanwhile
    assert g.handle("?") == "10.0 N"
    source.fn = 20.0
    clock.advance(0.001)
    assert g.handle("?") == "20.0 N"
