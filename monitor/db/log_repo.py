"""The prediction log, its keys, labels and ingestion counts. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection, text

from monitor.db import log_blocks
from monitor.db.copy import BINARY_NULL, BinaryRows, copy_binary, dumps
from monitor.db.log_rows import at_time, log_rows
from monitor.db.prediction_key import KEY_OF_SQL, key_bytes, key_of, keys_of
from monitor.domain.records import LabelRow, PredictionRow


@dataclass(frozen=True, slots=True)
class StaleHour:
    hour: datetime
    mark_ids: list[int]
    log_changed: bool  # predictions arrived late (its windows whole), not only labels (their quality)
    from_log: bool = False  # its column summaries must be made from the log (see summary_deltas)
    quality_from_log: bool = False  # its quality summaries must be (a label replaced or joined late)


PREDICTION_COLUMNS = (
    "model_id",
    "model_version_id",
    "prediction_id",
    "ts",
    "features",
    "prediction",
    "scores",
    "latency_ms",
    "segments",
    "request_id",
    "subject_hash",
    "attributions",
)


def is_duplicate_key(exc: psycopg.Error) -> bool:
    """A unique violation: Postgres says so with its SQLSTATE; Citus, when a worker refused a
    COPY, re-raises the worker's message as an internal error."""
    if exc.sqlstate == "23505":
        return True
    return exc.sqlstate == "XX000" and "duplicate key value violates unique constraint" in str(exc)


def copy_prediction_keys(raw: Any, model_id: int, rows: Sequence[tuple[int, PredictionRow]]) -> None:
    """The fast path: COPY the keys, expecting none to exist. A stored one raises UniqueViolation."""
    head = BinaryRows.row(3) + BinaryRows.int4(model_id)
    key, ts = BinaryRows.raw, BinaryRows.timestamptz
    copy_binary(
        raw,
        "prediction_keys",
        ("model_id", "key", "ts"),
        (head + key(key_bytes(r.prediction_id)) + ts(r.ts) for _, r in rows),
    )


def claim_prediction_ids(raw: Any, model_id: int, rows: Sequence[tuple[int, PredictionRow]]) -> set[str]:
    """Insert the keys of ``rows``; return the ids that were new. Ids stored before are duplicates.

    ON CONFLICT DO NOTHING makes this exact under concurrency: a second transaction inserting the
    same key waits for the first and then skips it, so each id is stored once without retries.
    """
    id_of = {key_of(r.prediction_id): r.prediction_id for _, r in rows}
    cur = raw.execute(
        """
        INSERT INTO prediction_keys (model_id, key, ts)
        SELECT %s, k.key, k.ts FROM unnest(%s::uuid[], %s::timestamptz[]) AS k(key, ts)
        ON CONFLICT DO NOTHING
        RETURNING replace(key::text, '-', '')
        """,
        (model_id, list(id_of), [r.ts for _, r in rows]),
    )
    return {id_of[key] for (key,) in cur.fetchall()}


def copy_predictions(
    raw: Any,
    model_id: int,
    rows: Sequence[tuple[int, PredictionRow]],
    subject_hash: Callable[[str], bytes] | None = None,
) -> None:
    """COPY predictions, given as (version id, row), into the partitioned log. A row's data
    subject is stored as ``subject_hash`` of it, never as given (rows naming one need the hash).

    ``received_at`` is left to its default, the storing transaction's start time.
    """
    b = BinaryRows
    heads = {vid: b.row(len(PREDICTION_COLUMNS)) + b.int4(model_id) + b.int4(vid) for vid in {v for v, _ in rows}}
    text_, ts, jsonb, float8 = b.text, b.timestamptz, b.jsonb, b.float8

    def subject(r: PredictionRow) -> bytes:
        if r.subject is None:
            return BINARY_NULL
        assert subject_hash is not None, "a row names its data subject: the keyed hash is needed"
        return b.raw(subject_hash(r.subject))

    copy_binary(
        raw,
        "predictions",
        PREDICTION_COLUMNS,
        (
            heads[vid]
            + text_(r.prediction_id)
            + ts(r.ts)
            + jsonb(r.features)
            + jsonb(r.prediction)
            + jsonb(r.scores)
            + float8(r.latency_ms)
            + jsonb(r.segments)
            + text_(r.request_id)
            + subject(r)
            + jsonb(r.attributions)
            for vid, r in rows
        ),
    )


