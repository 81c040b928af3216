"""Suite throughput with 1 and 2 pytest-xdist workers, one emulated table per worker.

`rig run --workers N` against the embedded emulated lumbar rig (time scale 10): N
tables, each verified by the full safety suites in its own worker, on this 2-core
machine. Prints wall time, tables verified per hour and every table's verdict (a
parallel run that makes tables fail is no speed-up), with the requirements that kept a
table from PASS; the run records stay in benchmarks/out/parallel/. Asserts nothing.

    python benchmarks/bench_parallel.py [--workers 1,2] [--rig emulated-cervical] [--time-scale 5]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent


OUT = ROOT / "benchmarks" / "out" / "parallel"


def rig_at(rig: str, time_scale: float | None) -> str:
    """The rig file, or a copy of it at another time scale (kept beside the records)."""
    if time_scale is None:
        return rig
    from rigs.config import load_rig

    data = yaml.safe_load(load_rig(rig).source.read_text())
    data["time_scale"] = time_scale
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{Path(rig).stem}-k{time_scale:g}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def heartbeat_gaps(run_dir: Path) -> list[float]:
    """Longest gap between watchdog heartbeats of each table, table seconds (the period is 3 s)."""
    from reports.record import read_record

    return [e["max_gap_table_s"] for d in sorted(p for p in run_dir.iterdir() if (p / "record.jsonl").is_file()) for e in read_record(d) if e["event"] == "heartbeat"]


def run(workers: int, rig: str, run_dir: Path) -> tuple[float, int, list[str]]:
    started = time.perf_counter_ns()
    proc = subprocess.run([sys.executable, "-m", "rigcli", "run", "--rig", rig, "--workers", str(workers),
                           "--run-dir", str(run_dir), "--no-report"], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wall = (time.perf_counter_ns() - started) / 1e9
    verdicts = re.findall(r"^overall: (\w+)", proc.stdout, re.MULTILINE)
    for line in proc.stdout.splitlines():  # what kept a table from PASS, so a slow-down is never read as a pass
        if re.search(r"│ (FAIL|INCONCLUSIVE|NOT RUN)", line) or "did not complete" in line:
            print(f"      {line.strip()}")
    return wall, proc.returncode, verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--rig", default="emulated-lumbar")
    parser.add_argument("--time-scale", type=float, help="run the table at this K instead of the rig file's")
    args = parser.parse_args()
    rig = rig_at(args.rig, args.time_scale)
    print(f"full safety suites, {args.rig} (time scale {args.time_scale or 'of the rig file'}), "
          "one emulated table per worker, 2-core machine")
    base = None
    for n in (int(w) for w in args.workers.split(",")):
        run_dir = OUT / f"{n}-workers-{time.strftime('%Y%m%dT%H%M%S')}"
        wall, code, verdicts = run(n, rig, run_dir)
        per_hour = len(verdicts) * 3600.0 / wall
        base = base or per_hour
        print(f"  {n} worker{'s' if n > 1 else ' '}  {wall:6.1f} s wall  {per_hour:5.1f} tables/h "
              f"(x{per_hour / base:.2f})  exit {code}  verdicts {', '.join(verdicts) or 'none'}  "
              f"heartbeat max gap {', '.join(f'{g:.2f}' for g in heartbeat_gaps(run_dir))} s (table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
