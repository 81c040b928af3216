"""The results store: open a database by URL (upgrading its schema), ingest run
directories, answer the history's questions.

One URL names the database: `--db`, else `$TRACTION_RIG_DB`, else the lab config's
`database` (reports/lab_config.py: a lab shares one database, so it is not a rig file's
business), else the SQLite file `history.sqlite` beside the run directories. SQLite runs in WAL mode with a busy
timeout, so parallel rigs (several `rig run`s on one machine) can all write. Every
failure to reach or use the database is a `HistoryError` with one line; a run on disk
is never touched by a failed ingest, and importing it again later completes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, delete, event, func, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from drivers.errors import EXIT_FAILED, ConfigError, RigError
from reports.history.models import MeasurementRow, RequirementResult, Run
from reports.manifest import evidence_sha256, sha256_file
from reports.rundir import (EVENT_KEY, MANIFEST_NAME, RECORD_NAME, SIGNATURE_NAME, SPEC_COPY_NAME, Event,
                            MeasurementLine, damage_text, first_record_line, parse_stamp)
from reports.verdicts import summarise, verdict_rows

DB_ENV = "TRACTION_RIG_DB"
DEFAULT_DB_NAME = "history.sqlite"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class HistoryError(RigError):
    """The results database cannot be reached or used; one line, naming it."""

    exit_status = EXIT_FAILED  # the database failed, not the input (a URL that is no URL: DatabaseURLError)


class DatabaseURLError(HistoryError, ConfigError):
    """The URL itself is wrong (bad input, exit 2), not the database behind it."""


def configured_url(explicit: str | None = None, *, lab_db: str | None = None) -> str | None:
    """The database URL someone chose (--db, $TRACTION_RIG_DB, the lab config), or None."""
    return explicit or os.environ.get(DB_ENV) or lab_db


def resolve_url(explicit: str | None = None, *, lab_db: str | None = None, run_root: Path | None = None) -> str:
    """The database URL that applies (see the module docstring for the order)."""
    url = configured_url(explicit, lab_db=lab_db)
    if url:
        return url
    root = Path(run_root) if run_root else Path("runs")
    return f"sqlite:///{(root / DEFAULT_DB_NAME).resolve()}"


def shown(url: str) -> str:
    """The URL as printed: never a password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


