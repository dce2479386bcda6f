"""Predictions may name the person they are about, kept only as a keyed hash, so that the
person's records can be erased on request.

``subject_hash``: HMAC-SHA256 of the subject the record named, under a key derived from the
service's secret keys (``monitor.secret_box``); null for records that name none. The index serves
the erasure, which deletes model by model (on Citus each delete stays on the model's shard).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE predictions ADD COLUMN subject_hash bytea;
        CREATE INDEX predictions_subject ON predictions (model_id, subject_hash) WHERE subject_hash IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX predictions_subject; ALTER TABLE predictions DROP COLUMN subject_hash;")
