"""The beat process says how long its longest gap was and when it ended, so a run record
can place a gap near the goal in the test that ran then (drivers/heartbeat.py,
fixtures/plugin.py's heartbeat line, drivers/record_io.stamp_of_perf). A scripted link
gives the acknowledgement instants: no sockets, no wall time."""

from __future__ import annotations

import datetime as dt
import os
import time

from drivers.heartbeat import Beater
from drivers.record_io import parse_stamp, stamp_of_perf


class ScriptedLink:
    """heartbeat() acknowledges at the next of the given instants (perf_counter_ns)."""

    def __init__(self, acks: list[int]) -> None:
        self.acks = list(acks)

    def heartbeat(self) -> int:
        return self.acks.pop(0)


def test_the_longest_gap_and_the_acknowledgement_that_ended_it():
    ms = 1_000_000
    acks = [100 * ms, 130 * ms, 160 * ms, 277 * ms, 307 * ms]  # 117 ms between the third and the fourth
    beater = Beater(ScriptedLink(acks), 30 * ms, os.getpid())
    for _ in acks:
        assert beater.beat()
    stats = beater.stats()
    assert stats["max_gap_ns"] == 117 * ms and stats["max_gap_end_ns"] == 277 * ms


def test_a_gap_while_paused_is_not_counted():
    ms = 1_000_000
    beater = Beater(ScriptedLink([100 * ms, 130 * ms, 900 * ms, 930 * ms]), 30 * ms, os.getpid())
    beater.beat()
    beater.beat()
    beater.running = False  # paused: a watchdog trial lets the controller trip
    beater.beat()
    beater.running = True
    beater.beat()
    stats = beater.stats()
    assert stats["max_gap_ns"] == 30 * ms and stats["max_gap_end_ns"] == 130 * ms  # the first of equal gaps


def test_a_monotonic_instant_is_stamped_as_far_back_as_it_lies():
    before = dt.datetime.now(dt.timezone.utc)
    stamp = parse_stamp(stamp_of_perf(time.perf_counter_ns() - 2_000_000_000))  # two seconds ago
    after = dt.datetime.now(dt.timezone.utc)
    assert before - dt.timedelta(seconds=2.5) <= stamp <= after - dt.timedelta(seconds=1.5)
