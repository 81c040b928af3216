"""initial schema: runs, requirement_results, measurements

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_key", sa.String(64), nullable=False, unique=True),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("rig_name", sa.String(200), nullable=False),
        sa.Column("emulated", sa.Boolean, nullable=False),
        sa.Column("table_kind", sa.String(20), nullable=False),
        sa.Column("table_model", sa.String(200)),
        sa.Column("table_serial", sa.String(100), nullable=False),
        sa.Column("firmware", sa.Integer),
        sa.Column("spec_name", sa.String(100), nullable=False),
        sa.Column("spec_version", sa.String(40)),
        sa.Column("spec_sha256", sa.String(64), nullable=False),
        sa.Column("software_version", sa.String(40)),
        sa.Column("git_commit", sa.String(40)),
        sa.Column("git_dirty", sa.Boolean),
        sa.Column("operator", sa.String(200)),
        sa.Column("gauge_model", sa.String(200)),
        sa.Column("gauge_serial", sa.String(100)),
        sa.Column("calibration_certificate", sa.String(200)),
        sa.Column("calibration_due", sa.String(10)),
        sa.Column("calibration_expired", sa.Boolean),
        sa.Column("instruments", sa.JSON, nullable=False),
        sa.Column("started_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_utc", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("overall", sa.String(16), nullable=False),
        sa.Column("manifest_sha256", sa.String(64)),
        sa.Column("evidence_sha256", sa.String(64)),
        sa.Column("signed", sa.Boolean, nullable=False),
        sa.Column("measurement_count", sa.Integer, nullable=False),
        sa.Column("ingested_utc", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_runs_rig_name", "runs", ["rig_name"])
    op.create_index("ix_runs_overall", "runs", ["overall"])
    op.create_index("ix_runs_serial_started", "runs", ["table_serial", "started_utc"])
    op.create_table(
        "requirement_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requirement", sa.String(40), nullable=False),
        sa.Column("table_serial", sa.String(100), nullable=False),
        sa.Column("started_utc", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("decision_rule", sa.String(20), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(20)),
        sa.Column("lower", sa.Float),
        sa.Column("upper", sa.Float),
        sa.Column("uncertainty", sa.Float),
        sa.Column("measurements", sa.Integer, nullable=False),
        sa.Column("not_applicable", sa.Integer, nullable=False),
        sa.Column("tur_flags", sa.Integer, nullable=False),
        sa.Column("worst_test", sa.Text),
        sa.Column("worst_name", sa.Text),
        sa.UniqueConstraint("run_id", "requirement", name="uq_requirement_results_run_requirement"),
    )
    op.create_index("ix_requirement_results_trend", "requirement_results",
                    ["table_serial", "requirement", "started_utc", "run_id"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("requirement", sa.String(40), nullable=False),
        sa.Column("test", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(40)),
        sa.Column("phase", sa.String(40)),
        sa.Column("force_n", sa.Float),
        sa.Column("rate_n_s", sa.Float),
        sa.Column("trial", sa.Integer),
        sa.Column("conditions", sa.JSON, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(20)),
        sa.Column("lower", sa.Float),
        sa.Column("upper", sa.Float),
        sa.Column("uncertainty", sa.Float),
        sa.Column("coverage_factor", sa.Float),
        sa.Column("decision_rule", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("tur", sa.Float),
        sa.Column("not_applicable", sa.Text),
    )
    op.create_index("ix_measurements_run_id", "measurements", ["run_id"])
    op.create_index("ix_measurements_requirement", "measurements", ["requirement"])


def downgrade() -> None:
    op.drop_table("measurements")
    op.drop_table("requirement_results")
    op.drop_table("runs")
