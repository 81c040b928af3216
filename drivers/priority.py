"""Processes that stand in for a device's own CPU ask to run ahead of ordinary work.

A real controller answers and a real watchdog feeder beats on hardware of their own;
here the heartbeat process and the emulated table share two cores with the test
process and whatever else the machine runs. Where the operating system allows it
(root, CAP_SYS_NICE, or an RLIMIT_NICE that permits it) they lower their nice value;
elsewhere they run as they are. What they got is recorded, never assumed.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

#: the nice value asked for: ahead of normal work (0), far from real-time scheduling;
#: TRACTION_RIG_DEVICE_NICENESS overrides it (0: run as everything else does)
DEVICE_NICENESS = -10
ENV = "TRACTION_RIG_DEVICE_NICENESS"


def raise_priority(niceness: int | None = None) -> int:
    """Try to run at `niceness`; returns the nice value this process has afterwards."""
    if niceness is None:
        try:
            niceness = int(os.environ.get(ENV, DEVICE_NICENESS))
        except ValueError:
            niceness = DEVICE_NICENESS
    if niceness < os.getpriority(os.PRIO_PROCESS, 0):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
        except OSError:  # not permitted: an ordinary user on an ordinary machine
            pass
    return os.getpriority(os.PRIO_PROCESS, 0)


@contextmanager
def ahead_while(niceness: int | None = None):
    """This thread ahead of ordinary work for one timing-critical stretch, then back.

    A suite that times a trip by status reads back to back stands in for a bench
    instrument: a busy neighbour that takes the core between two reads widens the
    bracket and the trial is repeated or judged on a loose instant. Only the calling
    thread moves (Linux keeps a nice value per thread), and only while the reads run, so
    the runner's own computing stays ordinary work. Yields the nice value it ran at."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    got = raise_priority(niceness)
    try:
        yield got
    finally:
        if got != before:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, before)  # a higher nice value is always allowed
            except OSError:
                pass
