"""Week summaries: a window holding whole weeks reads one merged summary per week and column.

A 30-day window read ~30 day summaries a column; with weeks (Monday to Monday, UTC), ~10.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE bucket_summaries DROP CONSTRAINT bucket_summaries_bucket_hours_check;
        ALTER TABLE bucket_summaries ADD CONSTRAINT bucket_summaries_bucket_hours_check
            CHECK (bucket_hours IN (1, 24, 168));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM bucket_summaries WHERE bucket_hours = 168;
        ALTER TABLE bucket_summaries DROP CONSTRAINT bucket_summaries_bucket_hours_check;
        ALTER TABLE bucket_summaries ADD CONSTRAINT bucket_summaries_bucket_hours_check
            CHECK (bucket_hours IN (1, 24));
        """
    )
