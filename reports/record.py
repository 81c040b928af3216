"""The run record: one append-only JSON-lines file per run, flushed as things happen.

Everything downstream (the verdict table of `rig run`, the compliance report) is
rendered from this record alone. Each line is complete on its own, so a run cut at
any point keeps every measurement taken before the cut; the time series behind each
measurement is written beside it as CSV before its line is appended.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import threading
from pathlib import Path

import numpy as np

RECORD_NAME = "record.jsonl"


def _jsonable(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (dt.date, dt.datetime, Path)):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value):
    """Standard JSON has no NaN/Infinity: a value never reached is recorded as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class RunRecord:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        (self.dir / "series").mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RECORD_NAME
        self._file = open(self.path, "a", encoding="utf-8")
        # re-entrant: the plugin's signal handler records its safe-state event in the main
        # thread, possibly while that thread is inside event() (a plain Lock deadlocks there)
        self._lock = threading.RLock()
        self._series = 0

    @classmethod
    def plan(cls, root: Path, rig_name: str) -> Path:
        """The directory a run started now will use (nothing is created)."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", rig_name)
        return Path(root) / f"{stamp}-{safe}-{os.getpid()}"

    @classmethod
    def create(cls, root: Path, rig_name: str) -> "RunRecord":
        return cls(cls.plan(root, rig_name))

    def event(self, kind: str, **fields) -> None:
        line = {"event": kind, "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), **fields}
        text = json.dumps(_finite(line), default=_jsonable, ensure_ascii=False, allow_nan=False)
        with self._lock:
            self._file.write(text + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def save_series(self, name: str, columns: dict[str, np.ndarray]) -> str:
        """Write a CSV beside the record; returns its path relative to the run directory."""
        with self._lock:
            self._series += 1
            n = self._series
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:80]
        rel = f"series/{n:04d}-{safe}.csv"
        keys = list(columns)
        data = np.column_stack([np.asarray(columns[k], dtype=float) for k in keys]) if keys else np.empty((0, 0))
        np.savetxt(self.dir / rel, data, delimiter=",", header=",".join(keys), comments="", fmt="%.9g")
        return rel

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_record(directory: Path) -> list[dict]:
    """Every complete line of a run's record (a torn last line from a cut run is skipped)."""
    lines = []
    with open(Path(directory) / RECORD_NAME, encoding="utf-8") as f:
        for text in f:
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                break
    return lines


def run_dirs(root: Path):
    """The run directories under a run root (its other files, e.g. history.sqlite, left out)."""
    root = Path(root)
    return iter(sorted(p for p in root.iterdir() if (p / RECORD_NAME).is_file())) if root.is_dir() else iter(())
