"""A count of each scheduler job's failures (monitor_job_failures_total in /metrics).

A window or an hour that fails on the data it holds is now skipped and reported rather than
failing the whole run for ever; the count tells how often that happened.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE job_runs ADD COLUMN failures bigint NOT NULL DEFAULT 0")


def downgrade() -> None:
    op.execute("ALTER TABLE job_runs DROP COLUMN failures")
