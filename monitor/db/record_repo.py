"""One stored prediction, everything recorded about it, and a window's rows page by page for
export. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from monitor.db.engine import json_loads
from monitor.db.log_blocks import FeatureTexts
from monitor.db.log_rows import COLUMNS, at_time, in_window, log_rows
from monitor.db.prediction_key import key_of
from monitor.metrics.pairs import PairingRow

# Advisory-lock namespace (the first key of pg_try_advisory_xact_lock(int, int)) of exports.
EXPORT_LOCK = 0x6578_7074  # "expt"
EXPORT_READER_PAUSE = "15min"  # how long an export's client may go without reading


def prediction(conn: Connection, model_id: int, prediction_id: str) -> dict[str, Any] | None:
    """The stored prediction (found through its key: the log is partitioned by time), its version
    and its label."""
    row = (
        conn.execute(
            text(
                """
                SELECT p.prediction_id, p.ts, p.received_at, p.features::text AS features, p.block_id, p.position,
                       p.prediction, p.scores, p.latency_ms, p.segments, p.attributions, p.model_version_id, v.version,
                       l.label, l.label_ts, l.received_at AS label_received_at, l.first_received_at, l.revision
                FROM prediction_keys k
                JOIN {log_rows} p ON p.model_id = k.model_id AND {at_time} AND p.prediction_id = :pid
                JOIN model_versions v ON v.id = p.model_version_id
                LEFT JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
                WHERE k.model_id = :m AND k.key = CAST(:key AS uuid)
                """.format(log_rows=log_rows(":m", *COLUMNS, "features"), at_time=at_time("p", "k.ts"))
            ),
            {"m": model_id, "pid": prediction_id, "key": key_of(prediction_id)},
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    found = dict(row)
    texts = FeatureTexts(conn, model_id)
    found["features"] = json_loads(texts.fill(found["features"], found.pop("block_id"), found.pop("position")))
    return found


def waiting_label(conn: Connection, model_id: int, prediction_id: str) -> dict[str, Any] | None:
    """A label whose prediction is not stored (it waits for it, or the prediction expired)."""
    row = (
        conn.execute(
            text(
                "SELECT label, label_ts, received_at, first_received_at, revision FROM labels "
                "WHERE model_id = :m AND prediction_id = :pid"
            ),
            {"m": model_id, "pid": prediction_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def label_revisions(conn: Connection, model_id: int, prediction_id: str) -> list[dict[str, Any]]:
    """The labels newer ones replaced, oldest first."""
    rows = conn.execute(
        text(
            "SELECT revision, label, label_ts, received_at, replaced_at FROM label_revisions "
            "WHERE model_id = :m AND prediction_id = :pid ORDER BY revision"
        ),
        {"m": model_id, "pid": prediction_id},
    ).mappings()
    return [dict(r) for r in rows]


def windows_holding(
    conn: Connection, model_id: int, version_id: int, ts: datetime, longest: timedelta, segments: dict[str, str]
) -> list[dict[str, Any]]:
    """The computed windows whose period holds ``ts``: for each, how many metric points of all
    predictions and of the row's own segments (``segments``: column -> value) it counted in, and
    which segments. ``longest`` bounds the search (no window is longer), so it reads the index
    on the version's window ends, not every later point."""
    rows = conn.execute(
        text(
            """
            SELECT window_start, window_end, count(*) AS points, count(*) FILTER (WHERE drifted) AS drifted,
                   coalesce(jsonb_agg(DISTINCT jsonb_build_object('segment', labels->>'segment',
                                                                  'segment_value', labels->>'segment_value'))
                            FILTER (WHERE labels ? 'segment'), '[]') AS segments
            FROM metric_points
            WHERE model_id = :m AND model_version_id = :v AND window_end > :ts AND window_end <= :ts + :longest
              AND window_start <= :ts
              AND (NOT labels ? 'segment'
                   OR (labels->>'segment', labels->>'segment_value')
                      IN (SELECT * FROM unnest(CAST(:columns AS text[]), CAST(:values AS text[]))))
            GROUP BY window_start, window_end
            ORDER BY window_end - window_start, window_start
            """
        ),
        {
            "m": model_id,
            "v": version_id,
            "ts": ts,
            "longest": longest,
            "columns": list(segments),
            "values": list(segments.values()),
        },
    ).mappings()
    return [dict(r) for r in rows]


