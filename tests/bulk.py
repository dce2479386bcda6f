"""Many predictions of the demo model written inside Postgres at once, for scale tests and
benchmarks, not part of the service (the ingestion path has benchmarks of its own). Functions
take a connection and never commit."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from monitor.db import partitions

# Rows :first..:last of the demo model's traffic, :step microseconds apart from :start, shaped
# like the demo's (a little shifted from its reference); :m and :v are the model and version ids.
BULK_PREDICTIONS_SQL = """
INSERT INTO predictions (model_id, model_version_id, prediction_id, ts, received_at, features, prediction,
                         scores, latency_ms, segments)
SELECT :m, :v, 'b' || g, ts, ts, f,
       to_jsonb(CASE WHEN s >= 0.5 THEN 'default' ELSE 'repaid' END),
       jsonb_build_object('default', s), 4 + 30 * random() * random(),
       jsonb_build_object('region', f ->> 'region', 'channel', (ARRAY['web', 'branch', 'partner'])[1 + (g % 3)])
FROM (
    SELECT g, :start + make_interval(secs => g::float8 * :step / 1e6) AS ts, round(random()::numeric, 4)::float8 AS s,
           jsonb_build_object(
               'age', round((21 + 50 * random())::numeric),
               'income', round((15000 + 90000 * random() * random() + 20000 * random())::numeric, 2),
               'debt_ratio', round((random() * 0.9)::numeric, 3),
               'credit_lines', floor(1 + 9 * random()),
               'late_payments', floor(4 * random() * random()),
               'employment',
                   (ARRAY['salaried', 'self-employed', 'unemployed', 'retired'])[1 + floor(4 * random())::int],
               'region', (ARRAY['north', 'south', 'east', 'west'])[1 + floor(4 * random())::int],
               'has_mortgage', random() < 0.4
           ) AS f
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g
) rows
"""


def demo_predictions(
    conn: Connection, model_id: int, version_id: int, start: datetime, step: timedelta, first: int, last: int
) -> None:
    """Rows ``first``..``last`` (ids ``b<first>``..), ``step`` apart from ``start``; the days'
    partitions are made first."""
    a, b = (start + step * first).date(), (start + step * last).date()
    partitions.create_partitions(conn, [a + timedelta(days=d) for d in range((b - a).days + 1)])
    params = {"m": model_id, "v": version_id, "start": start, "step": step / timedelta(microseconds=1)}
    conn.execute(text(BULK_PREDICTIONS_SQL), params | {"first": first, "last": last})
