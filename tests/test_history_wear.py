"""The proof the drift warning is worth having: one emulated table (one serial, one
seed) whose release valve wears a little more before each run is flagged by its
history while it still passes, runs before it fails ER-HALF. Each run is a real
`rig run` (emergency releases by the e-stop coil, two trials each) into one database."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reports.record import run_dirs
from reports.history.review import HISTORY_NAME
from reports.verdicts import summarise
from tests.main_run import ROOT, short_spec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WEAR = [0.0, 0.0, 0.0, 5.0, 10.0, 15.0, 20.0]  # release slowed by this fraction before each run


def test_a_wearing_release_is_flagged_before_it_fails(tmp_path, after_nominal_run):
    spec = short_spec(tmp_path, trials=2)
    db = f"sqlite:///{tmp_path / 'history.sqlite'}"
    seen = []  # (wear, ER-HALF verdict, drift kinds for ER-HALF, run dir)
    for wear in WEAR:
        runs = tmp_path / f"runs-{wear:g}"
        proc = subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), "--db", db,
                               "--spec", str(spec), "-k", "emergency and estop_coil", "--wear", str(wear), "--no-report"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        run_dir = next(run_dirs(runs))
        history = json.loads((run_dir / HISTORY_NAME).read_text())
        assert history["error"] is None, history["error"]
        verdict = {r.id: r.verdict for r in summarise(run_dir).results}["ER-HALF"]
        kinds = sorted(w["kind"] for w in history["warnings"] if w["requirement"] == "ER-HALF")
        seen.append((wear, verdict, kinds))
        if kinds:
            assert "drift (" in proc.stdout, proc.stdout[-2000:]
        if verdict == "FAIL":
            break
    table = "\n".join(f"wear {w:>5}: ER-HALF {v:<12} drift {k}" for w, v, k in seen)
    assert [k for _, _, k in seen[:3]] == [[], [], []], "a steady table was flagged:\n" + table
    fail_at = next((i for i, (_, v, _) in enumerate(seen) if v == "FAIL"), None)
    assert fail_at is not None, "the worn release never failed ER-HALF:\n" + table
    trend_at = next((i for i, (_, _, k) in enumerate(seen) if "trend" in k), None)
    assert trend_at is not None and trend_at < fail_at, "no trend warning before the FAIL:\n" + table
    assert seen[trend_at][1] == "PASS", table
    first_flag = next(i for i, (_, _, k) in enumerate(seen) if k)
    assert all(v == "PASS" for _, v, _ in seen[:fail_at]), table
    assert fail_at - first_flag >= 2, "flagged only just before it failed:\n" + table
