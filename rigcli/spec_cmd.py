"""`rig spec duration SPEC`: how long a run of a specification takes, before it runs.

The figures are verification/budget.py's (the same ones the plugin turns into each suite test's
time limit): the planned table time per collected test, the wall time at a time scale K
(a real bench: 1; the embedded emulator: 10) and the limit the test would get there.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def add_duration_parser(spec_sub) -> None:
    """Register `duration` under the `rig spec` group (spec_sub: its subparsers)."""
    dur = spec_sub.add_parser(
        "duration", help="the planned table time of each suite test and in all, and the wall time at a time scale "
                         "(verification/budget.py; the same figures set each test's time limit on a rig)")
    dur.add_argument("spec", metavar="SPEC", help="specification file or built-in name (lumbar, cervical)")
    dur.add_argument("--profile", choices=["quick", "full"], default="quick",
                     help="quick (daily use, default) or full (the compliance run)")
    dur.add_argument("--time-scale", type=_positive, default=1.0, metavar="K",
                     help="table seconds per wall second: 1 = a real bench (default), 10 = the embedded emulator")
    dur.add_argument("-k", dest="keyword", help="only tests matching this pytest expression")
    dur.set_defaults(func=run_duration)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: the time scale must be positive")
    return value


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_duration(args: argparse.Namespace) -> int:
    from fixtures.operator import DEFAULT_TIMEOUT_S
    from fixtures.plan_collect import collect_plan
    from verification.budget import plan_total, runs_on, time_limit_s
    from verification.spec import load_spec

    spec = load_spec(args.spec)  # bad input: one line, before pytest collects anything
    k = args.time_scale
    rows = collect_plan(spec.source, args.profile, args.keyword)
    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough for a test id and its figures on one line
        console = Console(width=120)
    table = Table(title=f"{spec.title} (v{spec.version}) — profile {args.profile}, K = {k:g}")
    table.add_column("test", no_wrap=True, overflow="fold")
    table.add_column("table s", justify="right", no_wrap=True)
    table.add_column("wall", justify="right", no_wrap=True)
    table.add_column("limit s", justify="right", no_wrap=True)
    table.add_column("runs", no_wrap=True)
    for n, r in enumerate(rows):
        when = ("skipped" if r.skipped else "bench, a person" if r.bench_only else "a person" if r.operator
                else "emulated" if r.emulator_only else "every rig")
        operator_wall = (r.operator_prompts + 1) * DEFAULT_TIMEOUT_S if r.operator_prompts else 0.0
        table.add_row(escape(r.nodeid.split("::", 1)[-1]), f"{r.table_s:.1f}", _clock(r.table_s / k),
                      f"{time_limit_s(r.table_s, k, first=n == 0, operator_wall_s=operator_wall):g}", when)
    console.print(table)
    console.print("runs: skipped = not in this profile; every rig; emulated = an emulated rig only; a person = with a person at the bench "
                  "(their prompts' time is in its limit); bench, a person = a real bench (or --operator-overforce)",
                  style="dim", highlight=False)
    emulated, bench = plan_total(rows, bench=False), plan_total(rows, bench=True)
    console.print(f"in all, emulated rig without a person ({sum(runs_on(r, False) for r in rows)} tests): "
                  f"{emulated:.0f} s of table time = {_clock(emulated / k)} wall at K = {k:g}", highlight=False)
    console.print(f"in all, real bench with a person ({sum(runs_on(r, True) for r in rows)} tests): "
                  f"{bench:.0f} s of table time = {_clock(bench / k)} wall at K = {k:g} (plus the person's answers)",
                  highlight=False)
    console.print("planned table time (verification/budget.py); bench preparation, releases' confirmation and round trips "
                  "between steps come on top (the time limits' margin)", style="dim", highlight=False)
    return 0
