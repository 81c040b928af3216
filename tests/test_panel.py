"""The live bench panel (reports/panel, `rig panel`): a run directory is written line by line
exactly as docs/panel-protocol.md says (record.jsonl, live.jsonl, heartbeat.json), and the
panel's state, its event stream, its answer desk and its report files are checked against
it; so is its guard (the run's key, Host, Origin, JSON only) and the refusal of an address
beyond the loopback without an explicit flag. No browser; every wait is bounded; nothing
asserts on timing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest

with warnings.catch_warnings():  # starlette >= 1.x would rather have httpx2; httpx serves its TestClient the same
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

from reports.panel.app import create_app
from reports.panel.follower import RunFollower
from reports.panel.guard import Guard, new_token
from reports.panel.runs import RunSet
from reports.panel.server import bind, guard_for, make_server, url_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 10.0
ER_TEST = "suites/test_emergency_release.py::test_emergency_release[estop_coil]"
FA_TEST = "suites/test_force_accuracy.py::test_static_force_accuracy"
OP_TEST = "suites/test_operator_checks.py::test_estop_button_pressed_by_hand"
REQUIREMENTS = [
    {"id": "ER-HALF", "title": "Force halves quickly after an emergency stop", "source": "syn", "unit": "s",
     "decision_rule": "guard-banded"},
    {"id": "FA-STATIC", "title": "Static force accuracy", "source": "syn", "unit": "N", "decision_rule": "guard-banded"},
    {"id": "ER-OPERATOR", "title": "E-stop button pressed by hand", "source": "syn", "unit": "",
     "decision_rule": "boolean"},
]


def utc(offset_s: float = 0.0) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_s)).isoformat(timespec="milliseconds")


class SyntheticRun:
    """A run directory written as the plugin, the live feed and the heartbeat process write it."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, text: str) -> None:
        with open(self.dir / name, "a", encoding="utf-8") as f:
            f.write(text)

    def rec(self, event: str, **fields) -> dict:
        line = {"event": event, "utc": fields.pop("utc", None) or utc(), **fields}
        self._append("record.jsonl", json.dumps(line) + "\n")
        return line

    def live(self, k: str, **fields) -> None:
        self._append("live.jsonl", json.dumps({"k": k, **fields}, separators=(",", ":")) + "\n")

    def torn(self, name: str, text: str) -> None:
        self._append(name, text)

    def heartbeat(self, **fields) -> None:
        figures = {"utc": utc(), "beats": 120, "errors": 0, "max_gap_ns": 40_000_000, "max_rtt_ns": 9_000_000,
                   "last_rtt_ns": 2_000_000, "last_error": "", "running": True, "interval_ns": 30_000_000,
                   "period_table_s": 3.0, "time_scale": 10.0, **fields}
        tmp = self.dir / "heartbeat.json.tmp"
        tmp.write_text(json.dumps(figures))
        os.replace(tmp, self.dir / "heartbeat.json")

    def start(self, *, spec: str = "lumbar", expired: bool = False, utc_start: str | None = None,
              tests=(ER_TEST, FA_TEST, OP_TEST)) -> None:
        cal = {"certificate": "SYN-CAL-7", "date": "2026-03-01", "due": "2025-01-01" if expired else "2027-03-01",
               "expanded_uncertainty_n": 0.5, "coverage_factor": 2.0}
        self.rec("run-start", utc=utc_start, rig={"name": "bench-lumbar-2", "time_scale": 10.0, "emulated": None,
                                                  "table": {"model": "Acme TX-900"}},
                 table={"kind": "lumbar", "serial": "SYN-LUMB-0042", "firmware": 259},
                 gauge={"model": "LCI-3000", "serial": "G-7781", "dialect": "gcl", "calibration": cal,
                        "calibration_expired": expired},
                 specification={"name": spec, "title": "Synthetic lumbar specification", "version": "1.1",
                                "requirements": REQUIREMENTS},
                 operator="A. Tester", emulator=None)
        plan = [{"test": t, "requirements": []} for t in tests]
        self.rec("session-plan", tests=plan, count=len(plan))
        self.live("start", utc=utc(), time_scale=10.0, pid=4242)

    def measurement(self, requirement: str = "ER-HALF", value: float = 0.12, verdict: str = "PASS", test=ER_TEST):
        self.rec("measurement", test=test, requirement=requirement, name=f"{requirement} trial", value=value, unit="s",
                 lower=None, upper=0.5, uncertainty=0.01, decision_rule="guard-banded", verdict=verdict,
                 conditions={"trigger": "estop_coil", "phase": "hold", "force_n": 150.0, "trial": 1})

    def ask(self, ask: str = "1", choices=("y", "n"), step: str = "cord-slack") -> None:
        self.rec("operator-ask", ask=ask, test=OP_TEST, requirements=["ER-OPERATOR"], step=step, prompt="confirm",
                 instruction="Has the cord gone slack?", choices=list(choices), timeout_s=60.0, asked_utc=utc(),
                 deadline_utc=utc(60), operator=None, channels=["terminal", "page"])

    def step(self, ask: str = "1", answer: str = "y", where: str = "terminal", operator: str = "A. Tester") -> None:
        self.rec("operator-step", ask=ask, test=OP_TEST, requirements=["ER-OPERATOR"], step="cord-slack",
                 prompt="confirm", instruction="Has the cord gone slack?", answer=answer, answered=True,
                 outcome="answered", operator=operator, where=where, client=None, answered_utc=utc(), waited_s=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def sections(changes) -> dict:
    return dict(changes)


@pytest.fixture
def run(tmp_path) -> SyntheticRun:
    r = SyntheticRun(tmp_path / "runs" / "20261202T120000Z-bench-lumbar-2-4242")
    r.start()
    return r


# ---------------------------------------------------------------- the state
def test_state_follows_appended_lines_and_waits_for_a_torn_line(run):
    clock = FakeClock()
    f = RunFollower(run.dir, 0, clock=clock)
    first = sections(f.poll())
    assert first["identity"]["table"] == {"serial": "SYN-LUMB-0042", "firmware": "0x0103", "kind": "lumbar",
                                          "model": "Acme TX-900"}
    assert first["identity"]["calibration"] == {"certificate": "SYN-CAL-7", "due": "2027-03-01", "expired": False}
    assert first["identity"]["specification"]["version"] == "1.1" and first["identity"]["operator"] == "A. Tester"
    assert first["progress"]["count"] == 3 and first["progress"]["done"] == 0 and first["progress"]["current"] is None
    assert f.poll() == []  # nothing new, nothing sent

    run.rec("test-start", test=ER_TEST, requirements=["ER-HALF"])
    line = json.dumps({"event": "measurement", "utc": utc(), "test": ER_TEST, "requirement": "ER-HALF", "name": "t1",
                       "value": 0.2, "unit": "s", "lower": None, "upper": 0.5, "uncertainty": 0.01,
                       "decision_rule": "guard-banded", "verdict": "PASS", "conditions": {}}) + "\n"
    run.torn("record.jsonl", line[:40])
    run.live("context", t=1.0, test=ER_TEST, requirement="ER-HALF", trigger="estop_coil", phase="hold", force_n=150.0,
             trial=1, trials=3)
    run.live("status", t=1.02, force_n=149.5, phase="HOLD", estop=False, fault="NONE", tripped=False)
    run.torn("live.jsonl", '{"k":"status","t":1.04,"force_n":1')
    second = sections(f.poll())
    assert second["progress"]["current"]["test"] == ER_TEST
    assert second["context"]["trigger"] == "estop_coil" and second["context"]["trial"] == 1
    assert second["trace"]["status"] == {"t": [1.02], "f": [149.5]}
    assert "verdicts" not in second  # the measurement is still torn
    assert f.verdicts is None or all(r["measurements"] == 0 for r in f.verdicts["rows"])

    run.torn("record.jsonl", line[40:])
    run.torn("live.jsonl", '50.1,"phase":"HOLD","estop":true,"fault":"NONE","tripped":false}\n')
    run.live("gauge", t=[1.0, 1.004, 1.008], f=[149.9, 150.0, 150.1])
    clock.t += 2
    third = sections(f.poll())
    rows = {r["requirement"]: r for r in third["verdicts"]["rows"]}
    assert rows["ER-HALF"]["verdict"] == "PASS" and rows["ER-HALF"]["measurements"] == 1
    assert rows["ER-HALF"]["worst"] == "0.2 s" and rows["ER-HALF"]["limit"] == "≤ 0.5 s"
    assert rows["FA-STATIC"]["verdict"] == "NOT RUN"
    assert third["trace"]["status"] == {"t": [1.04], "f": [150.1]}
    assert third["trace"]["gauge"]["f"] == [149.9, 150.0, 150.1]
    assert third["trace"]["latest"]["estop"] is True and third["trace"]["latest"]["gauge_n"] == 150.1


def test_verdicts_are_recomputed_at_most_once_a_second(run):
    clock = FakeClock()
    f = RunFollower(run.dir, 0, clock=clock)
    f.poll()
    run.measurement(value=0.1)
    assert "verdicts" in sections(f.poll())
    run.measurement(value=0.6, verdict="FAIL")
    assert "verdicts" not in sections(f.poll())  # the same second: not yet
    clock.t += 1.0
    rows = {r["requirement"]: r for r in sections(f.poll())["verdicts"]["rows"]}
    assert rows["ER-HALF"]["verdict"] == "FAIL" and rows["ER-HALF"]["measurements"] == 2
    clock.t += 5
    assert "verdicts" not in sections(f.poll())  # no new measurement: not recomputed


def test_trace_keeps_the_last_30_seconds_and_heartbeat_health(run):
    f = RunFollower(run.dir, 0)
    for i in range(50):
        run.live("status", t=float(i), force_n=float(i), phase="HOLD", estop=False, fault="NONE", tripped=False)
    run.heartbeat(running=False, max_gap_ns=150_000_000)
    changes = sections(f.poll())
    trace = f.snapshot()["trace"]
    assert trace["status"]["t"][0] == 19.0 and trace["status"]["t"][-1] == 49.0
    hb = changes["heartbeat"]
    assert hb["running"] is False and hb["period_s"] == pytest.approx(0.3) and hb["max_gap_s"] == pytest.approx(0.15)
    assert hb["gap_ratio"] == pytest.approx(0.5) and hb["beats"] == 120
    assert f.poll() == []  # the same heartbeat file: nothing new
    run.heartbeat(running=True, beats=200)
    assert sections(f.poll())["heartbeat"]["beats"] == 200


def test_questions_open_close_and_end_with_the_run(run):
    f = RunFollower(run.dir, 0)
    run.ask("1")
    f.poll()
    assert [q["ask"] for q in f.snapshot()["operator"]["open"]] == ["1"]
    run.step("1")
    run.ask("2", choices=("done",), step="press-estop")
    run.rec("operator-answer-refused", ask="1", answer="n", operator="P. Page", where="page", client="x",
            why="answered already in the terminal by A. Tester")
    op = sections(f.poll())["operator"]
    assert [q["ask"] for q in op["open"]] == ["2"] and op["closed"][0]["answer"] == "y"
    assert op["refused"][0]["why"].startswith("answered already")
    run.rec("run-end", complete=False, exitstatus=2)
    changes = sections(f.poll())
    assert changes["operator"]["open"] == [] and changes["operator"]["ended"] is True
    assert changes["end"]["complete"] is False and changes["end"]["links"] == []


def test_time_left_from_an_earlier_run_of_the_same_specification_else_the_mean(tmp_path):
    root = tmp_path / "runs"
    earlier = SyntheticRun(root / "20261201T100000Z-bench-lumbar-2-1")
    earlier.start(utc_start=utc(-7200))
    for i, test in enumerate((ER_TEST, FA_TEST, OP_TEST)):
        earlier.rec("test-start", test=test, requirements=[], utc=utc(-7200 + 100 * i))
        earlier.rec("test-end", test=test, when="call", outcome="passed", duration_s=1.0, utc=utc(-7200 + 100 * i + 50))
    earlier.rec("run-end", complete=True, exitstatus=0, utc=utc(-7200 + 300))
    other_spec = SyntheticRun(root / "20261201T110000Z-bench-cervical-1-2")
    other_spec.start(spec="cervical", utc_start=utc(-3600))
    other_spec.rec("run-end", complete=True, exitstatus=0)

    now = SyntheticRun(root / "20261202T120000Z-bench-lumbar-2-3")
    now.start()
    est = sections(RunFollower(now.dir, 0).poll())["progress"]["estimate"]
    assert est["known"] and est["source"] == "previous" and est["after_current_s"] == pytest.approx(300, abs=1)
    assert "20261201T100000Z-bench-lumbar-2-1" in est["basis"]

    alone = SyntheticRun(tmp_path / "elsewhere" / "20261202T120000Z-bench-lumbar-2-4")
    alone.start()
    f = RunFollower(alone.dir, 0)
    assert sections(f.poll())["progress"]["estimate"]["known"] is False
    alone.rec("test-start", test=ER_TEST, requirements=[], utc=utc(-20))
    alone.rec("test-end", test=ER_TEST, when="call", outcome="passed", duration_s=1.0, utc=utc(-10))
    alone.rec("test-start", test=FA_TEST, requirements=[], utc=utc(-10))
    est = sections(f.poll())["progress"]["estimate"]
    assert est["known"] and est["source"] == "mean" and "1 tests finished" in est["basis"]
    assert est["current_s"] == pytest.approx(10, abs=0.5) and est["after_current_s"] == pytest.approx(10, abs=0.5)


def test_a_finished_run_shows_its_end_reports_and_overall(run):
    for test, requirement, value, rule in ((ER_TEST, "ER-HALF", 0.12, "guard-banded"),
                                           (FA_TEST, "FA-STATIC", 1.5, "guard-banded"),
                                           (OP_TEST, "ER-OPERATOR", True, "boolean")):
        run.rec("test-start", test=test, requirements=[requirement])
        run.rec("measurement", test=test, requirement=requirement, name=f"{requirement} trial", value=value,
                unit="s", lower=None, upper=None if rule == "boolean" else 5.0, uncertainty=0.01,
                decision_rule=rule, verdict="PASS", conditions={})
        run.rec("test-end", test=test, when="call", outcome="passed", duration_s=1.0)
    run.rec("heartbeat", beats=300, errors=0, period_table_s=3.0, max_gap_wall_s=0.04, max_round_trip_wall_s=0.01)
    run.rec("run-end", complete=True, exitstatus=0)
    (run.dir / "report").mkdir()
    for name in ("report.html", "report.pdf"):
        (run.dir / "report" / name).write_text("report")
    follower = RunFollower(run.dir, 0)
    follower.poll()
    state = follower.snapshot()
    assert state["verdicts"]["overall"] == "PASS" and state["end"]["complete"] is True
    assert [link["file"] for link in state["end"]["links"]] == ["report/report.html", "report/report.pdf"]
    assert state["heartbeat"]["source"] == "record" and state["heartbeat"]["errors"] == 0
    assert state["progress"]["done"] == 3 and state["progress"]["estimate"]["source"] == "none"


def test_the_end_banner_gives_the_overall_verdict_and_rig_runs_exit_status(run):
    """pytest's 0 in run-end is not what `rig run` gave: a run whose tests all completed but
    whose requirements are not all verified is INCONCLUSIVE, and `rig run` exits 1."""
    from reports.exit_status import rig_run_exit_status

    run.measurement("ER-HALF", 0.12)  # the other requirements of the specification stay NOT RUN
    run.rec("test-end", test=ER_TEST, when="call", outcome="passed", duration_s=1.0)
    run.rec("run-end", complete=True, exitstatus=0)
    follower = RunFollower(run.dir, 0)
    follower.poll()
    end = follower.snapshot()["end"]
    assert end["overall"] == "INCONCLUSIVE" == follower.snapshot()["verdicts"]["overall"]
    assert end["exit_status"] == 1 == rig_run_exit_status(0, ["INCONCLUSIVE"])
    assert "exitstatus" not in end  # pytest's own status is not shown as the run's
    run.rec("table-not-confirmed-safe", line="TABLE NOT CONFIRMED SAFE")
    assert dict(follower.poll())["end"]["exit_status"] == 4  # as `rig run` gives it: the table outweighs every verdict
    js = (Path(__file__).resolve().parent.parent / "reports/panel/static/panel.js").read_text(encoding="utf-8")
    assert "r.end.exit_status" in js and "r.end.exitstatus" not in js


def test_announced_run_directories_become_runs(tmp_path):
    announce = tmp_path / "announce"
    announce.write_text("")
    runs = RunSet(announce=announce)
    assert runs.poll() == [] and runs.snapshot()["runs"] == []
    a = SyntheticRun(tmp_path / "a")
    a.start()
    with open(announce, "a") as f:
        f.write(f"{a.dir}\n{tmp_path / 'b'}")  # the second path is still being written
    events = runs.poll()
    assert [(name, data["name"]) for name, data in events] == [("run", "a")]
    assert events[0][1]["identity"]["rig"] == "bench-lumbar-2"
    with open(announce, "a") as f:
        f.write(f"\n{a.dir}\n")  # b completed; a again: already followed
    events = runs.poll()
    assert [(name, data["name"]) for name, data in events] == [("run", "b")] and events[0][1]["identity"] is None
    b = SyntheticRun(tmp_path / "b")
    b.start()
    assert ("identity", 1) in [(name, data["run"]) for name, data in runs.poll()]


# ---------------------------------------------------------------- the app
PORT = 8765
ORIGIN = f"http://127.0.0.1:{PORT}"


@pytest.fixture
def key() -> str:
    return new_token()


@pytest.fixture
def app(run, key):
    return create_app(RunSet([run.dir]), guard=Guard(key, PORT))


@pytest.fixture
def client(app, key):
    """The panel's own page: its URL carries the key, and a POST says it comes from the panel."""
    with TestClient(app, base_url=f"{ORIGIN}/p/{key}/", client=("127.0.0.1", 53422), headers={"origin": ORIGIN}) as c:
        yield c


@pytest.fixture
def bare(app):
    """Anyone else that reaches the port: no key, no Origin unless a test gives one."""
    with TestClient(app, base_url=ORIGIN, client=("127.0.0.1", 53423)) as c:
        yield c


def answers(run) -> list[dict]:
    path = run.dir / "answers.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200
    for marker in ('id="force-plot"', 'id="progress"', 'id="current-test"', 'id="verdicts"', 'id="question"',
                   'id="operator-name"', 'data-answer="abort"', 'id="question-result"', 'id="report-links"',
                   'id="heartbeat"', 'id="overall"', "/static/vendor/uPlot.iife.min.js"):
        assert marker in page.text
    for asset in ("panel.js", "panel.css", "vendor/uPlot.iife.min.js", "vendor/uPlot.min.css", "vendor/LICENSE"):
        assert client.get(f"{ORIGIN}/static/{asset}").status_code == 200, asset  # open: nothing of the run
    outside = client.get(f"{ORIGIN}/static/../follower.py")  # the client normalises it to /follower.py
    assert outside.status_code in (401, 404) and "import" not in outside.text


def test_an_answer_is_appended_once_and_a_second_one_is_refused(run, client):
    run.ask("1")
    r = client.post("/answer", json={"ask": "1", "answer": "Y", "operator": "  Pat Page "})
    assert r.status_code == 200, r.text
    (line,) = answers(run)
    assert {k: line[k] for k in ("ask", "answer", "operator", "where")} == {"ask": "1", "answer": "y",
                                                                             "operator": "Pat Page", "where": "page"}
    assert line["client"] == f"127.0.0.1:53422 (panel pid {os.getpid()})"
    assert dt.datetime.fromisoformat(line["utc"]).tzinfo is not None
    second = client.post("/answer", json={"ask": "1", "answer": "n", "operator": "Other Page"})
    assert second.status_code == 409
    assert "answered already from a page of this panel" in second.json()["error"] and "Pat Page" in second.json()["error"]
    assert len(answers(run)) == 1
    state = client.get("/state").json()["runs"][0]["operator"]
    assert state["open"][0]["sent"]["operator"] == "Pat Page"


def test_answers_to_closed_or_unknown_questions_are_refused(run, client):
    run.ask("1")
    run.step("1", answer="n", where="terminal", operator="A. Tester")
    closed = client.post("/answer", json={"ask": "1", "answer": "y", "operator": "Pat"})
    assert closed.status_code == 409
    assert "answered already (n) in the terminal by A. Tester" in closed.json()["error"]
    unknown = client.post("/answer", json={"ask": "7", "answer": "y", "operator": "Pat"})
    assert unknown.status_code == 409 and unknown.json()["error"].startswith("No question 7 is open")
    assert answers(run) == []


def test_bad_names_and_answers_get_422(run, client):
    run.ask("1", choices=("done",), step="press-estop")
    for name in ("", "   ", "x" * 81, None):
        r = client.post("/answer", json={"ask": "1", "answer": "done", "operator": name})
        assert r.status_code == 422 and "name" in r.json()["error"], name
    r = client.post("/answer", json={"ask": "1", "answer": "y", "operator": "Pat"})
    assert r.status_code == 422 and "done, abort" in r.json()["error"]
    assert client.post("/answer", content=b"not json", headers={"content-type": "application/json"}).status_code == 422
    assert answers(run) == []
    assert client.post("/answer", json={"ask": "1", "answer": "abort", "operator": "x" * 80}).status_code == 200


def test_after_the_run_ended_no_answer_is_sent(run, client):
    run.ask("1")
    end = run.rec("run-end", complete=True, exitstatus=0)
    r = client.post("/answer", json={"ask": "1", "answer": "y", "operator": "Pat"})
    assert r.status_code == 409
    assert r.json()["error"] == f"The run ended at {end['utc']}; questions are closed and nothing was sent."
    assert answers(run) == []


def test_report_files_are_served_and_nothing_else(run, client):
    (run.dir / "report").mkdir()
    (run.dir / "report" / "report.html").write_text("<h1>report</h1>")
    (run.dir / "allure-report").mkdir()
    (run.dir / "allure-report" / "index.html").write_text("allure")
    (run.dir.parent / "secret.txt").write_text("secret")
    assert client.get("/report/0/report/report.html").text == "<h1>report</h1>"
    assert client.get("/report/0/allure-report/index.html").text == "allure"
    assert client.get("/report/0/report/report.pdf").status_code == 404
    for path in ("/report/0/record.jsonl", "/report/0/report/..%2Frecord.jsonl", "/report/0/report/%2e%2e/record.jsonl",
                 "/report/0/report/..%2F..%2Fsecret.txt", "/report/0/%2Fetc%2Fpasswd", "/report/1/report/report.html"):
        r = client.get(path)
        assert r.status_code in (403, 404), path
        assert "secret" not in r.text and '"event"' not in r.text and "root:" not in r.text
    run.rec("run-end", complete=True, exitstatus=0)
    end = client.get("/state").json()["runs"][0]["end"]
    assert [link["href"] for link in end["links"]] == ["report/0/report/report.html",  # relative: under the key
                                                       "report/0/allure-report/index.html"]


# ---------------------------------------------------------------- a real server
@contextlib.contextmanager
def served(runs: RunSet, **options):
    sock = bind("127.0.0.1", 0)
    started = threading.Event()
    key = new_token()
    server = make_server(runs, guard_for(sock, "127.0.0.1", key), on_started=started.set, **options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert started.wait(WAIT_S), "the panel did not start"
        yield url_of(sock, "127.0.0.1", key), server
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def sse_items(response):
    """(event, data) for each event, ("comment", text) for each comment line."""
    event, data = None, []
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and event:
            yield event, json.loads("\n".join(data))
            event, data = None, []


def until(items, want, deadline):
    for kind, data in items:
        if want(kind, data):
            return kind, data
        assert time.monotonic() < deadline, f"not seen within {WAIT_S} s"
    raise AssertionError("the stream ended")


def origin_of(url: str) -> str:
    return f"http://{urlsplit(url).netloc}"


def test_events_send_the_full_state_then_increments_and_keepalives(run):
    with served(RunSet([run.dir]), poll_s=0.05, keepalive_s=0.3) as (url, server):
        with httpx.Client(timeout=WAIT_S) as http, http.stream("GET", url + "events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            items = sse_items(response)
            deadline = time.monotonic() + WAIT_S
            kind, init = next((k, d) for k, d in items if k != "comment")
            assert kind == "init" and init["runs"][0]["identity"]["rig"] == "bench-lumbar-2"
            assert init["runs"][0]["progress"]["current"] is None
            run.rec("test-start", test=ER_TEST, requirements=["ER-HALF"])
            _, progress = until(items, lambda k, d: k == "progress", deadline)
            assert progress["run"] == 0 and progress["value"]["current"]["test"] == ER_TEST
            run.live("status", t=2.0, force_n=151.0, phase="HOLD", estop=False, fault="NONE", tripped=False)
            _, trace = until(items, lambda k, d: k == "trace", deadline)
            assert trace["value"]["status"] == {"t": [2.0], "f": [151.0]}
            until(items, lambda k, d: k == "comment" and d == "keepalive", deadline)
            run.ask("1")
            _, op = until(items, lambda k, d: k == "operator", deadline)
            assert op["value"]["open"][0]["ask"] == "1"
            answered = http.post(url + "answer", json={"ask": "1", "answer": "n", "operator": "Pat"},
                                 headers={"origin": origin_of(url)})
            assert answered.status_code == 200
            _, op = until(items, lambda k, d: k == "operator", deadline)
            assert op["value"]["sent"]["1"]["operator"] == "Pat"
        hub = server.config.app.state.hub
        deadline = time.monotonic() + WAIT_S
        while hub.subscribers:  # the page that went away is dropped
            assert time.monotonic() < deadline, "a disconnected page was not dropped"
            time.sleep(0.02)


# ---------------------------------------------------------------- the command line
def rig(*args, timeout=30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rigcli", *args], check=False, capture_output=True, text=True, timeout=timeout,
                          cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)


def test_port_in_use_is_one_line_and_exit_2(run):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        done = rig("panel", str(run.dir), "--port", str(port), "--no-open")
    assert done.returncode == 2
    assert done.stderr == (f"rig panel: port {port} on 127.0.0.1 is in use — give --port another "
                           "(0: any free port)\n")
    assert done.stdout == ""


def test_a_directory_without_a_record_is_one_line_and_exit_2(tmp_path):
    done = rig("panel", str(tmp_path / "nothing"), "--no-open")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and str(tmp_path / "nothing") in done.stderr
    assert "record.jsonl" in done.stderr and "Traceback" not in done.stderr


def test_rig_panel_serves_and_prints_its_url(run):
    p = subprocess.Popen([sys.executable, "-m", "rigcli", "panel", str(run.dir), "--port", "0", "--no-open"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
                         stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        assert line.startswith("panel: http://127.0.0.1:") and line.endswith("/\n")
        url = line.split(" ", 1)[1].strip()
        parts = urlsplit(url)
        assert parts.port and parts.port != 0
        key = parts.path.split("/")[2]
        assert parts.path == f"/p/{key}/" and len(key) >= 43  # 32 random bytes, URL-safe
        assert httpx.get(url, timeout=WAIT_S).status_code == 200
        state = httpx.get(url + "state", timeout=WAIT_S)
        assert state.json()["runs"][0]["identity"]["table"]["serial"] == "SYN-LUMB-0042"
        root = f"http://{parts.netloc}/"
        assert httpx.get(root, timeout=WAIT_S).status_code == 401
        assert httpx.get(root + "state", timeout=WAIT_S).status_code == 401
        # the key is in the printed URL only: not in what the page can fetch, nor in the run directory
        assert key not in state.text
        assert all(key not in f.read_text(errors="replace") for f in run.dir.rglob("*") if f.is_file())
    finally:
        p.terminate()
        _, err = p.communicate(timeout=WAIT_S)
    assert "Traceback" not in err and key not in err


def test_the_child_rig_run_starts_follows_the_announce_file_and_stops(run, tmp_path):
    from drivers.errors import RigError
    from rigcli.panel import start_child

    announce = tmp_path / "announce"
    announce.write_text("")
    child = start_child(announce, "127.0.0.1", 0)
    try:
        assert child.url.startswith("http://127.0.0.1:")
        assert httpx.get(child.url + "state", timeout=WAIT_S).json()["runs"] == []
        with open(announce, "a") as f:
            f.write(f"{run.dir}\n")
        deadline = time.monotonic() + WAIT_S
        while not httpx.get(child.url + "state", timeout=WAIT_S).json()["runs"]:
            assert time.monotonic() < deadline, "the announced run was not followed"
            time.sleep(0.05)
        port = urlsplit(child.url).port
        with pytest.raises(RigError, match=f"port {port} on 127.0.0.1 is in use — give --panel-port another"):
            start_child(announce, "127.0.0.1", port)
    finally:
        child.stop()
    assert child.process.returncode is not None


# ---------------------------------------------------------------- the guard: key, Host, Origin, JSON
ANSWER = {"ask": "1", "answer": "y", "operator": "Mallory"}


def test_without_the_key_nothing_of_the_run_is_served_or_taken(run, bare, key):
    run.ask("1")
    (run.dir / "report").mkdir()
    (run.dir / "report" / "report.html").write_text("<h1>report</h1>")
    wrong = new_token()
    assert wrong != key
    for prefix, status in (("", 401), (f"/p/{wrong}", 403), (f"/p/{key[:-1]}", 403), (f"/p/{key}x", 403),
                           ("/p/", 403)):
        for path in ("/", "/state", "/events", "/report/0/report/report.html"):
            r = bare.get(prefix + path)
            assert r.status_code == status, (prefix, path, r.status_code)
            assert "SYN-LUMB-0042" not in r.text and "report</h1>" not in r.text
            assert "the URL the terminal printed" in r.json()["error"]
        r = bare.post(prefix + "/answer", json=ANSWER, headers={"origin": ORIGIN})
        assert r.status_code == status, (prefix, r.status_code)
    assert answers(run) == []
    assert bare.get("/static/panel.js").status_code == 200  # the page's script reveals nothing of a run


def test_a_foreign_host_is_refused_whatever_the_key(run, client, key):
    run.ask("1")
    for host in ("evil.example:8765", "evil.example", "127.0.0.1:8766", "127.0.0.1.nip.io:8765", "", "localhost:80"):
        r = client.get("state", headers={"host": host})
        assert r.status_code == 421, (host, r.status_code)
        assert "SYN-LUMB-0042" not in r.text and "DNS rebinding" in r.json()["error"]
        assert client.post("answer", json=ANSWER, headers={"host": host}).status_code == 421
    assert answers(run) == []
    for host in (f"localhost:{PORT}", f"[::1]:{PORT}", f"LOCALHOST:{PORT}"):
        assert client.get("state", headers={"host": host, "origin": f"http://{host.lower()}"}).status_code == 200


def test_only_the_panels_own_origin_may_post_or_read(run, client):
    run.ask("1")
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "null", "https://127.0.0.1:8765",
                   "http://localhost:8765"):  # localhost is another origin than the one this page was opened at
        r = client.post("answer", json=ANSWER, headers={"origin": origin})
        assert r.status_code == 403, (origin, r.status_code)
        assert client.get("state", headers={"origin": origin}).status_code == 403, origin
        assert client.get("events", headers={"origin": origin}).status_code == 403, origin
    no_origin = client.post("answer", json=ANSWER, headers={"origin": ""})
    assert no_origin.status_code == 403 and "Origin" in no_origin.json()["error"]
    for site in ("cross-site", "same-site"):  # a subresource (img, script) another page makes the browser load
        assert client.get("state", headers={"sec-fetch-site": site, "sec-fetch-mode": "no-cors"}).status_code == 403
    assert answers(run) == []
    ok = client.get("state", headers={"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"})
    assert ok.status_code == 200 and ok.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in ok.headers["content-security-policy"]


def test_an_answer_is_json_only(run, client):
    run.ask("1")
    body = json.dumps(ANSWER)
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"content-type": kind} if kind else {}
        r = client.post("answer", content=body, headers=headers)
        assert r.status_code == 415, (kind, r.status_code)
        assert "application/json" in r.json()["error"]
    assert answers(run) == []
    good = client.post("answer", content=body, headers={"content-type": "application/json; charset=utf-8"})
    assert good.status_code == 200, good.text
    assert [a["operator"] for a in answers(run)] == ["Mallory"]


def test_the_key_path_without_its_slash_leads_to_the_page(client, key):
    r = client.get(f"{ORIGIN}/p/{key}", follow_redirects=False)
    assert r.status_code in (301, 307, 308) and r.headers["location"].endswith(f"/p/{key}/")


def test_a_panel_beyond_the_loopback_needs_the_flag_and_is_said(run):
    for host in ("0.0.0.0", "::"):
        done = rig("panel", str(run.dir), "--host", host, "--port", "0", "--no-open")
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and "--allow-remote" in done.stderr and host in done.stderr, done.stderr
    done = rig("run", "--panel", "--panel-host", "0.0.0.0", "--panel-port", "0", "--no-history")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--panel-allow-remote" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_rig_run_warns_of_an_allowed_remote_panel(capsys):
    from rigcli.run import check_panel_host

    check_panel_host(SimpleNamespace(panel_host="127.0.0.1", panel_allow_remote=False))
    check_panel_host(SimpleNamespace(panel_host="localhost", panel_allow_remote=False))
    assert capsys.readouterr().err == ""
    check_panel_host(SimpleNamespace(panel_host="0.0.0.0", panel_allow_remote=True))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rig: warning: the panel listens on 0.0.0.0")


def test_an_allowed_wildcard_panel_warns_and_prints_urls_that_work(run):
    p = subprocess.Popen([sys.executable, "-m", "rigcli", "panel", str(run.dir), "--host", "0.0.0.0", "--port", "0",
                          "--allow-remote", "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
    try:
        local = p.stdout.readline()
        remote = p.stdout.readline()
        assert local.startswith("panel: http://127.0.0.1:") and local.endswith("/\n"), local  # not 0.0.0.0
        url = local.split(" ", 1)[1].strip()
        assert "0.0.0.0" not in local and httpx.get(url + "state", timeout=WAIT_S).status_code == 200
        assert remote.startswith(f"panel: from other machines: http://{socket.gethostname()}:"), remote
        remote_url = remote.split()[4]
        assert urlsplit(remote_url).path == urlsplit(url).path
        assert httpx.get(remote_url + "state", timeout=WAIT_S).status_code == 200  # its Host is accepted
        parts = urlsplit(url)
        foreign = httpx.get(url + "state", headers={"host": f"evil.example:{parts.port}"}, timeout=WAIT_S)
        assert foreign.status_code == 421
    finally:
        p.terminate()
        _, err = p.communicate(timeout=WAIT_S)
    assert err.count("\n") == 1 and err.startswith("rig panel: warning: the panel listens on 0.0.0.0"), err


def test_an_emulator_beyond_the_loopback_needs_the_flag_and_is_said():
    done = rig("emulate", "--host", "0.0.0.0")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--allow-remote" in done.stderr and "table" in done.stderr, done.stderr
    p = subprocess.Popen([sys.executable, "-m", "rigcli", "emulate", "--host", "0.0.0.0", "--allow-remote"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
                         stdin=subprocess.DEVNULL)
    try:
        endpoints = json.loads(p.stdout.readline())  # it serves
        assert endpoints["controller"]["port"] > 0
    finally:
        p.terminate()
        _, err = p.communicate(timeout=WAIT_S)
    assert err.splitlines()[0].startswith("rig: warning: the emulated table listens on 0.0.0.0"), err
