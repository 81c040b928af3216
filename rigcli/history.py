"""`rig history`: the results database from the command line.

    rig history [--table SERIAL] [--rig NAME] [--verdict V] [--since DATE] [--until DATE] [--format F]
    rig history REQ --table SERIAL [--png FILE] [--format F]   per run: worst value, U, limit, verdict; drift
    rig history import RUN_DIR…                                 ingest old or cut runs (idempotent)
    rig history export [--format csv|parquet] --out FILE

The list and a requirement's trend print a table (--format table, the default; every
identifier whole, however narrow the terminal or wherever the output goes), or one row
per run for scripts: --format csv or --format json.

The database is the one `rig run` writes (see reports/history/store.py for the order
in which --db, $TRACTION_RIG_DB, the lab config and the default are taken).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drivers.errors import ConfigError
from reports.history.drift import HORIZON_RUNS, assess, points_from_rows
from reports.history.store import DatabaseURLError, HistoryError, Store, resolve_url, shown
from reports.rundir import format_value

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow", "NOT RUN": "dim", "N/A": "dim"}
VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")


def database_url(args) -> str:
    """--db, $TRACTION_RIG_DB, the lab config, or history.sqlite beside the runs."""
    from reports.lab_config import load_lab

    lab = load_lab(getattr(args, "lab", None))
    root = Path(getattr(args, "run_dir", None) or PROJECT_ROOT / "runs")
    return resolve_url(getattr(args, "db", None), lab_db=lab.database, run_root=root)


def _date(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r}: not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _when(value) -> str:
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M")


def _iso(value) -> str | None:
    """A stored instant for scripts: ISO 8601 with its offset (SQLite keeps no zone: every time stored is UTC)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


#: what the list and a trend print: a table for a person, csv or json for a script
SHOW_FORMATS = ("table", "csv", "json")


def _show_format(args) -> str:
    fmt = args.format or "table"
    if fmt not in SHOW_FORMATS:
        raise ConfigError(f"--format {fmt}: the list and a requirement's trend print {', '.join(SHOW_FORMATS)} "
                          f"({', '.join(EXPORT_FORMATS)} is for rig history export)")
    return fmt


def _print_table(table: Table) -> None:
    """A table whose identifiers (serials, run folders) are never cut: on a terminal a long
    cell folds onto a second line; written to a file or a pipe (where rich assumes 80
    columns) the table is as wide as its widest row."""
    console = Console()
    if not console.is_terminal:
        wide = Console(width=1 << 16).measure(table).maximum
        console = Console(width=max(console.width, wide))
    console.print(table)


def _print_rows(fmt: str, rows: list[dict], document: dict) -> None:
    """Rows for a script: csv (a header, one line per row) or json (`document` with the rows)."""
    if fmt == "json":
        print(json.dumps(document, ensure_ascii=False, indent=1, default=str))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def history(args) -> int:
    what = list(args.what or [])
    url = database_url(args)
    if what and what[0] == "import":
        return _import(url, what[1:])
    if what and what[0] == "export":
        if len(what) > 1:
            raise ConfigError(f"rig history export: unexpected {what[1]!r}; options: --format, --out, --table, --requirement")
        return _export(url, args)
    if len(what) > 1:
        raise ConfigError(f"rig history: one requirement at a time, got {' '.join(what)}")
    if not Path(url.removeprefix("sqlite:///")).exists() and url.startswith("sqlite:///"):
        raise DatabaseURLError(f"results database {shown(url)}: no such file yet — `rig run` or "
                               "`rig history import RUN…` creates it, or give --db")
    with Store(url) as store:
        if what:
            return _trend(store, what[0], args)
        return _list(store, args)


