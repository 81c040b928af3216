"""`rig run --rig emulated-flexion-distraction` end to end, in a child process (tests/child_run.py),
kept cheap with -k: two treatments of the kinematics suite, lateral to both sides at the
rated speed with the distraction held, and one ended by its TREATMENT_TIME mid-cycle. The
run opens the embedded FD table, runs only flexion-distraction suites, records the
inclinometer and the obstacle gauge at run start, judges every kinematics requirement on
the inclinometer and the gauge, and leaves the table released and braked after each test."""

from __future__ import annotations

import pytest

from drivers.errors import EXIT_FAILED
from reports.rundir import Event
from tests.child_run import rig_run_argv

pytestmark = [pytest.mark.timeout(240)]

KINEMATICS = ("FD-DEPTH", "FD-NEUTRAL", "FD-SPEED", "FD-TIMING", "FD-CYCLES", "FD-ENCODER", "DX-STATIC")
SELECTED = "lateral-15deg-20dps or flexion-10deg-10dps-p4-r2-30s"


def test_rig_run_on_the_emulated_fd_table_judges_the_kinematics_on_the_inclinometer(child_run):
    child = child_run(lambda runs: rig_run_argv("--rig", "emulated-flexion-distraction", "--run-dir", str(runs),
                                                "--no-report", "--no-history", "-k", SELECTED), wait_s=180)
    code = child.wait()
    # the other requirements were not run (deselected): the run cannot PASS as a whole
    assert code == EXIT_FAILED, child.tail()
    start = child.run_start()
    assert start.table.kind == "flexion_distraction" and start.table.serial == "EMU-FD-0001"
    assert (start.inclinometer.serial, start.inclinometer.certificate) == ("EMU-I-0001", "EMU-CAL-2026-002")
    assert not start.inclinometer.expired and start.obstacle_gauge.serial == "EMU-G-0002"
    served = start.emulator  # an emulated rig's instruments: where its emulator served them
    assert start.inclinometer.resource == served["inclinometer"]["resource"]
    assert start.obstacle_gauge.resource == served["obstacle_gauges"]["scpi"]["resource"]
    plan = child.events(Event.SESSION_PLAN)[0]["tests"]
    assert len(plan) == 2 and all(t["test"].startswith("suites/test_fd_kinematics.py::") for t in plan), plan
    measured = child.events(Event.MEASUREMENT)
    by_requirement: dict[str, set[str]] = {}
    for m in measured:
        by_requirement.setdefault(m["requirement"], set()).add(m["verdict"])
    assert set(by_requirement) == set(KINEMATICS), by_requirement
    assert all(verdicts == {"PASS"} for verdicts in by_requirement.values()), by_requirement
    timed = [m for m in measured if m["requirement"] == "FD-CYCLES" and m["quantity"] == "time"]
    assert len(timed) == 1 and timed[0]["conditions"]["evidence"].startswith("inclinometer")
    sides = {m["conditions"]["set_deg"] for m in measured if m["requirement"] == "FD-DEPTH"
             and m["conditions"]["mode"] == "lateral"}
    assert sides == {15.0, -15.0}  # lateral to both sides
    assert all(m["unit"] in ("deg", "deg/s", "s", "count", "N") for m in measured)
    releases = child.events(Event.SAFE_STATE)
    assert releases and all(r["confirmed"] for r in releases), releases
    beats = child.events(Event.HEARTBEAT)  # the heartbeat process spoke FDC-1 the whole session
    assert len(beats) == 1 and beats[0]["beats"] > 0 and not beats[0]["lease_dropped"], beats
    ends = [e for e in child.events(Event.TEST_END) if e["when"] == "call"]
    assert [e["outcome"] for e in ends] == ["passed", "passed"], ends


def test_rig_check_and_demo_on_the_emulated_fd_table():
    """`rig check` shows the inclinometer's reading beside the encoder, the obstacle gauge and
    every reference instrument's calibration; `rig demo` measures a cycle and a stop with them."""
    import subprocess
    import sys

    from tests.child_run import REPO

    def rig(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rigcli", *args, "--rig", "emulated-flexion-distraction"],
                              cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    check = rig("check")
    assert check.returncode == 0 and check.stderr == "", check.stdout + check.stderr
    lines = check.stdout.splitlines()
    tilt = next(line for line in lines if line.startswith("inclinometer tilt TCPIP::127.0.0.1::"))
    assert " X " in tilt and " Y " in tilt and "encoder flexion +0.0°" in tilt
    assert any(line.startswith("obstacle   scpi TCPIP::127.0.0.1::") and "(load cell at 10° flexion)" in line
               for line in lines)
    for certificate in ("calibration EMU-CAL-2026-001", "inclinometer calibration EMU-CAL-2026-002",
                        "obstacle.gauge calibration EMU-CAL-2026-003"):
        assert any(line.startswith(f"{certificate}: due 2027-03-01 (") for line in lines), (certificate, lines)
    demo = rig("demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    words = " ".join(demo.stdout.split())  # the console wraps its lines at its width
    for row in ("end angle of the first move out", "cruise speed (least squares)", "trigger -> section at rest",
                "travel after the trigger", "distraction held while moving"):
        assert row in words, demo.stdout
    assert "braked True" in words and "e-stop latched True" in words
