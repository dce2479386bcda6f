"""Reference summaries per segment: each tracked segment value's slice of the reference, which
that segment's windows are compared with (a segment differs from the whole population by
design, so comparing it with the whole reference would flag drift that is not there).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE reference_summaries ADD COLUMN segment text NOT NULL DEFAULT '';
        ALTER TABLE reference_summaries DROP CONSTRAINT reference_summaries_pkey;
        ALTER TABLE reference_summaries ADD PRIMARY KEY (reference_id, segment, column_name);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM reference_summaries WHERE segment <> '';
        ALTER TABLE reference_summaries DROP CONSTRAINT reference_summaries_pkey;
        ALTER TABLE reference_summaries DROP COLUMN segment;
        ALTER TABLE reference_summaries ADD PRIMARY KEY (reference_id, column_name);
        """
    )
