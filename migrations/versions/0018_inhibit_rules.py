"""Inhibit rules: while an alert matching the source matchers fires, alerts matching the target
matchers with the same values of the ``equal`` labels notify nobody. Defined with the rules (in
the rules file or through the API).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE inhibit_rules (
            name text PRIMARY KEY,
            definition jsonb NOT NULL,
            source text NOT NULL CHECK (source IN ('api', 'file')),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE inhibit_rules")
