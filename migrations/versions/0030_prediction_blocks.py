"""Compacted hours of the prediction log: ``prediction_blocks``.

An hour of the log that ended a while ago (``MONITOR_LOG_COMPACT_AFTER_HOURS``) is moved out of
``predictions``, one row a prediction, into blocks: up to 1,000 rows of one model version and one
hour, in (time, id) order, each column one array (compressed by Postgres, pglz, out of line) and
the features, the bulk of a row, as their JSON texts compressed with zstd in one ``bytea``
(``monitor.db.log_blocks``). Every read of the log reads both (``monitor.db.log_rows``).

A block never spans two hours, so ``first_ts`` bounds where a time's block can start; the index
finds the blocks of a window or of one prediction's time by it. Arrays no row of the block has a
value in are null (a multi-argument ``unnest`` reads a null array as nulls). The GIN index finds
the blocks holding a data subject (the erasure); blocks naming none index one null each.

Down: the blocks' rows go back to ``predictions``, one row each, as they were.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

import pyarrow as pa
import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE prediction_blocks (
            model_id         integer NOT NULL,
            id               bigserial,
            model_version_id integer NOT NULL,
            first_ts         timestamptz NOT NULL,
            last_ts          timestamptz NOT NULL,
            n_rows           integer NOT NULL,
            prediction_id    text[] NOT NULL,
            ts               timestamptz[] NOT NULL,
            received_at      timestamptz[] NOT NULL,
            prediction       jsonb[] NOT NULL,
            scores           jsonb[],
            latency_ms       double precision[],
            segments         jsonb[],
            request_id       text[],
            subject_hash     bytea[],
            features         bytea NOT NULL,
            features_bytes   integer NOT NULL,
            PRIMARY KEY (model_id, id),
            CHECK (date_trunc('hour', first_ts, 'UTC') = date_trunc('hour', last_ts, 'UTC'))
        )
        """
    )
    # already compressed: stored out of line as it is, not compressed again
    op.execute("ALTER TABLE prediction_blocks ALTER COLUMN features SET STORAGE EXTERNAL")
    op.execute("CREATE INDEX prediction_blocks_time ON prediction_blocks (model_id, first_ts) INCLUDE (last_ts)")
    op.execute("CREATE INDEX prediction_blocks_subjects ON prediction_blocks USING gin (subject_hash)")


def downgrade() -> None:
    # The blocks' rows back into the log, one row each, a block at a time (its features are
    # decompressed here: Postgres has no zstd). Their day partitions exist: compaction moved the
    # rows out of them, and the retention deletes a day's blocks when it drops the day.
    conn = op.get_bind()
    for model_id, block_id in conn.execute(sa.text("SELECT model_id, id FROM prediction_blocks")).all():
        features, size = conn.execute(
            sa.text("SELECT features, features_bytes FROM prediction_blocks WHERE model_id = :m AND id = :id"),
            {"m": model_id, "id": block_id},
        ).one()
        lines = pa.decompress(features, decompressed_size=size, codec="zstd", asbytes=True).decode().split("\n")
        conn.execute(
            sa.text(
                """
                INSERT INTO predictions (model_id, model_version_id, prediction_id, ts, received_at, features,
                                         prediction, scores, latency_ms, segments, request_id, subject_hash)
                SELECT b.model_id, b.model_version_id, r.prediction_id, r.ts, r.received_at,
                       CAST(f.features AS jsonb), r.prediction, r.scores, r.latency_ms, r.segments, r.request_id,
                       r.subject_hash
                FROM prediction_blocks b
                CROSS JOIN LATERAL unnest(b.prediction_id, b.ts, b.received_at, b.prediction, b.scores,
                                          b.latency_ms, b.segments, b.request_id, b.subject_hash)
                     WITH ORDINALITY AS r(prediction_id, ts, received_at, prediction, scores, latency_ms, segments,
                                          request_id, subject_hash, position)
                JOIN unnest(CAST(:features AS text[])) WITH ORDINALITY AS f(features, position)
                     ON f.position = r.position
                WHERE b.model_id = :m AND b.id = :id
                """
            ),
            {"m": model_id, "id": block_id, "features": lines},
        )
    op.execute("DROP TABLE prediction_blocks")
