#!/usr/bin/env python3
"""The picture of an emergency stop in docs/img/fd-stop.png, drawn by the report's own
code from a real run, so the page that explains a stop shows what a report shows.

    python scripts/fd_stop_picture.py [--run RUN] [--trial N] [--out docs/img/fd-stop.png]

Default: a short run on the embedded emulated flexion-distraction table (the emergency
stop on the ESTOP coil only, six trials; about a minute), then the stop-time plot of one
trial (the first unless --trial) exactly as `rig report` draws it: the angle zoomed on the
trigger, at rest, the travel, the hold window, the distraction force below. --run takes an
existing run directory instead (it is only read).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the stop whose picture is drawn: its stop time carries the angle series
REQUIREMENT = "ES-TIME"


def real_run(work: Path) -> Path:
    runs = work / "runs"
    subprocess.run([sys.executable, "-m", "rigcli", "run", "--rig", "emulated-flexion-distraction",
                    "--run-dir", str(runs), "--no-history", "--operator", "fd-stop-picture",
                    "-k", "fd_emergency_stop and estop_coil"], cwd=ROOT, check=False)
    found = sorted(p for p in runs.iterdir() if (p / "record.jsonl").is_file()) if runs.is_dir() else []
    if not found:
        sys.exit("fd_stop_picture: the run wrote no record")
    return found[-1]


def stop_picture(run_dir: Path, trial: int | None = None) -> bytes:
    """The report's plot of one trial's stop time (the first trial with a series, or `trial`)."""
    from reports import plots
    from reports.render import _plotted_series, _series_for
    from reports.rundir import Event, read_record

    lines = [e for e in read_record(run_dir) if e.get("event") == Event.MEASUREMENT]
    series_of = _series_for(lines)
    stops = [m for m in lines if m.get("requirement") == REQUIREMENT and m.get("series")
             and (trial is None or (m.get("conditions") or {}).get("trial") == trial)]
    if not stops:
        sys.exit(f"fd_stop_picture: {run_dir}: no {REQUIREMENT} measurement with a series"
                 + (f" for trial {trial}" if trial is not None else "") + " — is it a flexion-distraction run?")
    m = stops[0]
    rel, others = _plotted_series(run_dir, m, series_of[(m.get("test"), m.get("name"))])
    residual = (read_record(run_dir)[0].get("specification") or {}).get("residual_force_n")
    return plots.series_plot(run_dir, m, rel, residual, [], others)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing flexion-distraction run directory")
    parser.add_argument("--trial", type=int, help="the trial to draw (default: the first)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "fd-stop.png")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="fd-stop-") as tmp:
        run_dir = args.run.resolve() if args.run else real_run(Path(tmp))
        png = stop_picture(run_dir, args.trial)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