def stored_prediction_ids(conn: Connection, model_id: int, prediction_ids: Sequence[str]) -> set[str]:
    """Those of ``prediction_ids`` a prediction of the model is stored under."""
    keys = dict(zip(keys_of(prediction_ids), prediction_ids, strict=True))
    found = conn.execute(
        text(
            "SELECT replace(CAST(key AS text), '-', '') FROM prediction_keys "
            "WHERE model_id = :m AND key = ANY(CAST(:keys AS uuid[]))"
        ),
        {"m": model_id, "keys": list(keys)},
    ).scalars()
    return {keys[k] for k in found}


def attach_waiting_labels(raw: Any, model_id: int, ids: Sequence[str]) -> int:
    """Labels that arrived before their prediction learn its time now. Returns how many.

    The common case is that nothing waits (labels come after predictions): one EXISTS probe of
    the small partial index ``labels_waiting`` then spares sending the batch's ids again.
    """
    waiting = raw.execute(
        "SELECT EXISTS (SELECT 1 FROM labels WHERE model_id = %s AND prediction_ts IS NULL)", (model_id,)
    ).fetchone()[0]
    if not waiting:
        return 0
    cur = raw.execute(
        """
        WITH found AS (  -- index probes of the batch's ids, never a hash of every key of the model
            SELECT l.prediction_id,
                   (SELECT k.ts FROM prediction_keys k WHERE k.model_id = %(m)s AND k.key = {key}) AS ts
            FROM labels l
            WHERE l.model_id = %(m)s AND l.prediction_ts IS NULL AND l.prediction_id = ANY(%(ids)s::text[])
        ),
        attached AS (
            UPDATE labels l SET prediction_ts = f.ts
            FROM found f
            WHERE l.model_id = %(m)s AND l.prediction_id = f.prediction_id AND f.ts IS NOT NULL
            RETURNING l.prediction_ts
        ),
        relabelled AS (  -- the hours whose quality changed: summarised from the log by the scheduler
            INSERT INTO stale_hours (model_id, hour, cause)
            SELECT DISTINCT %(m)s, date_trunc('hour', prediction_ts, 'UTC'), 'quality'
            FROM attached WHERE prediction_ts IS NOT NULL
        )
        SELECT count(*) FROM attached
        """.replace("{key}", KEY_OF_SQL.format("l.prediction_id")),
        {"m": model_id, "ids": list(ids)},
    )
    return int(cur.fetchone()[0])


