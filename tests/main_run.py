"""The specification copies of the end-to-end tests, and the one nominal run of the whole
suites they share (`rig run` as a user runs it: its own process, no stdin).

Why one shared nominal run: a complete run of every suite against the nominal emulated
lumbar table is the longest thing CI does (over a minute of wall time at K = 10), and the
main job test, the run-record test and the coverage-map check each need exactly that —
a complete nominal run, read afterwards. Each recorded its own; now they read one
(`nominal_lumbar_run` in tests/conftest.py), and each still asserts what it asserted.

Why it starts with the session: most of that minute the run waits on the emulated table's
clock, so it goes on beside the session's other tests (a child of its own, the
tests/child_run.py harness), and the tests that read it are put last (tests/conftest.py):
by then it has ended. A nominal table passes with room to spare under such load (README:
every run PASS beside two busy loops); a run that does not end in time is a failure that
says so. Tests that start end-to-end runs of their own, judged on their timing (releases,
drift), wait for it to end first (`after_nominal_run`): never three tables at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from reports.record import run_dirs
from tests.child_run import ChildRun, rig_run_argv
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


@dataclass(frozen=True)
class NominalRun:
    """The shared nominal run: its exit status, its output, its run directory and the
    directory of runs it was made in (its default results database lies there)."""

    returncode: int
    output: str
    run_dir: Path
    runs: Path


class NominalRunStarted:
    """The shared nominal run, started: `rig run` of every suite against the nominal
    emulated lumbar table, report and results database included, with NOMINAL_TRIALS
    emergency trials per trigger; `result()` waits for it (bounded)."""

    def __init__(self, tmp: Path) -> None:
        spec = short_spec(tmp, trials=NOMINAL_TRIALS)
        self.started = time.monotonic()
        self.child = ChildRun(tmp, lambda runs: rig_run_argv("--run-dir", str(runs), "--spec", str(spec)),
                              name="the shared nominal run")
        self._result: NominalRun | None = None

    def result(self) -> NominalRun:
        if self._result is None:
            code = self.child.wait(max(1.0, RUN_TIMEOUT_S - (time.monotonic() - self.started)))
            dirs = list(run_dirs(self.child.runs))
            if len(dirs) != 1:
                raise self.child.failure(f"the shared nominal run left {len(dirs)} run directories, not one")
            self._result = NominalRun(code, self.child.output(), dirs[0], self.child.runs)
        return self._result

    def wait_ended(self) -> None:
        """Until it has ended (bounded), whatever its outcome: its readers judge that."""
        try:
            self.child.wait(max(1.0, RUN_TIMEOUT_S - (time.monotonic() - self.started)))
        except AssertionError:
            pass  # still running at its bound: its readers fail, saying so

    def close(self) -> None:
        """Ended, whatever state it is in (the session ends, or was cut short)."""
        self.child.close()
