"""KServe payload-logger halves waiting for their other half (request or response, by Ce-Id).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE kserve_events (
            model       text NOT NULL,
            event_id    text NOT NULL,
            kind        text NOT NULL CHECK (kind IN ('request', 'response')),
            body        bytea NOT NULL,
            event_time  text,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model, event_id, kind)
        );
        CREATE INDEX kserve_events_received ON kserve_events (received_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE kserve_events")
