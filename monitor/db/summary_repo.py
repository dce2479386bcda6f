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
-- MATERIALIZED: planned on its own, this groups by hashing (a few thousand groups). Inlined, the
-- planner sorted every value to feed the per-column step below its (col, b) order: 3.2M values
-- for 200k rows of 16 columns, spilled to disk, a third of the query's time.
by_bucket AS MATERIALIZED (
    SELECT col, b, count(x) AS n, count(*) - count(x) - count(*) FILTER (WHERE inf) AS missing,
           count(*) FILTER (WHERE inf) AS non_finite, min(x) AS mn, max(x) AS mx,
           sum(x) AS total, sum(x * x) AS total_sq,
           coalesce(sum(x) FILTER (WHERE x < lo), 0) AS low_sum,
           coalesce(sum(x) FILTER (WHERE x > hi), 0) AS high_sum
    FROM (
        SELECT col, lo, hi, x, inf, CASE WHEN wb > 0 AND x = edges[wb] THEN 2 * wb - 1 ELSE 2 * wb END AS b
        FROM (
            -- each OFFSET 0 keeps the value and its bucket computed once per row and column; inlined,
            -- the value's extraction ran four times and width_bucket three
            SELECT col, lo, hi, x, inf, edges, width_bucket(x, edges) AS wb
            FROM (
                -- ±inf (stored as the strings 'Infinity' and '-Infinity', which float8 reads) is
                -- counted apart and is no value: no bucket, no sum
                SELECT col, lo, hi, edges, coalesce(abs(x0) = 'Infinity', false) AS inf,
                       CASE WHEN abs(x0) < 'Infinity' THEN x0 END AS x
                FROM (
                    SELECT s.col, s.lo, s.hi, s.edges, ({value})::float8 AS x0
                    FROM predictions p CROSS JOIN spec s
                    WHERE p.model_id = :model_id AND p.model_version_id = :version_id
                          AND p.ts >= :start AND p.ts < :end {segment}
                    OFFSET 0
                ) r
            ) v
            OFFSET 0
        ) w
    ) t
    GROUP BY col, b
)
-- one row per column: its statistics (from its buckets' and its missing values' group) and its
-- non-empty buckets as two arrays
SELECT col, sum(n)::bigint AS n, sum(missing)::bigint AS missing, sum(non_finite)::bigint AS non_finite,
       min(mn) AS mn, max(mx) AS mx,
       sum(total) AS total, sum(total_sq) AS total_sq, sum(low_sum) AS low_sum, sum(high_sum) AS high_sum,
       array_agg(b ORDER BY b) FILTER (WHERE b IS NOT NULL) AS buckets,
       array_agg(n ORDER BY b) FILTER (WHERE b IS NOT NULL) AS bucket_counts
FROM by_bucket
GROUP BY col
"""

_CATEGORICAL_SQL = """
WITH spec AS (
    SELECT * FROM jsonb_to_recordset(CAST(:spec AS jsonb)) AS s(col text, source text, key text)
)
SELECT g.grp, s.col, {value} AS category, count(*) AS n
FROM predictions p {groups} CROSS JOIN spec s
WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end
      AND g.grp = ANY(CAST(:groups AS text[]))
GROUP BY 1, 2, 3
"""

_COUNT_SQL = """
SELECT g.grp, count(*)
FROM predictions p {groups}
WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end
      AND g.grp = ANY(CAST(:groups AS text[]))
GROUP BY 1
"""


# (column, value) of a segment, or None for all predictions.
Segment = tuple[str, str] | None

# (stats, counts): the storage form of one column's summary (see monitor.metrics.profiles).
Parts = tuple[dict[str, Any], bytes | None]
# (bucket start, column, rows in bucket, stats, counts): one stored summary, as load_buckets reads it.
BucketRow = tuple[datetime, str, int, dict[str, Any], bytes | None]


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


@dataclass(frozen=True)
class Groups:
    """The groups of rows an hour is summarised for, all in one pass over its rows: all rows
    ('') and each tracked segment ('column=value', as ``segment_key`` names it). One pass per
    segment value read the hour again each time; with 20 values, most of the rollup's time."""

    segments: dict[str, Segment]  # by key: '' -> None, 'region=EU' -> ('region', 'EU')

    @property
    def keys(self) -> list[str]:
        return list(self.segments)

    def params(self) -> dict[str, Any]:
        columns = sorted({seg[0] for seg in self.segments.values() if seg is not None})
        return {"groups": self.keys, "segment_columns": columns}


def groups_sql(alias: str) -> str:
    """Joins each row of ``alias`` to the groups it counts in, as ``g.grp``: '' and, per segment
    column, 'column=value'. The query keeps the tracked ones with ``g.grp = ANY(:groups)``."""
    return f"""
        CROSS JOIN LATERAL (
            SELECT '' AS grp
            UNION ALL
            SELECT c.name || '=' || ({alias}.segments ->> c.name)
            FROM unnest(CAST(:segment_columns AS text[])) AS c(name)
        ) g"""


def segment_filter(segment: Segment, params: dict[str, Any]) -> str:
    """The SQL condition on the log's rows (alias ``p``) for a segment, its values put in ``params``."""
    if segment is None:
        return ""
    params["seg_col"], params["seg_val"] = segment
    return "AND p.segments ->> :seg_col = :seg_val"


