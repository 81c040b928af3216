"""`rig run` as a user runs it (its own process, no stdin), for the end-to-end tests, and
the one nominal run of the whole suites they share.

Why one shared nominal run: a complete run of every suite against the nominal emulated
lumbar table is the longest thing CI does (over a minute of wall time at K = 10), and the
main job test, the run-record test and the coverage-map check each need exactly that —
a complete nominal run, read afterwards. Each recorded its own; now they read one
(`nominal_lumbar_run` in tests/conftest.py), and each still asserts what it asserted.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from reports.record import run_dirs
from verification.spec import SPECS_DIR

ROOT = Path(__file__).resolve().parent.parent
#: emergency trials per trigger of the shared nominal run: every phase × force cell of the
#: lumbar plan once (4 phases × 2 forces), what the coverage map's check of a run needs
NOMINAL_TRIALS = 8
RUN_TIMEOUT_S = 280  # wall s a `rig run` of the whole suites may take on a loaded 2-core machine


def short_spec(tmp_path: Path, name: str = "lumbar", trials: int = 4) -> Path:
    """A copy of a built-in specification with `trials` emergency trials per trigger in
    either profile (the quick profile's own count too: a run is quick unless told), to keep
    CI short."""
    data = yaml.safe_load((SPECS_DIR / f"{name}.yaml").read_text())
    data["plan"]["emergency"]["trials"] = trials
    data["plan"]["emergency"]["quick_trials"] = trials
    path = tmp_path / f"{name}-{trials}-trials.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def rig_run(runs: Path, *args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`rig run --run-dir RUNS ARGS` in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass(frozen=True)
class NominalRun:
    """The shared nominal run: its exit status, its output, its run directory and the
    directory of runs it was made in (its default results database lies there)."""

    returncode: int
    output: str
    run_dir: Path
    runs: Path


def nominal_lumbar_run(tmp: Path) -> NominalRun:
    """`rig run` of every suite against the nominal emulated lumbar table, report and results
    database included, with NOMINAL_TRIALS emergency trials per trigger."""
    runs = tmp / "runs"
    proc = rig_run(runs, "--spec", str(short_spec(tmp, trials=NOMINAL_TRIALS)))
    dirs = list(run_dirs(runs))
    assert len(dirs) == 1, f"the nominal run left {len(dirs)} run directories\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return NominalRun(proc.returncode, proc.stdout + proc.stderr, dirs[0], runs)
