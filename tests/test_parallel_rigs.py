"""Parallel rigs: with pytest-xdist each worker verifies the whole suite on its own rig
(several emulated tables, or several rig files), and every rig keeps its own record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reports.record import read_record

ROOT = Path(__file__).resolve().parent.parent
RIGS = ROOT / "rigs"
#: a suite test that talks to the table but takes no table time (a read-only register's
#: refusal): for the tests here that assert which rig each worker got, not what it measured
QUICK = "test_residual_force_read_only"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def suites(runs: Path, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("LG_ENV", None)
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-p", "no:cacheprovider", "-q",
                           "--run-dir", str(runs), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def starts(runs: Path) -> list[dict]:
    return [next(e for e in read_record(d) if e["event"] == "run-start") for d in sorted(runs.iterdir())]


def verdicts(run_dir: Path) -> set[str]:
    return {e["requirement"] for e in read_record(run_dir) if e["event"] == "measurement"}


def test_one_emulated_rig_becomes_one_table_per_worker(tmp_path):
    runs = tmp_path / "runs"
    proc = suites(runs, "-n", "2", "--dist", "each", "-k", "accuracy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = starts(runs)
    assert sorted(s["worker"] for s in records) == ["gw0", "gw1"]
    # two tables, not one table twice: the second worker's emulator has the next seed
    assert sorted(s["table"]["serial"] for s in records) == ["EMU-LUMB-0001", "EMU-LUMB-0002"]
    assert len({s["emulator"]["controller"]["port"] for s in records}) == 2
    for run_dir in runs.iterdir():
        assert verdicts(run_dir) >= {"FA-STATIC", "FA-CELL"}
    assert proc.stdout.count("traction-rig run record:") == 2


def test_one_rig_file_per_worker(tmp_path):
    runs = tmp_path / "runs"
    proc = suites(runs, "-n", "2", "--dist", "each", "--rig", str(RIGS / "emulated-lumbar.yaml"),
                  "--rig", str(RIGS / "emulated-cervical.yaml"), "-k", QUICK)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    by_kind = {s["table"]["kind"]: s for s in starts(runs)}
    assert set(by_kind) == {"lumbar", "cervical"}
    assert by_kind["lumbar"]["worker"] == "gw0" and by_kind["cervical"]["worker"] == "gw1"
    assert by_kind["cervical"]["specification"]["kind"] == "cervical"
    assert by_kind["cervical"]["gauge"]["dialect"] == "gcl"


def test_rig_run_workers_reports_each_rig(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "rigcli", "run", "--workers", "2", "--run-dir", str(runs),
                           "-k", QUICK, "--no-report"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    out = proc.stdout
    # a subset of the suites leaves requirements NOT RUN: not a pass, on either rig
    assert proc.returncode == 1, out + proc.stderr
    assert "2 rigs:" in out
    assert out.count("overall: INCONCLUSIVE") == 2
    assert "table EMU-LUMB-0001" in out and "table EMU-LUMB-0002" in out


@pytest.mark.parametrize("args, message", [
    (["-n", "2", "--dist", "load"], "each worker verifies the whole suite on its own rig; add --dist each"),
    (["-n", "2", "--dist", "each", "--rig", "emulated-lumbar", "--rig", "emulated-cervical", "--rig",
      "emulated-lumbar"], "2 workers but 3 rigs: give one rig per worker (-n 3)"),
    (["--rig", "emulated-lumbar", "--rig", "emulated-cervical"],
     "2 rigs given (emulated-lumbar, emulated-cervical): verify them side by side with -n 2 --dist each"),
    (["-n", "2", "--dist", "each", "--rig", str(RIGS / "bench-example.yaml")],
     "2 workers but one rig (bench-3-lumbar), a bench or a running emulator, cannot be shared"),
])
def test_rigs_and_workers_that_do_not_fit_are_one_line(tmp_path, args, message):
    proc = suites(tmp_path / "runs", *args, "--co", timeout=120)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
