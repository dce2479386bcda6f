"""Summaries written at ingestion: ``summary_deltas``.

Each accepted batch of predictions is summarised once, by the API process that decoded it, in
the transaction that stores it: one row per (version, reference, minute of prediction time,
group) holding every column's summary of the batch's rows in that minute (``kind`` 'columns').
Each batch of new labels is summarised the same way, joined to its predictions: the quality of
the labelled rows per minute and group (``kind`` 'quality'). The scheduler takes
them (``DELETE … RETURNING``) and folds them into the hour's stored summary in one transaction,
so a delta is counted exactly once whatever process dies when; a scheduler run costs what
arrived since the last, not what the hour already holds. Append-only: concurrent batches never
wait on one row.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE summary_deltas (
            id               bigserial,
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL,
            reference_id     integer NOT NULL,
            minute           timestamptz NOT NULL,
            segment          text NOT NULL,
            kind             text NOT NULL CHECK (kind IN ('columns', 'quality')),
            n_rows           bigint NOT NULL,
            parts            bytea NOT NULL,  -- {column: [stats, base64 counts | null]} as JSON
            written_at       timestamptz NOT NULL DEFAULT now(),  -- the scheduler's backlog: its age
            PRIMARY KEY (model_id, id)
        );
        CREATE INDEX summary_deltas_version ON summary_deltas (model_id, model_version_id, id);
        -- 'labels' and 'predictions' now mark hours whose deltas changed them (their windows are
        -- computed again); 'summaries', an hour whose rows must be summarised from the log (a
        -- delta against a reference no longer active, a batch that could not be summarised at
        -- ingestion); 'quality', an hour whose quality must be (labels replaced, or joined to
        -- predictions that arrived after them)
        ALTER TABLE stale_hours DROP CONSTRAINT stale_hours_cause;
        ALTER TABLE stale_hours ADD CONSTRAINT stale_hours_cause
            CHECK (cause IN ('labels', 'predictions', 'summaries', 'quality'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE summary_deltas;
        UPDATE stale_hours SET cause = 'predictions' WHERE cause = 'summaries';
        UPDATE stale_hours SET cause = 'labels' WHERE cause = 'quality';
        ALTER TABLE stale_hours DROP CONSTRAINT stale_hours_cause;
        ALTER TABLE stale_hours ADD CONSTRAINT stale_hours_cause CHECK (cause IN ('labels', 'predictions'));
        """
    )
