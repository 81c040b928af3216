"""The schema of the results database (SQLAlchemy 2 declarative models).

Three tables: one row per run, one per requirement of each run (its verdict and the
worst value that decided it, which is what a trend follows), one per measurement (every
trial, for whoever analyses elsewhere). The schema is created and changed only by the
Alembic migrations in `migrations/versions`; these models must match the newest one
(tests/test_history.py compares them).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: sha256 of the run-start line: the same run has the same key wherever its folder moves
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    run_dir: Mapped[str] = mapped_column(Text)
    rig_name: Mapped[str] = mapped_column(String(200), index=True)
    emulated: Mapped[bool] = mapped_column(Boolean)
    table_kind: Mapped[str] = mapped_column(String(20))
    table_model: Mapped[str | None] = mapped_column(String(200))
    table_serial: Mapped[str] = mapped_column(String(100))
    firmware: Mapped[int | None] = mapped_column(Integer)
    spec_name: Mapped[str] = mapped_column(String(100))
    spec_version: Mapped[str | None] = mapped_column(String(40))
    spec_sha256: Mapped[str] = mapped_column(String(64))
    software_version: Mapped[str | None] = mapped_column(String(40))
    git_commit: Mapped[str | None] = mapped_column(String(40))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    operator: Mapped[str | None] = mapped_column(String(200))
    gauge_model: Mapped[str | None] = mapped_column(String(200))
    gauge_serial: Mapped[str | None] = mapped_column(String(100))
    calibration_certificate: Mapped[str | None] = mapped_column(String(200))
    calibration_due: Mapped[str | None] = mapped_column(String(10))
    calibration_expired: Mapped[bool | None] = mapped_column(Boolean)
    instruments: Mapped[dict] = mapped_column(JSON)
    started_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    ended_utc: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12))  # COMPLETE | INCOMPLETE (cut: no run-end) | DAMAGED (lines skipped)
    overall: Mapped[str] = mapped_column(String(16), index=True)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))  # the sealed manifest's digest at ingest
    #: the digest of the manifest's evidence lines (all but report/, which may be rendered again)
    evidence_sha256: Mapped[str | None] = mapped_column(String(64))
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    measurement_count: Mapped[int] = mapped_column(Integer)
    ingested_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))

    requirements: Mapped[list["RequirementResult"]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                                   passive_deletes=True)

    __table_args__ = (Index("ix_runs_serial_started", "table_serial", "started_utc"),)


class RequirementResult(Base):
    __tablename__ = "requirement_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    requirement: Mapped[str] = mapped_column(String(40))
    #: the run's table serial and start, copied here so a table's trend is one index range
    #: scan without a join (10,000 runs of a table in well under 100 ms on SQLite)
    table_serial: Mapped[str] = mapped_column(String(100))
    started_utc: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    verdict: Mapped[str] = mapped_column(String(16))
    decision_rule: Mapped[str] = mapped_column(String(20))
    value: Mapped[float | None] = mapped_column(Float)  # the worst (deciding) value; None: NOT RUN or never reached
    unit: Mapped[str | None] = mapped_column(String(20))
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)  # expanded, k = 2
    measurements: Mapped[int] = mapped_column(Integer)
    not_applicable: Mapped[int] = mapped_column(Integer)
    tur_flags: Mapped[int] = mapped_column(Integer)
    worst_test: Mapped[str | None] = mapped_column(Text)
    worst_name: Mapped[str | None] = mapped_column(Text)

    run: Mapped[Run] = relationship(back_populates="requirements")

    __table_args__ = (UniqueConstraint("run_id", "requirement", name="uq_requirement_results_run_requirement"),
                      Index("ix_requirement_results_trend", "table_serial", "requirement", "started_utc", "run_id"))


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # order in the run record
    requirement: Mapped[str] = mapped_column(String(40), index=True)
    test: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str | None] = mapped_column(String(40))
    phase: Mapped[str | None] = mapped_column(String(40))
    force_n: Mapped[float | None] = mapped_column(Float)
    rate_n_s: Mapped[float | None] = mapped_column(Float)
    trial: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[dict] = mapped_column(JSON)
    value: Mapped[float | None] = mapped_column(Float)  # a boolean check: 1.0 held, 0.0 violated
    unit: Mapped[str | None] = mapped_column(String(20))
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    coverage_factor: Mapped[float | None] = mapped_column(Float)
    decision_rule: Mapped[str] = mapped_column(String(20))
    verdict: Mapped[str] = mapped_column(String(16))
    tur: Mapped[float | None] = mapped_column(Float)
    not_applicable: Mapped[str | None] = mapped_column(Text)
