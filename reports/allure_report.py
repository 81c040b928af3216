"""`rig report RUN --allure`: the Allure 3 single-file HTML report of a run.

Built with the real Allure 3 command line from the npm registry (`npx allure@3`), so
it needs Node.js; without it the user is told how to get it. The report is written
to RUN/report/allure/index.html from RUN/allure-results.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from drivers.errors import RigError
from reports.rundir import ALLURE_RESULTS_DIR, REPORT_DIR

ALLURE_PACKAGE = "allure@3"


def allure_command() -> list[str]:
    if shutil.which("allure") and _is_allure3(["allure"]):
        return ["allure"]
    if shutil.which("npx"):
        return ["npx", "--yes", ALLURE_PACKAGE]
    raise RigError(
        "the Allure report needs Node.js (npx) and the npm package 'allure' (Allure 3): "
        "install Node.js >= 20 (e.g. apt-get install nodejs npm), then `npm install -g allure` — "
        "the compliance report (`rig report RUN`) needs neither"
    )


def _is_allure3(cmd: list[str]) -> bool:
    try:
        out = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return out.strip().startswith("3")


def build(run_dir: Path, timeout_s: float = 600) -> Path:
    results = run_dir / ALLURE_RESULTS_DIR
    if not results.is_dir() or not any(results.iterdir()):
        raise RigError(f"{run_dir}: no allure-results in this run (was it started with `rig run`?)")
    out = run_dir / REPORT_DIR / "allure"
    out.mkdir(parents=True, exist_ok=True)
    config = out / "allurerc.json"
    config.write_text(json.dumps({
        "name": f"traction-rig — {run_dir.name}",
        "output": str(out),
        "plugins": {"awesome": {"options": {"singleFile": True, "reportName": run_dir.name}}},
    }))
    cmd = [*allure_command(), "generate", str(results.resolve()), "--output", str(out.resolve()), "--config", str(config)]
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    config.unlink(missing_ok=True)
    index = out / "index.html"
    if proc.returncode != 0 or not index.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RigError(f"allure generate failed (exit {proc.returncode}): {last[0]}")
    return index