class Store:
    """An open results database whose schema is at the newest migration."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DatabaseURLError(f"results database {url!r}: not a database URL — use e.g. "
                               "sqlite:////path/history.sqlite or postgresql+psycopg://user@host/db") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "postgresql" and parsed.get_driver_name() in ("psycopg2", "default") and "+" not in url.split(":")[0]:
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is what is installed
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).resolve().parent
            if not folder.is_dir():
                raise DatabaseURLError(f"results database {shown(url)}: folder {folder} does not exist — create it "
                                   "or give another --db")
        try:
            kwargs = {"connect_args": {"timeout": 30}} if self.dialect == "sqlite" else \
                {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
            self.engine: Engine = create_engine(parsed, **kwargs)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise DatabaseURLError(f"results database {shown(url)}: {_reason(exc)} — use sqlite:/// or "
                               "postgresql+psycopg://") from None
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if upgrade:
            self.upgrade()

    # ------------------------------------------------------------ schema
    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a new database gets all of them)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":  # two rigs opening a new database at once: one migrates
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7264001)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except (SQLAlchemyError, OSError) as exc:
            raise HistoryError(f"results database {shown(self.url)}: unreachable or unusable ({_reason(exc)})") from None

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ ingest
    def ingest(self, run_dir: Path) -> "Ingested":
        """Put one run directory in (idempotent). A run already in with the same content
        is left as it is; one that was incomplete or not yet sealed is replaced by what
        its folder holds now; a sealed run whose manifest changed since is refused."""
        run_dir = Path(run_dir).resolve()
        rows = run_rows(run_dir)
        run = rows["run"]
        try:
            with self.engine.begin() as conn:
                old = conn.execute(select(Run.id, Run.manifest_sha256, Run.evidence_sha256, Run.status)
                                   .where(Run.run_key == run["run_key"])).first()
                if old is not None:
                    if old.evidence_sha256 and run["evidence_sha256"] != old.evidence_sha256:
                        raise HistoryError(
                            f"{run_dir}: its manifest differs from the one recorded at ingest "
                            f"(evidence sha256 {old.evidence_sha256[:12]}…, now "
                            f"{(run['evidence_sha256'] or 'none')[:12]}…): the run was changed after it was sealed; "
                            "not imported")
                    if (old.manifest_sha256 == run["manifest_sha256"] and old.status == run["status"]):
                        return Ingested(run_dir, old.id, "already recorded", run, rows["damage"])
                    conn.execute(delete(MeasurementRow).where(MeasurementRow.run_id == old.id))
                    conn.execute(delete(RequirementResult).where(RequirementResult.run_id == old.id))
                    conn.execute(delete(Run).where(Run.id == old.id))
                run_id = conn.execute(insert(Run).values(**run).returning(Run.id)).scalar_one()
                if rows["requirements"]:
                    conn.execute(insert(RequirementResult), [
                        {**r, "run_id": run_id, "table_serial": run["table_serial"], "started_utc": run["started_utc"]}
                        for r in rows["requirements"]])
                if rows["measurements"]:
                    conn.execute(insert(MeasurementRow), [{**m, "run_id": run_id} for m in rows["measurements"]])
        except SQLAlchemyError as exc:
            raise HistoryError(f"results database {shown(self.url)}: {run_dir.name} not recorded "
                               f"({_reason(exc)}); the run on disk is kept — `rig history import {run_dir}` "
                               "records it later") from None
        return Ingested(run_dir, run_id, "updated" if old is not None else "recorded", run, rows["damage"])

    def recorded_digest(self, run_dir: Path) -> tuple[str | None, str | None]:
        """(how the run was found: "key", "folder" or None; the evidence digest recorded at
        ingest). Found by its folder's name alone: its run-start line changed since."""
        run_dir = Path(run_dir)
        key = run_key(run_dir)
        with self._connect() as conn:
            row = conn.execute(select(Run.evidence_sha256).where(Run.run_key == key)).first()
            if row is not None:
                return "key", row.evidence_sha256
            name = run_dir.resolve().name
            row = conn.execute(select(Run.evidence_sha256, Run.run_dir).where(Run.run_dir.endswith("/" + name))
                               .order_by(Run.id.desc())).first()
        return ("folder", row.evidence_sha256) if row is not None else (None, None)

    # ------------------------------------------------------------ queries
    def _connect(self):
        try:
            return self.engine.connect()
        except (SQLAlchemyError, DBAPIError) as exc:
            raise HistoryError(f"results database {shown(self.url)}: unreachable ({_reason(exc)})") from None

    def runs(self, *, serial: str | None = None, rig: str | None = None, verdict: str | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int | None = 50) -> list:
        q = select(Run).order_by(Run.started_utc.desc(), Run.id.desc())
        if serial:
            q = q.where(Run.table_serial == serial)
        if rig:
            q = q.where(Run.rig_name == rig)
        if verdict:
            q = q.where(Run.overall == verdict.upper())
        if since:
            q = q.where(Run.started_utc >= since)
        if until:
            q = q.where(Run.started_utc < until)
        if limit:
            q = q.limit(limit)
        with self._connect() as conn:
            return list(conn.execute(q).mappings())

    def count_runs(self, serial: str | None = None) -> int:
        q = select(func.count()).select_from(Run)
        if serial:
            q = q.where(Run.table_serial == serial)
        with self._connect() as conn:
            return conn.execute(q).scalar_one()

    def trend(self, serial: str, requirement: str, *, limit: int | None = None, upto_run_id: int | None = None,
              details: bool = False) -> list:
        """Per run of this table, oldest first: the requirement's worst value, U, limits,
        verdict, as rows with attributes (r.value, r.uncertainty…). `limit`: the newest N only; `upto_run_id`: as the history stood at that
        run (it and the runs before); `details`: with each run's folder, status and
        overall verdict (a join; what a person reads, not what drift needs)."""
        rr = RequirementResult
        cols = [rr.run_id, rr.value, rr.uncertainty, rr.lower, rr.upper, rr.unit, rr.verdict, rr.decision_rule]
        if details:  # dates are a third of a long series' time on SQLite (parsed from text): only when shown
            cols += [rr.started_utc, Run.run_dir, Run.status, Run.overall, Run.spec_version, rr.worst_name]
        q = (select(*cols).where(rr.table_serial == serial, rr.requirement == requirement)
             .order_by(rr.started_utc.desc(), rr.run_id.desc()))
        if details:
            q = q.join(Run, Run.id == rr.run_id)
        if upto_run_id is not None:
            at = select(Run.started_utc).where(Run.id == upto_run_id).scalar_subquery()
            q = q.where((rr.started_utc < at) | ((rr.started_utc == at) & (rr.run_id <= upto_run_id)))
        if limit:
            q = q.limit(limit)
        with self._connect() as conn:
            rows = conn.execute(q).all()  # plain rows: a dict per run would double the time of a long series
        return rows[::-1]

    def requirements_of(self, serial: str) -> list[str]:
        q = (select(RequirementResult.requirement).where(RequirementResult.table_serial == serial)
             .distinct().order_by(RequirementResult.requirement))
        with self._connect() as conn:
            return list(conn.execute(q).scalars())

    def export_rows(self, *, serial: str | None = None, requirement: str | None = None):
        """Every measurement with its run's identity: one flat row each (CSV/Parquet)."""
        cols = [Run.run_key, Run.rig_name, Run.table_kind, Run.table_model, Run.table_serial, Run.spec_name,
                Run.spec_version, Run.software_version, Run.git_commit, Run.operator, Run.gauge_serial,
                Run.calibration_certificate, Run.started_utc, Run.status, Run.overall, Run.manifest_sha256,
                MeasurementRow.seq, MeasurementRow.requirement, MeasurementRow.test, MeasurementRow.name,
                MeasurementRow.trigger, MeasurementRow.phase, MeasurementRow.force_n, MeasurementRow.rate_n_s,
                MeasurementRow.trial, MeasurementRow.value, MeasurementRow.unit, MeasurementRow.lower,
                MeasurementRow.upper, MeasurementRow.uncertainty, MeasurementRow.coverage_factor,
                MeasurementRow.decision_rule, MeasurementRow.verdict, MeasurementRow.tur,
                MeasurementRow.not_applicable, MeasurementRow.conditions]
        q = select(*cols).join(MeasurementRow, MeasurementRow.run_id == Run.id).order_by(Run.started_utc, Run.id,
                                                                                        MeasurementRow.seq)
        if serial:
            q = q.where(Run.table_serial == serial)
        if requirement:
            q = q.where(MeasurementRow.requirement == requirement)
        with self._connect() as conn:
            yield from conn.execute(q).mappings()