def _list(store: Store, args) -> int:
    if args.verdict and args.verdict.upper() not in VERDICTS:
        raise ConfigError(f"--verdict {args.verdict}: one of {', '.join(VERDICTS)}")
    fmt = _show_format(args)
    rows = store.runs(serial=args.table, rig=args.rig_name, verdict=args.verdict,
                      since=_date(args.since) if args.since else None, until=_date(args.until) if args.until else None,
                      limit=args.limit)
    total = store.count_runs()
    if fmt != "table":
        runs = [{"started_utc": _iso(r["started_utc"]), "table": r["table_serial"], "rig": r["rig_name"],
                 "spec": r["spec_name"], "spec_version": r["spec_version"], "status": r["status"].lower(),
                 "overall": r["overall"], "sealed": bool(r["manifest_sha256"]), "signed": bool(r["signed"]),
                 "run_dir": r["run_dir"]} for r in rows]
        _print_rows(fmt, runs, {"database": shown(store.url), "shown": len(runs), "total": total, "runs": runs})
        return 0
    table = Table(title=f"runs in {shown(store.url)}" + (f", table {args.table}" if args.table else ""))
    for col in ("started (UTC)", "table", "rig", "spec", "status", "overall", "sealed", "run"):
        table.add_column(col, overflow="fold")
    for r in rows:
        sealed = ("signed" if r["signed"] else "yes") if r["manifest_sha256"] else "no"
        table.add_row(_when(r["started_utc"]), r["table_serial"], r["rig_name"],
                      f"{r['spec_name']} {r['spec_version'] or ''}".strip(), r["status"].lower(),
                      f"[{STYLE.get(r['overall'], '')}]{r['overall']}[/]", sealed, Path(r["run_dir"]).name)
    _print_table(table)
    Console().print(f"{len(rows)} of {total} runs shown"
                    + (f" (--limit {args.limit})" if args.limit and len(rows) == args.limit else ""))
    return 0


def _trend(store: Store, requirement: str, args) -> int:
    if not args.table:
        raise ConfigError(f"rig history {requirement}: which table? add --table SERIAL (rig history lists them)")
    fmt = _show_format(args)
    rows = store.trend(args.table, requirement, details=True)
    if not rows:
        known = store.requirements_of(args.table)
        hint = f"; recorded for it: {', '.join(known)}" if known else "; no run of that table is recorded"
        raise ConfigError(f"rig history {requirement} --table {args.table}: nothing recorded{hint}")
    unit = next((r.unit for r in rows if r.unit), "") or ""
    points = points_from_rows(rows)
    warnings = [w.to_dict() for w in assess(requirement, args.table, points, unit, horizon=args.horizon)]
    if fmt != "table":
        runs = [{"started_utc": _iso(r.started_utc), "value": r.value, "uncertainty": r.uncertainty,
                 "lower": r.lower, "upper": r.upper, "unit": r.unit or unit or None, "decision_rule": r.decision_rule,
                 "verdict": r.verdict, "status": r.status.lower(), "run_dir": r.run_dir} for r in rows]
        _print_rows(fmt, runs, {"requirement": requirement, "table": args.table, "runs": runs, "drift": warnings})
        if args.png and points:  # said on stderr: stdout is the script's
            print(f"trend plot: {_trend_png(points, requirement, args, unit, warnings)}", file=sys.stderr)
        return 0
    console = Console()
    table = Table(title=f"{requirement} of table {args.table}: worst value per run")
    for col in ("started (UTC)", "worst measured", "U (k=2)", "limit", "verdict", "status", "run"):
        table.add_column(col, overflow="fold",
                         justify="right" if col in ("worst measured", "U (k=2)", "limit") else "left")
    for r in rows:
        # the row's worst measurement, shown as the verdict table shows it (None: nothing measured)
        value, limit, u = ("—", "—", "—") if r.value is None else format_value(
            {"value": r.value, "unit": r.unit or unit, "lower": r.lower, "upper": r.upper,
             "uncertainty": r.uncertainty, "decision_rule": r.decision_rule, "verdict": r.verdict})
        table.add_row(_when(r.started_utc), value, u, limit, f"[{STYLE.get(r.verdict, '')}]{r.verdict}[/]",
                      r.status.lower(), Path(r.run_dir).name)
    _print_table(table)
    for w in warnings:
        console.print(f"[bold yellow]drift ({w['kind']}):[/] {w['text']}")
    if points and not warnings:
        console.print(f"no drift: {len(points)} runs, no step beyond the combined U and no trend reaching the "
                      f"guard-banded limit within {args.horizon} runs")
    if args.png and points:
        console.print(f"trend plot: {_trend_png(points, requirement, args, unit, warnings)}")
    return 0


def _trend_png(points, requirement: str, args, unit: str, warnings: list[dict]) -> Path:
    from reports.history.trend_plot import plot_trend

    return plot_trend(points, Path(args.png), title=f"{requirement} of table {args.table} ({len(points)} runs)",
                      unit=unit, horizon=args.horizon, warnings=warnings)


