"""Attributions in the log: each feature's contribution to a prediction (SHAP values, say), as
the serving system logged it.

``predictions.attributions`` and ``reference_rows.attributions``: a JSON object, feature ->
number, or null when none was logged. ``prediction_blocks.attributions``: the block's, an array
(null when no row of the block has any, as the other optional arrays).

Down: the columns are dropped, with what they held.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE predictions ADD COLUMN attributions jsonb")
    op.execute("ALTER TABLE prediction_blocks ADD COLUMN attributions jsonb[]")
    op.execute("ALTER TABLE reference_rows ADD COLUMN attributions jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE reference_rows DROP COLUMN attributions")
    op.execute("ALTER TABLE prediction_blocks DROP COLUMN attributions")
    op.execute("ALTER TABLE predictions DROP COLUMN attributions")
