"""Full Evidently reports built on demand for a window.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE reports (
            id                    serial PRIMARY KEY,
            model_id              integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id      integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            kind                  text NOT NULL CHECK (kind IN ('drift', 'quality')),
            window_start          timestamptz NOT NULL,
            window_end            timestamptz NOT NULL,
            sample_size           integer NOT NULL,  -- current rows the report rests on
            window_rows           bigint NOT NULL,   -- rows the window holds
            reference_sample_size integer NOT NULL,
            summary               jsonb NOT NULL,    -- Evidently's JSON result
            html                  text NOT NULL,
            created_at            timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX reports_model ON reports (model_id, created_at DESC);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE reports")
