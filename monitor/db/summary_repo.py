"""Summaries of the prediction log, computed inside Postgres. Functions take a connection and
never commit.

Rows never travel to Python: one query buckets every numerical column's values on its reference
edges (``width_bucket`` plus an equality check, matching ``monitor.metrics.profiles.bucket_index``),
one counts every categorical column's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import ColumnElement, Connection, delete, select, text

from monitor.db.tables import bucket_summaries
from monitor.metrics.profiles import pack_counts
from monitor.metrics.quality_summary import QUALITY_COLUMN

# A column of the log as text: "features.<name>", "prediction" or "scores.<class>".
_VALUE = """
    CASE s.source
        WHEN 'features' THEN p.features ->> s.key
        WHEN 'scores' THEN p.scores ->> s.key
        WHEN 'latency_ms' THEN p.latency_ms::text
        ELSE p.prediction #>> '{}'
    END
"""

_NUMERIC_SQL = """
WITH spec AS (
    SELECT s.*, s.edges[1] AS lo, s.edges[array_length(s.edges, 1)] AS hi
    FROM jsonb_to_recordset(CAST(:spec AS jsonb)) AS s(col text, source text, key text, edges float8[])
),
grouped AS (  -- one pass over the rows: per (column, bucket) and per column
    SELECT col, GROUPING(b) AS whole, b,
           count(x) AS n, count(*) - count(x) AS missing, min(x) AS mn, max(x) AS mx,
           sum(x) AS total, sum(x * x) AS total_sq,
           coalesce(sum(x) FILTER (WHERE x < lo), 0) AS low_sum,
           coalesce(sum(x) FILTER (WHERE x > hi), 0) AS high_sum
    FROM (
        SELECT s.col, s.lo, s.hi, v.x,
               CASE WHEN w.wb > 0 AND v.x = s.edges[w.wb] THEN 2 * w.wb - 1 ELSE 2 * w.wb END AS b
        FROM predictions p
        CROSS JOIN spec s
        CROSS JOIN LATERAL (SELECT ({value})::float8 AS x) v
        CROSS JOIN LATERAL (SELECT width_bucket(v.x, s.edges) AS wb) w
        WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end
              {segment}
    ) t
    GROUP BY GROUPING SETS ((col, b), (col))
)
-- one row per column: its statistics and its non-empty buckets as two arrays
SELECT c.col, c.n, c.missing, c.mn, c.mx, c.total, c.total_sq, c.low_sum, c.high_sum,
       array_agg(k.b ORDER BY k.b) FILTER (WHERE k.b IS NOT NULL) AS buckets,
       array_agg(k.n ORDER BY k.b) FILTER (WHERE k.b IS NOT NULL) AS bucket_counts
FROM grouped c
LEFT JOIN grouped k ON k.col = c.col AND k.whole = 0
WHERE c.whole = 1
GROUP BY c.col, c.n, c.missing, c.mn, c.mx, c.total, c.total_sq, c.low_sum, c.high_sum
"""

_CATEGORICAL_SQL = """
WITH spec AS (
    SELECT * FROM jsonb_to_recordset(CAST(:spec AS jsonb)) AS s(col text, source text, key text)
)
SELECT s.col, {value} AS category, count(*) AS n
FROM predictions p CROSS JOIN spec s
WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end {segment}
GROUP BY 1, 2
"""

# (column, value) of a segment, or None for all predictions.
Segment = tuple[str, str] | None

# (stats, counts): the storage form of one column's summary (see monitor.metrics.profiles).
Parts = tuple[dict[str, Any], bytes | None]


@dataclass(frozen=True)
class ColumnSpec:
    column: str  # "features.age", "prediction", "scores.default", "latency_ms"
    edges: Sequence[float] | None  # reference edges for a numerical column; None for categorical

    @property
    def source_and_key(self) -> tuple[str, str]:
        source, _, key = self.column.partition(".")
        return source, key


def _spec_json(columns: Sequence[ColumnSpec], numerical: bool) -> str:
    rows = []
    for c in columns:
        source, key = c.source_and_key
        row: dict[str, Any] = {"col": c.column, "source": source, "key": key}
        if numerical:
            row["edges"] = list(c.edges or [])
        rows.append(row)
    return orjson.dumps(rows).decode()


def segment_filter(segment: Segment, params: dict[str, Any]) -> str:
    """The SQL condition on the log's rows (alias ``p``) for a segment, its values put in ``params``."""
    if segment is None:
        return ""
    params["seg_col"], params["seg_val"] = segment
    return "AND p.segments ->> :seg_col = :seg_val"


def segment_key(segment: Segment) -> str:
    """How a segment is named in stored summaries: '' for all predictions, else 'column=value'."""
    return "" if segment is None else f"{segment[0]}={segment[1]}"


