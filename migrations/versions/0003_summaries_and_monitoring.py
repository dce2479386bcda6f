"""Feature summaries (reference and hourly) for drift at any window size; monitoring settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- How each model is monitored: schedule, windows, tests (see monitor.domain.monitoring).
        ALTER TABLE models ADD COLUMN monitoring jsonb NOT NULL DEFAULT '{}';

        -- One summary per column of the reference ("features.<name>", "prediction", "scores.<class>"):
        -- the edges every hourly summary of that column is counted on.
        CREATE TABLE reference_summaries (
            reference_id integer NOT NULL REFERENCES reference_datasets (id) ON DELETE CASCADE,
            model_id     integer NOT NULL,
            column_name  text NOT NULL,
            summary      jsonb NOT NULL,
            PRIMARY KEY (reference_id, column_name)
        );

        -- Summaries of the prediction log per hour (bucket_hours = 1) and per day (24, merged from
        -- the hours when a window first needs that day, dropped when one of its hours is summarised
        -- again), on the edges of one reference. Merging them (adding counts) gives any window's
        -- summary, so a 30-day window reads 30 day rows per column, not 720 hours.
        CREATE TABLE bucket_summaries (
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            reference_id     integer NOT NULL REFERENCES reference_datasets (id) ON DELETE CASCADE,
            bucket_start     timestamptz NOT NULL,
            bucket_hours     smallint NOT NULL CHECK (bucket_hours IN (1, 24)),
            column_name      text NOT NULL,
            segment          text NOT NULL DEFAULT '',  -- '' for all rows, else 'column=value'
            n_rows           bigint NOT NULL,
            stats            jsonb NOT NULL,  -- n, missing, min, max, sums; or category counts
            counts           bytea,           -- numerical: int64 counts on the reference's buckets
            computed_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model_version_id, reference_id, bucket_hours, bucket_start, column_name, segment)
        );
        CREATE INDEX bucket_summaries_window ON bucket_summaries (model_id, bucket_start);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE bucket_summaries;
        DROP TABLE reference_summaries;
        ALTER TABLE models DROP COLUMN monitoring;
        """
    )
