"""The run directory stated once (reports/rundir.py) and its one writer (reports/record.py):
every kind of line is written by its emitter and read back; a line recorded before the
module existed is written again byte for byte by today's emitters and decodes into the
same typed values; one calibration rule, one way to show a number, one closeness."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from reports import rundir
from reports.record import RunRecord
from reports.rundir import (ABORT, MAX_NAME, Event, MeasurementLine, PageAnswers, RunStart, answer_refusal,
                            append_answer, calibration_expired_at, closeness, format_value, limit_text,
                            read_record, run_start_of, scan_record, u_text, utc_stamp, value_text)

#: real lines of runs recorded before reports/rundir.py existed (rig run on the emulated
#: lumbar table, 2026-12-04/05: a sealed run, a run cut mid-trial, a fault-matrix run whose
#: table could not be confirmed safe), one of each kind those runs wrote, as written
OLD_LINES = Path(__file__).resolve().parent / "data" / "record-before-rundir.jsonl"
LUMBAR_RIG = Path(__file__).resolve().parent.parent / "rigs" / "emulated-lumbar.yaml"

pytest_plugins = ["pytester"]


def old_lines() -> list[bytes]:
    return OLD_LINES.read_bytes().splitlines()


def emit(record: RunRecord, line: dict) -> None:
    """Write `line` again through the typed emitter of its kind, as the plugin and the
    operator console call them."""
    f = {k: v for k, v in line.items() if k not in ("event", "utc")}
    emitters = {
        Event.RUN_START: lambda: record.run_start(**f),
        Event.SESSION_PLAN: lambda: record.session_plan(f["tests"]),
        Event.TEST_START: lambda: record.test_start(f["test"], f["requirements"], f.get("time_limit_s")),
        Event.MEASUREMENT: lambda: record.measurement(f.pop("test"), f.pop("series"), f),
        Event.TRIAL_REPEATED: lambda: record.trial_repeated(f["test"], f["trigger"], f["trial"], f["reason"]),
        Event.OPERATOR_NAME: lambda: record.operator_name(**f),
        Event.OPERATOR_ASK: lambda: record.operator_ask(**f),
        Event.OPERATOR_STEP: lambda: record.operator_step(f),
        Event.OPERATOR_ANSWER_REFUSED: lambda: record.operator_answer_refused(**f),
        Event.TEST_END: lambda: record.test_end(f.pop("test"), **f),
        Event.SAFE_STATE: lambda: record.safe_state(f.pop("reason"), f),
        Event.TABLE_NOT_SAFE: lambda: record.table_not_safe(f.pop("reason"), f.pop("line"), f),
        Event.HEARTBEAT: lambda: record.heartbeat(**f),
        Event.EMULATOR: lambda: record.emulator(f),
        Event.RUN_END: lambda: record.run_end(f["exitstatus"]),
    }
    assert set(emitters) == set(Event), "an Event without an emitter"
    emitters[Event(line["event"])]()


def operator_lines() -> list[dict]:
    """The operator console's lines, keys in the order fixtures/operator.py wrote them
    before this module (no recorded run of that time had a person at the bench)."""
    return [
        {"event": "operator-name", "utc": "2026-12-05T01:00:00.000+00:00", "operator": "Dana", "answered": True,
         "asked_utc": "2026-12-05T00:59:58.000+00:00", "answered_utc": "2026-12-05T01:00:00.000+00:00",
         "waited_s": 2.0, "timeout_s": 60.0},
        {"event": "operator-ask", "utc": "2026-12-05T01:00:01.000+00:00", "ask": "1", "test": "suites/t.py::t",
         "requirements": ["ER-LATCH"], "step": "cord", "prompt": "confirm", "instruction": "Is the cord slack?",
         "choices": ["y", "n"], "timeout_s": 60.0, "asked_utc": "2026-12-05T01:00:01.000+00:00",
         "deadline_utc": "2026-12-05T01:01:01.000+00:00", "operator": "Dana", "channels": ["terminal", "page"]},
        {"event": "operator-answer-refused", "utc": "2026-12-05T01:00:02.000+00:00", "ask": "1", "answer": "maybe",
         "operator": "Lee", "where": "page", "client": "127.0.0.1:5000 (panel pid 7)",
         "sent_utc": "2026-12-05T01:00:02.000+00:00", "why": "'maybe' is not an answer to this step (one of y, n, abort)"},
        {"event": "operator-step", "utc": "2026-12-05T01:00:03.000+00:00", "test": "suites/t.py::t",
         "requirements": ["ER-LATCH"], "step": "cord", "prompt": "confirm", "instruction": "Is the cord slack?",
         "operator": "Dana", "timeout_s": 60.0, "asked_utc": "2026-12-05T01:00:01.000+00:00", "ask": "1",
         "answer": "y", "answered": True, "outcome": "answered", "answered_utc": "2026-12-05T01:00:03.000+00:00",
         "waited_s": 2.0, "where": "terminal", "client": None},
    ]


def written_again(tmp_path, lines: list[bytes], monkeypatch) -> list[bytes]:
    """Each line written again through its emitter, at the instant it was first written."""
    record = RunRecord(tmp_path / "again")
    for raw in lines:
        line = json.loads(raw)
        monkeypatch.setattr(rundir, "utc_stamp", lambda at=None, utc=line["utc"]: utc)
        emit(record, line)
    record.close()
    return (tmp_path / "again" / rundir.RECORD_NAME).read_bytes().splitlines()


def test_every_kind_of_line_is_written_and_read_back(tmp_path, monkeypatch):
    lines = old_lines() + [json.dumps(line, ensure_ascii=False).encode() for line in operator_lines()]
    again = written_again(tmp_path, lines, monkeypatch)
    assert {json.loads(raw)["event"] for raw in again} == {kind.value for kind in Event}
    read = scan_record(tmp_path / "again")
    assert not read.damaged and not read.torn_last_line
    assert [list(e) for e in read.events] == [list(json.loads(raw)) for raw in lines]  # every key, in its order
    for kind in Event:
        assert read.of(kind), kind


def test_a_line_recorded_before_the_schema_is_written_again_byte_for_byte(tmp_path, monkeypatch):
    """The emitters write what the plugin wrote before them: old runs, their manifests and
    the history's digests stay valid, and a new run reads like an old one."""
    lines = old_lines()
    assert len({json.loads(raw)["event"] for raw in lines}) == 11  # every kind those runs wrote
    assert written_again(tmp_path, lines, monkeypatch) == lines


