"""Summaries of the prediction log and their storage. Functions take a connection and never
commit.

The column summaries of an hour read its rows once, streamed in chunks, and count them in numpy
(``monitor.metrics.log_summary``): every group and column from the same decoded rows. They were
computed inside Postgres, one ``features ->> key`` per row and column; a wide model's feature
document is stored compressed out of line, and each extraction decompressed all of it again, so
the cost grew with the square of the number of features (0.07M values/s at 500 features against
0.76M at 20), and each tracked segment read the hour again. Rows x columns decoded once is both
linear and, measured, faster at every width (``benchmarks/wide.py``). Row counts and quality
summaries stay in SQL: they read a few small columns.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ARRAY, ColumnElement, Connection, DateTime, Select, any_, bindparam, delete, func, select, text

from monitor.db.log_blocks import FeatureTexts
from monitor.db.log_rows import in_window, log_rows
from monitor.db.registry_repo import VersionRow
from monitor.db.tables import bucket_summaries
from monitor.metrics.log_summary import Chunk, Column, Derived, GroupSummaries, Parts, add_chunk
from monitor.metrics.quality_summary import QUALITY_COLUMN

# The window's rows, each read once, as the column summaries need them (monitor.metrics.log_summary).
_ROWS_SQL = f"""
SELECT p.features::text, p.block_id, p.position, p.scores::text, p.prediction::text, p.latency_ms, p.segments::text,
       p.attributions::text
FROM {log_rows(":model_id", "features", "scores", "prediction", "latency_ms", "segments", "attributions")} p
WHERE p.model_version_id = :version_id AND {in_window("p", ":start", ":end")}
"""
# Values decoded at a time: a chunk of a 2,000-feature model's rows is 500 rows.
VALUES_PER_CHUNK = 1_000_000

# Rows per group, or per minute and group (``minute``: the minute's column and its comma).
_COUNT_SQL = (
    """
SELECT {minute}g.grp, count(*)
FROM """
    + log_rows(":model_id", "segments")
    + """ p {groups}
WHERE p.model_version_id = :version_id AND """
    + in_window("p", ":start", ":end")
    + """
      AND g.grp = ANY(CAST(:groups AS text[]))
GROUP BY {group_by}
"""
)


# (column, value) of a segment, or None for all predictions.
Segment = tuple[str, str] | None


class Series(NamedTuple):
    """Whose summaries a bucket holds: a model version's, against one of its references. The key
    of every stored summary, passed as one value where three ids went in a row."""

    model_id: int
    version_id: int
    reference_id: int

    @classmethod
    def of(cls, vrow: VersionRow, reference_id: int) -> Series:
        return cls(vrow.model_id, vrow.version_id, reference_id)


# (bucket start, column, rows in bucket, stats, counts): one stored summary, as load_buckets reads it.
BucketRow = tuple[datetime, str, int, dict[str, Any], bytes | None]


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
        text(_COUNT_SQL.format(minute="", groups=groups_sql("p"), group_by="1")),
        window_params(model_id, version_id, start, end, groups),
    ).all()
    return {key: 0 for key in groups.keys} | {grp: int(n) for grp, n in rows}


def count_rows_by_minute(
    conn: Connection, model_id: int, version_id: int, start: datetime, end: datetime, groups: Groups
) -> dict[datetime, dict[str, int]]:
    """The number of predictions of each group in each minute of [start, end) that has any."""
    sql = _COUNT_SQL.format(minute="date_trunc('minute', p.ts), ", groups=groups_sql("p"), group_by="1, 2")
    rows = conn.execute(text(sql), window_params(model_id, version_id, start, end, groups)).all()
    out: dict[datetime, dict[str, int]] = {}
    for minute, grp, n in rows:
        out.setdefault(minute, {key: 0 for key in groups.keys})[grp] = int(n)
    return out


def stored_counts(conn: Connection, series: Series, hour: datetime, groups: Groups) -> dict[str, int]:
    """The predictions of each group in an hour, as its stored column summaries count them."""
    found = _stored_counts(conn, series, 1, hour, hour + timedelta(hours=1), groups)
    return found.get(hour, {key: 0 for key in groups.keys})


def stored_minute_counts(
    conn: Connection, series: Series, start: datetime, end: datetime, groups: Groups
) -> dict[datetime, dict[str, int]]:
    """The predictions of each group in each minute of [start, end), as its stored column
    summaries count them."""
    return _stored_counts(conn, series, MINUTE_BUCKET, start, end, groups)


def _stored_counts(
    conn: Connection, series: Series, bucket_hours: int, start: datetime, end: datetime, groups: Groups
) -> dict[datetime, dict[str, int]]:
    """Per stored bucket of ``bucket_hours`` starting in [start, end), each group's predictions."""
    b = bucket_summaries.c
    rows = conn.execute(
        select(b.bucket_start, b.segment, func.max(b.n_rows))
        .where(
            b.model_id == series.model_id,
            b.model_version_id == series.version_id,
            b.reference_id == series.reference_id,
            b.bucket_hours == bucket_hours,
            b.bucket_start >= start,
            b.bucket_start < end,
            _kind(False),
        )
        .group_by(b.bucket_start, b.segment)
    ).all()
    out: dict[datetime, dict[str, int]] = {}
    for bucket, seg, n in rows:
        if seg in groups.segments:
            out.setdefault(bucket, {key: 0 for key in groups.keys})[seg] = int(n)
    return out


