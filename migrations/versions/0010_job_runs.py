"""The scheduler's last run per model and job (metrics, rules): when it last succeeded, how long
it took, its last error — what /metrics exposes as job durations and last-success timestamps.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE job_runs (
            model            text NOT NULL,
            job              text NOT NULL CHECK (job IN ('metrics', 'rules')),
            last_success_at  timestamptz,
            last_duration_s  double precision,
            last_error       text,
            last_error_at    timestamptz,
            PRIMARY KEY (model, job)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE job_runs")
