"""The audit trail: every administrative action, and every label a newer one replaced.

- ``audit_log``: who (the key's id, name and prefix, or the command line), what (an action and
  its target), when and from where (the client's address, the request id). Kept for the history
  retention; rows are never updated (a trigger refuses it, whoever asks) and only the retention
  deletes them. A coordinator table on Citus, as the rest of the control plane.
- ``label_revisions``: the label a newer one replaced, with its time and revision number, so a
  prediction's look-up shows every label it had. Distributed with the labels on Citus.
- The ``data`` scope of API keys: the stored records themselves (a prediction's look-up, a
  window's export), which ``read`` (metrics, alerts) does not give.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check,
            ADD CONSTRAINT api_keys_scopes_check CHECK (scopes <@ ARRAY['ingest', 'read', 'data', 'admin']::text[]);

        CREATE TABLE audit_log (
            id             bigserial PRIMARY KEY,
            at             timestamptz NOT NULL DEFAULT now(),
            via            text NOT NULL CHECK (via IN ('api', 'dashboard', 'cli', 'rules_file', 'system')),
            key_id         integer,
            key_name       text,
            key_prefix     text,
            client_address text,
            request_id     text,
            action         text NOT NULL,
            model          text,
            target         text NOT NULL,
            details        jsonb NOT NULL
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE INDEX audit_log_action_at ON audit_log (action, at);
        CREATE INDEX audit_log_model_at ON audit_log (model, at);

        CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log rows are never changed';
        END $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();

        CREATE TABLE label_revisions (
            model_id      integer NOT NULL,
            prediction_id text NOT NULL,
            revision      integer NOT NULL,
            label         jsonb NOT NULL,
            label_ts      timestamptz NOT NULL,
            received_at   timestamptz NOT NULL,
            replaced_at   timestamptz NOT NULL,
            PRIMARY KEY (model_id, prediction_id, revision)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE label_revisions;
        DROP TABLE audit_log;
        DROP FUNCTION audit_log_is_append_only();
        DELETE FROM api_keys WHERE 'data' = ANY(scopes) AND revoked_at IS NOT NULL;
        UPDATE api_keys SET revoked_at = now(), scopes = array_remove(scopes, 'data') WHERE 'data' = ANY(scopes);
        ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check,
            ADD CONSTRAINT api_keys_scopes_check CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']::text[]);
        """
    )