def segment_key(segment: Segment) -> str:
    """How a segment is named in stored summaries: '' for all predictions, else 'column=value'."""
    return "" if segment is None else f"{segment[0]}={segment[1]}"


def window_params(
    model_id: int, version_id: int, start: datetime, end: datetime, groups: Groups | None = None
) -> dict[str, Any]:
    """The bound values of a query over [start, end) of a version's log, and of its groups."""
    params = {"model_id": model_id, "version_id": version_id, "start": start, "end": end}
    return params if groups is None else params | groups.params()


def count_rows(
    conn: Connection, model_id: int, version_id: int, start: datetime, end: datetime, groups: Groups
) -> dict[str, int]:
    """The number of predictions in [start, end) of each group."""
    rows = conn.execute(
        text(_COUNT_SQL.format(groups=groups_sql("p"))),
        window_params(model_id, version_id, start, end, groups),
    ).all()
    return {key: 0 for key in groups.keys} | {grp: int(n) for grp, n in rows}


def summarise_columns(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: dict[str, Sequence[ColumnSpec]],
    groups: Groups,
    counts: dict[str, int],
) -> dict[str, dict[str, Parts]]:
    """Each group's column summaries over [start, end), given its columns and its row count.

    Categorical columns are counted for every group in one pass. Numerical columns take one pass
    per group that has rows, because each group's edges are its own reference's."""
    out: dict[str, dict[str, Parts]] = {key: {} for key in groups.keys}
    for key in groups.keys:
        numeric = [c for c in columns[key] if c.edges is not None]
        if counts[key] and numeric:
            out[key] = _summarise_numeric(conn, model_id, version_id, start, end, numeric, groups.segments[key])
    categorical = {key: [c for c in columns[key] if c.edges is None] for key in groups.keys if counts[key]}
    if any(categorical.values()):
        counted = _count_categories(
            conn, model_id, version_id, start, end, {c.column: c for cols in categorical.values() for c in cols}, groups
        )
        for key, cols in categorical.items():
            for c in cols:
                out[key][c.column] = (counted.get((key, c.column)) or _no_categories(), None)
    return out


def _no_categories() -> dict[str, Any]:
    return {"type": "categorical", "counts": {}, "missing": 0}


def _count_categories(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: dict[str, ColumnSpec],
    groups: Groups,
) -> dict[tuple[str, str], dict[str, Any]]:
    """(group, column) -> its categorical summary: counts per value and missing values."""
    rows = conn.execute(
        text(_CATEGORICAL_SQL.format(value=_VALUE, groups=groups_sql("p"))),
        {
            **window_params(model_id, version_id, start, end, groups),
            "spec": _spec_json(list(columns.values()), False),
        },
    ).all()
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for grp, col, category, n in rows:
        s = out.setdefault((grp, col), _no_categories())
        if category is None:
            s["missing"] += int(n)
        else:
            s["counts"][category] = int(n)
    return out


def _summarise_numeric(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: Sequence[ColumnSpec],
    segment: Segment,
) -> dict[str, Parts]:
    params = window_params(model_id, version_id, start, end)
    seg = segment_filter(segment, params)
    counts = {c.column: np.zeros(2 * len(c.edges or []) + 1, dtype="<i8") for c in columns}
    out: dict[str, Parts] = {}
    rows = conn.execute(
        text(_NUMERIC_SQL.format(value=_VALUE, segment=seg)), {**params, "spec": _spec_json(columns, True)}
    ).mappings()
    for r in rows:
        stats = {
            "type": "numerical",
            "n": int(r["n"]),
            "missing": int(r["missing"]),
            "non_finite": int(r["non_finite"]),
            "min": r["mn"],
            "max": r["mx"],
            "total": float(r["total"] or 0.0),
            "total_sq": float(r["total_sq"] or 0.0),
            "low_sum": float(r["low_sum"]),
            "high_sum": float(r["high_sum"]),
        }
        if r["buckets"]:
            counts[r["col"]][np.asarray(r["buckets"], dtype=np.int64)] = r["bucket_counts"]
        out[r["col"]] = (stats, pack_counts(counts[r["col"]]))
    return out


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
) -> list[BucketRow]:
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


def week_of_hour(ts: datetime) -> datetime:
    """The Monday 00:00 UTC that starts the hour's week."""
    day = day_of_hour(ts)
    return day - timedelta(days=day.weekday())


def lock_merges(conn: Connection, version_id: int, week: datetime) -> None:
    """Serialise, per version and week, building a day or week merge with dropping one. Without
    it, a merge read before a rollup committed and stored after that rollup's drop would stay
    stale; and two processes building the same merge would collide on its key. Held until the
    transaction ends. Days lie inside weeks, so one key covers both."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:v AS int4), CAST(:w AS int4))"),
        {"v": version_id, "w": int(week.timestamp()) // 86400},
    )


def drop_merged(
    conn: Connection, version_id: int, reference_id: int, hour: datetime, segment: str = "", *, quality: bool = False
) -> None:
    """An hour was summarised again: drop the day and the week merged from it (merged again when
    next read)."""
    lock_merges(conn, version_id, week_of_hour(hour))
    delete_bucket(conn, version_id, reference_id, day_of_hour(hour), 24, segment, quality=quality)
    delete_bucket(conn, version_id, reference_id, week_of_hour(hour), 168, segment, quality=quality)