@dataclass
class Ingested:
    run_dir: Path
    run_id: int
    action: str  # recorded | updated | already recorded
    run: dict
    damage: tuple = ()  # the record's lines that did not decode (reports.rundir.Damage): skipped, not imported

    @property
    def damage_text(self) -> str | None:
        return damage_text(self.damage)

    def line(self) -> str:
        r = self.run
        sealed = "sealed" if r["manifest_sha256"] else "not sealed"
        return (f"{self.action}: {self.run_dir.name} — table {r['table_serial']}, {r['status'].lower()}, "
                f"{r['overall']}, {r['measurement_count']} measurements, {sealed}")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers and one writer at once: parallel rigs
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent on a crash; a power cut may lose the last ingest, which an import redoes
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# ---------------------------------------------------------------- run directory → rows
def run_key(run_dir: Path) -> str:
    """sha256 of the run-start line as written: the run's identity, wherever it lies."""
    first = first_record_line(run_dir)
    if f'"{Event.RUN_START}"'.encode() not in first:
        raise HistoryError(f"{run_dir}: its record does not start with {Event.RUN_START}: not a traction-rig run")
    return hashlib.sha256(first).hexdigest()


def _float(value) -> float | None:
    if value is None or isinstance(value, str):
        return None
    return float(value)