def test_only_known_kinds_are_written(tmp_path):
    record = RunRecord(tmp_path)
    with pytest.raises(ValueError):
        record.event("run_start")
    record.close()
    assert read_record(tmp_path) == []


# ---------------------------------------------------------------- run-start
def test_an_old_run_start_line_decodes_into_its_identity():
    start = run_start_of(json.loads(raw) for raw in old_lines())
    assert start == RunStart(
        utc="2026-12-05T00:55:46.137+00:00", rig_name="emulated-lumbar", time_scale=10.0, emulated=True,
        table=rundir.TableAtRun(kind="lumbar", model="Emulated lumbar table", serial="EMU-LUMB-0007", firmware=259,
                                protocol=256, rated_force_n=890.0),
        gauge=rundir.GaugeAtRun(dialect="scpi", resource=start.gauge.resource, model="TractionRig LCI-3000 (emulated)",
                                serial="EMU-G-0001", resolution_n=0.01,
                                calibration=rundir.CalibrationAtRun(certificate="EMU-CAL-2026-001", date="2026-03-01",
                                                                    due="2027-03-01", expanded_uncertainty_n=0.5,
                                                                    coverage_factor=2.0, expired=False)),
        spec=rundir.SpecAtRun(name="lumbar", title="Powered lumbar traction table — safety specification",
                              version="1.3"),
        operator="unknown", worker=None, profile="quick", rig_file="/tmp/golden/rigs/emulated-lumbar.yaml",
        spec_file="/tmp/golden/suites/specs/lumbar.yaml", software=start.software, line=start.line)
    assert start.gauge.resource.startswith("TCPIP::127.0.0.1::")
    assert start.table.firmware_text == "0x0103"
    assert start.software["git_commit"] == "81088791a00cb88a7956e3ee0d9e7d5298dc1ad6"
    assert start.emulation == {"seed": 1, "faults": [], "attach": False, "patient_simulator": None,
                               "serial_lines": False}
    assert start.emulator["seed"] == 7 and [r["id"] for r in start.specification["requirements"]][:2] == \
        ["FA-STATIC", "FA-CELL"]


