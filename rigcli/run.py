"""`rig run`: the safety suites against a rig, then the verdict table.

Runs pytest in this process on the project's `suites/` with the traction-rig plugin,
then reads the run record it wrote and prints one line per requirement of the
specification. Exit status: 0 when every requirement passed, 1 when any failed, was
inconclusive or was not run (or a device failed), 2 for bad input, 4 when the table could
not be confirmed safe, 130 when interrupted (README, "Exit status").
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from reports.exit_status import rig_run_exit_status
from reports.rundir import RECORD_NAME, Event, format_value, lines_of, read_record
from reports.verdicts import summarise, verdict_rows

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUITES = PROJECT_ROOT / "suites"
STYLE = {"PASS": "green", "FAIL": "bold red", "INCONCLUSIVE": "yellow", "NOT RUN": "dim"}


class RunDirProbe:
    """A plugin object that learns which run directories this pytest session wrote
    (its own, or one per xdist worker)."""

    def __init__(self) -> None:
        self.run_dirs: list[Path] = []
        self.open_error: str | None = None  # the plugin's one line when the rig did not open

    def pytest_sessionfinish(self, session):
        from fixtures.plugin import RunState

        state = RunState.of(session.config)
        if state is None:
            return
        if state.session is not None:
            self.run_dirs.append(state.session.record.dir)
        self.run_dirs.extend(state.worker_run_dirs)  # the plugin collects what each xdist worker wrote
        self.open_error = state.open_error

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config):
        """The rig did not open: the plugin has put its one line on stderr; pytest would
        repeat it on stdout between rows of '!' (its report of pytest.exit), which `rig run`
        leaves out."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if self.open_error and reporter is not None and hasattr(reporter, "_keyboardinterrupt_memo"):
            reporter._keyboardinterrupt_memo = None


def rig_count(args) -> int:
    """How many rigs the arguments describe (labgrid: one per target of the environment)."""
    if args.lg_env:
        from labgrid.config import Config as LabgridConfig

        try:
            return max(1, len(LabgridConfig(args.lg_env).get_targets()))
        except Exception:  # noqa: BLE001 — the plugin reports the file properly
            return 1
    return max(1, len(args.rig or []))


