"""Suite throughput with 1 and 2 pytest-xdist workers, one emulated table per worker.

`rig run --workers N` against the embedded emulated lumbar rig (time scale 10): N
tables, each verified by the full safety suites in its own worker, on this 2-core
machine. Prints wall time, tables verified per hour and every table's verdict (a
parallel run that makes tables fail is no speed-up). Asserts nothing.

    python benchmarks/bench_parallel.py [--workers 1,2] [--rig emulated-cervical]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(workers: int, rig: str, run_dir: str) -> tuple[float, int, list[str]]:
    started = time.perf_counter_ns()
    proc = subprocess.run([sys.executable, "-m", "rigcli", "run", "--rig", rig, "--workers", str(workers),
                           "--run-dir", run_dir, "--no-report"], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = (time.perf_counter_ns() - started) / 1e9
    verdicts = re.findall(r"^overall: (\w+)", proc.stdout, re.MULTILINE)
    return wall, proc.returncode, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--rig", default="emulated-lumbar")
    args = parser.parse_args()
    print(f"full safety suites, {args.rig} (time scale 10), one emulated table per worker, 2-core machine")
    base = None
    for n in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-parallel-") as run_dir:
            wall, code, verdicts = run(n, args.rig, run_dir)
        per_hour = len(verdicts) * 3600.0 / wall
        base = base or per_hour
        print(f"  {n} worker{'s' if n > 1 else ' '}  {wall:6.1f} s wall  {per_hour:5.1f} tables/h "
              f"(x{per_hour / base:.2f})  exit {code}  verdicts {', '.join(verdicts) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
