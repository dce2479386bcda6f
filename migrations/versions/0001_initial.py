"""Registry, reference data, the partitioned prediction log, labels, ingestion stats, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE models (
            id          serial PRIMARY KEY,
            name        text NOT NULL UNIQUE,
            task        text NOT NULL CHECK (task IN ('binary_classification', 'multiclass_classification',
                                                       'regression')),
            description text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE model_versions (
            id          serial PRIMARY KEY,
            model_id    integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            version     text NOT NULL,
            schema      jsonb NOT NULL,
            description text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (model_id, version)
        );

        CREATE TABLE reference_datasets (
            id               serial PRIMARY KEY,
            model_id         integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            model_version_id integer NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
            name             text NOT NULL DEFAULT '',
            source_format    text NOT NULL,
            row_count        integer NOT NULL,
            is_active        boolean NOT NULL DEFAULT true,
            created_at       timestamptz NOT NULL DEFAULT now()
        );
        -- One reference in use per model version; older uploads stay for comparison.
        CREATE UNIQUE INDEX reference_datasets_active ON reference_datasets (model_version_id) WHERE is_active;

        CREATE TABLE reference_rows (
            reference_id integer NOT NULL REFERENCES reference_datasets (id) ON DELETE CASCADE,
            row_idx      integer NOT NULL,
            model_id     integer NOT NULL,
            features     jsonb NOT NULL,
            prediction   jsonb,
            scores       jsonb,
            label        jsonb,
            segments     jsonb,
            PRIMARY KEY (reference_id, row_idx)
        );

        -- The prediction log: one partition a day, created ahead by monitor.db.partitions and
        -- dropped after the retention period. No foreign keys: it is written with COPY at volume.
        CREATE TABLE predictions (
            model_id         integer NOT NULL,
            model_version_id integer NOT NULL,
            prediction_id    text NOT NULL,
            ts               timestamptz NOT NULL,
            received_at      timestamptz NOT NULL DEFAULT now(),  -- the storing transaction's time
            features         jsonb NOT NULL,
            prediction       jsonb NOT NULL,
            scores           jsonb,
            latency_ms       double precision,
            segments         jsonb
        ) PARTITION BY RANGE (ts);
        -- Access path 1: window scans per model.
        CREATE INDEX predictions_model_ts ON predictions (model_id, ts);

        -- Global uniqueness of (model, client prediction id), which a partitioned table cannot
        -- enforce, and access path 2: the label join from a prediction id to its time.
        CREATE TABLE prediction_keys (
            model_id      integer NOT NULL,
            prediction_id text NOT NULL,
            ts            timestamptz NOT NULL,
            PRIMARY KEY (model_id, prediction_id)
        );
        -- No index on ts: it would cost every insert, and only the daily retention delete reads
        -- by ts (a sequential scan once a day, when a partition is dropped).

        CREATE TABLE labels (
            model_id          integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            prediction_id     text NOT NULL,
            label             jsonb NOT NULL,
            label_ts          timestamptz NOT NULL,
            received_at       timestamptz NOT NULL,
            first_received_at timestamptz NOT NULL,
            revision          integer NOT NULL DEFAULT 1,
            prediction_ts     timestamptz,
            PRIMARY KEY (model_id, prediction_id)
        );
        -- Labels still waiting for their prediction: small, so joining new predictions to it is cheap.
        CREATE INDEX labels_waiting ON labels (model_id, prediction_id) WHERE prediction_ts IS NULL;
        CREATE INDEX labels_model_prediction_ts ON labels (model_id, prediction_ts);
        -- Labels that changed since a metric job last ran: which past windows to recompute.
        CREATE INDEX labels_model_received ON labels (model_id, received_at);

        -- Hourly counts at ingestion: throughput, duplicates and schema violations for data quality.
        CREATE TABLE ingest_stats (
            model_id   integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            bucket     timestamptz NOT NULL,
            kind       text NOT NULL CHECK (kind IN ('prediction', 'label')),
            accepted   bigint NOT NULL DEFAULT 0,
            duplicates bigint NOT NULL DEFAULT 0,
            rejected   bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (model_id, bucket, kind)
        );
        CREATE TABLE schema_violations (
            model_id integer NOT NULL REFERENCES models (id) ON DELETE CASCADE,
            bucket   timestamptz NOT NULL,
            field    text NOT NULL,
            count    bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (model_id, bucket, field)
        );

        CREATE TABLE api_keys (
            id         serial PRIMARY KEY,
            name       text NOT NULL,
            prefix     text NOT NULL UNIQUE,
            key_hash   text NOT NULL UNIQUE,
            scopes     text[] NOT NULL CHECK (scopes <@ ARRAY['ingest', 'read', 'admin']::text[]
                                              AND cardinality(scopes) > 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE api_keys, schema_violations, ingest_stats, labels, prediction_keys, predictions,
                   reference_rows, reference_datasets, model_versions, models CASCADE;
        """
    )
