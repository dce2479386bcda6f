"""What the service keeps beyond the prediction log, and its retention: metric points, hourly
summaries and the error-stream detectors' state, alerts that ended, alert history, finished
webhooks and their delivery log, retraining triggers, expired silences and the audit log (reports have a
retention of their own, in ``report_repo``). Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

# (table, DELETE statement); each uses an index on its time column, through the model or version
# id it is led by, where the table can grow large.
_DELETES = (
    (
        "metric_points",
        "DELETE FROM metric_points p USING model_versions v WHERE p.model_version_id = v.id AND p.window_end < :c",
    ),
    (
        "feature_digests",
        "DELETE FROM feature_digests d USING model_versions v WHERE d.model_version_id = v.id AND d.window_end < :c",
    ),
    (
        "bucket_summaries",
        "DELETE FROM bucket_summaries b USING models m WHERE b.model_id = m.id AND b.bucket_start < :c",
    ),
    ("error_stream_states", "DELETE FROM error_stream_states WHERE hour < :c"),
    ("alerts", "DELETE FROM alerts WHERE state IN ('resolved', 'inactive') AND updated_at < :c"),
    ("alert_history", "DELETE FROM alert_history WHERE at < :c"),
    ("outbox", "DELETE FROM outbox WHERE status <> 'pending' AND created_at < :c"),
    ("deliveries", "DELETE FROM deliveries WHERE at < :c"),
    ("retrain_triggers", "DELETE FROM retrain_triggers WHERE created_at < :c"),
    ("silences", "DELETE FROM silences WHERE ends_at < :c"),
    # never younger than the audit policy's age (a trigger refuses it; none at all without a policy)
    ("audit_log", "DELETE FROM audit_log WHERE at < :c AND at < now() - (SELECT min_age FROM audit_policy)"),
)


def delete_older(conn: Connection, cutoff: datetime) -> dict[str, int]:
    """Delete what ended before ``cutoff``; returns rows deleted per table (those with any)."""
    deleted = {table: conn.execute(text(sql), {"c": cutoff}).rowcount for table, sql in _DELETES}
    return {table: n for table, n in deleted.items() if n}
