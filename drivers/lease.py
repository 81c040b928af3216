"""The heartbeat's lease: the watchdog is fed only while the test process makes progress.

Why: the beats come from a process of their own (drivers/heartbeat.py) so that a busy
test process cannot starve them; but then they went on as long as the test process
merely *existed*. A runner stopped by SIGSTOP or a debugger, deadlocked, or stuck in a
call kept a table pulling for as long as it stayed so. Now the beat process sends a beat
only while a deadline that the runner writes into shared memory lies ahead, and the
runner can move that deadline only by making progress:

- every completed transaction of the main thread with a device of the rig (controller,
  safety link, stimulus module, gauge) renews it, and so does every slice of a bounded
  wait (`renew()` from a wait loop): a frozen or stuck main thread renews nothing, a
  failed or stalled transaction renews nothing;
- while the table is *confirmed at rest* (a status read sent after the last START shows
  PHASE idle and the force at or below RESIDUAL_FORCE) the lease is open-ended: a table at
  rest cannot pull until the runner writes START, so a long analysis, a report or a slow
  fixture between treatments cannot starve the watchdog into a needless trip;
- the runner's START makes the lease short again *before* the write goes out;
- `drop()` (a safe-state command failed) ends the beats at once.

Bound: a runner frozen at instant t renewed last at or before t, so the last beat goes
out before t + LENGTH and the controller trips at most one watchdog period after that:
force ends within LENGTH + WATCHDOG + the release time of the freeze. LENGTH is 0.3 s of
wall time (the watchdog period if that is shorter): the goal allows a frozen runner 0.5 s
beyond the period and the release, and the longer the lease, the longer a pause of the
runner (a slow disk, a loaded machine) it rides out without a needless trip: LENGTH +
the period.

Only the main thread renews: a gauge's streaming thread or the panel's feed thread runs
on while the main thread is frozen, and their I/O proves nothing about the runner.

The shared word is one aligned int64 (perf_counter_ns, CLOCK_MONOTONIC on Linux, the
same clock in every process), written and read with single 8-byte moves.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
import time

#: the deadline value that means "open-ended" (the table is confirmed at rest)
OPEN_ENDED = (1 << 63) - 1
#: a lease is this long in wall seconds (the watchdog period if shorter)
MAX_LENGTH_WALL_S = 0.3
#: a renewal rewrites the deadline only when it moved by more than this fraction of the length
RENEW_GRANULARITY = 0.1

_MAIN_THREAD = threading.main_thread().ident
_leases: list["Lease"] = []


def lease_length_s(period_wall_s: float) -> float:
    """The lease's length for a watchdog period (wall s): see the module's bound."""
    return min(period_wall_s, MAX_LENGTH_WALL_S)


class Lease:
    """The runner's side: owns the shared word and moves it on progress."""

    ACTIVE, AT_REST, DROPPED = "active", "at rest", "dropped"

    def __init__(self, length_wall_s: float) -> None:
        if length_wall_s <= 0:
            raise ValueError("a lease must be longer than 0 s")
        self.length_ns = int(length_wall_s * 1e9)
        self._step_ns = int(self.length_ns * RENEW_GRANULARITY)
        self.fd = os.memfd_create("traction-rig-lease", 0)  # passed to the beat process
        os.ftruncate(self.fd, mmap.PAGESIZE)
        self._map = mmap.mmap(self.fd, mmap.PAGESIZE)
        self._word = ctypes.c_int64.from_buffer(self._map)
        self.mode = self.ACTIVE
        self.last_motion_ns = time.perf_counter_ns()
        self._write(time.perf_counter_ns() + self.length_ns)
        _leases.append(self)

    def _write(self, deadline_ns: int) -> None:
        self._word.value = deadline_ns
        self._written = deadline_ns

    def renew(self) -> None:
        """Progress of the main thread: the beats may go on for one more lease length."""
        if self.mode != self.ACTIVE or threading.get_ident() != _MAIN_THREAD:
            return
        deadline = time.perf_counter_ns() + self.length_ns
        if deadline - self._written > self._step_ns:
            self._write(deadline)

    def motion(self) -> None:
        """The runner is about to command force (START): a short lease from now on."""
        self.last_motion_ns = time.perf_counter_ns()
        if self.mode == self.DROPPED:
            return  # a table that could not be made safe gets no more beats from this runner
        self.mode = self.ACTIVE
        self._write(time.perf_counter_ns() + self.length_ns)

    def at_rest(self, sent_ns: int) -> bool:
        """The table was seen at rest by a read sent at `sent_ns`: open-ended, unless a START
        went out after that read was sent (its answer may predate the START's effect)."""
        if sent_ns <= self.last_motion_ns:
            return False
        self.mode = self.AT_REST
        self._write(OPEN_ENDED)
        return True

    def drop(self) -> None:
        """No more beats from now on (a safe-state command failed or timed out)."""
        self.mode = self.DROPPED
        self._write(0)

    def close(self) -> None:
        if self in _leases:
            _leases.remove(self)
        self._write(0)
        try:
            del self._word
            self._map.close()
        except (BufferError, ValueError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


class LeaseReader:
    """The beat process's side: the same word, read before every beat."""

    def __init__(self, fd: int) -> None:
        self._map = mmap.mmap(fd, mmap.PAGESIZE, prot=mmap.PROT_READ)
        self._view = memoryview(self._map).cast("q")

    def deadline_ns(self) -> int:
        return self._view[0]


# ---------------------------------------------------------------- what drivers call
def progress() -> None:
    """A device transaction of this process completed (drivers call it; cheap)."""
    for lease in _leases:
        lease.renew()


def motion() -> None:
    """This process is about to command force on a table."""
    for lease in _leases:
        lease.motion()


def sleep(seconds: float) -> None:
    """A bounded wait is progress: sleep in slices, renewing the lease after each, so a
    long hold or settle time does not starve the beats (a stopped process renews nothing)."""
    end = time.perf_counter_ns() + int(max(0.0, seconds) * 1e9)
    slice_ns = min((lease.length_ns for lease in _leases), default=int(MAX_LENGTH_WALL_S * 1e9)) // 4
    while True:
        left = end - time.perf_counter_ns()
        if left <= 0:
            return
        time.sleep(min(left, slice_ns) / 1e9)
        progress()
