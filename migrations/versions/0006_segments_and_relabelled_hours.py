"""Reference summaries per segment: each tracked segment value's slice of the reference, which
that segment's windows are compared with (a segment differs from the whole population by
design, so comparing it with the whole reference would flag drift that is not there).

``relabelled_hours``: the hours of prediction time whose labels changed, written in the same
transaction as the labels, taken and cleared by the scheduler, which recomputes those hours'
quality and the windows that hold them. A queue in the database rather than a time watermark:
a label committed a moment after its timestamp is never skipped, and none is done twice.

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

        CREATE TABLE relabelled_hours (
            model_id  integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            hour      timestamptz NOT NULL,
            marked_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (model_id, hour)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE relabelled_hours;
        DELETE FROM reference_summaries WHERE segment <> '';
        ALTER TABLE reference_summaries DROP CONSTRAINT reference_summaries_pkey;
        ALTER TABLE reference_summaries DROP COLUMN segment;
        ALTER TABLE reference_summaries ADD PRIMARY KEY (reference_id, column_name);
        """
    )
