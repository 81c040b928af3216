"""`rig spec coverage SPEC…`: what the plan of a specification samples, per requirement.

The map itself lives in verification/coverage.py (one declarative place next to the suites it
describes); this module only parses the command line, writes the Markdown and, with
--run, checks a run's record against the map: a map that claims a value the suites did
not measure is a map that lies, and the check says which.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from drivers.errors import EXIT_FAILED, ConfigError

PROFILES = ("quick", "full")


def add_parser(spec_sub) -> None:
    """Register `coverage` under the `rig spec` group (spec_sub: its subparsers)."""
    cov = spec_sub.add_parser(
        "coverage",
        help="per requirement, the dimensions a table's behaviour can differ along and the values the plan "
             "samples (quick and full profile), one-point dimensions with their reason or flagged, and the "
             "contract's refusals and latches with the suite check that tries each (docs/coverage.md)")
    cov.add_argument("specs", nargs="+", metavar="SPEC", help="specification file or built-in name (lumbar, cervical, flexion-distraction)")
    cov.add_argument("--profile", choices=[*PROFILES, "both"], default="both",
                     help="which plan profile to map (default both)")
    cov.add_argument("--out", metavar="FILE", help="write the Markdown map here (default: print it)")
    cov.add_argument("--run", metavar="RUNDIR",
                     help="check the map against a run's record instead: every value the map claims for the run's "
                          "profile must appear in a measurement of that requirement; exit 1 when one does not")
    cov.set_defaults(func=run_coverage)


def run_coverage(args: argparse.Namespace) -> int:
    from verification.coverage import check_run, render_markdown
    from verification.spec import load_spec

    specs = [load_spec(s) for s in args.specs]
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    if args.run:
        from reports.record import RECORD_NAME

        run_dir = Path(args.run)
        if not run_dir.is_dir():
            raise ConfigError(f"--run {run_dir}: no such run directory (a directory holding {RECORD_NAME})")
        if not (run_dir / RECORD_NAME).is_file():
            raise ConfigError(f"--run {run_dir}: no {RECORD_NAME} in it: not a run directory (rig run writes one "
                              "under runs/)")
        failed = False
        for spec in specs:
            report = check_run(spec, run_dir, *recorded_run(run_dir), profile=None if args.profile == "both" else args.profile)
            print(report.text())
            failed |= not report.ok
        return EXIT_FAILED if failed else 0
    text = render_markdown(specs, profiles)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(out)
    else:
        sys.stdout.write(text)
    return 0


def recorded_run(run_dir):
    """(run-start, measurement lines, node ids of the tests that started) of a run, read
    through the run directory's schema, for the coverage check of that run."""
    from reports.rundir import Event, scan_record

    read = scan_record(run_dir)
    start = next(iter(read.of(Event.RUN_START)), None)
    return start, read.of(Event.MEASUREMENT), {e.get("test", "") for e in read.of(Event.TEST_START)}