def summarise_columns(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: Mapping[str, Sequence[Column]],
    groups: Groups,
    counts: dict[str, int],
    derived: Sequence[Derived] = (),
    also: Mapping[str, Sequence[Column]] | None = None,
) -> dict[str, dict[str, Parts]]:
    """Each group's column summaries over [start, end), given its columns and its row count, and
    its summaries of the ``derived`` per-row values (label-free estimation, reconstruction).
    ``also``: more summaries of all rows, on other edges (another reference's), returned under
    their own keys, from the same reading of the rows.

    The window's rows are read once, in chunks, for every group and column (a group's numerical
    columns on its own reference's edges): linear in rows x columns, whatever the width."""
    accumulators = _accumulators(columns, also, derived, counts)
    if accumulators:
        per_chunk = _rows_per_chunk(columns, also)
        # a server-side cursor for this statement only (Connection.execution_options would set it
        # for every statement after it on the connection)
        query = text(_ROWS_SQL).execution_options(stream_results=True, yield_per=per_chunk)
        result = conn.execute(query, window_params(model_id, version_id, start, end))
        features = FeatureTexts(conn, model_id)
        for rows in result.partitions(per_chunk):
            add_chunk(_decode(rows, features), accumulators, groups.segments, derived)
    return {key: accumulators[key].parts() if key in accumulators else {} for key in [*groups.keys, *(also or {})]}


_ROWS_BY_MINUTE_SQL = (
    _ROWS_SQL.replace("p.attributions::text", "p.attributions::text, date_trunc('minute', p.ts)") + "ORDER BY p.ts\n"
)
_MINUTE = 8  # the minute's column in its rows


