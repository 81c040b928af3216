"""Wall time of the full lumbar and cervical safety suites against the emulator.

Runs `rig run` for both embedded emulated rigs (time scale from their rig files: 10)
side by side on this 2-core machine and one after the other, and prints the wall
times. Goal: <= 120 s for both together. Prints figures; asserts nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RIGS = ("emulated-lumbar", "emulated-cervical")


def start(rig: str, run_dir: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rigcli", "run", "--rig", rig, "--run-dir", run_dir],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate()
    overall = next((line for line in out.splitlines() if line.startswith("overall:")), "overall: ?")
    return proc.returncode, overall.split("—")[0].strip()


def main() -> int:
    run_dir = tempfile.mkdtemp(prefix="bench-suites-")
    print("full safety suites vs the emulated tables (time scale 10, 20 trials per trigger)")
    t0 = time.perf_counter_ns()
    procs = {rig: (start(rig, run_dir), time.perf_counter_ns()) for rig in RIGS}
    for rig, (proc, started) in procs.items():
        code, overall = finish(proc)
        print(f"  parallel   {rig:<18} {(time.perf_counter_ns() - started) / 1e9:6.1f} s  exit {code}  {overall}")
    print(f"  parallel   both together      {(time.perf_counter_ns() - t0) / 1e9:6.1f} s  (goal <= 120 s)")
    total = 0.0
    for rig in RIGS:
        started = time.perf_counter_ns()
        code, overall = finish(start(rig, run_dir))
        wall = (time.perf_counter_ns() - started) / 1e9
        total += wall
        print(f"  sequential {rig:<18} {wall:6.1f} s  exit {code}  {overall}")
    print(f"  sequential both               {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
