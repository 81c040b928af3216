"""The status-read bracket (verification/status_watch.py): when a controller flag came on,
from the last read without it (its send) to the first with it (its reply); the ends the
reads cannot give are the caller's. Fake reads, no table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from verification.status_watch import StatusRead, StatusWatch, bracket


def reads(first_with: int | None, n: int = 6) -> list[StatusRead]:
    """Reads every 1000 ns, each 300 ns long; the flag from read `first_with` on."""
    return [StatusRead(1000 * i, 1000 * i + 300, first_with is not None and i >= first_with) for i in range(n)]


def test_the_bracket_is_the_send_before_and_the_reply_of_the_first_read_with_the_flag():
    b = bracket(reads(3))
    assert (b.after_ns, b.before_ns, b.clear_reads, b.first_sent_ns, b.seen) == (2000, 3300, 3, 0, True)
    assert b.ends_ns(earliest_ns=-5) == (2000, 3300)  # the earliest is not needed
    assert b.midpoint_ns(-5) == 2650 and b.half_width_s(-5) == pytest.approx(650e-9)


def test_shown_by_the_first_read_it_came_after_what_the_caller_knows():
    b = bracket(reads(0))
    assert b.after_ns is None and b.clear_reads == 0 and b.before_ns == 300
    assert b.ends_ns(earliest_ns=-700) == (-700, 300)
    assert b.midpoint_ns(-700) == -200 and b.half_width_s(-700) == pytest.approx(500e-9)


def test_never_shown_it_came_before_the_latest_the_caller_gives_or_there_is_no_bracket():
    b = bracket(reads(None))
    assert not b.seen and b.before_ns is None and b.after_ns is None and b.clear_reads == 6
    with pytest.raises(ValueError, match="no read showed the flag"):
        b.ends_ns(0)
    # no read showed it: the bracket runs from the caller's earliest to its latest
    assert b.ends_ns(earliest_ns=0, latest_ns=9000) == (0, 9000)
    assert bracket([]).first_sent_ns is None and not bracket([]).seen


def test_on_another_time_axis_each_end_is_converted_before_they_are_combined():
    b = bracket(reads(2))
    to_s = lambda ns: (ns - 100) / 1e9 * 10.0  # noqa: E731 — table seconds at K = 10 from t0 = 100 ns
    mid, half = b.in_seconds(to_s, earliest_s=-1.0)
    seen, before = to_s(2300), to_s(1000)
    assert (mid, half) == ((seen + before) / 2, (seen - before) / 2)
    assert bracket(reads(0)).in_seconds(to_s, earliest_s=-1.0) == ((to_s(300) - 1.0) / 2, (to_s(300) + 1.0) / 2)


class FakeController:
    def __init__(self, flags: list[bool]) -> None:
        self.flags = iter(flags)
        self.ns = 0

    def status(self):
        self.ns += 1000
        return SimpleNamespace(sent_ns=self.ns, host_ns=self.ns + 300, estop_latched=next(self.flags), fault_code="X")


def test_the_watch_reads_until_the_flag_and_answers_what_the_controller_reported():
    watch = StatusWatch(FakeController([False, False, True, True]), "estop_latched", lambda st: f"latched {st.fault_code}")
    assert watch() is None and not watch.seen
    assert watch.wait(5.0) and watch.seen
    assert [r.flag for r in watch.reads] == [False, False, True]  # it stopped at the first read with it
    b = watch.bracket()
    assert (b.after_ns, b.before_ns, b.clear_reads) == (2000, 3300, 2)
    assert StatusWatch(FakeController([True]), "estop_latched", lambda st: f"latched {st.fault_code}")() == "latched X"


def test_the_watch_gives_up_after_its_wait():
    watch = StatusWatch(FakeController([False] * 100000), "estop_latched")
    assert watch.wait(0.01) is False and not watch.bracket().seen and len(watch.reads) >= 1