def alerts_about(conn: Connection, model: str, version: str, ts: datetime, longest: timedelta) -> list[dict[str, Any]]:
    """The alert transitions whose evidence is a window holding ``ts`` (oldest first)."""
    rows = conn.execute(
        text(
            """
            SELECT fingerprint, rule, from_state, to_state, at, value, threshold, labels,
                   evidence->>'window_start' AS window_start, evidence->>'window_end' AS window_end
            FROM alert_history
            WHERE model = :model AND at >= :ts AND at <= :ts + :longest + interval '1 day'
              AND evidence->>'version' = :version
              AND CAST(evidence->>'window_start' AS timestamptz) <= :ts
              AND CAST(evidence->>'window_end' AS timestamptz) > :ts
            ORDER BY at, id
            """
        ),
        {"model": model, "version": version, "ts": ts, "longest": longest},
    ).mappings()
    return [dict(r) for r in rows]


def triggers_about(
    conn: Connection, model: str, version: str, ts: datetime, longest: timedelta
) -> list[dict[str, Any]]:
    """Retraining requests whose evidence is a window holding ``ts``."""
    rows = conn.execute(
        text(
            """
            SELECT t.id, t.rule, t.fingerprint, t.receiver, t.message_id, t.reason, t.created_at
            FROM retrain_triggers t
            WHERE t.model = :model AND t.version = :version
              AND t.created_at >= :ts AND t.created_at <= :ts + :longest + interval '1 day'
              AND EXISTS (SELECT 1 FROM jsonb_array_elements(t.evidence) e
                          WHERE CAST(e->>'window_start' AS timestamptz) <= :ts
                            AND CAST(e->>'window_end' AS timestamptz) > :ts)
            ORDER BY t.created_at
            """
        ),
        {"model": model, "version": version, "ts": ts, "longest": longest},
    ).mappings()
    return [dict(r) for r in rows]


def try_lock_export(conn: Connection, key_id: int) -> bool:
    """Mark an export by this key for the rest of the transaction; False if another holds it."""
    sql = "SELECT pg_try_advisory_xact_lock(:ns, :k)"
    return bool(conn.execute(text(sql), {"ns": EXPORT_LOCK, "k": key_id}).scalar())


# The export's order is (ts, prediction_id): for rows one a row, the index on (model_id, ts)
# gives ts, and an incremental sort orders each instant's few rows, so the rows stream without a
# sort of the window; a compacted hour's rows are sorted (a thousand a block). A resumed export
# starts after the last row it received (``after``, at ``start``). The last two columns say where
# a compacted row's features are (``log_blocks.FeatureTexts``); the rows returned do not have them.
_EXPORT_SQL = (
    """
SELECT p.prediction_id, p.ts, v.version, p.features::text, p.prediction::text, p.scores::text, p.latency_ms,
       p.segments::text, l.label::text, l.label_ts, l.revision, p.block_id, p.position
FROM """
    + log_rows("%(m)s", "prediction_id", "features", "prediction", "scores", "latency_ms", "segments")
    + """ p
JOIN model_versions v ON v.id = p.model_version_id
LEFT JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
WHERE p.model_version_id = ANY(%(versions)s) AND """
    + in_window("p", "%(start)s", "%(end)s")
    + """
  {after}
ORDER BY p.ts, p.prediction_id
"""
)


