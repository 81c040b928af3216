"""The main job end to end: `rig run` against the emulated table passes a nominal table
and fails defective ones, naming the requirement. (Fewer emergency trials than the
specification's 20, through a copy of the specification, to keep CI short; the nominal
table's complete run is the session's shared one, tests/main_run.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from reports.record import run_dirs
from reports.verdicts import summarise
from tests.child_run import ChildRun, rig_run_argv
from tests.main_run import ROOT, ended, short_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: the `rig run` arguments of each test of a defective table or another rig (beside
#: --run-dir): independent runs that mostly wait on their emulated tables' clocks, so the
#: ones selected start together (`started_runs`) and each test reads its own
RUNS = {
    "test_slow_release_fails_emergency_release":
        lambda tmp: ("--spec", str(short_spec(tmp)), "--fault", "slow-release", "-k", "emergency and estop_coil"),
    "test_hidden_gain_error_fails_force_accuracy":
        lambda tmp: ("--spec", str(short_spec(tmp)), "--fault", "gain-error", "-k", "force_accuracy"),
    "test_cervical_rig_with_gcl_gauge":
        lambda tmp: ("--rig", "emulated-cervical", "--spec", str(short_spec(tmp, "cervical", 2)),
                     "-k", "emergency and switch_pressed or force_accuracy"),
}


@pytest.fixture(scope="module")
def started_runs(request, tmp_path_factory, nominal_run_started):
    """The runs of RUNS whose tests this session selected, each `rig run` a child of its own
    (tests/child_run.py), all started at once once the shared nominal run has ended (as
    `after_nominal_run`); ended with the module."""
    if nominal_run_started is not None:
        nominal_run_started.wait_ended()
    selected = {item.name for item in request.session.items if item.module is request.module and item.name in RUNS}
    runs = {}
    try:
        for name in sorted(selected):
            tmp = tmp_path_factory.mktemp(name[len("test_"):][:30])
            args = RUNS[name](tmp)
            runs[name] = (time.monotonic(), ChildRun(tmp, lambda d, args=args: rig_run_argv("--run-dir", str(d), *args),
                                                     name=f"rig run of {name}"))
        yield runs
    finally:
        for _, child in runs.values():
            child.close()


@pytest.fixture
def run(request, started_runs) -> tuple[int, dict, str]:
    """This test's `rig run` (RUNS), ended: its exit status, verdicts and output."""
    started, child = started_runs[request.node.name]
    code = ended(child, started)
    run_dir = max(run_dirs(child.runs), key=lambda p: p.stat().st_mtime)
    return code, {r.id: r.verdict for r in summarise(run_dir).results}, child.output()


def test_nominal_lumbar_table_passes_every_requirement(nominal_lumbar_run):
    code, out, run_dir = nominal_lumbar_run.returncode, nominal_lumbar_run.output, nominal_lumbar_run.run_dir
    assert code == 0, out[-3000:]
    verdicts = {r.id: r.verdict for r in summarise(run_dir).results}
    assert set(verdicts.values()) == {"PASS"}, verdicts
    assert (run_dir / "report" / "report.pdf").exists() and (run_dir / "MANIFEST.sha256").exists()
    assert "overall: PASS" in out
    # recorded in the default results database beside the runs, sealed digest included
    history = json.loads((run_dir / "history.json").read_text())
    assert history["error"] is None and history["recorded"] == "recorded" and "history: recorded in sqlite:///" in out
    verify = subprocess.run([sys.executable, "-m", "rigcli", "verify", str(run_dir)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert verify.returncode == 0 and "digest as recorded in sqlite:///" in verify.stdout, verify.stdout + verify.stderr


def test_slow_release_fails_emergency_release(run):
    code, verdicts, out = run
    assert code == 1
    assert verdicts["ER-HALF"] == "FAIL"
    assert verdicts["FA-STATIC"] == "NOT RUN"
    assert "overall: FAIL" in out


def test_hidden_gain_error_fails_force_accuracy(run):
    code, verdicts, _ = run
    assert code == 1
    assert verdicts["FA-STATIC"] == "FAIL"


def test_cervical_rig_with_gcl_gauge(run):
    code, verdicts, _ = run
    assert code == 1  # requirements not run make the run inconclusive …
    assert verdicts["FA-STATIC"] == "PASS" and verdicts["ER-HALF"] == "PASS"  # … but what ran passed
    assert verdicts["IL-START"] == "NOT RUN"


def test_record_is_json_lines_with_identities(nominal_lumbar_run):
    run_dir = nominal_lumbar_run.run_dir
    lines = [json.loads(x) for x in (run_dir / "record.jsonl").read_text().splitlines()]
    start = lines[0]
    assert start["event"] == "run-start"
    assert start["table"]["serial"] == "EMU-LUMB-0001" and start["gauge"]["calibration"]["certificate"]
    assert start["software"]["traction_rig"]
    assert (run_dir / "rig.yaml").exists() and (run_dir / "specification.yaml").exists()
    assert lines[-1]["event"] == "run-end" and lines[-1]["complete"] is True
    # allure-pytest results inside the run, labelled with the requirement
    results = [json.loads(p.read_text()) for p in (run_dir / "allure-results").glob("*-result.json")]
    assert results
    labels = {(label["name"], label["value"]) for r in results for label in r["labels"]}
    assert ("requirement", "IL-LIMIT-LOCK") in labels
    assert any(link["type"] == "requirement" for r in results for link in r.get("links", []))
