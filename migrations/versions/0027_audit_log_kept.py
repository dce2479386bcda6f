"""Audit entries no one deletes before their time, whoever asks.

``UPDATE`` was already refused by a trigger; a ``DELETE`` from the service's own role went
through. Now a trigger refuses to delete an entry younger than ``audit_policy.min_age`` (90 days
unless its owner changes it), and fails closed when the policy has no row. The history retention
deletes only entries older than both its own cutoff and that age.

A trigger binds everyone but the table's owner, who may drop it: where the service's role must
not be able to erase its own tracks, make another role own ``audit_log`` and ``audit_policy``
(``docs/postgres/audit-owner.sql``).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE audit_policy (
            only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            min_age  interval NOT NULL DEFAULT interval '90 days' CHECK (min_age >= interval '1 day')
        );
        INSERT INTO audit_policy DEFAULT VALUES;

        -- The policy is read from the audit log's own schema, and nothing is looked up along the
        -- caller's search_path: a session that put a schema of its own first (an audit_policy
        -- saying a day, an operator of its own) changes nothing.
        CREATE FUNCTION audit_log_keeps_recent() RETURNS trigger LANGUAGE plpgsql
        SET search_path = pg_catalog AS $$
        DECLARE
            kept interval;
        BEGIN
            EXECUTE format('SELECT min_age FROM %I.audit_policy', TG_TABLE_SCHEMA) INTO kept;
            IF kept IS NULL OR OLD.at >= now() - kept THEN
                RAISE EXCEPTION 'audit_log entries younger than % are never deleted',
                    coalesce(kept::text, 'the audit policy (it has no row)');
            END IF;
            RETURN OLD;
        END $$;
        CREATE TRIGGER audit_log_kept BEFORE DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_keeps_recent();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER audit_log_kept ON audit_log;
        DROP FUNCTION audit_log_keeps_recent();
        DROP TABLE audit_policy;
        """
    )
