"""When a controller flag came on, known only from status reads: it came on after the
device sampled the last read that did not show it (no earlier than that read was sent)
and before the first read that did came back. A reply the loaded host picked up late
must not push the instant later, and a read sent late must not pull it earlier — so the
bracket is [sent_ns of the last read without it, host_ns of the first with it], on the
host's perf_counter_ns clock.

One statement of that rule for every instant a suite takes from a flag: the watchdog's
trip (WD-TIME and the releases it starts), the over-force trip (IL-OVERFORCE) and the red
button's latch pressed by hand (the operator check).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

from drivers.priority import ahead_while


class StatusRead(NamedTuple):
    """One status read: when it was sent, when its reply arrived (perf_counter_ns) and
    whether it showed the flag."""

    sent_ns: int
    host_ns: int
    flag: bool


@dataclass(frozen=True)
class Bracket:
    """Where a flag came on between status reads (perf_counter_ns).

    An end the reads cannot give is the caller's to supply, because only the caller knows
    what bounds it: shown by the very first read (`after_ns` None), the flag may have come
    on before any read was sent — after the last heartbeat, after the prompt; never shown
    (`before_ns` None), the reads bound nothing (what they never saw may have happened
    between any two of them): it came, if at all, between the caller's earliest and
    latest — after the prompt, before the person said done."""

    after_ns: int | None  # sent_ns of the last read without the flag; None: the first read showed it, or none
    before_ns: int | None  # host_ns of the first read with the flag; None: no read showed it
    clear_reads: int  # reads that did not show it before the first that did (all, if none did)
    first_sent_ns: int | None  # sent_ns of the first read (None: no read at all)

    @property
    def seen(self) -> bool:
        return self.before_ns is not None

    def ends_ns(self, earliest_ns: int, latest_ns: int | None = None) -> tuple[int, int]:
        """(from, to): `earliest_ns` where the first read already showed the flag,
        `latest_ns` where no read showed it."""
        start = self.after_ns if self.after_ns is not None else earliest_ns
        end = self.before_ns if self.before_ns is not None else latest_ns
        if end is None:
            raise ValueError("no read showed the flag and no latest instant was given")
        return start, end

    def midpoint_ns(self, earliest_ns: int, latest_ns: int | None = None) -> int:
        start, end = self.ends_ns(earliest_ns, latest_ns)
        return (start + end) // 2

    def half_width_s(self, earliest_ns: int, latest_ns: int | None = None) -> float:
        """Half the bracket, wall seconds."""
        start, end = self.ends_ns(earliest_ns, latest_ns)
        return (end - start) / 2e9

    def in_seconds(self, to_s: Callable[[int], float], earliest_s: float) -> tuple[float, float]:
        """(midpoint, half-width) on another time axis (`to_s`: perf_counter_ns → s, e.g. a
        capture's table seconds), each end converted before they are combined;
        `earliest_s` on that axis where the first read already showed the flag."""
        seen = to_s(self.before_ns)
        before = to_s(self.after_ns) if self.after_ns is not None else earliest_s
        return (seen + before) / 2, (seen - before) / 2


def bracket(reads: Sequence[tuple[int, int, bool]]) -> Bracket:
    """The bracket of the first read that showed the flag, among `reads` in the order
    they were taken ((sent_ns, host_ns, flag) each)."""
    first = next((i for i, (_, _, flag) in enumerate(reads) if flag), None)
    first_sent = reads[0][0] if reads else None
    if first is None:
        return Bracket(None, None, len(reads), first_sent)
    return Bracket(reads[first - 1][0] if first > 0 else None, reads[first][1], first, first_sent)


class StatusWatch:
    """Status reads of one controller while waiting for `flag` (a ControllerStatus field),
    kept for the bracket. Also an `observed` callable for `Operator.await_action`: its
    answer, once a read shows the flag, is `said(status)` — what the controller reported."""

    def __init__(self, ctrl, flag: str, said: Callable[[object], str] | None = None) -> None:
        self.ctrl = ctrl
        self.flag = flag
        self.said = said or (lambda st: f"{flag} reported by the controller")
        self.started_ns = time.perf_counter_ns()  # before the first read: where watching began
        self.reads: list[StatusRead] = []

    def read(self):
        st = self.ctrl.status()
        self.reads.append(StatusRead(st.sent_ns, st.host_ns, bool(getattr(st, self.flag))))
        return st

    @property
    def seen(self) -> bool:
        return bool(self.reads) and self.reads[-1].flag

    def __call__(self) -> str | None:
        st = self.read()
        return self.said(st) if getattr(st, self.flag) else None

    def until(self, deadline_ns: int) -> bool:
        """Reads back to back until one shows the flag or `deadline_ns` (perf_counter_ns)
        passed, one read at least: the bracket as narrow as the link allows, so the reads
        run ahead of ordinary work (`drivers.priority.ahead_while`)."""
        with ahead_while():
            while True:
                self.read()
                if self.seen:
                    return True
                if time.perf_counter_ns() > deadline_ns:
                    return False

    def wait(self, wall_s: float, pause_s: float = 0.0) -> bool:
        """Read until a read shows the flag, or `wall_s` wall seconds passed (one read at least);
        back to back (no `pause_s`) the reads time a trip, so they are `until`'s."""
        if not pause_s:
            return self.until(time.perf_counter_ns() + int(wall_s * 1e9))
        deadline = time.perf_counter() + wall_s
        while self() is None:
            if time.perf_counter() > deadline:
                return False
            time.sleep(pause_s)
        return True

    def bracket(self) -> Bracket:
        return bracket(self.reads)
