"""Rules, receivers, alert instances and their history, silences, notification groups, the
outbox of messages to deliver, the delivery log and retraining triggers.

The outbox is written in the same transaction as the state change that causes its messages;
deliverers claim due messages with FOR UPDATE SKIP LOCKED and a lease (``next_attempt_at``
moved ahead), deliver outside the transaction, and record the attempt: at least once, and a
crashed deliverer's messages are picked up when their lease runs out.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE receivers (
            name              text PRIMARY KEY,
            kind              text NOT NULL CHECK (kind IN ('webhook', 'slack', 'alertmanager', 'retrain')),
            url               text NOT NULL,
            secret            text NOT NULL,  -- whsec_…: an HMAC key must be kept to sign with
            group_by          text[] NOT NULL,
            group_wait_s      integer NOT NULL,
            group_interval_s  integer NOT NULL,
            repeat_interval_s integer NOT NULL,
            source            text NOT NULL CHECK (source IN ('api', 'file')),
            updated_at        timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE rules (
            name       text PRIMARY KEY,
            definition jsonb NOT NULL,
            source     text NOT NULL CHECK (source IN ('api', 'file')),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        -- What the last load of the rules file refused: shown with the rules.
        CREATE TABLE rule_file_errors (
            path      text PRIMARY KEY,
            loaded_at timestamptz NOT NULL,
            errors    jsonb NOT NULL
        );

        CREATE TABLE alerts (
            fingerprint     text PRIMARY KEY,
            rule            text NOT NULL,
            model           text NOT NULL,
            labels          jsonb NOT NULL,
            annotations     jsonb NOT NULL,
            state           text NOT NULL CHECK (state IN ('pending', 'firing', 'resolved')),
            active_at       timestamptz,
            fired_at        timestamptz,
            last_true_at    timestamptz,
            resolved_at     timestamptz,
            value           double precision,
            threshold       double precision,
            evidence        jsonb NOT NULL,
            acknowledged_by text,
            acknowledged_at timestamptz,
            ack_comment     text,
            updated_at      timestamptz NOT NULL
        );
        CREATE INDEX alerts_model_rule ON alerts (model, rule);
        CREATE INDEX alerts_state ON alerts (state);

        CREATE TABLE alert_history (
            id          bigserial PRIMARY KEY,
            fingerprint text NOT NULL,
            rule        text NOT NULL,
            model       text NOT NULL,
            from_state  text NOT NULL,
            to_state    text NOT NULL,
            at          timestamptz NOT NULL,
            value       double precision,
            threshold   double precision,
            labels      jsonb NOT NULL,
            evidence    jsonb NOT NULL
        );
        CREATE INDEX alert_history_fingerprint ON alert_history (fingerprint, at);
        CREATE INDEX alert_history_model_at ON alert_history (model, at);

        CREATE TABLE silences (
            id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            matchers   jsonb NOT NULL,
            starts_at  timestamptz NOT NULL,
            ends_at    timestamptz NOT NULL,
            created_by text NOT NULL,
            comment    text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK (ends_at > starts_at)
        );

        CREATE TABLE notification_groups (
            receiver      text NOT NULL,
            group_key     text NOT NULL,
            group_labels  jsonb NOT NULL,
            first_seen_at timestamptz NOT NULL,
            last_sent_at  timestamptz,
            last_sent     jsonb NOT NULL DEFAULT '[]',  -- [[fingerprint, status], …] of the last message
            PRIMARY KEY (receiver, group_key)
        );

        CREATE TABLE outbox (
            id              bigserial PRIMARY KEY,
            message_id      text NOT NULL UNIQUE,  -- the webhook-id: the same on every attempt
            receiver        text NOT NULL,
            kind            text NOT NULL CHECK (kind IN ('notification', 'retrain')),
            body            bytea NOT NULL,         -- the exact bytes signed and sent
            status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            created_at      timestamptz NOT NULL DEFAULT now(),
            delivered_at    timestamptz,
            last_error      text
        );
        CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

        CREATE TABLE deliveries (
            id          bigserial PRIMARY KEY,
            message_id  text NOT NULL,
            receiver    text NOT NULL,
            attempt     integer NOT NULL,
            at          timestamptz NOT NULL,
            status_code integer,
            latency_ms  double precision NOT NULL,
            outcome     text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'failed')),
            error       text
        );
        CREATE INDEX deliveries_message ON deliveries (message_id, attempt);
        CREATE INDEX deliveries_at ON deliveries (at);

        CREATE TABLE retrain_triggers (
            id          bigserial PRIMARY KEY,
            model       text NOT NULL,
            version     text NOT NULL,
            rule        text NOT NULL,
            fingerprint text NOT NULL,
            receiver    text NOT NULL,
            message_id  text NOT NULL,
            reason      text NOT NULL,
            evidence    jsonb NOT NULL,
            created_at  timestamptz NOT NULL
        );
        CREATE INDEX retrain_triggers_model ON retrain_triggers (model, created_at);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE retrain_triggers, deliveries, outbox, notification_groups, silences, alert_history, alerts,
                   rule_file_errors, rules, receivers;
        """
    )
