"""`rig spec show|check|duration SPEC`: a specification as a reviewer reads it, whether it
holds together, and how long a run of it takes, before it runs.

`show` prints the requirements (source, quantity, unit, limits, decision rule, further
quantities) and the plan, for any kind of table: the kind's model (verification/spec.py's
registry) decides what a plan holds, so nothing here knows one kind from another. `check`
loads each file (bad input is one line naming file, key and requirement), and holds the
kind to the table kinds a rig can drive (drivers/kinds.py) and every limit to a finite
number for the variables its kind's suites supply.

`duration`'s figures are verification/budget.py's (the same ones the plugin turns into each
suite test's time limit): the planned table time per collected test, the wall time at a
time scale K (a real bench: 1; the embedded emulator: 10) and the limit the test would get
there.
"""

from __future__ import annotations

import argparse
import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def add_parsers(spec_sub) -> None:
    """Register `show`, `check` and `duration` under the `rig spec` group (spec_sub: its subparsers)."""
    show = spec_sub.add_parser("show", help="a specification's requirements (source, quantity, unit, limits, rule) "
                               "and its plan, as a reviewer reads them")
    show.add_argument("spec", metavar="SPEC", help="specification file or built-in name (lumbar, cervical, "
                      "flexion-distraction)")
    show.add_argument("--plan", action="store_true", help="print the plan too (as YAML, every default filled in)")
    show.set_defaults(func=run_show)
    check = spec_sub.add_parser("check", help="load specifications and check them: the kind a rig can drive, every "
                                "limit finite; exit 0 when each holds")
    check.add_argument("specs", nargs="+", metavar="SPEC", help="specification files or built-in names")
    check.set_defaults(func=run_check)
    add_duration_parser(spec_sub)


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


def run_show(args: argparse.Namespace) -> int:
    import yaml

    from verification.measurement import limits_text
    from verification.spec import DECISION_RULES, load_spec

    spec = load_spec(args.spec)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    head = spec.model_dump(mode="json", exclude={"plan", "requirements"})
    console.print(f"{spec.title} — {spec.name} v{spec.version} ({spec.source})", highlight=False)
    console.print("  " + ", ".join(f"{k} {v}" for k, v in head.items() if k not in ("name", "title", "version")),
                  highlight=False)
    table = Table(title=f"{len(spec.requirements)} requirements, {len(spec.quantity_ids)} quantities")
    for column in ("id", "title", "quantity", "limits", "rule", "source"):
        table.add_column(column, overflow="fold")
    for r in spec.requirements:
        table.add_row(r.id, escape(r.title), escape(r.quantity), escape(limits_text(r.lower, r.upper, r.unit)),
                      r.decision_rule, escape(r.source))
        for q in r.also:
            table.add_row(f"  .{q.key}", "", escape(q.quantity), escape(limits_text(q.lower, q.upper, q.unit)),
                          r.decision_rule, "")
    console.print(table)
    for name, text in DECISION_RULES.items():
        console.print(f"{name}: {text}", style="dim", highlight=False)
    if args.plan:
        print(yaml.safe_dump({"plan": spec.plan.model_dump(mode="json")}, sort_keys=False, allow_unicode=True), end="")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from drivers.errors import ConfigError
    from drivers.kinds import table_kinds
    from verification.spec import load_spec

    for name in args.specs:
        spec = load_spec(name)  # bad input: one line naming the file, the key and the requirement
        if spec.kind not in table_kinds():
            raise ConfigError(f"{spec.source}: kind: {spec.kind!r} is not a table kind a rig can drive (known: "
                              f"{', '.join(table_kinds())}; drivers/kinds.py)")
        variables = {v: 1.0 for v in spec.formula_variables}
        for r in spec.requirements:
            for key, q in [(None, r), *((q.key, q) for q in r.also)]:
                low, high = r.limits(key, **variables)
                if any(x is not None and not math.isfinite(x) for x in (low, high)):
                    raise ConfigError(f"{spec.source}: {r.id}{'.' + key if key else ''}: a limit is not a finite "
                                      "number")
        print(f"{spec.source}: {spec.name} {spec.version} ({spec.kind}): {len(spec.requirements)} requirements, "
              f"{len(spec.quantity_ids)} quantities — OK")
    return 0
