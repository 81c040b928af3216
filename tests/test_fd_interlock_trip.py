"""IL-TRAVEL's trip time on a scripted controller and a manual clock
(verification/fd_interlock.py `time_enable_trip`): the ENABLE's instant, the trip
bracketed by the status reads as verification/status_watch.py states it, in table
seconds; a trip never reported is a FAIL. No sockets, no wall time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from verification import fd_interlock, status_watch
from verification.fd_interlock import time_enable_trip
from verification.measurement import Verdict
from verification.spec import load_spec

K = 10.0


class Clock:
    """perf_counter_ns advanced by hand: each read of it moves it on by `tick` ns."""

    def __init__(self, tick: int = 100_000) -> None:
        self.now, self.tick = 1_000_000_000, tick

    def __call__(self) -> int:
        self.now += self.tick
        return self.now


class ScriptedController:
    """ENABLE acknowledged after `ack_ns`; each status read takes `read_ns` and shows
    OVERTRAVEL_TRIPPED from read number `trips_on` (1-based; None: never)."""

    def __init__(self, clock: Clock, trips_on: int | None, ack_ns: int = 400_000, read_ns: int = 300_000) -> None:
        self.clock, self.trips_on, self.ack_ns, self.read_ns = clock, trips_on, ack_ns, read_ns
        self.reads = 0

    def enable(self) -> int:
        self.clock.now += self.ack_ns
        return self.clock.now

    def status(self):
        self.reads += 1
        sent = self.clock.now
        self.clock.now += self.read_ns
        tripped = self.trips_on is not None and self.reads >= self.trips_on
        return SimpleNamespace(sent_ns=sent, host_ns=self.clock.now, overtravel_tripped=tripped)


def bench_on(ctrl):
    return SimpleNamespace(ctrl=ctrl, k=K, table_s=lambda a, b: (b - a) / 1e9 * K)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    # the modules' own clocks only (the process's time module stays as it is): the ENABLE's
    # and the status reads' deadline
    monkeypatch.setattr(fd_interlock, "time", SimpleNamespace(perf_counter_ns=c))
    monkeypatch.setattr(status_watch, "time", SimpleNamespace(perf_counter_ns=c))
    return c


def test_the_trip_is_timed_from_the_enable_to_the_bracket_of_reads(clock):
    ctrl = ScriptedController(clock, trips_on=3)
    trip = time_enable_trip(bench_on(ctrl), 1.0)
    # ENABLE sent at s, acknowledged 400 µs later: its instant s + 200 µs, ± 200 µs. Each read
    # takes 300 µs and the wait's own clock reading 100 µs: read 2 is sent at s + 800 µs, read 3
    # comes back at s + 1500 µs — the trip at s + 1150 µs ± 350 µs, 950 µs after the ENABLE
    assert trip.trigger_half_s == pytest.approx(200e-6)
    assert trip.reads == 3
    assert trip.trip_half_s == pytest.approx(350e-6)
    assert trip.delay_s == pytest.approx(950e-6 * K)


def test_a_trip_shown_by_the_first_read_is_bracketed_from_the_enables_send(clock):
    ctrl = ScriptedController(clock, trips_on=1)
    trip = time_enable_trip(bench_on(ctrl), 1.0)
    assert trip.reads == 1
    # from the ENABLE's send to the first reply: the bracket covers the ENABLE itself
    assert trip.trip_half_s >= trip.trigger_half_s


def test_a_trip_never_reported_fails(clock):
    ctrl = ScriptedController(clock, trips_on=None)
    trip = time_enable_trip(bench_on(ctrl), 0.01)  # 1 ms of wall time on the manual clock
    assert math.isinf(trip.delay_s)
    spec = load_spec("flexion-distraction")
    m = trip.measurement(spec.requirement("IL-TRAVEL"), "trip", K, {}, [])
    assert m.verdict is Verdict.FAIL


def test_a_late_trip_fails_and_a_prompt_one_passes(clock):
    spec = load_spec("flexion-distraction")
    req = spec.requirement("IL-TRAVEL")
    late = time_enable_trip(bench_on(ScriptedController(clock, trips_on=60)), 1.0)  # ~18 ms wall, 180 ms table
    prompt = time_enable_trip(bench_on(ScriptedController(clock, trips_on=1)), 1.0)
    assert late.measurement(req, "late", K, {}, []).verdict is Verdict.FAIL
    assert prompt.measurement(req, "prompt", K, {}, []).verdict is Verdict.PASS
