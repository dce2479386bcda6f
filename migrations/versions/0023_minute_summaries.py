"""Minute summaries: ``bucket_summaries`` rows with ``bucket_hours`` 0.

The scheduler folds each minute's deltas into a minute summary beside its hour's, for the last
day and two hours (``monitor.services.jobs.windows.MINUTE_HORIZON``): a window up to a day long then
slides by the minute, its whole hours read from hour summaries and the part-hours at its ends from
minute summaries. The partial index serves the retention that drops minutes past the horizon.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE bucket_summaries DROP CONSTRAINT bucket_summaries_bucket_hours_check;
        ALTER TABLE bucket_summaries ADD CONSTRAINT bucket_summaries_bucket_hours_check
            CHECK (bucket_hours IN (0, 1, 24, 168));
        CREATE INDEX bucket_summaries_minutes ON bucket_summaries (bucket_start) WHERE bucket_hours = 0;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX bucket_summaries_minutes;
        DELETE FROM bucket_summaries WHERE bucket_hours = 0;
        ALTER TABLE bucket_summaries DROP CONSTRAINT bucket_summaries_bucket_hours_check;
        ALTER TABLE bucket_summaries ADD CONSTRAINT bucket_summaries_bucket_hours_check
            CHECK (bucket_hours IN (1, 24, 168));
        """
    )