def _spec_sha256(run_dir: Path, spec: dict) -> str:
    copy = run_dir / SPEC_COPY_NAME
    if copy.is_file():
        return sha256_file(copy)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def run_rows(run_dir: Path) -> dict:
    """The rows one run directory gives: {"run": {...}, "requirements": [...], "measurements": [...]}."""
    run_dir = Path(run_dir)
    if not (run_dir / RECORD_NAME).is_file():
        raise HistoryError(f"{run_dir}: no {RECORD_NAME}: not a traction-rig run directory")
    try:
        summary = summarise(run_dir)
    except (ValueError, KeyError) as exc:
        raise HistoryError(f"{run_dir}: cannot read the run record: {exc}") from None
    s = summary.run_start
    spec = s.specification
    manifest = run_dir / MANIFEST_NAME
    measurements = []
    for seq, e in enumerate(summary.events):  # seq: the line's place among the record's events
        if e.get(EVENT_KEY) != Event.MEASUREMENT:
            continue
        m = MeasurementLine.from_line(e)
        cond = m.conditions
        measurements.append({
            "seq": seq, "requirement": m.id, "test": m.test, "name": m.name,
            "trigger": cond.get("trigger"), "phase": cond.get("phase"),
            "force_n": _float(cond.get("force_n", cond.get("setting_n"))),
            "rate_n_s": _float(cond.get("rate_n_s", cond.get("pull_rate_n_s"))),
            "trial": cond.get("trial") if isinstance(cond.get("trial"), int) else None,
            "conditions": cond,
            "value": (1.0 if m.value else 0.0) if isinstance(m.value, bool) else _float(m.value),
            "unit": m.unit or None, "lower": _float(m.lower), "upper": _float(m.upper),
            # as recorded: a line without its U keeps none here (MeasurementLine reads it as 0)
            "uncertainty": _float(e.get("uncertainty")), "coverage_factor": _float(m.coverage_factor),
            "decision_rule": m.decision_rule, "verdict": m.verdict,
            "tur": _float(m.tur), "not_applicable": m.not_applicable,
        })
    requirements = []
    for row in verdict_rows(summary.results):  # a requirement bounding two quantities: a trend each
        rid, r = row.id, row.tally
        w = r.worst or {}
        value = w.get("value")
        requirements.append({
            "requirement": rid, "verdict": r.verdict, "decision_rule": row.requirement.decision_rule,
            "value": (1.0 if value else 0.0) if isinstance(value, bool) else _float(value),
            "unit": w.get("unit") or None, "lower": _float(w.get("lower")), "upper": _float(w.get("upper")),
            "uncertainty": _float(w.get("uncertainty")), "measurements": r.measurements,
            "not_applicable": r.not_applicable, "tur_flags": r.tur_flags,
            "worst_test": w.get("test"), "worst_name": w.get("name"),
        })
    run = {
        "run_key": run_key(run_dir), "run_dir": str(run_dir.resolve()),
        "rig_name": s.rig_name or "unknown", "emulated": bool(s.emulator),  # an emulator was started for it
        "table_kind": s.table.kind, "table_model": s.table.model, "table_serial": s.table.serial,
        "firmware": s.table.firmware,
        "spec_name": s.spec.name or "?", "spec_version": s.spec.version,
        "spec_sha256": _spec_sha256(run_dir, spec),
        "software_version": s.software.get("traction_rig"), "git_commit": s.software.get("git_commit"),
        "git_dirty": s.software.get("git_dirty"), "operator": s.operator,
        "gauge_model": s.gauge.model, "gauge_serial": s.gauge.serial,
        "calibration_certificate": s.gauge.calibration.certificate, "calibration_due": s.gauge.calibration.due,
        "calibration_expired": s.gauge.calibration.expired,
        # the instruments as the line holds them, whole
        "instruments": {"gauge": s.line.get("gauge") or {}, "controller": s.line.get("table"),
                        "emulator": s.emulator},
        "started_utc": parse_stamp(s.utc), "ended_utc": parse_stamp((summary.end or {}).get("utc")),
        # DAMAGED: lines of the record did not decode and were skipped (the record on disk names them)
        "status": "DAMAGED" if summary.damage else "COMPLETE" if summary.complete else "INCOMPLETE",
        "overall": summary.overall,
        "manifest_sha256": sha256_file(manifest) if manifest.is_file() else None,
        "evidence_sha256": evidence_sha256(run_dir),
        "signed": (run_dir / SIGNATURE_NAME).is_file(),
        "measurement_count": len(measurements),
        "ingested_utc": dt.datetime.now(dt.timezone.utc),
    }
    return {"run": run, "requirements": requirements, "measurements": measurements, "damage": summary.damage}
