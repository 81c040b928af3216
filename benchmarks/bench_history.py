"""Figures of the results database, on SQLite and on a real PostgreSQL server, idle and
with two busy loops on this 2-core machine.

- ingest: one full run (the main job's run directory: every emergency trial, every
  setpoint) into the database, as `rig run` does it (ingest + drift review), per run;
  goal <= 1 s;
- trend query: one table serial + one requirement when that table has 10,000 runs
  (synthetic rows; the whole series, and the last 21 that a run's review reads); goal
  <= 100 ms on SQLite;
- bytes per run: the database's size over the full runs ingested.

    python benchmarks/bench_history.py [--run RUN_DIR] [--pg URL] [--runs 10] [--synthetic 10000]

Without --run, the newest complete full run under runs/ is used (or `rig run` makes
one). Without --pg, a throw-away PostgreSQL cluster is started from the Debian
binaries (tests/postgres_server.py). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from reports.history.models import RequirementResult, Run  # noqa: E402
from reports.history.review import record_and_review, review  # noqa: E402
from reports.history.store import Store, run_rows  # noqa: E402
from reports.record import RECORD_NAME  # noqa: E402

SERIAL = "BENCH-0001"


def full_run(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    from reports.verdicts import summarise

    for d in sorted((ROOT / "runs").glob("*/"), reverse=True):
        try:
            s = summarise(d)
        except Exception:  # noqa: BLE001 — any folder that is not a full run
            continue
        if s.complete and all(r.verdict != "NOT RUN" for r in s.results):
            return d
    out = Path(tempfile.mkdtemp(prefix="bench-history-run-"))
    subprocess.run([sys.executable, "-m", "rigcli", "run", "--run-dir", str(out), "--no-report", "--no-history"],
                   cwd=ROOT, check=False, stdout=subprocess.DEVNULL)
    return next(p for p in out.iterdir() if p.is_dir())


def copies(run: Path, n: int, where: Path) -> list[Path]:
    """n runs of one table: the run with its run-start line changed (a new run key each)."""
    out = []
    for i in range(n):
        dst = where / f"copy-{i:03d}"
        if not dst.exists():
            shutil.copytree(run, dst, ignore=shutil.ignore_patterns("report", "history.json", "MANIFEST*"))
            lines = (dst / RECORD_NAME).read_text().splitlines()
            start = json.loads(lines[0])
            start["utc"] = (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=i)).isoformat()
            lines[0] = json.dumps(start)
            (dst / RECORD_NAME).write_text("\n".join(lines) + "\n")
        out.append(dst)
    return out


def synthesise(store: Store, n: int, requirements: list[str]) -> None:
    """n runs of SERIAL with one requirement row per requirement: what the trend query reads."""
    now = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    base = {"run_dir": "/synthetic", "rig_name": "bench", "emulated": True, "table_kind": "lumbar", "table_model": "x",
            "table_serial": SERIAL, "firmware": 259, "spec_name": "lumbar", "spec_version": "1.1", "spec_sha256": "0" * 64,
            "software_version": "0.1.0", "git_commit": None, "git_dirty": None, "operator": "bench", "gauge_model": "g",
            "gauge_serial": "g", "calibration_certificate": "c", "calibration_due": "2027-01-01",
            "calibration_expired": False, "instruments": {}, "ended_utc": None, "status": "COMPLETE", "overall": "PASS",
            "manifest_sha256": None, "signed": False, "measurement_count": 0, "ingested_utc": now}
    with store.engine.begin() as conn:
        chunk = 2000
        for start in range(0, n, chunk):
            runs = [{**base, "run_key": f"synthetic-{i:08d}", "started_utc": now + dt.timedelta(hours=i)}
                    for i in range(start, min(n, start + chunk))]
            ids = conn.execute(insert(Run).returning(Run.id, sort_by_parameter_order=True), runs).scalars().all()
            rows = [{"run_id": rid, "requirement": req, "table_serial": SERIAL, "started_utc": r["started_utc"],
                     "verdict": "PASS", "decision_rule": "guard-banded",
                     "value": 0.06 + 1e-6 * k, "unit": "s", "lower": None, "upper": 0.5, "uncertainty": 0.008,
                     "measurements": 40, "not_applicable": 0, "tur_flags": 0, "worst_test": "t", "worst_name": "n"}
                    for k, (rid, r) in enumerate(zip(ids, runs)) for req in requirements]
            conn.execute(insert(RequirementResult), rows)
    with store.engine.begin() as conn:  # the statistics autovacuum / a DBA would have by now
        conn.exec_driver_sql("ANALYZE")


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e6)
    return out


def size_bytes(store: Store) -> int:
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            return pages * conn.exec_driver_sql("PRAGMA page_size").scalar()
        return conn.execute(text("SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['runs', "
                                 "'requirement_results', 'measurements']) AS c")).scalar()


def bench(name: str, url: str, runs: list[Path], synthetic: int) -> None:
    with Store(url) as store:
        requirements = [r["requirement"] for r in run_rows(runs[0])["requirements"]]
        ingest = []
        for run in runs:
            t = time.perf_counter_ns()
            record_and_review(run, url)
            ingest.append((time.perf_counter_ns() - t) / 1e6)
            (run / "history.json").unlink()
        measurements = run_rows(runs[0])["run"]["measurement_count"]
        per_run = size_bytes(store) / len(runs)
        print(f"  {name:<10} ingest + review of a full run ({measurements} measurements): median {statistics.median(ingest):6.0f} ms, "
              f"max {max(ingest):6.0f} ms over {len(runs)} runs (goal <= 1000 ms); {per_run / 1024:.0f} KiB per run")
        t = time.perf_counter_ns()
        synthesise(store, synthetic, requirements)
        print(f"  {name:<10} {synthetic} synthetic runs of one table written in {(time.perf_counter_ns() - t) / 1e9:.1f} s")
        whole = timed(lambda: store.trend(SERIAL, "ER-HALF"), 15)
        window = timed(lambda: store.trend(SERIAL, "ER-HALF", limit=21), 15)
        reviewed = timed(lambda: review(store, SERIAL), 5)
        with store.engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(Run).where(Run.table_serial == SERIAL)).scalar()
        print(f"  {name:<10} trend query, {n} runs of the table: whole series median {statistics.median(whole):6.1f} ms "
              f"(max {max(whole):.1f}; goal <= 100 ms); last 21 runs {statistics.median(window):5.1f} ms; "
              f"review of all {len(requirements)} requirements {statistics.median(reviewed):6.1f} ms")


def _spin() -> None:
    while True:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a full run directory (default: newest under runs/)")
    parser.add_argument("--pg", metavar="URL", help="a PostgreSQL database to use (default: a throw-away cluster)")
    parser.add_argument("--runs", type=int, default=10, help="full runs to ingest (default 10)")
    parser.add_argument("--synthetic", type=int, default=10_000, help="synthetic runs for the query (default 10000)")
    parser.add_argument("--no-load", action="store_true", help="idle only")
    args = parser.parse_args()

    run = full_run(args.run)
    work = Path(tempfile.mkdtemp(prefix="bench-history-"))
    runs = copies(run, args.runs, work)
    server = None
    if not args.pg:
        from tests.postgres_server import PostgresServer

        server = PostgresServer().start()
    print(f"results database figures, {dt.date.today()}: full run {run}")
    try:
        # a database given by --pg is used once (idle): a second pass would find its runs recorded
        for load in ([False] if args.no_load or args.pg else [False, True]):
            spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(2 if load else 0)]
            for p in spinners:
                p.start()
            label = "two busy loops" if load else "idle"
            print(f"{label}:")
            tag = "loaded" if load else "idle"
            bench("SQLite", f"sqlite:///{work / f'{tag}.sqlite'}", runs, args.synthetic)
            pg = args.pg or server.create_database(f"bench_{tag}")
            bench("PostgreSQL", pg, runs, args.synthetic)
            for p in spinners:
                p.terminate()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