def summarise_columns_by_minute(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    columns: Mapping[str, Sequence[Column]],
    groups: Groups,
    counts: Mapping[datetime, dict[str, int]],
    derived: Sequence[Derived] = (),
    also: Mapping[str, Sequence[Column]] | None = None,
) -> Iterator[tuple[datetime, dict[str, dict[str, Parts]]]]:
    """``summarise_columns`` of each minute of [start, end) with rows (``counts``: each one's
    groups' rows), from one reading of its rows in time order: (minute, its summaries by group),
    oldest first."""
    per_chunk = _rows_per_chunk(columns, also)
    query = text(_ROWS_BY_MINUTE_SQL).execution_options(stream_results=True, yield_per=per_chunk)
    result = conn.execute(query, window_params(model_id, version_id, start, end))
    features = FeatureTexts(conn, model_id)
    keys = [*groups.keys, *(also or {})]
    minute: datetime | None = None
    accumulators: dict[str, GroupSummaries] = {}

    def done() -> tuple[datetime, dict[str, dict[str, Parts]]]:
        assert minute is not None
        return minute, {key: accumulators[key].parts() if key in accumulators else {} for key in keys}

    for rows in result.partitions(per_chunk):
        i = 0
        while i < len(rows):
            if rows[i][_MINUTE] != minute:
                if minute is not None:
                    yield done()
                minute = rows[i][_MINUTE]
                accumulators = _accumulators(columns, also, derived, counts[minute])
            j = i
            while j < len(rows) and rows[j][_MINUTE] == minute:
                j += 1
            if accumulators:
                add_chunk(_decode(rows[i:j], features), accumulators, groups.segments, derived)
            i = j
    if minute is not None:
        yield done()


def _accumulators(
    columns: Mapping[str, Sequence[Column]],
    also: Mapping[str, Sequence[Column]] | None,
    derived: Sequence[Derived],
    counts: Mapping[str, int],
) -> dict[str, GroupSummaries]:
    """A summary per group with rows (``also``'s summarise all rows, on their own edges)."""
    out = {key: GroupSummaries(cols, derived) for key, cols in columns.items() if counts.get(key)}
    return out | {key: GroupSummaries(cols) for key, cols in (also or {}).items() if counts.get("")}