def attach_all_waiting_labels(conn: Connection) -> int:
    """Catch-up for a label and its prediction committed at the same moment, each missing the other."""
    return int(
        conn.execute(
            text(
                """
            WITH attached AS (
                UPDATE labels l SET prediction_ts = k.ts
                FROM prediction_keys k
                WHERE l.prediction_ts IS NULL AND k.model_id = l.model_id AND k.key = {key}
                RETURNING l.model_id, l.prediction_ts
            ),
            relabelled AS (  -- the hours whose quality changed: summarised from the log by the scheduler
                INSERT INTO stale_hours (model_id, hour, cause)
                SELECT DISTINCT model_id, date_trunc('hour', prediction_ts, 'UTC'), 'quality'
                FROM attached WHERE prediction_ts IS NOT NULL
            )
            SELECT count(*) FROM attached
            """.format(key=KEY_OF_SQL.format("l.prediction_id"))
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class StoredLabels:
    new: int
    replaced: int
    matched: int  # to a stored prediction
    # (prediction id, label, prediction's time) of the new labels matched: their quality is
    # summarised at ingestion (monitor.services.jobs.summary_deltas)
    new_matched: list[tuple[str, Any, datetime]]


def upsert_labels(conn: Connection, model_id: int, rows: Sequence[LabelRow], received_at: datetime) -> StoredLabels:
    """Store labels, a newer one replacing an older one for the same id. A replaced label marks
    its prediction's hour, whose quality the scheduler summarises again."""
    # The batch as arrays, not a staged temp table: on Citus a temp table is local to the
    # coordinator and cannot be joined with the model's shard; arrays travel with the query,
    # which then runs on that one shard (every table filtered by the same model_id).
    result = conn.execute(
        text(
            """
            WITH replaced AS (  -- the labels about to be replaced, kept for the prediction's look-up
                -- (every part of one statement sees the table as it was before the statement)
                INSERT INTO label_revisions (model_id, prediction_id, revision, label, label_ts, received_at,
                                             replaced_at)
                SELECT l.model_id, l.prediction_id, l.revision, l.label, l.label_ts, l.received_at, :now
                FROM labels l
                WHERE l.model_id = :m AND l.prediction_id = ANY(CAST(:ids AS text[]))
                -- two requests replacing the same label at once both read its revision: one keeps it
                ON CONFLICT DO NOTHING
            ),
            up AS (
                INSERT INTO labels AS l (model_id, prediction_id, label, label_ts, received_at, first_received_at,
                                         revision, prediction_ts)
                -- one index probe per label, whatever the planner believes of the tables' sizes: as a
                -- join it hashed every key of the model (unknown stage size, stale key statistics),
                -- 31 ms per 100 labels at 100k predictions and growing with the log
                SELECT :m, s.prediction_id, s.label, s.label_ts, :now, :now, 1,
                       (SELECT k.ts FROM prediction_keys k WHERE k.model_id = :m AND k.key = s.key)
                FROM unnest(CAST(:ids AS text[]), CAST(:keys AS uuid[]), CAST(:labels AS jsonb[]),
                            CAST(:ts AS timestamptz[])) AS s(prediction_id, key, label, label_ts)
                ON CONFLICT (model_id, prediction_id) DO UPDATE
                   SET label = EXCLUDED.label, label_ts = EXCLUDED.label_ts, received_at = EXCLUDED.received_at,
                       revision = l.revision + 1, prediction_ts = COALESCE(l.prediction_ts, EXCLUDED.prediction_ts)
                RETURNING (xmax = 0) AS inserted, prediction_ts, prediction_id
            ),
            relabelled AS (  -- hours whose quality changed: summarised again from the log (a label
                             -- replaced), or their windows computed again (a new one, its delta)
                INSERT INTO stale_hours (model_id, hour, cause)
                SELECT DISTINCT :m, date_trunc('hour', prediction_ts, 'UTC'),
                       CASE WHEN inserted THEN 'labels' ELSE 'quality' END
                FROM up WHERE prediction_ts IS NOT NULL
            )
            SELECT inserted, prediction_ts, prediction_id FROM up
            """
        ),
        {
            "m": model_id,
            "now": received_at,
            "ids": [r.prediction_id for r in rows],
            "keys": keys_of(r.prediction_id for r in rows),
            "labels": [dumps(r.label) for r in rows],
            "ts": [r.ts for r in rows],
        },
    ).all()
    new = sum(1 for inserted, _, _ in result if inserted)
    matched = sum(1 for _, ts, _ in result if ts is not None)
    label_of = {r.prediction_id: r.label for r in rows}
    fresh = [(pid, label_of[pid], ts) for inserted, ts, pid in result if inserted and ts is not None]
    return StoredLabels(new, len(result) - new, matched, fresh)


def predictions_for_labels(
    conn: Connection, model_id: int, keys: Sequence[tuple[str, datetime]]
) -> list[tuple[str, int, datetime, str, str | None, str | None]]:
    """(prediction id, version id, time, prediction, scores, segments; JSON as text) of the
    predictions of ``keys`` (prediction id, time): one index probe of the log per key, by its time
    and then its id. (Times and ids as two ``= ANY`` lists compared every row found by a time with
    every id of the batch: a million text comparisons per 1,000 labels, the most of Postgres's time
    under a label stream.)"""
    rows = conn.execute(
        text(
            """
            SELECT p.prediction_id, p.model_version_id, p.ts, p.prediction::text, p.scores::text, p.segments::text
            FROM unnest(CAST(:ids AS text[]), CAST(:times AS timestamptz[])) AS k(prediction_id, ts)
            CROSS JOIN LATERAL (  -- LIMIT keeps it a probe per key: a plain subquery is pulled up
                                  -- into a join, which the planner made a sort of every row of the hour
                SELECT * FROM {log_rows} p
                WHERE {at_time} AND p.prediction_id = k.prediction_id
                LIMIT 1
            ) p
            """.format(
                log_rows=log_rows(":m", "prediction_id", "prediction", "scores", "segments"),
                at_time=at_time("p", "k.ts"),
            )
        ),
        {"m": model_id, "ids": [pid for pid, _ in keys], "times": [ts for _, ts in keys]},
    ).all()
    return [(r[0], r[1], r[2].astimezone(UTC), r[3], r[4], r[5]) for r in rows]


def add_ingest_stats(
    raw: Any, model_id: int, bucket: datetime, kind: str, accepted: int, duplicates: int, rejected: int
) -> None:
    raw.execute(
        """
        INSERT INTO ingest_stats AS s (model_id, bucket, kind, shard, accepted, duplicates, rejected)
        VALUES (%s, %s, %s, pg_backend_pid() %% 8, %s, %s, %s)
        ON CONFLICT (model_id, bucket, kind, shard) DO UPDATE
           SET accepted = s.accepted + EXCLUDED.accepted, duplicates = s.duplicates + EXCLUDED.duplicates,
               rejected = s.rejected + EXCLUDED.rejected
        """,
        (model_id, bucket, kind, accepted, duplicates, rejected),
    )


def add_schema_violations(conn: Connection, model_id: int, bucket: datetime, counts: dict[str, int]) -> None:
    if not counts:
        return
    conn.execute(
        text(
            """
            INSERT INTO schema_violations AS v (model_id, bucket, field, count)
            SELECT :m, :b, f, c FROM unnest(CAST(:fields AS text[]), CAST(:counts AS bigint[])) AS t(f, c)
            ON CONFLICT (model_id, bucket, field) DO UPDATE SET count = v.count + EXCLUDED.count
            """
        ),
        {"m": model_id, "b": bucket, "fields": list(counts), "counts": list(counts.values())},
    )


def delete_expired(conn: Connection, cutoff: datetime) -> dict[str, int]:
    """Retention for the tables outside the partitioned log."""
    keys = conn.execute(text("DELETE FROM prediction_keys WHERE ts < :c"), {"c": cutoff}).rowcount
    blocks = log_blocks.delete_expired(conn, cutoff)
    labels = conn.execute(
        text("DELETE FROM labels WHERE coalesce(prediction_ts, received_at) < :c"), {"c": cutoff}
    ).rowcount
    conn.execute(text("DELETE FROM label_revisions WHERE replaced_at < :c"), {"c": cutoff})
    stats = conn.execute(text("DELETE FROM ingest_stats WHERE bucket < :c"), {"c": cutoff}).rowcount
    conn.execute(text("DELETE FROM schema_violations WHERE bucket < :c"), {"c": cutoff})
    # deltas no scheduler folded (a version no longer run): their rows are past retention too
    deltas = conn.execute(text("DELETE FROM summary_deltas WHERE minute < :c"), {"c": cutoff}).rowcount
    return {
        "prediction_keys": keys,
        "prediction_blocks": blocks,
        "labels": labels,
        "ingest_stats": stats,
        "summary_deltas": deltas,
    }


def mark_stale_hours(raw: Any, model_id: int, hours: Sequence[datetime], cause: str) -> None:
    """Ask the scheduler to compute these hours' windows again (``cause``: 'labels' or
    'predictions', which deltas changed), after summarising them from the log ('summaries': every
    summary; 'quality': the quality summaries)."""
    raw.execute(
        "INSERT INTO stale_hours (model_id, hour, cause) SELECT %s, h, %s FROM unnest(%s::timestamptz[]) AS h",
        (model_id, cause, list(hours)),
    )


def stale_hours(conn: Connection, model_id: int, limit: int) -> list[StaleHour]:
    """The newest ``limit`` hours marked stale since the scheduler last took their marks, oldest
    first. Marks are appended, one per transaction and hour (no row two transactions update)."""
    rows = conn.execute(
        text(
            "SELECT * FROM (SELECT hour, array_agg(id), bool_or(cause IN ('predictions', 'summaries')), "
            "bool_or(cause = 'summaries'), bool_or(cause = 'quality') "
            "FROM stale_hours "
            "WHERE model_id = :m GROUP BY hour ORDER BY hour DESC LIMIT :limit) newest ORDER BY hour"
        ),
        {"m": model_id, "limit": limit},
    ).all()
    return [StaleHour(h.astimezone(UTC), list(ids), *flags) for h, ids, *flags in rows]


def clear_stale_hours(conn: Connection, model_id: int, taken: Sequence[StaleHour]) -> None:
    """Forget exactly the marks taken: one committed while they were done stays for the next run."""
    ids = [i for hour in taken for i in hour.mark_ids]
    if ids:
        conn.execute(
            text("DELETE FROM stale_hours WHERE model_id = :m AND id = ANY(:ids)"), {"m": model_id, "ids": ids}
        )


def violations_between(conn: Connection, model_id: int, start: datetime, end: datetime) -> tuple[int, dict[str, int]]:
    """Rejected records and schema violations per field counted in the hours of [start, end)."""
    rejected = conn.execute(
        text(
            "SELECT coalesce(sum(rejected), 0) FROM ingest_stats WHERE model_id = :m AND bucket >= :s AND bucket < :e"
        ),
        {"m": model_id, "s": start, "e": end},
    ).scalar_one()
    rows = conn.execute(
        text(
            "SELECT field, sum(count) FROM schema_violations WHERE model_id = :m AND bucket >= :s AND bucket < :e "
            "GROUP BY field ORDER BY field"
        ),
        {"m": model_id, "s": start, "e": end},
    ).all()
    return int(rejected), {f: int(n) for f, n in rows}


@dataclass(frozen=True, slots=True)
class Erased:
    predictions: int
    labels: int
    label_revisions: int


def erase_subject(conn: Connection, model_id: int, hashes: Sequence[bytes]) -> Erased:
    """Delete one model's predictions whose subject hash is one of ``hashes``, with their keys,
    labels and replaced labels: rows one a row first, then compacted ones (a row compacted
    meanwhile is in a block by then). Filtered by the model first: on Citus each statement stays
    on the model's shard."""
    ids = list(
        conn.execute(
            text(
                "DELETE FROM predictions WHERE model_id = :m AND subject_hash = ANY(:h) "
                "AND subject_hash IS NOT NULL RETURNING prediction_id"
            ),
            {"m": model_id, "h": list(hashes)},
        ).scalars()
    )
    ids.extend(log_blocks.erase_subject(conn, model_id, hashes).prediction_ids)
    return forget_predictions(conn, model_id, ids)


def forget_predictions(conn: Connection, model_id: int, ids: Sequence[str]) -> Erased:
    """Delete what is kept beside the log of these predictions (stored ids), gone from it: their
    keys (so a label finds nothing), labels and replaced labels."""
    if not ids:
        return Erased(0, 0, 0)
    by_id = {"m": model_id, "ids": list(ids)}
    conn.execute(
        text("DELETE FROM prediction_keys WHERE model_id = :m AND key = ANY(CAST(:keys AS uuid[]))"),
        {"m": model_id, "keys": keys_of(ids)},
    )
    labels = conn.execute(text("DELETE FROM labels WHERE model_id = :m AND prediction_id = ANY(:ids)"), by_id)
    revisions = conn.execute(
        text("DELETE FROM label_revisions WHERE model_id = :m AND prediction_id = ANY(:ids)"), by_id
    )
    return Erased(len(ids), labels.rowcount, revisions.rowcount)
