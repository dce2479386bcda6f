"""Receivers get headers of their own (an Authorization header for a receiver behind auth):
credentials in a receiver's URL are refused, and would otherwise be shown wherever the URL is.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE receivers ADD COLUMN headers jsonb NOT NULL DEFAULT '{}'::jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE receivers DROP COLUMN headers")