def print_verdicts(run_dir: Path, console: Console, history: dict | None = None) -> str:
    """The verdict table; with the history review, a drift column and its warnings."""
    summary = summarise(run_dir)
    drift = {}
    for w in (history or {}).get("warnings", []):
        drift.setdefault(w["requirement"], []).append(w["kind"])
    start = summary.run_start
    table = Table(title=f"{start.spec.title}\ntable {start.table.serial} on rig {start.rig_name}"
                        + (f", profile {start.profile}" if start.profile else ""))
    table.add_column("requirement", no_wrap=True)
    table.add_column("worst measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("U (k=2)", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    if history is not None:
        table.add_column("drift", no_wrap=True)
    for row in verdict_rows(summary.results):
        rid, r = row.id, row.tally
        value, limit, u = format_value(r.worst)
        flag = (" TUR<4" if r.tur_flags else "") + (f" ({r.not_applicable} N/A)" if r.not_applicable else "")
        cells = [rid, value, limit, u, f"[{STYLE[r.verdict]}]{r.verdict}[/]{flag}"]
        if history is not None:
            cells.append(f"[bold yellow]{' + '.join(drift[rid])}[/]" if rid in drift else "—")
        table.add_row(*cells)
    console.print(table)
    if history is not None:
        print_history(history, console)
    overall = summary.overall
    note = "" if summary.complete else " (run incomplete)"
    for test in summary.errored_tests:  # with the one line of a rig error: the device, the link, the moment
        console.print(f"test did not complete: {broke_off(summary.events, test)}", style="yellow", soft_wrap=True,
                      markup=False, highlight=False)
    if summary.damage:  # skipped lines: what they held is missing, so the run is never PASS
        from rich.markup import escape

        console.print(f"[bold red]{escape(summary.damage_text)}[/]: skipped, the run cannot PASS — "
                      f"{escape(str(Path(run_dir) / RECORD_NAME))}", soft_wrap=True, highlight=False)
    na = [r for r in summary.results if r.not_applicable]
    if na:  # checks a precondition took away: said, so a NOT RUN or a thin PASS is understood
        console.print("N/A (not judged): " + "; ".join(f"{r.id}: {r.not_applicable_reasons[0]}" for r in na[:4])
                      + (f"; and {len(na) - 4} more requirements" if len(na) > 4 else ""))
    console.print(f"overall: [{STYLE[overall]}]{overall}[/]{note} — run record {run_dir}")
    return overall


def broke_off(events: list[dict], test: str) -> str:
    """The test's node id, and the one line of the rig error it broke off on, if it did
    (the plugin records it on the test-end event)."""
    lines = [e["failure"]["line"] for e in lines_of(events, Event.TEST_END)
             if e.get("test") == test and isinstance(e.get("failure"), dict)]
    return f"{test} — {lines[-1]}" if lines else test


def print_history(history: dict, console: Console) -> None:
    # soft_wrap: a URL or a warning stays one line a terminal may wrap, never broken by rich
    if history.get("error"):
        console.print(f"[yellow]history: {history['error']}[/]", soft_wrap=True)
        return
    for w in history.get("warnings", []):
        console.print(f"[bold yellow]drift ({w['kind']}):[/] {w['text']}", soft_wrap=True)
    console.print(f"history: {history.get('recorded')} in {history.get('database')} "
                  f"({history.get('runs_of_table')} runs of table {history.get('serial')}, "
                  f"{len(history.get('warnings', []))} drift warnings)", soft_wrap=True)


def record_history(run_dir: Path, args, url: str | None) -> dict | None:
    """Ingest the run and review it against its table's history (history.json in the
    run directory, before the report renders it); None with --no-history."""
    if url is None:
        return None
    from reports.history.review import record_and_review

    return record_and_review(run_dir, url)


def seal_history(run_dir: Path, url: str | None, console: Console) -> None:
    """After sealing: record the manifest digest (and signature) the run now carries."""
    if url is None:
        return
    from reports.history.store import HistoryError, Store

    try:
        with Store(url) as store:
            store.ingest(run_dir)
    except HistoryError as exc:
        console.print(f"[yellow]history: {exc}[/]", soft_wrap=True)


def run(args) -> int:
    from reports.history.store import resolve_url
    from reports.lab_config import load_lab

    console = Console()
    if getattr(args, "panel", False):  # a panel beyond the loopback: refused or warned of before anything runs
        check_panel_host(args)
    run_root = Path(args.run_dir or PROJECT_ROOT / "runs").resolve()
    run_root.mkdir(parents=True, exist_ok=True)
    lab = load_lab(getattr(args, "lab", None))  # a wrong lab config is bad input: said before anything runs
    if lab.signing.private_key is not None:  # and so is a key that cannot sign: found now, not after the suites
        from reports.signing import load_private_key

        load_private_key(lab.signing.private_key)
    check_inputs(args)
    url = None if getattr(args, "no_history", False) else resolve_url(getattr(args, "db", None), lab_db=lab.database,
                                                                       run_root=run_root)
    if url is not None:
        check_database(url)
    pytest_args = [str(SUITES), "-p", "no:cacheprovider", "--run-dir", str(run_root), "-q", "-rfE", "--allure"]
    for rig in args.rig or []:
        pytest_args += ["--rig", str(rig)]
    if args.lg_env:
        pytest_args += ["--lg-env", str(args.lg_env)]
    if args.lg_coordinator:
        pytest_args += ["--lg-coordinator", args.lg_coordinator]
    workers = args.workers or rig_count(args)
    if workers > 1:
        pytest_args += ["-n", str(workers), "--dist", "each"]
    if args.spec:
        pytest_args += ["--spec", str(args.spec)]
    for fault in args.fault or []:
        pytest_args += ["--fault", fault]
    if args.seed is not None:
        pytest_args += ["--seed", str(args.seed)]
    if getattr(args, "wear", None):
        pytest_args += ["--wear", repr(args.wear)]
    if args.operator:
        pytest_args += ["--operator-name", args.operator]
    if args.allow_expired_calibration:
        pytest_args.append("--allow-expired-calibration")
    if args.keyword:
        pytest_args += ["-k", args.keyword]
    pytest_args += ["--profile", getattr(args, "profile", None) or "quick"]  # the workers get it too (xdist)
    panel, announce_dir = None, None
    try:
        if getattr(args, "panel", False):  # started last: a usage error above never leaves a page behind
            panel, announce_dir = start_panel(args, console)
            pytest_args += ["--panel-announce", str(announce_dir / ANNOUNCE_NAME), "--operator-page"]
        pytest_args += list(args.pytest_args or [])
        code = run_and_report(pytest_args, args, console, lab, url, workers)
        if panel is not None:
            linger(panel, getattr(args, "panel_linger", 0.0) or 0.0, console)
        return code
    finally:
        if panel is not None:
            panel.stop()
        if announce_dir is not None:
            shutil.rmtree(announce_dir, ignore_errors=True)


def check_inputs(args) -> None:
    """The run's input, read before pytest starts: a wrong rig file, specification or
    fault name, or an expired calibration, is one line on stderr and exit 2 (rigcli.main),
    and no run directory is left behind. The plugin checks the same for plain pytest; a
    labgrid environment's rigs are read there (its places must be checked anyway)."""
    from drivers.errors import ConfigError
    from fixtures.plugin import calibration_refusal
    from rigs.config import load_rig
    from rigs.emulator.faults import check_faults
    from verification.spec import load_spec

    if args.lg_env:
        if not Path(args.lg_env).is_file():
            raise ConfigError(f"{args.lg_env}: no such labgrid environment file (--lg-env)")
        return
    for source in args.rig or [None]:
        rig = load_rig(source)
        load_spec(args.spec or rig.table.specification)
        if args.fault and not rig.is_emulated:
            raise ConfigError(f"--fault {args.fault[0]}: faults exist only on an emulated rig, {rig.name} is a bench")
        check_faults(rig.table.kind, args.fault or [])  # the catalogue of the rig's own table kind
        if getattr(args, "wear", None) and not rig.is_emulated:
            raise ConfigError(f"--wear: only an emulated table wears on request, {rig.name} is a bench")
        refusal = None if args.allow_expired_calibration else calibration_refusal(rig)
        if refusal is not None:
            raise refusal


def check_database(url: str) -> None:
    """The results database opened, and its schema brought up to date, before the suites
    run: a URL that is no database (exit 2) or a database that cannot be reached (exit 1)
    is said now, in the words the record step would use, not after an hour of testing."""
    from reports.history.store import Store

    with Store(url):
        pass


ANNOUNCE_NAME = "run-dirs"


def check_panel_host(args) -> None:
    """--panel-host beyond the loopback: RigError (one line, exit 2) without
    --panel-allow-remote, else one warning line on stderr."""
    import sys

    from rigcli.exposure import panel_listen

    warning = panel_listen(args.panel_host, getattr(args, "panel_allow_remote", False), option="--panel-host",
                           allow_option="--panel-allow-remote")
    if warning is not None:
        print(f"rig: {warning}", file=sys.stderr, flush=True)


def start_panel(args, console: Console):
    """The panel process, serving before the suites start, and the folder of the announce
    file its run directories are appended to (one per rig). Its URL, printed here, carries
    the run's key; nothing else does (docs/panel.md)."""
    from rigcli.panel import announce_lines, start_child

    announce_dir = Path(tempfile.mkdtemp(prefix="rig-panel-"))
    try:
        (announce_dir / ANNOUNCE_NAME).touch()
        panel = start_child(announce_dir / ANNOUNCE_NAME, args.panel_host, args.panel_port,
                            allow_remote=getattr(args, "panel_allow_remote", False))
    except BaseException:
        shutil.rmtree(announce_dir, ignore_errors=True)
        raise
    for line in announce_lines(panel.url, panel.remote_url):
        console.print(line, soft_wrap=True, highlight=False)
    return panel, announce_dir


def linger(panel, seconds: float, console: Console) -> None:
    """Keep the page up a while after the run, for a last look at the verdicts and reports."""
    if seconds <= 0 or panel.process.poll() is not None:
        return
    console.print(f"panel: still serving {panel.url} for {seconds:g} s (Ctrl-C stops it)", soft_wrap=True,
                  highlight=False)
    try:
        panel.process.wait(seconds)
    except subprocess.TimeoutExpired:
        pass
    except KeyboardInterrupt:
        pass


def run_and_report(pytest_args: list[str], args, console: Console, lab, url, workers: int) -> int:
    """pytest on the suites, then each run's verdict table, history review and report."""
    probe = RunDirProbe()
    code = pytest.main(pytest_args, plugins=[probe])
    if not probe.run_dirs:
        if not probe.open_error:  # else its one line on stderr said why
            console.print("[red]no run record was written (the rig did not open)[/]")
        return rig_run_exit_status(code, [], open_error=bool(probe.open_error))
    if len(probe.run_dirs) < workers:
        console.print(f"[red]only {len(probe.run_dirs)} of {workers} rigs wrote a run record[/]")
        code = code or 1
    overall = []
    for run_dir in sorted(probe.run_dirs):
        history = record_history(run_dir, args, url)
        overall.append(print_verdicts(run_dir, console, history))
        if not args.no_report:
            from reports.render import ReportError, render_report

            try:
                for path in render_report(run_dir, None, signing_key=lab.signing.private_key):
                    console.print(f"report: {path}")
            except ReportError as exc:
                console.print(f"[red]rig: the compliance report could not be rendered: {exc}[/]")
                code = code or 1
            seal_history(run_dir, url, console)
    if len(overall) > 1:  # side by side: one line a rig, so no verdict scrolls out of sight
        console.print(f"{len(overall)} rigs:")
        for run_dir, verdict in zip(sorted(probe.run_dirs), overall):
            console.print(f"  [{STYLE[verdict]}]{verdict:<12}[/] {run_dir}")
    unsafe = not_confirmed_safe(probe.run_dirs)
    for line in unsafe:  # the last thing on the terminal: it outweighs every verdict above
        print(line, file=sys.stderr)
    return rig_run_exit_status(code, overall, open_error=bool(probe.open_error), not_safe=bool(unsafe))


def not_confirmed_safe(run_dirs) -> list[str]:
    """The TABLE NOT CONFIRMED SAFE lines the runs recorded (rigs/safe_state.py), read from
    the records: an xdist worker's own exit status does not reach this process."""
    lines = []
    for run_dir in run_dirs:
        try:
            events = read_record(run_dir)
        except Exception:  # noqa: BLE001 — a record that cannot be read is reported elsewhere
            continue
        lines += [e.get("line") or "TABLE NOT CONFIRMED SAFE" for e in lines_of(events, Event.TABLE_NOT_SAFE)]
    return lines