def export_rows(
    conn: Connection,
    model_id: int,
    version_ids: list[int],
    start: datetime,
    end: datetime,
    after: str | None,
    per_chunk: int,
) -> Iterator[list[tuple[Any, ...]]]:
    """The window's rows with their labels in (ts, prediction id) order, ``per_chunk`` at a time
    from a server-side cursor (plain tuples: a million rows as SQLAlchemy rows cost seconds).

    Planned for the first rows, not the last: a cursor's plan otherwise sorts a big window whole
    before its first row (seconds, and the sort spilled to disk) where the index already gives
    the order."""
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute("SET LOCAL cursor_tuple_fraction = 0.001")
    # The client sets the pace: between its reads the connection idles in this transaction, and
    # the engine's bound for that (60 s, for sessions that died mid-transaction) ended an export
    # whose reader paused a minute. A reader that goes away is noticed by the server, which
    # closes the export, so the bound here is only for a reader that stays and does not read.
    raw.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{EXPORT_READER_PAUSE}'")
    sql = _EXPORT_SQL.format(after="" if after is None else "AND (p.ts > %(start)s OR p.prediction_id > %(after)s)")
    cursor = raw.cursor(name="export_rows")
    cursor.execute(sql, {"m": model_id, "versions": version_ids, "start": start, "end": end, "after": after})

    features = FeatureTexts(conn, model_id)

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        while rows := cursor.fetchmany(per_chunk):
            yield [(*r[:3], features.fill(r[3], r[11], r[12]), *r[4:11]) for r in rows]

    return chunks()


def pairing_rows(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    classes: tuple[str, str] | None,
) -> list[PairingRow]:
    """A version's predictions in [start, end) that carry a request id, in time order, as
    ``monitor.metrics.pairs`` pairs them: with their label, and for a binary model (``classes``:
    the other class, the positive one) the score of the positive class normalised as the quality
    summaries normalise it (a missing half is the complement of the other). Labels are looked up
    by the time of their prediction as well: else Postgres reads all of the model's labels."""
    score = "NULL::float8"
    params: dict[str, Any] = {"m": model_id, "v": version_id, "start": start, "end": end}
    if classes is not None:
        pos, neg = "(p.scores ->> :pos_name)::float8", "(p.scores ->> :neg_name)::float8"
        score = f"coalesce({pos} / nullif({pos} + {neg}, 0), {pos}, 1 - {neg})"
        params |= {"neg_name": classes[0], "pos_name": classes[1]}
    # A full join, kept to the predictions by a condition that does not prove them present (a
    # strict one would make it a left join, which may be planned as a nested loop): only a hash
    # or a merge join, whatever the planner believes of the window (quality_repo._JOINED).
    sql = f"""
        SELECT p.ts, p.request_id, p.prediction #>> '{{}}', l.label #>> '{{}}', {score}
        FROM (
            SELECT true AS present, lr.ts, lr.request_id, lr.prediction_id, lr.prediction, lr.scores
            FROM {log_rows(":m", "request_id", "prediction_id", "prediction", "scores")} lr
            WHERE lr.model_version_id = :v AND {in_window("lr", ":start", ":end")} AND lr.request_id IS NOT NULL
        ) p
        FULL JOIN (
            SELECT prediction_id, label FROM labels
            WHERE model_id = :m AND prediction_ts >= :start AND prediction_ts < :end
        ) l ON l.prediction_id = p.prediction_id
        WHERE p.present IS NOT DISTINCT FROM true
        ORDER BY p.ts
    """
    return [tuple(r) for r in conn.execute(text(sql), params).all()]


def window_values(
    conn: Connection, model_id: int, version_ids: list[int], metrics: list[str], start: datetime, end: datetime
) -> dict[tuple[int, str], tuple[float | None, dict[str, Any]]]:
    """Stored points of all predictions for exactly this window: (version id, metric) -> (value,
    details)."""
    rows = conn.execute(
        text(
            """
            SELECT model_version_id, metric, value, details FROM metric_points
            WHERE model_id = :m AND model_version_id = ANY(:v) AND metric = ANY(:metrics)
              AND window_start = :s AND window_end = :e AND NOT labels ? 'segment'
              AND NOT labels ? 'class' AND NOT labels ? 'average'
            """
        ),
        {"m": model_id, "v": version_ids, "metrics": metrics, "s": start, "e": end},
    ).all()
    return {(int(v), m): (value, details) for v, m, value, details in rows}
