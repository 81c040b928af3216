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

import threading
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


def ended(child: ChildRun, started: float) -> int:
    """Until `child` (started at monotonic `started`) has ended, at most RUN_TIMEOUT_S from
    its start: its exit status. Watched, not only waited for, so that what it started (its
    emulator) is known to its close() and ended with it should it outlive the run."""
    child.wait_for(lambda: not child.running, "the end of the run",
                   max(1.0, RUN_TIMEOUT_S - (time.monotonic() - started)), poll_s=0.1, while_running=False)
    return child.poll()


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
    emergency trials per trigger; `result()` waits for it (bounded). A thread watches it
    meanwhile (`ended`), so that whatever it started is ended with it by `close()`."""

    def __init__(self, tmp: Path) -> None:
        spec = short_spec(tmp, trials=NOMINAL_TRIALS)
        self.started = time.monotonic()
        self.child = ChildRun(tmp, lambda runs: rig_run_argv("--run-dir", str(runs), "--spec", str(spec)),
                              name="the shared nominal run")
        self._watcher = threading.Thread(target=self._watch, name="nominal-run-watch", daemon=True)
        self._watcher.start()
        self._result: NominalRun | None = None

    def _watch(self) -> None:
        try:
            ended(self.child, self.started)
        except AssertionError:
            pass  # still running at its bound: result() says so

    def wait_ended(self) -> None:
        """Until it has ended or its bound ran out, whatever its outcome: its readers judge that."""
        self._watcher.join(RUN_TIMEOUT_S + 5.0)

    def result(self) -> NominalRun:
        if self._result is None:
            self.wait_ended()
            code = self.child.poll()
            if code is None:
                raise self.child.failure(f"the shared nominal run did not end within {RUN_TIMEOUT_S} s")
            dirs = list(run_dirs(self.child.runs))
            if len(dirs) != 1:
                raise self.child.failure(f"the shared nominal run left {len(dirs)} run directories, not one")
            self._result = NominalRun(code, self.child.output(), dirs[0], self.child.runs)
        return self._result

    def close(self) -> None:
        """Ended, whatever state it is in (the session ends, or was cut short)."""
        self.child.close()
        self._watcher.join(5.0)
