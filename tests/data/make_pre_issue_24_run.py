"""How tests/data/pre-issue-24-run.tar.xz and its .expected.json were made — run ONCE,
under the code from BEFORE issue 24 (commit 8108879), never by the tests.

The fixture is a run that code recorded (`rig run --profile quick -k …` on the emulated
lumbar table: 12 tests, sealed), with its report/ and allure-results/ left out (5 MB of
rendering, not evidence) and re-sealed by that code's own manifest function. With the
same code this script then records what that code made of the run: the verdict table
`rig run` prints, what `rig verify` says, the rows and digest `rig history import`
writes, and the rendered report's content (tests/report_content.py, standard library
only, reads both sides). tests/test_old_runs.py checks today's code against it.

    cd OLD_CHECKOUT && PYTHONPATH=$PWD /work/main/.venv/bin/python \
        /work/main/tests/data/make_pre_issue_24_run.py OLD_CHECKOUT/small/RUN_NAME
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARBALL = HERE / "pre-issue-24-run.tar.xz"
EXPECTED = HERE / "pre-issue-24-run.expected.json"
LEFT_OUT = ("report", "allure-results", "MANIFEST.sha256", "MANIFEST.sha256.sig")
#: columns that differ on every import by design: where the run lies, when it was imported, row ids
VOLATILE_COLUMNS = ("id", "run_id", "run_dir", "ingested_utc")
RUN_PLACEHOLDER = "{RUN}"


def _load_report_content():
    spec = importlib.util.spec_from_file_location("report_content", HERE.parent / "report_content.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.report_content


def database_rows(db: Path) -> dict:
    """Every row of the results database, table by table, without the volatile columns."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    out = {}
    for table in ("runs", "requirement_results", "measurements"):
        rows = [{k: r[k] for k in r.keys() if k not in VOLATILE_COLUMNS}
                for r in con.execute(f"SELECT * FROM {table} ORDER BY id")]
        out[table] = rows
    con.close()
    return out


def cli(main, argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"status": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


def placeholders(obj, run_dir: Path, scratch: Path):
    text = json.dumps(obj, ensure_ascii=False, sort_keys=True)
    for path in (run_dir, run_dir.resolve()):
        text = text.replace(str(path), RUN_PLACEHOLDER)
    text = text.replace(str(scratch.resolve()), "{SCRATCH}").replace(str(scratch), "{SCRATCH}")
    return json.loads(text)


def expectations(run_dir: Path, scratch: Path) -> dict:
    """What the code imported here makes of the run directory at `run_dir` (left as it was)."""
    from reports.render import render_report
    from reports.verdicts import format_value, summarise, verdict_rows
    from rigcli.main import main

    summary = summarise(run_dir)
    table = [[row.id, *format_value(row.tally.worst), row.tally.verdict] for row in verdict_rows(summary.results)]
    verify_alone = cli(main, ["verify", str(run_dir)])
    db = scratch / "history.sqlite"
    url = f"sqlite:///{db}"
    imported = cli(main, ["history", "import", str(run_dir), "--db", url])
    again = cli(main, ["history", "import", str(run_dir), "--db", url])
    verify_db = cli(main, ["verify", str(run_dir), "--db", url])
    rows = database_rows(db)
    # the report is rendered from a copy: rendering re-writes the run's manifest
    copy = scratch / "render" / run_dir.name
    shutil.copytree(run_dir, copy)
    out = scratch / "report-out"
    written = render_report(copy, out, pdf=False)
    content = _load_report_content()((out / "report.html").read_text(encoding="utf-8"))
    result = {"verdict_table": table, "overall": summary.overall, "complete": summary.complete,
              "verify": verify_alone, "import": imported, "import_again": again, "verify_with_database": verify_db,
              "database": rows, "report_files_written": [p.name for p in written], "report": content}
    return placeholders(placeholders(result, copy, scratch), run_dir, scratch)


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def build(source: Path) -> None:
    import reports
    from reports.manifest import write_manifest

    if not Path(reports.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        sys.exit(f"reports imported from {reports.__file__}, not from the old checkout in {Path.cwd()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = tmp / "pack" / source.name
        shutil.copytree(source, run, ignore=lambda d, names: [n for n in names if Path(d) == source and n in LEFT_OUT])
        write_manifest(run)
        with tarfile.open(TARBALL, "w:xz", preset=9) as tar:
            for path in sorted([run, *run.rglob("*")]):
                tar.add(path, arcname=path.relative_to(run.parent).as_posix(), recursive=False, filter=_tar_filter)
        # the expectations are taken from the run as the test will see it: unpacked from the tarball
        unpacked = tmp / "unpacked"
        with tarfile.open(TARBALL) as tar:
            tar.extractall(unpacked, filter="data")
        scratch = tmp / "scratch"
        scratch.mkdir()
        os.environ.pop("TRACTION_RIG_DB", None)
        os.environ.pop("TRACTION_RIG_LAB", None)
        result = expectations(unpacked / source.name, scratch)
    result["made_by"] = {"commit": os.popen("git rev-parse HEAD").read().strip(), "run": source.name}
    EXPECTED.write_text(json.dumps(result, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{TARBALL} ({TARBALL.stat().st_size} bytes), {EXPECTED}")


if __name__ == "__main__":
    build(Path(sys.argv[1]).resolve())
