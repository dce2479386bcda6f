"""Dashboard sessions kept server-side: logging out ends the session, a replayed cookie is refused.

The login cookie used to carry the key's hash and be valid wherever it was presented, until the
key itself was revoked. It now carries a random session id whose row holds the key's hash and an
expiry; logout deletes the row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE dashboard_sessions (
            id_hash text PRIMARY KEY,
            key_hash text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX dashboard_sessions_expires_at ON dashboard_sessions (expires_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE dashboard_sessions")