def summarise_window(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: Sequence[ColumnSpec],
    segment: Segment = None,
) -> tuple[dict[str, Parts], int]:
    """Each column's summary over [start, end), and the number of predictions in it."""
    params: dict[str, Any] = {"model_id": model_id, "version_id": version_id, "start": start, "end": end}
    seg = segment_filter(segment, params)
    n_rows = conn.execute(
        text(
            "SELECT count(*) FROM predictions p WHERE p.model_id = :model_id AND p.model_version_id = :version_id "
            f"AND p.ts >= :start AND p.ts < :end {seg}"
        ),
        params,
    ).scalar_one()
    out: dict[str, Parts] = {}
    if not n_rows:
        return out, 0
    numeric = [c for c in columns if c.edges is not None]
    categorical = [c for c in columns if c.edges is None]
    if numeric:
        counts = {c.column: np.zeros(2 * len(c.edges or []) + 1, dtype="<i8") for c in numeric}
        stats: dict[str, dict[str, Any]] = {}
        rows = conn.execute(
            text(_NUMERIC_SQL.format(value=_VALUE, segment=seg)), {**params, "spec": _spec_json(numeric, True)}
        ).mappings()
        for r in rows:
            stats[r["col"]] = {
                "type": "numerical",
                "n": int(r["n"]),
                "missing": int(r["missing"]),
                "min": r["mn"],
                "max": r["mx"],
                "total": float(r["total"] or 0.0),
                "total_sq": float(r["total_sq"] or 0.0),
                "low_sum": float(r["low_sum"]),
                "high_sum": float(r["high_sum"]),
            }
            if r["buckets"]:
                counts[r["col"]][np.asarray(r["buckets"], dtype=np.int64)] = r["bucket_counts"]
        for col, st in stats.items():
            out[col] = (st, pack_counts(counts[col]))
    if categorical:
        cats: dict[str, dict[str, Any]] = {
            c.column: {"type": "categorical", "counts": {}, "missing": 0} for c in categorical
        }
        rows = conn.execute(
            text(_CATEGORICAL_SQL.format(value=_VALUE, segment=seg)), {**params, "spec": _spec_json(categorical, False)}
        ).mappings()
        for r in rows:
            s = cats[r["col"]]
            if r["category"] is None:
                s["missing"] += int(r["n"])
            else:
                s["counts"][r["category"]] = int(r["n"])
        out.update({col: (s, None) for col, s in cats.items()})
    return out, int(n_rows)


def replace_bucket(
    conn: Connection,
    model_id: int,
    version_id: int,
    reference_id: int,
    bucket_start: datetime,
    bucket_hours: int,
    n_rows: int,
    parts: dict[str, Parts],
    segment: str = "",
    *,
    quality: bool = False,
) -> None:
    """Store a bucket's summaries, replacing what an earlier run stored for it (idempotent).
    ``quality``: the parts are the bucket's quality summary, else its column summaries."""
    delete_bucket(conn, version_id, reference_id, bucket_start, bucket_hours, segment, quality=quality)
    if parts:
        conn.execute(
            bucket_summaries.insert(),
            [
                {
                    "model_id": model_id,
                    "model_version_id": version_id,
                    "reference_id": reference_id,
                    "bucket_start": bucket_start,
                    "bucket_hours": bucket_hours,
                    "column_name": col,
                    "segment": segment,
                    "n_rows": n_rows,
                    "stats": st,
                    "counts": counts,
                }
                for col, (st, counts) in parts.items()
            ],
        )


def _kind(quality: bool) -> ColumnElement[bool]:
    """Quality summaries (one column, ``QUALITY_COLUMN``) or column summaries: labels change the
    first long after the second is final, so each is replaced and merged on its own."""
    col = bucket_summaries.c.column_name
    return col == QUALITY_COLUMN if quality else col != QUALITY_COLUMN


def delete_bucket(
    conn: Connection,
    version_id: int,
    reference_id: int,
    bucket_start: datetime,
    bucket_hours: int,
    segment: str = "",
    *,
    quality: bool = False,
) -> None:
    conn.execute(
        delete(bucket_summaries).where(
            bucket_summaries.c.model_version_id == version_id,
            bucket_summaries.c.reference_id == reference_id,
            bucket_summaries.c.bucket_hours == bucket_hours,
            bucket_summaries.c.bucket_start == bucket_start,
            bucket_summaries.c.segment == segment,
            _kind(quality),
        )
    )


def load_buckets(
    conn: Connection,
    version_id: int,
    reference_id: int,
    bucket_hours: int,
    starts: Sequence[datetime],
    segment: str = "",
    *,
    quality: bool = False,
) -> list[tuple[datetime, str, int, dict[str, Any], bytes | None]]:
    """(bucket start, column, rows in bucket, stats, counts) of the given buckets."""
    if not starts:
        return []
    rows = conn.execute(
        select(
            bucket_summaries.c.bucket_start,
            bucket_summaries.c.column_name,
            bucket_summaries.c.n_rows,
            bucket_summaries.c.stats,
            bucket_summaries.c.counts,
        ).where(
            bucket_summaries.c.model_version_id == version_id,
            bucket_summaries.c.reference_id == reference_id,
            bucket_summaries.c.segment == segment,
            bucket_summaries.c.bucket_hours == bucket_hours,
            bucket_summaries.c.bucket_start.in_(list(starts)),
            _kind(quality),
        )
    ).all()
    return [(b, c, n, st, bytes(ct) if ct is not None else None) for b, c, n, st, ct in rows]


def day_of_hour(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


DAY = timedelta(days=1)
