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

        -- Hourly summaries of the prediction log, on the edges of one reference. Merging them
        -- (adding counts) gives any window's summary; the drift tests read those.
        CREATE TABLE bucket_summaries (
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            reference_id     integer NOT NULL REFERENCES reference_datasets (id) ON DELETE CASCADE,
            bucket_start     timestamptz NOT NULL,
            column_name      text NOT NULL,
            segment          text NOT NULL DEFAULT '',  -- '' for all rows, else 'column=value'
            n_rows           bigint NOT NULL,
            summary          jsonb NOT NULL,
            computed_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model_version_id, reference_id, bucket_start, column_name, segment)
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
