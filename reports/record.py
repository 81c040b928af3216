"""The run record: one append-only JSON-lines file per run, flushed as things happen.

Everything downstream (the verdict table of `rig run`, the compliance report) is
rendered from this record alone. Each line is complete on its own, so a run cut at
any point keeps every measurement taken before the cut; the time series behind each
measurement is written beside it as CSV before its line is appended.

RunRecord is the one writer of record.jsonl: one emitter per kind of line
(reports.rundir.Event), each writing its fields under their recorded names in their
recorded order, so a writer cannot misspell a kind or a key a reader looks for. The
format itself (names, kinds, encoding, the stamp, the readers) is reports/rundir.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reports.rundir import (RECORD_NAME, SERIES_DIR, Event, encode_record_line, planned_run_dir, read_record,
                            run_dirs, scan_record, series_name)

# the readers' names are reports.rundir's; these stay importable from here for the modules
# (rigcli, tests, benchmarks) that open a record beside writing one
__all__ = ["RECORD_NAME", "RunRecord", "read_record", "run_dirs", "scan_record"]


class RunRecord:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        (self.dir / SERIES_DIR).mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RECORD_NAME
        self._file = open(self.path, "a", encoding="utf-8")
        # re-entrant: the plugin's signal handler records its safe-state event in the main
        # thread, possibly while that thread is inside event() (a plain Lock deadlocks there)
        self._lock = threading.RLock()
        self._series = 0

    @classmethod
    def plan(cls, root: Path, rig_name: str) -> Path:
        """The directory a run started now will use (nothing is created)."""
        return planned_run_dir(root, rig_name)

    @classmethod
    def create(cls, root: Path, rig_name: str) -> "RunRecord":
        return cls(cls.plan(root, rig_name))

    def event(self, kind: Event, **fields) -> None:
        """Append one line of a known kind (ValueError for any other), flushed and fsynced:
        the emitters below are the way in; this is for a kind whose fields are free-form."""
        text = encode_record_line(Event(kind), fields)
        with self._lock:
            self._file.write(text + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    # ------------------------------------------------------------ the lines, one emitter each
    def run_start(self, *, rig: dict, rig_file: str | None, specification: dict, spec_file: str, table: dict,
                  gauge: dict, emulator: dict | None, heartbeat: dict, labgrid: dict | None, worker: str | None,
                  operator: str, software: dict, argv: list[str], profile: str) -> None:
        """Who and what the run verifies (read back as reports.rundir.RunStart)."""
        self.event(Event.RUN_START, rig=rig, rig_file=rig_file, specification=specification, spec_file=spec_file,
                   table=table, gauge=gauge, emulator=emulator, heartbeat=heartbeat, labgrid=labgrid, worker=worker,
                   operator=operator, software=software, argv=argv, profile=profile)

    def session_plan(self, tests: list[dict]) -> None:
        """The tests the session will run, in order ({"test", "requirements"} each)."""
        self.event(Event.SESSION_PLAN, tests=tests, count=len(tests))

    def test_start(self, test: str, requirements: Sequence[str], time_limit_s: float | None = None) -> None:
        self.event(Event.TEST_START, test=test, requirements=list(requirements),
                   **({} if time_limit_s is None else {"time_limit_s": time_limit_s}))

    def measurement(self, test: str, series: str | None, measurement: Mapping[str, Any]) -> None:
        """One judged measurement: `measurement` is verification.measurement.Measurement.to_dict()
        (read back as reports.rundir.MeasurementLine)."""
        self.event(Event.MEASUREMENT, test=test, series=series, **measurement)

    def trial_repeated(self, test: str, trigger: str, trial: int, reason: str) -> None:
        self.event(Event.TRIAL_REPEATED, test=test, trigger=trigger, trial=trial, reason=reason)

    def test_end(self, test: str, *, when: str, outcome: str, longrepr: str | None, duration_s: float, judged: bool,
                 failure: dict | None) -> None:
        self.event(Event.TEST_END, test=test, when=when, outcome=outcome, longrepr=longrepr, duration_s=duration_s,
                   judged=judged, failure=failure)

    def safe_state(self, reason: str, state: Mapping[str, Any]) -> None:
        """A release (rigs.safe_state.SafeState.to_dict())."""
        self.event(Event.SAFE_STATE, reason=reason, **state)

    def table_not_safe(self, reason: str, line: str, state: Mapping[str, Any]) -> None:
        """The release no reading could confirm, with the loud line said on stderr."""
        self.event(Event.TABLE_NOT_SAFE, reason=reason, line=line, **state)

    def operator_name(self, *, operator: str | None, answered: bool, asked_utc: str, answered_utc: str | None,
                      waited_s: float, timeout_s: float) -> None:
        self.event(Event.OPERATOR_NAME, operator=operator, answered=answered, asked_utc=asked_utc,
                   answered_utc=answered_utc, waited_s=waited_s, timeout_s=timeout_s)

    def operator_ask(self, *, ask: str, test: str, requirements: list[str], step: str, prompt: str, instruction: str,
                     choices: list[str], timeout_s: float, asked_utc: str, deadline_utc: str, operator: str | None,
                     channels: list[str]) -> None:
        self.event(Event.OPERATOR_ASK, ask=ask, test=test, requirements=requirements, step=step, prompt=prompt,
                   instruction=instruction, choices=choices, timeout_s=timeout_s, asked_utc=asked_utc,
                   deadline_utc=deadline_utc, operator=operator, channels=channels)

    def operator_step(self, step: Mapping[str, Any]) -> None:
        """A question closed: fixtures.operator.Step as a dict, its fields in their order."""
        self.event(Event.OPERATOR_STEP, **step)

    def operator_answer_refused(self, *, ask: str, answer: str, operator: str, where: str, client: str,
                                sent_utc: str, why: str) -> None:
        self.event(Event.OPERATOR_ANSWER_REFUSED, ask=ask, answer=answer, operator=operator, where=where,
                   client=client, sent_utc=sent_utc, why=why)

    def heartbeat(self, **stats) -> None:
        """How well the watchdog was fed over the session (drivers.watchdog.HeartbeatKeeper)."""
        self.event(Event.HEARTBEAT, **stats)

    def emulator(self, stats: Mapping[str, Any]) -> None:
        """The emulated table's reply statistics."""
        self.event(Event.EMULATOR, **stats)

    def run_end(self, exitstatus: int) -> None:
        """The session's end: complete when pytest finished its collection and tests (exit 0 or 1)."""
        self.event(Event.RUN_END, complete=int(exitstatus) in (0, 1), exitstatus=int(exitstatus))

    # ------------------------------------------------------------ beside the record
    def save_series(self, name: str, columns: dict[str, np.ndarray]) -> str:
        """Write a CSV beside the record; returns its path relative to the run directory."""
        with self._lock:
            self._series += 1
            n = self._series
        rel = series_name(n, name)
        keys = list(columns)
        data = np.column_stack([np.asarray(columns[k], dtype=float) for k in keys]) if keys else np.empty((0, 0))
        np.savetxt(self.dir / rel, data, delimiter=",", header=",".join(keys), comments="", fmt="%.9g")
        return rel

    def close(self) -> None:
        with self._lock:
            self._file.close()