def test_the_plugins_run_start_parses_into_run_start(pytester):
    """A run-start the plugin wrote on opening the emulated rig reads back as the rig file,
    the controller, the gauge and the options say."""
    from rigs.config import load_rig

    pytester.makepyfile(test_open="""
        def test_open(session_rig):
            pass
    """)
    runs = pytester.path / "runs"
    result = pytester.runpytest(f"--run-dir={runs}", "-p", "no:cacheprovider", "-p", "no:labgrid",
                                f"--rig={LUMBAR_RIG}", "--operator-name=Dana", "--profile=full", "--seed=3")
    result.assert_outcomes(passed=1)
    (run_dir,) = rundir.run_dirs(runs)
    events = read_record(run_dir)
    assert [e["event"] for e in events][:2] == [Event.RUN_START, Event.SESSION_PLAN]
    assert events[-1]["event"] == Event.RUN_END
    config = load_rig(LUMBAR_RIG)
    start = run_start_of(events)
    assert (start.rig_name, start.time_scale, start.emulated) == (config.name, config.time_scale, True)
    assert (start.table.kind, start.table.model) == ("lumbar", config.table.model)
    assert start.table.serial == start.emulator["serial"] and start.emulator["seed"] == 3
    assert start.table.firmware_text.startswith("0x") and start.table.rated_force_n == 890.0
    assert (start.gauge.dialect, start.gauge.model, start.gauge.serial, start.gauge.resolution_n) == (
        config.gauge.dialect, config.gauge.model, config.gauge.serial, config.gauge.resolution_n)
    cal = config.gauge.calibration
    assert (start.gauge.calibration.certificate, start.gauge.calibration.due) == (cal.certificate, str(cal.due))
    assert start.gauge.calibration.expired is cal.expired()
    assert (start.spec.name, start.operator, start.worker, start.profile) == ("lumbar", "Dana", None, "full")
    assert start.rig_file == str(LUMBAR_RIG) and start.software["traction_rig"]
    assert (run_dir / rundir.RIG_COPY_NAME).is_file() and (run_dir / rundir.SPEC_COPY_NAME).is_file()


def test_run_start_refuses_another_kind_of_line():
    with pytest.raises(ValueError, match="not a run-start line"):
        RunStart.from_line({"event": "run-end"})


@pytest.mark.parametrize(("gauge", "utc", "expired"), [
    # the plugin's own judgement, recorded, is the answer whatever the dates say
    ({"calibration_expired": True, "calibration": {"due": "2099-01-01"}}, "2026-12-05T00:00:00.000+00:00", True),
    ({"calibration_expired": False, "calibration": {"due": "2000-01-01"}}, "2026-12-05T00:00:00.000+00:00", False),
    # a line without it: the same rule as rigs.config.Calibration.expired, on the run's UTC day
    ({"calibration": {"due": "2026-12-05"}}, "2026-12-05T23:59:59.999+00:00", False),
    ({"calibration": {"due": "2026-12-04"}}, "2026-12-05T00:00:00.000+00:00", True),
    ({"calibration": {"due": "2026-12-05"}}, "2026-12-05T23:30:00.000-01:00", True),  # 00:30 UTC on the 6th
    ({"calibration": {}}, "2026-12-05T00:00:00.000+00:00", False),
    ({}, None, False),
])
def test_one_calibration_rule(gauge, utc, expired):
    assert calibration_expired_at(gauge, utc) is expired
    start = RunStart.from_line({"event": "run-start", "utc": utc, "gauge": gauge})
    assert start.gauge.calibration.expired is expired


def test_the_calibration_rule_is_the_configs():
    from rigs.config import Calibration

    cal = Calibration(certificate="C", date=dt.date(2026, 1, 1), due=dt.date(2026, 12, 4), expanded_uncertainty_n=0.5)
    for day in (dt.date(2026, 12, 3), dt.date(2026, 12, 4), dt.date(2026, 12, 5)):
        utc = f"{day.isoformat()}T12:00:00.000+00:00"
        assert calibration_expired_at({"calibration": cal.model_dump(mode="json")}, utc) is cal.expired(day)


