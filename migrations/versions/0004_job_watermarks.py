"""Job watermarks: how far each model's rollup and each window's drift have been computed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE job_watermarks (
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            job              text NOT NULL,  -- 'rollup' or 'drift:<window>'
            done_until       timestamptz NOT NULL,
            updated_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model_version_id, job)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE job_watermarks")
