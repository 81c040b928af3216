"""The run record: complete lines flushed as they happen, a torn last line skipped, and an
event written from a signal handler while the interrupted code is itself writing one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import reports.record as record_module
from reports.record import RunRecord
from reports.rundir import RECORD_NAME, Event, read_record


def test_events_are_complete_lines_readable_at_once(tmp_path):
    rec = RunRecord(tmp_path / "run")
    rec.event("run-start", rig={"name": "x"}, value=np.float64(1.5), n=np.int64(3), path=tmp_path)
    # readable before close: every line is flushed as it is written
    (line,) = read_record(tmp_path / "run")
    assert line["event"] == "run-start" and line["rig"] == {"name": "x"}
    assert line["value"] == 1.5 and line["n"] == 3 and line["path"] == str(tmp_path)
    assert line["utc"].endswith("+00:00")
    rec.close()


def test_torn_last_line_is_skipped(tmp_path):
    rec = RunRecord(tmp_path)
    rec.event(Event.RUN_START)
    rec.event(Event.SESSION_PLAN)
    rec.close()
    with open(tmp_path / RECORD_NAME, "a", encoding="utf-8") as f:
        f.write('{"event": "test-start", "utc": "2026-')  # the process died mid-write
    assert [e["event"] for e in read_record(tmp_path)] == ["run-start", "session-plan"]


def test_only_the_known_kinds_of_line_are_written(tmp_path):
    """A kind no reader knows is refused where it is written, not skipped where it is read."""
    rec = RunRecord(tmp_path)
    with pytest.raises(ValueError, match="not a valid Event"):
        rec.event("measurment", value=1.0)
    rec.close()
    assert read_record(tmp_path) == []


def test_series_written_beside_the_record(tmp_path):
    rec = RunRecord(tmp_path)
    rel = rec.save_series("ER-HALF trial 1/estop", {"t_s": np.array([0.0, 0.5]), "force_n": np.array([100.0, 40.0])})
    assert rel == "series/0001-ER-HALF-trial-1-estop.csv"
    assert (tmp_path / rel).read_text().splitlines() == ["t_s,force_n", "0,100", "0.5,40"]
    rec.close()


@pytest.mark.timeout(30)
def test_event_from_a_signal_handler_while_writing_an_event(tmp_path, monkeypatch):
    """SIGINT arriving while the main thread is inside event() (e.g. fsync of a measurement):
    the plugin's handler makes the table safe and then records a safe-state event in that
    same thread. That must neither deadlock (the session would hang after Ctrl-C) nor tear
    a line."""
    rec = RunRecord(tmp_path)
    real_fsync = record_module.os.fsync
    reentered = []

    def fsync_then_signal(fd):
        real_fsync(fd)
        if not reentered:  # the handler runs here, in the thread that holds the record
            reentered.append(True)
            rec.safe_state("signal SIGINT", {"problems": []})

    monkeypatch.setattr(record_module.os, "fsync", fsync_then_signal)
    # in a worker thread so that a deadlock fails this test instead of hanging the run
    worker = threading.Thread(target=rec.event, args=(Event.MEASUREMENT,), kwargs={"value": 1.0}, daemon=True)
    worker.start()
    worker.join(10.0)
    assert not worker.is_alive(), "event() deadlocked when re-entered from a signal handler"
    assert [e["event"] for e in read_record(tmp_path)] == ["measurement", "safe-state"]