def _import(url: str, dirs: list[str]) -> int:
    if not dirs:
        raise ConfigError("rig history import: which runs? give one or more run directories (RUN_DIR…)")
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:  # a mistyped path is bad input: said before anything is imported
        raise ConfigError(f"{missing[0]}: no such run directory"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    code = 0
    try:
        store = Store(url)
    except HistoryError as exc:  # the runs stay as they are on disk: a later import records them
        if isinstance(exc, ConfigError):
            raise
        print(f"rig history import: {exc}; nothing imported, the runs on disk are kept", file=sys.stderr)
        return 1
    with store:
        for d in dirs:
            path = Path(d)
            try:
                done = store.ingest(path)
                print(done.line())
                if done.damage:  # imported from the intact lines, but not a clean import: a script must notice
                    print(f"rig history import: {path}: {done.damage_text}; imported with the "
                          f"{done.run['measurement_count']} measurements of the intact lines, overall "
                          f"{done.run['overall']} (never PASS)", file=sys.stderr)
                    code = 1
            except HistoryError as exc:
                print(f"rig history import: {exc}", file=sys.stderr)
                code = 1
    return code


EXPORT_FORMATS = ("csv", "parquet")


def _export(url: str, args) -> int:
    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "csv")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt}: one of {', '.join(EXPORT_FORMATS)}")
    if not args.out:
        raise ConfigError("rig history export: where to? add --out FILE (.csv or .parquet)")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")
    with Store(url) as store:
        rows = store.export_rows(serial=args.table, requirement=args.requirement)
        count = _write_parquet(rows, out) if fmt == "parquet" else _write_csv(rows, out)
    print(f"{count} measurements → {out}")
    return 0


def _flat(row) -> dict:
    d = dict(row)
    d["conditions"] = json.dumps(d.get("conditions") or {}, sort_keys=True)
    started = d.get("started_utc")
    if started is not None and started.tzinfo is None:  # SQLite keeps no zone: every time stored is UTC
        started = started.replace(tzinfo=dt.timezone.utc)
    d["started_utc"] = started.isoformat() if started else None
    return d


def _write_csv(rows, out: Path) -> int:
    count = 0
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = None
        for row in rows:
            d = _flat(row)
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(d))
                writer.writeheader()
            writer.writerow(d)
            count += 1
    tmp.replace(out)
    return count


def _write_parquet(rows, out: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = [_flat(r) for r in rows]
    table = pa.Table.from_pylist(data) if data else pa.table({})
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(out)
    return len(data)


def add_parser(sub) -> None:
    p = sub.add_parser("history", help="the results database: runs, a requirement's trend per table, import, export",
                       description="\n\n".join(__doc__.split("\n\n")[1:3]) if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # the usage lines one a line
    p.add_argument("what", nargs="*", metavar="REQ | import RUN… | export",
                   help="nothing: list runs; a requirement ID: its trend for --table; import RUN_DIR…; export")
    p.add_argument("--db", metavar="URL", help="results database (default: $TRACTION_RIG_DB, the lab config's "
                   "database, or RUN_DIR/history.sqlite)")
    p.add_argument("--lab", metavar="FILE", help="lab config (default: $TRACTION_RIG_LAB or /etc/traction-rig/lab.yaml)")
    p.add_argument("--run-dir", help="where run records go, and the default database with them (default: runs/)")
    p.add_argument("--table", metavar="SERIAL", help="one table (its serial)")
    p.add_argument("--rig", dest="rig_name", metavar="NAME", help="list: one rig")
    p.add_argument("--verdict", metavar="V", help="list: PASS, FAIL or INCONCLUSIVE")
    p.add_argument("--since", metavar="DATE", help="list: runs started on or after (UTC)")
    p.add_argument("--until", metavar="DATE", help="list: runs started before (UTC)")
    p.add_argument("--limit", type=int, default=50, help="list: at most N runs, newest first (default 50; 0: all)")
    p.add_argument("--png", metavar="FILE", help="REQ: also draw the trend as a PNG")
    p.add_argument("--horizon", type=int, default=HORIZON_RUNS, metavar="RUNS",
                   help=f"drift: warn when the trend reaches the guard-banded limit within this many runs (default {HORIZON_RUNS})")
    p.add_argument("--format", choices=(*SHOW_FORMATS, *EXPORT_FORMATS), metavar="FORMAT",
                   help="list and REQ: table (default), csv or json; export: csv or parquet (default: from --out's suffix)")
    p.add_argument("--out", metavar="FILE", help="export: the file to write")
    p.add_argument("--requirement", metavar="REQ", help="export: one requirement only")
    p.set_defaults(func=history)
