"""Hours the scheduler must do again, whatever made them stale: labels or late predictions.

``relabelled_hours`` told the scheduler which hours' labels changed after it had summarised
them. Predictions can be late too: a batch scorer replaying yesterday, a log shipper catching up
after an outage, a request committing as the hour turns. They were stored but never reached the
windows already computed over their hour. The table becomes ``stale_hours`` with a ``cause``:
``labels`` (the hour's quality is summarised again) or ``predictions`` (all of the hour is).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE relabelled_hours RENAME TO stale_hours;
        ALTER INDEX relabelled_hours_model_hour RENAME TO stale_hours_model_hour;
        ALTER SEQUENCE relabelled_hours_id_seq RENAME TO stale_hours_id_seq;
        ALTER TABLE stale_hours ADD COLUMN cause text NOT NULL DEFAULT 'labels'
            CONSTRAINT stale_hours_cause CHECK (cause IN ('labels', 'predictions'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM stale_hours WHERE cause <> 'labels';
        ALTER TABLE stale_hours DROP COLUMN cause;
        ALTER SEQUENCE stale_hours_id_seq RENAME TO relabelled_hours_id_seq;
        ALTER INDEX stale_hours_model_hour RENAME TO relabelled_hours_model_hour;
        ALTER TABLE stale_hours RENAME TO relabelled_hours;
        """
    )
