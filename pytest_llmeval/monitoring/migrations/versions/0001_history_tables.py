"""Run history: one row per run, per-suite and per-metric aggregates, optional per-case scores.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _per_run_table(name: str, *columns: sa.Column) -> None:
    """A table whose rows belong to one run (deleted with it)."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("llm_eval_runs.id", ondelete="CASCADE"), nullable=False, index=True),
        *columns,
    )


def _measures(*names: str) -> list[sa.Column]:
    """Numbers a run may not have (no usage, no baseline): nullable floats."""
    return [sa.Column(name, sa.Float, nullable=True) for name in names]


# The schema's one definition: monitoring/history.py reflects these tables from the migrated
# database. A schema change is a new revision; this one stays as it is.
def upgrade() -> None:
    op.create_table(
        "llm_eval_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_uid", sa.String(64), nullable=False, unique=True),
        sa.Column("started_at", sa.DateTime, nullable=False, index=True),
        sa.Column("finished_at", sa.DateTime, nullable=True),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_branch", sa.String(255), nullable=True),
        sa.Column("plugin_version", sa.String(32), nullable=False),
        sa.Column("report_schema_version", sa.Integer, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
    )
    _per_run_table(
        "llm_eval_suite_results",
        sa.Column("suite_id", sa.String(1024), nullable=False, index=True),
        sa.Column("dataset", sa.String(2048), nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("cases_run", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("failed_cases", sa.Integer, nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        *_measures("cost_total", "cost_mean", "latency_p50_ms", "latency_p95_ms", "error_rate"),
    )
    _per_run_table(
        "llm_eval_metric_results",
        sa.Column("suite_id", sa.String(1024), nullable=False, index=True),
        sa.Column("metric", sa.String(255), nullable=False, index=True),
        sa.Column("n", sa.Integer, nullable=False),
        *_measures("mean", "ci_low", "ci_high", "threshold", "baseline_mean", "change", "p_value"),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("regressed", sa.Boolean, nullable=False),
    )
    _per_run_table(
        "llm_eval_case_scores",
        sa.Column("suite_id", sa.String(1024), nullable=False),
        sa.Column("case_id", sa.String(1024), nullable=False),
        sa.Column("repeat", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(255), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("llm_eval_case_scores", "llm_eval_metric_results", "llm_eval_suite_results", "llm_eval_runs"):
        op.drop_table(table)
