"""Metric points: every number the dashboard plots and the rules read, one table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE metric_points (
            id               bigserial PRIMARY KEY,
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            metric           text NOT NULL,
            -- feature, segment, segment_value, method, class...: what the number is about
            labels           jsonb NOT NULL DEFAULT '{}',
            window_start     timestamptz NOT NULL,
            window_end       timestamptz NOT NULL CHECK (window_end > window_start),
            value            double precision,
            sample_size      bigint NOT NULL,
            reference_size   bigint,
            threshold        double precision,
            drifted          boolean,
            details          jsonb NOT NULL DEFAULT '{}',
            computed_at      timestamptz NOT NULL DEFAULT now()
        );
        -- A run for (model, version, metric, labels, window) overwrites its point: idempotent.
        -- jsonb equality ignores key order, so the labels themselves are the key.
        CREATE UNIQUE INDEX metric_points_identity
            ON metric_points (model_id, model_version_id, metric, labels, window_start, window_end);
        CREATE INDEX metric_points_series ON metric_points (model_id, metric, window_end);
        CREATE INDEX metric_points_labels ON metric_points USING gin (labels jsonb_path_ops);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE metric_points")
