"""The dashboard reads a version's points by window end (every metric of a time range); the
existing indexes lead with the model and the metric.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX metric_points_version_end ON metric_points (model_version_id, window_end)")


def downgrade() -> None:
    op.execute("DROP INDEX metric_points_version_end")