def _rows_per_chunk(columns: Mapping[str, Sequence[Column]], also: Mapping[str, Sequence[Column]] | None) -> int:
    width = max(1, *(len(cols) for cols in columns.values()), *(len(cols) for cols in (also or {}).values()))
    return max(100, VALUES_PER_CHUNK // width)


def _decode(rows: Sequence[Any], features: FeatureTexts) -> Chunk:
    """Rows of ``_ROWS_SQL``: (features or its block and position, scores, prediction, latency,
    segments, attributions)."""
    loads = orjson.loads
    return Chunk(
        features=[loads(features.fill(r[0], r[1], r[2])) for r in rows],
        scores=[None if r[3] is None else loads(r[3]) for r in rows],
        predictions=[loads(r[4]) for r in rows],
        latency_ms=[r[5] for r in rows],
        segments=[None if r[6] is None else loads(r[6]) for r in rows],
        attributions=[None if r[7] is None else loads(r[7]) for r in rows],
    )


# A shadow's pair summaries (``monitor.metrics.pairs``): one row per hour of the champion's
# predictions, stored under the shadow's version and reference, named after the champion's version
# id; ``n_rows`` holds the pairs, ``stats`` the counts and ``counts`` the joint score histogram.
PAIRS = "_pairs:"

# Whether a merged bucket with no rows is stored (``benchmarks/backfill.py`` measures without).
STORE_EMPTY_MERGES = True
# ``bucket_hours`` of a minute's summaries (monitor.services.jobs.windows: the part-hours at a
# sliding window's ends). The column counts whole hours; a minute is less than one.
MINUTE_BUCKET = 0
# The marker of a merged bucket that had no rows (column summaries, quality summaries).
EMPTY = "_empty"
EMPTY_QUALITY = "_empty_quality"


def replace_bucket(
    conn: Connection,
    series: Series,
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
    delete_bucket(conn, series, bucket_start, bucket_hours, segment, quality=quality)
    if not parts and bucket_hours > 1 and STORE_EMPTY_MERGES:
        # A merged day or week with no rows is stored too (one marker row): else every window over
        # a quiet stretch would merge it again, under its lock, on every read.
        parts = {EMPTY_QUALITY if quality else EMPTY: ({}, None)}
    if parts:
        conn.execute(
            bucket_summaries.insert(),
            [
                {
                    "model_id": series.model_id,
                    "model_version_id": series.version_id,
                    "reference_id": series.reference_id,
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


# One bucket's summaries to insert: (bucket start, segment, rows in bucket, column -> parts).
NewBucket = tuple[datetime, str, int, dict[str, Parts]]


def insert_minutes(conn: Connection, series: Series, buckets: Sequence[NewBucket]) -> None:
    """Insert minute summaries where there are none (``delete_minutes`` cleared them), all in one
    statement: an hour's minutes are thousands of rows, and a statement per minute and segment
    cost a round trip each (on Citus, a distributed plan each)."""
    rows = [
        {"b": b, "s": seg, "n": n, "c": col, "st": st, "ct": None if ct is None else base64.b64encode(ct).decode()}
        for b, seg, n, parts in buckets
        for col, (st, ct) in parts.items()
    ]
    if not rows:
        return
    # one JSON document, made in C and parsed by Postgres: binding thousands of array elements
    # one by one cost more than the summaries themselves
    conn.execute(
        text(
            """
            INSERT INTO bucket_summaries (model_id, model_version_id, reference_id, bucket_start, bucket_hours,
                                          column_name, segment, n_rows, stats, counts)
            SELECT :m, :v, :r, u.b, :size, u.c, u.s, u.n, u.st, decode(u.ct, 'base64')
            FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                 AS u(b timestamptz, c text, s text, n bigint, st jsonb, ct text)
            """
        ),
        {
            "m": series.model_id,
            "v": series.version_id,
            "r": series.reference_id,
            "size": MINUTE_BUCKET,
            "rows": orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        },
    )


def is_marker(column: str) -> bool:
    return column in (EMPTY, EMPTY_QUALITY)


def _kind(quality: bool) -> ColumnElement[bool]:
    """Quality summaries (one column, ``QUALITY_COLUMN``) or column summaries: labels change the
    first long after the second is final, so each is replaced and merged on its own. A shadow's
    pair summaries (``PAIRS``) are neither."""
    col = bucket_summaries.c.column_name
    quality_columns = [QUALITY_COLUMN, EMPTY_QUALITY]
    if quality:
        return col.in_(quality_columns)
    return col.not_in(quality_columns) & ~col.startswith(PAIRS, autoescape=True)


def delete_bucket(
    conn: Connection,
    series: Series,
    bucket_start: datetime,
    bucket_hours: int,
    segment: str = "",
    *,
    quality: bool = False,
) -> None:
    conn.execute(
        delete(bucket_summaries).where(
            # on Citus: the one shard of the model. Written into the statement (an integer), not
            # bound: psycopg prepares a statement run five times, and Citus could not prune this
            # DELETE's generic plan, which then ran on every shard of every worker
            bucket_summaries.c.model_id == bindparam("model_id", int(series.model_id), literal_execute=True),
            bucket_summaries.c.model_version_id == series.version_id,
            bucket_summaries.c.reference_id == series.reference_id,
            bucket_summaries.c.bucket_hours == bucket_hours,
            bucket_summaries.c.bucket_start == bucket_start,
            bucket_summaries.c.segment == segment,
            _kind(quality),
        )
    )


def delete_minutes(
    conn: Connection,
    series: Series,
    start: datetime,
    end: datetime,
    *,
    quality: bool = False,
) -> None:
    """Drop the minute summaries of [start, end), every segment's: the hour is summarised again."""
    b = bucket_summaries.c
    conn.execute(
        delete(bucket_summaries).where(
            b.model_id == bindparam("model_id", int(series.model_id), literal_execute=True),  # as delete_bucket
            b.model_version_id == series.version_id,
            b.reference_id == series.reference_id,
            b.bucket_hours == MINUTE_BUCKET,
            b.bucket_start >= start,
            b.bucket_start < end,
            _kind(quality),
        )
    )


def load_minutes(
    conn: Connection, series: Series, minutes: Sequence[datetime]
) -> list[tuple[datetime, str, str, int, dict[str, Any], bytes | None]]:
    """(minute, segment, column, rows, stats, counts) of every stored summary of these minutes:
    every segment's, column and quality summaries alike."""
    if not minutes:
        return []
    b = bucket_summaries.c
    rows = conn.execute(
        select(b.bucket_start, b.segment, b.column_name, b.n_rows, b.stats, b.counts).where(
            b.model_id == series.model_id,
            b.model_version_id == series.version_id,
            b.reference_id == series.reference_id,
            b.bucket_hours == MINUTE_BUCKET,
            b.bucket_start.in_(list(minutes)),
        )
    ).all()
    return [(m, seg, col, n, st, None if ct is None else bytes(ct)) for m, seg, col, n, st, ct in rows]


def delete_minute_buckets(conn: Connection, series: Series, keys: Sequence[tuple[datetime, str]]) -> None:
    """Drop the summaries of these (minute, segment)s, in one statement."""
    if not keys:
        return
    conn.execute(
        text(
            f"DELETE FROM bucket_summaries WHERE model_id = {int(series.model_id)} "  # literal: as delete_bucket
            "AND model_version_id = :v AND reference_id = :r AND bucket_hours = :size "
            "AND (bucket_start, segment) IN (SELECT * FROM unnest(CAST(:m AS timestamptz[]), CAST(:s AS text[])))"
        ),
        {
            "v": series.version_id,
            "r": series.reference_id,
            "size": MINUTE_BUCKET,
            "m": [k[0] for k in keys],
            "s": [k[1] for k in keys],
        },
    )


def delete_minutes_before(conn: Connection, cutoff: datetime) -> int:
    """Drop every minute summary older than ``cutoff`` (past the minute horizon: no sliding
    window reads it; its hour's summary holds it)."""
    b = bucket_summaries.c
    return conn.execute(
        delete(bucket_summaries).where(b.bucket_hours == MINUTE_BUCKET, b.bucket_start < cutoff)
    ).rowcount


def _buckets_query(quality: bool) -> Select[Any]:
    b = bucket_summaries.c
    return select(b.bucket_start, b.column_name, b.n_rows, b.stats, b.counts).where(
        b.model_id == bindparam("m"),
        b.model_version_id == bindparam("v"),
        b.reference_id == bindparam("r"),
        b.segment == bindparam("seg"),
        b.bucket_hours == bindparam("size"),
        b.bucket_start == any_(bindparam("starts", type_=ARRAY(DateTime(timezone=True)))),
        _kind(quality),
    )


def _any_minute_query(quality: bool) -> Select[Any]:
    b = bucket_summaries.c
    return (
        select(b.bucket_start)
        .where(
            b.model_id == bindparam("m"),
            b.model_version_id == bindparam("v"),
            b.reference_id == bindparam("r"),
            b.segment == bindparam("seg"),
            b.bucket_hours == MINUTE_BUCKET,
            b.bucket_start >= bindparam("start"),
            b.bucket_start < bindparam("end"),
            _kind(quality),
        )
        .limit(1)
    )


# Built once: a window's reads run these a few times each for every model at every scheduler
# run, and building the expression each time cost more than the round trip (an ANY(array), not
# an expanding IN, which SQLAlchemy rewrote at every execution).
_LOAD_BUCKETS = {quality: _buckets_query(quality) for quality in (False, True)}
_ANY_MINUTE = {quality: _any_minute_query(quality) for quality in (False, True)}


def load_buckets(
    conn: Connection,
    series: Series,
    bucket_hours: int,
    starts: Sequence[datetime],
    segment: str = "",
    *,
    quality: bool = False,
) -> list[BucketRow]:
    """(bucket start, column, rows in bucket, stats, counts) of the given buckets."""
    if not starts:
        return []
    params = {"v": series.version_id, "r": series.reference_id, "seg": segment, "size": bucket_hours}
    rows = conn.execute(_LOAD_BUCKETS[quality], {**params, "m": series.model_id, "starts": list(starts)}).all()
    return [(b, c, n, st, bytes(ct) if ct is not None else None) for b, c, n, st, ct in rows]


def any_minute(
    conn: Connection, series: Series, start: datetime, end: datetime, segment: str = "", *, quality: bool = False
) -> bool:
    """Whether a minute in [start, end) has a summary of this kind for the group."""
    params = {"m": series.model_id, "v": series.version_id, "r": series.reference_id, "seg": segment}
    return conn.execute(_ANY_MINUTE[quality], {**params, "start": start, "end": end}).first() is not None


def summarised_hours(conn: Connection, series: Series, start: datetime, end: datetime) -> set[datetime]:
    """The hours in [start, end) with column summaries of all rows against this reference."""
    b = bucket_summaries.c
    rows = conn.execute(
        select(b.bucket_start)
        .distinct()
        .where(
            b.model_id == series.model_id,
            b.model_version_id == series.version_id,
            b.reference_id == series.reference_id,
            b.segment == "",
            b.bucket_hours == 1,
            b.bucket_start >= start,
            b.bucket_start < end,
            _kind(False),
        )
    ).all()
    return {r[0] for r in rows}


def hourly_rows(conn: Connection, model_id: int, since: datetime) -> list[tuple[datetime, int]]:
    """Predictions per hour of their timestamps since ``since``, as the hourly summaries counted
    them (over all predictions; the versions' counts add up, a version summarised against two
    references counts once)."""
    rows = conn.execute(
        text(
            """
            SELECT bucket_start, sum(n) FROM (
                SELECT bucket_start, model_version_id, max(n_rows) AS n FROM bucket_summaries
                WHERE model_id = :m AND bucket_hours = 1 AND segment = '' AND bucket_start >= :since
                  AND NOT starts_with(column_name, :pairs)
                GROUP BY bucket_start, model_version_id
            ) per_version
            GROUP BY bucket_start ORDER BY bucket_start
            """
        ),
        {"m": model_id, "since": since, "pairs": PAIRS},
    ).all()
    return [(b, int(n)) for b, n in rows]


def day_of_hour(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def week_of_hour(ts: datetime) -> datetime:
    """The Monday 00:00 UTC that starts the hour's week."""
    day = day_of_hour(ts)
    return day - timedelta(days=day.weekday())


def merge_lock_key(version_id: int, week: datetime) -> tuple[int, int]:
    """The advisory lock key ``lock_merges`` takes, for a session lock on the same key."""
    return version_id, int(week.timestamp()) // 86400


def lock_merges(conn: Connection, version_id: int, week: datetime) -> None:
    """Serialise, per version and week, building a day or week merge with dropping one. Without
    it, a merge read before a rollup committed and stored after that rollup's drop would stay
    stale; and two processes building the same merge would collide on its key. Held until the
    transaction ends. Days lie inside weeks, so one key covers both."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:v AS int4), CAST(:w AS int4))"),
        dict(zip(("v", "w"), merge_lock_key(version_id, week), strict=True)),
    )


# A day is merged only once it has ended (``monitor.services.jobs.windows.bucket_plan``): one
# ending later than this after now has no merge to drop, with room for clocks that disagree.
MERGE_CLOCK_MARGIN = timedelta(hours=1)


def drop_merged(
    conn: Connection,
    series: Series,
    hour: datetime,
    segment: str = "",
    *,
    quality: bool = False,
    unless_filling: bool = False,
) -> None:
    """An hour was summarised again: drop the day and the week merged from it (merged again when
    next read). ``unless_filling``: nothing is done for an hour whose day ends well after now (by
    this process's clock, as merges are made): it has no merge yet (three statements saved in
    every fold of a small model)."""
    if unless_filling and day_of_hour(hour) + timedelta(days=1) > datetime.now(UTC) + MERGE_CLOCK_MARGIN:
        return
    lock_merges(conn, series.version_id, week_of_hour(hour))
    delete_bucket(conn, series, day_of_hour(hour), 24, segment, quality=quality)
    delete_bucket(conn, series, week_of_hour(hour), 168, segment, quality=quality)


# The hours whose pair summary is missing, or older than a quality summary it depends on: the
# champion's of the hour, or the shadow's of the hour or either next to it (its predictions are
# paired within an hour either side). Quality summaries are summarised again when labels or late
# predictions land in their hour, so a newer one means the pairs may have changed.
_STALE_PAIRS_SQL = """
    SELECT h.hour
    FROM generate_series(CAST(:start AS timestamptz), CAST(:end AS timestamptz) - interval '1 hour',
                         interval '1 hour') AS h(hour)
    LEFT JOIN bucket_summaries p
           ON p.model_id = :m AND p.model_version_id = :shadow AND p.reference_id = :ref AND p.bucket_hours = 1
          AND p.segment = '' AND p.column_name = :col AND p.bucket_start = h.hour
    WHERE p.computed_at IS NULL OR EXISTS (
        SELECT 1 FROM bucket_summaries q
        WHERE q.model_id = :m AND q.bucket_hours = 1 AND q.segment = '' AND q.column_name = :quality
          AND q.computed_at > p.computed_at
          AND ((q.model_version_id = :champion AND q.bucket_start = h.hour)
               OR (q.model_version_id = :shadow AND q.bucket_start >= h.hour - interval '1 hour'
                   AND q.bucket_start <= h.hour + interval '1 hour'))
    )
    ORDER BY 1
"""


def read_time(conn: Connection) -> datetime:
    """The transaction's time, as ``computed_at`` defaults to it."""
    return conn.execute(text("SELECT now()")).scalar_one()  # type: ignore[no-any-return]


class PairKey(NamedTuple):
    """Whose pair summaries: a shadow's (under its reference) with one champion."""

    model_id: int
    shadow_id: int
    reference_id: int
    champion_id: int

    @property
    def column(self) -> str:
        return f"{PAIRS}{self.champion_id}"

    def rows(self) -> list[ColumnElement[bool]]:
        """The conditions its stored hours meet."""
        b = bucket_summaries.c
        return [
            b.model_id == self.model_id,
            b.model_version_id == self.shadow_id,
            b.reference_id == self.reference_id,
            b.bucket_hours == 1,
            b.segment == "",
            b.column_name == self.column,
        ]


def stale_pair_hours(conn: Connection, key: PairKey, start: datetime, end: datetime) -> list[datetime]:
    """The hours in [start, end) whose pair summary must be made (again), in order."""
    params: dict[str, Any] = {"m": key.model_id, "shadow": key.shadow_id, "ref": key.reference_id}
    params |= {"champion": key.champion_id, "col": key.column, "quality": QUALITY_COLUMN, "start": start, "end": end}
    return [r[0] for r in conn.execute(text(_STALE_PAIRS_SQL), params).all()]


def replace_pair_hour(
    conn: Connection, key: PairKey, hour: datetime, n_pairs: int, parts: Parts, computed_at: datetime
) -> None:
    """Store an hour's pair summary (an hour without pairs too: else it is made on every read).
    ``computed_at``: when the rows it was made from were read, not when it is written: a quality
    summary written in between must make it stale."""
    conn.execute(delete(bucket_summaries).where(*key.rows(), bucket_summaries.c.bucket_start == hour))
    row = {
        "model_id": key.model_id,
        "model_version_id": key.shadow_id,
        "reference_id": key.reference_id,
        "bucket_start": hour,
        "bucket_hours": 1,
        "column_name": key.column,
        "segment": "",
        "n_rows": n_pairs,
        "stats": parts[0],
        "counts": parts[1],
        "computed_at": computed_at,
    }
    conn.execute(bucket_summaries.insert(), [row])


def pair_hours(conn: Connection, key: PairKey, start: datetime, end: datetime) -> list[Parts]:
    """The stored pair summaries of the hours in [start, end)."""
    b = bucket_summaries.c
    rows = conn.execute(select(b.stats, b.counts).where(*key.rows(), b.bucket_start >= start, b.bucket_start < end))
    return [(st, bytes(ct) if ct is not None else None) for st, ct in rows.all()]
