#!/usr/bin/env python3
"""Render a compliance report and screenshot its HTML in headless Chromium.

    python scripts/report_screenshot.py [--synthetic] [--run RUN] [--out reports/screenshots/report.png]

Default: a short real run against the embedded emulated lumbar table (force accuracy,
interlocks, emergency release on the ESTOP coil with 4 trials; about 15 s), then
`rig report` on it. --synthetic renders a run written without a rig (tests/synthetic_run.py);
--run renders an existing run directory. The PNG is kept under reports/screenshots/
(gitignored). Needs /usr/bin/chromium (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def real_run(work: Path) -> Path:
    spec = work / "lumbar-short.yaml"
    text = (ROOT / "suites" / "specs" / "lumbar.yaml").read_text(encoding="utf-8")
    spec.write_text(text.replace("trials: 20", "trials: 4"), encoding="utf-8")
    runs = work / "runs"
    subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(runs), "--spec", str(spec),
                    "--operator", "screenshot", "-k", "force_accuracy or interlocks or (emergency and estop_coil)"],
                   cwd=ROOT, check=False)
    found = sorted(p for p in runs.iterdir() if (p / "record.jsonl").is_file()) if runs.is_dir() else []
    if not found:
        sys.exit("report_screenshot: the run wrote no record")
    return found[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="no rig: a synthetic run")
    parser.add_argument("--run", type=Path, help="an existing run directory")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "screenshots" / "report.png")
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from reports.panel.chromium import ARGS, find
    from reports.render import render_report

    chromium = find()
    if chromium is None:
        print("report_screenshot: no Chromium found — install it (Debian: apt-get install chromium) or set "
              "TRACTION_RIG_CHROMIUM", file=sys.stderr)
        return 3

    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        work = Path(tmp)
        if args.run:
            run_dir = args.run.resolve()
        elif args.synthetic:
            from tests.synthetic_run import build_run

            run_dir = build_run(work / "synthetic-run", fail=True)
        else:
            run_dir = real_run(work)
        written = render_report(run_dir, out_dir=work / "report" if args.run else None)
        html = written[0]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        out = args.out.resolve()
        cmd = [chromium, "--headless", *ARGS, "--hide-scrollbars",
               f"--user-data-dir={work / 'chromium-profile'}", f"--screenshot={out}",
               f"--window-size=1280,{args.height}", html.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not out.is_file():
            print(f"report_screenshot: chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
            return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
