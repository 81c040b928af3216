"""The main job (`rig run`) against the embedded emulated table at a real bench's speed.

A real bench runs at time scale K = 1; CI's emulator at 10. This runs `rig run` through a
temporary copy of the rig file with the time scale set to K (default 1), with the quick
profile or `--profile full`, then prints each test's wall time from the run record
(test-start to the next test-start or the run's end: reports/panel/estimate.test_spans),
the time limit the plugin gave it (its test-start's time_limit_s), the planned wall time
(verification/budget.py's table seconds ÷ K) and the totals. Prints figures; asserts nothing.

Not run in CI: the whole job at K = 1 takes a quarter of an hour or more (`rig spec
duration lumbar` says how long it is planned to take). `--k EXPR` runs a few tests only.

    .venv/bin/python -m benchmarks.bench_main_job                      # K = 1, quick
    .venv/bin/python -m benchmarks.bench_main_job --profile full
    .venv/bin/python -m benchmarks.bench_main_job --k "ramp and slow"  # one short test
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def rig_copy(rig: str | None, k: float, where: Path) -> Path:
    """The rig file with its time scale set to K (an emulated rig only: a bench is 1 anyway)."""
    from rigs.config import load_rig

    source = load_rig(rig).source
    data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not data.get("emulated"):
        raise SystemExit(f"bench_main_job: {source} is not an emulated rig (this benchmark drives the emulator)")
    data["time_scale"] = k
    path = where / f"{Path(source).stem}-k{k:g}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def outcomes(events: list[dict]) -> dict[str, str]:
    """Each test's outcome: failed/skipped at any phase, else passed at its call."""
    result: dict[str, str] = {}
    for e in events:
        if e.get("event") != "test-end":
            continue
        test, outcome = e.get("test"), e.get("outcome")
        if outcome != "passed" or test not in result:
            result[test] = outcome if outcome != "failed" or e.get("when") == "call" else f"error ({e.get('when')})"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["quick", "full"], default="quick")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                        help="table seconds per wall second (default 1: a real bench's speed)")
    parser.add_argument("--rig", help="emulated rig file (default: the embedded emulated lumbar rig)")
    parser.add_argument("--spec", help="specification (default: the rig file's)")
    parser.add_argument("--seed", type=int, help="the emulated table's seed")
    parser.add_argument("--k", dest="keyword", metavar="EXPR", help="only tests matching this pytest expression")
    parser.add_argument("--run-dir", help="where the run goes (default: a temporary directory)")
    args = parser.parse_args(argv)
    if not args.time_scale > 0:
        parser.error("--time-scale must be positive")

    from reports.panel.estimate import test_spans
    from reports.record import read_record, run_dirs
    from fixtures.plan_collect import collect_plan

    work = Path(tempfile.mkdtemp(prefix="bench-main-job-"))
    runs = Path(args.run_dir) if args.run_dir else work / "runs"
    rig = rig_copy(args.rig, args.time_scale, work)
    cmd = [sys.executable, "-m", "rigcli", "run", "--rig", str(rig), "--run-dir", str(runs), "--profile", args.profile,
           "--no-history"]
    if args.spec:
        cmd += ["--spec", args.spec]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if args.keyword:
        cmd += ["-k", args.keyword]
    log = work / "rig-run.log"
    console = Console()
    if not console.is_terminal:  # a log file: one line a test
        console = Console(width=120)
    console.print(f"rig run at K = {args.time_scale:g}, profile {args.profile}"
                  + (f", -k {args.keyword!r}" if args.keyword else "") + f" (output: {log})", highlight=False)
    started = time.perf_counter_ns()
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    total_wall = (time.perf_counter_ns() - started) / 1e9
    done = sorted(run_dirs(runs), key=lambda p: p.stat().st_mtime) if runs.exists() else []
    if not done:
        console.print(f"no run record was written (exit {code}); see {log}", style="red")
        return 1
    run_dir = done[-1]
    events = read_record(run_dir)
    start = next((e for e in events if e.get("event") == "run-start"), {})
    spans = test_spans(events)
    limits = {e.get("test"): e.get("time_limit_s") for e in events if e.get("event") == "test-start"}
    ended = outcomes(events)
    planned = {r.nodeid: r.table_s for r in collect_plan(start.get("spec_file") or args.spec or "lumbar",
                                                         args.profile, args.keyword)}
    k = float((start.get("rig") or {}).get("time_scale") or args.time_scale)

    table = Table(title=f"main job at K = {k:g}, profile {start.get('profile', args.profile)} — {run_dir.name}")
    for name, justify in (("test", "left"), ("wall s", "right"), ("planned wall s", "right"), ("limit s", "right"),
                          ("of limit", "right"), ("outcome", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "test", overflow="fold")
    for test, wall in spans.items():
        plan = planned.get(test)
        limit = limits.get(test)
        table.add_row(escape(test.split("::", 1)[-1]), f"{wall:.1f}",
                      "—" if plan is None else f"{plan / k:.1f}", "—" if limit is None else f"{limit:g}",
                      "—" if not limit else f"{wall / limit:.0%}", ended.get(test, "?"))
    console.print(table)
    ran = [t for t in spans if t in limits]
    console.print(f"tests (test-start to the next): {sum(spans.values()):.1f} s wall; planned "
                  f"{sum(planned.get(t, 0.0) for t in ran) / k:.1f} s (table time ÷ K of the {len(ran)} that started); "
                  f"rig run in all (rig opening, report, seal): {total_wall:.1f} s; exit {code}", highlight=False)
    console.print("a test's wall time here starts at its recorder fixture: set-up work before it (the force "
                  "staircase of test_static_force_accuracy) counts to the test before", style="dim", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
