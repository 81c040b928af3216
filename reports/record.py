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
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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


class Damage(NamedTuple):
    """A line of a record that does not decode (a disk error, an editor): skipped, never the
    end of the record, and said with its line number wherever the run is judged."""

    line: int  # 1-based line number in record.jsonl
    reason: str  # what is wrong with it, in a few words

    def __str__(self) -> str:
        return f"line {self.line} ({self.reason})"


def decode_line(raw: bytes, key: str | None = "event") -> tuple[dict | None, str | None]:
    """(the event, None) or (None, why it is not one): the one definition of a readable
    record line, shared by every reader (the report, the history, the panel). `key`: the
    field every line of the file names its kind by (None: any JSON object will do)."""
    if not raw.strip():
        return None, "blank line"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 at byte {exc.start + 1}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON, column {exc.colno}: {exc.msg}"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {type(value).__name__}"
    if key is not None and not isinstance(value.get(key), str):
        return None, f"a JSON object without {key!r}"
    return value, None


@dataclass(frozen=True)
class RecordRead:
    """What a record holds: every event that decodes, the lines that did not (damage), and
    whether the last line is torn. A torn last line is how a cut run ends (SIGKILL or power
    loss mid-write: a line without its newline), already reported as incomplete through the
    missing run-end; a bad line anywhere else, or a bad last line that did end, is damage."""

    events: list[dict]
    damage: tuple[Damage, ...] = ()
    torn_last_line: bool = False

    @property
    def damaged(self) -> bool:
        return bool(self.damage)

    def damage_text(self) -> str | None:
        return damage_text(self.damage)


def damage_text(damage) -> str | None:
    """"record damaged at line 12 (not JSON, …)", the one wording every consumer prints."""
    damage = list(damage)
    if not damage:
        return None
    shown = ", ".join(str(d) for d in damage[:3]) + (f" and {len(damage) - 3} more lines" if len(damage) > 3 else "")
    return f"record damaged at {shown}" if len(damage) == 1 else f"record damaged at {len(damage)} lines: {shown}"


def scan_record(directory: Path) -> RecordRead:
    """Every line of a run's record: each that decodes is an event, each that does not is
    damage with its line number and is skipped, so one bad line never hides the ones after
    it; a torn last line (no newline) is the cut of a killed run, not damage."""
    with open(Path(directory) / RECORD_NAME, "rb") as f:
        data = f.read()
    events, damage = [], []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the record ends with its newline, else the last line's torn text
    for number, raw in enumerate(lines, start=1):
        event, problem = decode_line(raw)
        if event is None:
            damage.append(Damage(number, problem))
        else:
            events.append(event)
    torn = False
    if tail:
        event, _problem = decode_line(tail)
        if event is None:
            torn = True
        else:  # cut exactly before its newline: the line itself is whole
            events.append(event)
    return RecordRead(events, tuple(damage), torn)


def read_record(directory: Path) -> list[dict]:
    """The events of a run's record (the damaged and torn lines skipped), for callers that
    only look up what was recorded; whatever judges a run reads scan_record, which says
    what was skipped."""
    return scan_record(directory).events


def run_dirs(root: Path):
    """The run directories under a run root (its other files, e.g. history.sqlite, left out)."""
    root = Path(root)
    return iter(sorted(p for p in root.iterdir() if (p / RECORD_NAME).is_file())) if root.is_dir() else iter(())
