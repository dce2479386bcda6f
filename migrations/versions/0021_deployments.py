"""Versions deployed side by side, and the request each prediction answered.

- ``model_versions.deployment``: how a version serves — ``champion`` (in production),
  ``canary`` (a small share of the traffic), ``ab`` (an arm of a split), ``shadow`` (scores the
  same requests as the champion, its answers not served), ``retired``, or ``unspecified`` (every
  version registered before this, and any not said otherwise); ``deployment_since`` when it
  became so. One champion at a time: making one retires the other.
- ``retrain_triggers.event``: which event a trigger sent (retraining, or a challenger's promotion
  or rollback), each with its own cooldown.
- ``predictions.request_id``: the serving request a prediction answered, as the client names
  it; a shadow's prediction and the champion's of the same request share it, which pairs them.
  Nullable and without a default, so adding it rewrites nothing.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MODES = "'unspecified', 'champion', 'canary', 'ab', 'shadow', 'retired'"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE model_versions
            ADD COLUMN deployment text NOT NULL DEFAULT 'unspecified' CHECK (deployment IN ({MODES})),
            ADD COLUMN deployment_since timestamptz;
        ALTER TABLE predictions ADD COLUMN request_id text;
        -- retraining requests, and now promotions and rollbacks of a challenger: which, with a
        -- cooldown of its own
        ALTER TABLE retrain_triggers ADD COLUMN event text NOT NULL DEFAULT 'model.retrain_requested';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE retrain_triggers DROP COLUMN event;
        ALTER TABLE predictions DROP COLUMN request_id;
        ALTER TABLE model_versions DROP COLUMN deployment, DROP COLUMN deployment_since;
        """
    )