# ---------------------------------------------------------------- measurement lines
def test_old_measurement_lines_decode_into_the_same_values():
    guard, series, boolean = (MeasurementLine.from_line(json.loads(raw)) for raw in old_lines()
                              if json.loads(raw)["event"] == "measurement")
    assert (guard.test, guard.requirement, guard.quantity, guard.id, guard.name) == (
        "suites/test_emergency_release.py::test_emergency_release[estop_coil]", "ER-NORISE", None, "ER-NORISE",
        "estop_coil trial 1 (ramp_up, 150 N)")
    assert (guard.value, guard.unit, guard.lower, guard.upper, guard.uncertainty, guard.coverage_factor) == (
        0.0, "s", None, 0.05, 0.006153658178622943, 2.0)
    assert (guard.decision_rule, guard.verdict, guard.tur, guard.tur_below_4, guard.series) == (
        "guard-banded", "PASS", 8.125248193618212, False, None)
    assert guard.conditions["trigger"] == "estop_coil" and guard.not_applicable is None
    assert (guard.value_text(), guard.limit_text(), guard.u_text()) == ("0 s", "≤ 0.05 s", "± 0.0062 s")
    assert guard.closeness == pytest.approx(-1.0)
    assert series.series == "series/0001-ER-HALF-estop_coil-trial-1-ramp_up-150-N-.csv"
    assert (series.value_text(), series.limit_text(), series.u_text()) == ("0.04753 s", "≤ 0.5 s", "± 0.0021 s")
    assert (boolean.value, boolean.decision_rule, boolean.requirement) == (True, "boolean", "ER-LATCH")
    assert format_value(boolean.line) == ("holds", "must hold", "—")


def test_measurement_line_refuses_another_kind():
    with pytest.raises(ValueError, match="not a measurement line"):
        MeasurementLine.from_line({"event": "test-end"})


def m(value, lower=None, upper=None, unit="N", u=0.123456, rule="guard-banded", verdict="PASS", **more) -> dict:
    return {"event": "measurement", "value": value, "lower": lower, "upper": upper, "unit": unit, "uncertainty": u,
            "decision_rule": rule, "verdict": verdict, **more}


@pytest.mark.parametrize(("line", "shown"), [
    (m(3.14159, upper=10.0), ("3.142 N", "≤ 10 N", "± 0.12 N")),  # values and limits 4 digits, U 2
    (m(1234.56, lower=1000.0, upper=2000.0), ("1235 N", "1000 … 2000 N", "± 0.12 N")),
    (m(0.000123456, lower=0.05, unit="s", u=0.0000456), ("0.0001235 s", "≥ 0.05 s", "± 4.6e-05 s")),
    (m(None, upper=3.0, unit="s"), ("never", "≤ 3 s", "± 0.12 s")),  # a level never reached
    (m(2.0, unit="", u=0.0), ("2", "—", "± 0")),  # no unit, no limit
    (m(True, rule="boolean", unit=""), ("holds", "must hold", "—")),
    (m(False, rule="boolean", unit="", verdict="FAIL"), ("VIOLATED", "must hold", "—")),
    (m(None, upper=5.0, verdict="N/A", not_applicable="no trigger"), ("N/A", "≤ 5 N", "± 0.12 N")),
    (None, ("—", "—", "—")),
])
def test_one_way_to_show_a_measurement(line, shown):
    assert format_value(line) == shown
    assert (value_text(line), limit_text(line), u_text(line)) == shown


def test_a_requirements_own_limit_is_shown_the_same_way_formulas_as_written():
    assert limit_text(None, {"upper": 3.0, "unit": "s"}) == "≤ 3 s"  # as a measurement against it shows it
    assert limit_text(None, {"upper": "max(0.05 * setting, 10)", "unit": "N"}) == "≤ max(0.05 * setting, 10) N"
    assert limit_text(None, {"lower": 0.05, "upper": "watchdog", "unit": "s"}) == "0.05 … watchdog s"
    assert limit_text(None, {"decision_rule": "boolean"}) == "must hold"
    assert limit_text(None, None) == "—"


