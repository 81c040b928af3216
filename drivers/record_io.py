"""What every file of a run shares, whichever process writes it: the UTC stamp its lines
carry and the whole-file replace.

Stated here, at the bottom of the packages, because two kinds of process write into a run
directory: the pytest plugin (through reports.rundir, which re-exports both) and the
heartbeat process (drivers/heartbeat.py, its heartbeat.json), which must not import the
reports. One stamp format and one replace rule for both.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path


def utc_stamp(at: dt.datetime | None = None) -> str:
    """The wall instant every line carries: UTC, ISO 8601, milliseconds, with its offset
    ("2026-12-05T00:55:46.137+00:00"); `at` (aware) for an instant other than now."""
    return (at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def stamp_of_perf(perf_ns: int) -> str:
    """The UTC stamp of an instant taken on perf_counter_ns (CLOCK_MONOTONIC), as far back
    from now as it lies: how a figure kept in monotonic time is placed among record lines."""
    ago = time.perf_counter_ns() - perf_ns
    return utc_stamp(dt.datetime.now(dt.timezone.utc) - dt.timedelta(microseconds=ago / 1e3))


def parse_stamp(text: str | None) -> dt.datetime | None:
    """A stamp read back (None for none; ValueError for text that is not one)."""
    return dt.datetime.fromisoformat(text) if text else None


def write_atomic(path: Path | str, data: bytes, *, durable: bool = True) -> Path:
    """Write a run file so that a reader (or a crash) sees the old file or the new one,
    never half of one: a temporary beside it, renamed over it. `durable`: fsynced first,
    so a power loss keeps it too — off only for a figure rewritten every second, whose
    writer must not wait on the disk (the heartbeat's health)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
