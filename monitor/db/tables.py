"""SQLAlchemy Core descriptions of the tables, for building queries.

The schema itself is owned by the Alembic migrations in ``migrations/``; these mirror it.
Every big table carries ``model_id`` so it can be distributed by it (Citus) without a rewrite.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("task", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("monitoring", JSONB, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Text, nullable=False),
    Column("schema", JSONB, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deployment", Text, nullable=False),  # champion, canary, ab, shadow, retired, unspecified
    Column("deployment_since", DateTime(timezone=True)),
)

reference_datasets = Table(
    "reference_datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("source_format", Text, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

reference_rows = Table(
    "reference_rows",
    metadata,
    Column("reference_id", Integer, ForeignKey("reference_datasets.id"), primary_key=True),
    Column("row_idx", Integer, primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("features", JSONB, nullable=False),
    Column("prediction", JSONB),
    Column("scores", JSONB),
    Column("label", JSONB),
    Column("segments", JSONB),
    Column("attributions", JSONB),
)

# Partitioned by RANGE (ts), one partition a day (see monitor.db.partitions).
predictions = Table(
    "predictions",
    metadata,
    Column("model_id", Integer, nullable=False),
    Column("model_version_id", Integer, nullable=False),
    Column("prediction_id", Text, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("features", JSONB, nullable=False),
    Column("prediction", JSONB, nullable=False),
    Column("scores", JSONB),
    Column("latency_ms", Float),
    Column("segments", JSONB),
    Column("request_id", Text),  # the serving request: shared by the versions that scored it (shadow)
    Column("subject_hash", LargeBinary),  # the keyed hash of the person it is about (erasure), or null
    Column("attributions", JSONB),  # each feature's contribution to the prediction, as logged, or null
)

# One row per stored prediction: the global uniqueness a partitioned table cannot enforce,
# and the label join's way from a client's prediction id to the prediction's time. ``key`` is
# the id's digest (monitor.db.prediction_key), not the id.
prediction_keys = Table(
    "prediction_keys",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("key", UUID(as_uuid=False), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
)

# Compacted hours of the log (monitor.db.log_blocks): a block of rows of one version and hour,
# each column an array; ``features`` their JSON texts, zstd-compressed. Read through log_rows.
prediction_blocks = Table(
    "prediction_blocks",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("id", BigInteger, primary_key=True),
    Column("model_version_id", Integer, nullable=False),
    Column("first_ts", DateTime(timezone=True), nullable=False),
    Column("last_ts", DateTime(timezone=True), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("prediction_id", ARRAY(Text), nullable=False),
    Column("ts", ARRAY(DateTime(timezone=True)), nullable=False),
    Column("received_at", ARRAY(DateTime(timezone=True)), nullable=False),
    Column("prediction", ARRAY(JSONB), nullable=False),
    Column("scores", ARRAY(JSONB)),
    Column("latency_ms", ARRAY(Float)),
    Column("segments", ARRAY(JSONB)),
    Column("request_id", ARRAY(Text)),
    Column("subject_hash", ARRAY(LargeBinary)),
    Column("features", LargeBinary, nullable=False),
    Column("features_bytes", Integer, nullable=False),
    Column("attributions", ARRAY(JSONB)),
)

labels = Table(
    "labels",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", Text, primary_key=True),
    Column("label", JSONB, nullable=False),
    Column("label_ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("first_received_at", DateTime(timezone=True), nullable=False),
    Column("revision", Integer, nullable=False),
    # Null until the prediction arrives; then the time of the window the label belongs to.
    Column("prediction_ts", DateTime(timezone=True)),
)

# A label a newer one replaced (the newest is in ``labels``), for a prediction's look-up.
label_revisions = Table(
    "label_revisions",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", Text, primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("label", JSONB, nullable=False),
    Column("label_ts", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("replaced_at", DateTime(timezone=True), nullable=False),
)

ingest_stats = Table(
    "ingest_stats",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("shard", SmallInteger, primary_key=True),  # counters split so that batches do not queue on one row
    Column("accepted", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("rejected", BigInteger, nullable=False),
)

schema_violations = Table(
    "schema_violations",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("bucket", DateTime(timezone=True), primary_key=True),
    Column("field", Text, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False, unique=True),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

# Every administrative action: appended, never updated (a trigger refuses it), deleted only by
# the history retention.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("via", Text, nullable=False),  # api, dashboard, cli, rules_file, system
    Column("key_id", Integer),
    Column("key_name", Text),
    Column("key_prefix", Text),
    Column("client_address", Text),
    Column("request_id", Text),
    Column("action", Text, nullable=False),
    Column("model", Text),
    Column("target", Text, nullable=False),
    Column("details", JSONB, nullable=False),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),  # first in the key (Citus)
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("metric", Text, nullable=False),
    Column("labels", JSONB, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("value", Float),
    Column("sample_size", BigInteger, nullable=False),
    Column("reference_size", BigInteger),
    Column("threshold", Float),
    Column("drifted", Boolean),
    Column("details", JSONB, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

feature_digests = Table(  # a window's per-feature series, one row (monitor.metrics.feature_digest)
    "feature_digests",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("labels", JSONB, primary_key=True),
    Column("window_start", DateTime(timezone=True), primary_key=True),
    Column("window_end", DateTime(timezone=True), primary_key=True),
    Column("peaks", LargeBinary, nullable=False),  # big-endian float32 per feature
    Column("drifted", LargeBinary, nullable=False),  # a byte per feature
)

stale_hours = Table(  # hours the scheduler must summarise again and the windows that hold them
    "stale_hours",
    metadata,
    Column("id", BigInteger, primary_key=True),  # append-only: one mark per transaction and hour
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("cause", Text, nullable=False),  # 'labels' (quality only) or 'predictions' (everything)
    Column("marked_at", DateTime(timezone=True), nullable=False),
)

reference_summaries = Table(
    "reference_summaries",
    metadata,
    Column("reference_id", Integer, ForeignKey("reference_datasets.id"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("segment", Text, primary_key=True, server_default=""),  # "" or "column=value"
    Column("column_name", Text, primary_key=True),
    Column("summary", JSONB, nullable=False),
)

bucket_summaries = Table(
    "bucket_summaries",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("reference_id", Integer, ForeignKey("reference_datasets.id"), primary_key=True),
    Column("bucket_start", DateTime(timezone=True), primary_key=True),
    Column("bucket_hours", SmallInteger, primary_key=True),
    Column("column_name", Text, primary_key=True),
    Column("segment", Text, primary_key=True),
    Column("n_rows", BigInteger, nullable=False),
    Column("stats", JSONB, nullable=False),
    Column("counts", LargeBinary),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

error_stream_states = Table(  # the concept-drift detector's state after each hour (monitor.metrics.error_stream)
    "error_stream_states",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("model_version_id", Integer, ForeignKey("model_versions.id"), primary_key=True),
    Column("segment", Text, primary_key=True),  # "" or "column=value", as the summaries
    Column("method", Text, primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("state", JSONB, nullable=False),
    Column("detections", JSONB, nullable=False),  # [[epoch minute, error rate before, after], ...]
    Column("rows", BigInteger, nullable=False),  # labelled rows the detector holds after the hour
    Column("error_rate", Float, nullable=False),  # their error rate
)

# Column summaries of accepted batches, written at ingestion and folded by the scheduler
# (monitor.services.jobs.summary_deltas): one row per (batch, version, reference, minute, group).
summary_deltas = Table(
    "summary_deltas",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("model_version_id", Integer, nullable=False),
    Column("reference_id", Integer, nullable=False),
    Column("minute", DateTime(timezone=True), nullable=False),
    Column("segment", Text, nullable=False),
    Column("kind", Text, nullable=False),  # 'columns' or 'quality'
    Column("n_rows", BigInteger, nullable=False),
    Column("parts", LargeBinary, nullable=False),
    Column("written_at", DateTime(timezone=True), nullable=False),
)