def test_closeness_orders_by_how_near_the_limit():
    inside, near, beyond = m(2.0, upper=10.0), m(9.0, upper=10.0), m(11.0, upper=10.0)
    assert closeness(inside) == pytest.approx(-0.8) and closeness(near) == pytest.approx(-0.1)
    assert closeness(beyond) == pytest.approx(0.1)
    assert closeness(m(0.9, lower=1.0, upper=2.0)) == pytest.approx(0.1)  # the nearer of both limits
    assert closeness(m(5.0, upper=0.0)) == pytest.approx(5.0)  # a zero limit: absolute distance
    assert closeness(m(None, upper=1.0)) == float("inf")  # never reached: the worst
    held, broken = m(True, rule="boolean"), m(False, rule="boolean")
    assert closeness(held) == float("-inf") and closeness(broken) == 1.0
    # a boolean that held never hides the worst measured value of its requirement
    assert max([held, inside], key=closeness) is inside


# ---------------------------------------------------------------- the stamp
def test_the_stamp_is_utc_with_milliseconds():
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
    assert pattern.match(utc_stamp())
    at = dt.datetime(2026, 12, 5, 2, 3, 4, 567891, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert utc_stamp(at) == "2026-12-05T00:03:04.567+00:00"
    assert rundir.parse_stamp(utc_stamp(at)) == at.replace(microsecond=567000)
    for raw in old_lines():  # the stamp every old line carries is this format
        assert pattern.match(json.loads(raw)["utc"])


def test_a_record_line_carries_the_stamp(tmp_path):
    record = RunRecord(tmp_path)
    before = utc_stamp()
    record.run_end(0)
    record.close()
    (line,) = read_record(tmp_path)
    assert list(line) == ["event", "utc", "complete", "exitstatus"]
    assert before <= line["utc"] <= utc_stamp() and line["complete"] is True


def test_the_run_directory_name(tmp_path):
    at = dt.datetime(2026, 12, 5, 0, 55, 44, tzinfo=dt.timezone.utc)
    assert rundir.planned_run_dir(tmp_path, "emulated lumbar/2", at, pid=7005) == \
        tmp_path / "20261205T005544Z-emulated-lumbar-2-7005"


# ---------------------------------------------------------------- the page-answer protocol
def test_page_answers_round_trip_and_their_one_validation(tmp_path):
    line = append_answer(tmp_path, "3", "y", "Dana", "127.0.0.1:5000 (panel pid 7)")
    assert list(line) == ["ask", "answer", "operator", "where", "client", "utc"] and line["where"] == "page"
    assert (tmp_path / rundir.ANSWERS_NAME).read_text(encoding="utf-8") == json.dumps(line, ensure_ascii=False) + "\n"
    (a,) = PageAnswers(tmp_path).new()
    assert (a.ask, a.answer, a.operator, a.where, a.utc) == ("3", "y", "Dana", "page", line["utc"])
    assert answer_refusal(a.answer, a.operator, ["y", "n"]) is None
    assert answer_refusal(ABORT, "Dana", ["done"]) is None  # abort answers every step
    assert "no operator name" in answer_refusal("y", "  ", ["y", "n"])
    assert "no operator name" in answer_refusal("y", "x" * (MAX_NAME + 1), ["y", "n"])
    assert answer_refusal("y", "x" * MAX_NAME, ["y", "n"]) is None
    assert answer_refusal("maybe", "Dana", ["y", "n"]) == "'maybe' is not an answer to this step (one of y, n, abort)"


def test_the_tail_returns_only_complete_lines(tmp_path):
    path = tmp_path / rundir.RECORD_NAME
    tail = rundir.LineTail(path, key=rundir.EVENT_KEY)
    path.write_bytes(b'{"event": "run-start"}\n{"event": "ses')
    assert [e["event"] for e in tail.read()] == ["run-start"]
    with open(path, "ab") as f:
        f.write(b'sion-plan"}\n')
    assert [e["event"] for e in tail.read()] == ["session-plan"] and tail.damage == []


def test_the_atomic_writer_replaces_whole(tmp_path):
    path = tmp_path / rundir.HEARTBEAT_NAME
    rundir.write_atomic(path, b"old")
    rundir.write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == [rundir.HEARTBEAT_NAME]
