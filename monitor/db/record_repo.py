"""One stored prediction, everything recorded about it, and a window's rows page by page for
export. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, text

from monitor.metrics.comparison import PAIR_CELL_NAMES

# Advisory-lock namespace (the first key of pg_try_advisory_xact_lock(int, int)) of exports.
EXPORT_LOCK = 0x6578_7074  # "expt"


def prediction(conn: Connection, model_id: int, prediction_id: str) -> dict[str, Any] | None:
    """The stored prediction (found through its key: the log is partitioned by time), its version
    and its label."""
    row = (
        conn.execute(
            text(
                """
                SELECT p.prediction_id, p.ts, p.received_at, p.features, p.prediction, p.scores, p.latency_ms,
                       p.segments, p.model_version_id, v.version,
                       l.label, l.label_ts, l.received_at AS label_received_at, l.first_received_at, l.revision
                FROM prediction_keys k
                JOIN predictions p ON p.model_id = k.model_id AND p.ts = k.ts AND p.prediction_id = k.prediction_id
                JOIN model_versions v ON v.id = p.model_version_id
                LEFT JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
                WHERE k.model_id = :m AND k.prediction_id = :pid
                """
            ),
            {"m": model_id, "pid": prediction_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


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


# The export's order is (ts, prediction_id): the index on (model_id, ts) gives ts, and an
# incremental sort orders each instant's few rows, so the rows stream without a sort of the
# window. A resumed export starts after the last row it received (``after``, at ``start``).
_EXPORT_SQL = """
SELECT p.prediction_id, p.ts, v.version, p.features::text, p.prediction::text, p.scores::text, p.latency_ms,
       p.segments::text, l.label::text, l.label_ts, l.revision
FROM predictions p
JOIN model_versions v ON v.id = p.model_version_id
LEFT JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
WHERE p.model_id = %(m)s AND p.model_version_id = ANY(%(versions)s) AND p.ts >= %(start)s AND p.ts < %(end)s
  {after}
ORDER BY p.ts, p.prediction_id
"""


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
    sql = _EXPORT_SQL.format(after="" if after is None else "AND (p.ts > %(start)s OR p.prediction_id > %(after)s)")
    cursor = raw.cursor(name="export_rows")
    cursor.execute(sql, {"m": model_id, "versions": version_ids, "start": start, "end": end, "after": after})

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        while rows := cursor.fetchmany(per_chunk):
            yield rows

    return chunks()


_PAIRS_FROM = """
    FROM predictions c
    JOIN predictions s ON s.model_id = c.model_id AND s.request_id = c.request_id
         AND s.model_version_id = :chal AND s.ts >= :start - interval '1 hour' AND s.ts < :end + interval '1 hour'
    LEFT JOIN labels lc ON lc.model_id = c.model_id AND lc.prediction_id = c.prediction_id
    LEFT JOIN labels ls ON ls.model_id = s.model_id AND ls.prediction_id = s.prediction_id
    CROSS JOIN LATERAL (SELECT coalesce(lc.label, ls.label) AS label) y
    WHERE c.model_id = :m AND c.model_version_id = :champ AND c.ts >= :start AND c.ts < :end
      AND c.request_id IS NOT NULL
"""


def _pair_params(
    model_id: int, champion_id: int, challenger_id: int, start: datetime, end: datetime, positive: str | None
) -> dict[str, Any]:
    # a class as stored: a JSON string (null: none)
    pos = orjson.dumps(positive).decode()
    return {"m": model_id, "champ": champion_id, "chal": challenger_id, "start": start, "end": end, "pos": pos}


def _cell_sql(name: str) -> str:
    """A count of one of ``comparison.PAIR_CELLS`` (``cell_<truth><champion><challenger>``, each
    1 for the positive class): labelled pairs only."""
    y, c, s = (("=" if flag == "1" else "<>") for flag in name.removeprefix("cell_"))
    return (
        f"count(*) FILTER (WHERE y.label {y} CAST(:pos AS jsonb) AND c.prediction {c} CAST(:pos AS jsonb) "
        f"AND s.prediction {s} CAST(:pos AS jsonb)) AS {name}"
    )


def paired_outcomes(
    conn: Connection,
    model_id: int,
    champion_id: int,
    challenger_id: int,
    start: datetime,
    end: datetime,
    positive: str | None = None,
) -> dict[str, int]:
    """The champion's predictions in [start, end) joined by request id with the challenger's
    (a shadow's, made at about the same time: within an hour either side), with the label either
    one has: pairs, pairs that agree, over labelled pairs who was right, and with a ``positive``
    class the labelled pairs in each of ``comparison.PAIR_CELLS``."""
    cells = ",\n".join(_cell_sql(name) for name in PAIR_CELL_NAMES)
    sql = f"""
        SELECT count(*) AS pairs,
               count(*) FILTER (WHERE c.prediction = s.prediction) AS agree,
               count(*) FILTER (WHERE y.label = c.prediction AND y.label = s.prediction) AS both_right,
               count(*) FILTER (WHERE y.label = c.prediction AND y.label <> s.prediction) AS champion_only,
               count(*) FILTER (WHERE y.label <> c.prediction AND y.label = s.prediction) AS challenger_only,
               count(*) FILTER (WHERE y.label <> c.prediction AND y.label <> s.prediction) AS both_wrong,
               {cells}
        {_PAIRS_FROM}
    """
    params = _pair_params(model_id, champion_id, challenger_id, start, end, positive)
    row = conn.execute(text(sql), params).mappings().one()
    return {k: int(v) for k, v in row.items()}


def paired_scores(
    conn: Connection,
    model_id: int,
    champion_id: int,
    challenger_id: int,
    start: datetime,
    end: datetime,
    classes: tuple[str, str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over the labelled pairs both versions scored (joined as ``paired_outcomes`` joins them):
    whether the truth is the positive class (``classes``: the other class, the positive one),
    and each version's score of the positive class, normalised as the quality summaries
    normalise it (a missing half is the complement of the other)."""

    def score(alias: str) -> str:
        pos, neg = f"({alias}.scores ->> :pos_name)::float8", f"({alias}.scores ->> :neg_name)::float8"
        return f"coalesce({pos} / nullif({pos} + {neg}, 0), {pos}, 1 - {neg})"

    sql = f"""
        SELECT y.label = CAST(:pos AS jsonb), {score("c")}, {score("s")}
        {_PAIRS_FROM} AND y.label IS NOT NULL AND c.scores IS NOT NULL AND s.scores IS NOT NULL
    """
    params = _pair_params(model_id, champion_id, challenger_id, start, end, classes[1])
    params |= {"neg_name": classes[0], "pos_name": classes[1]}
    rows = [r for r in conn.execute(text(sql), params).all() if r[1] is not None and r[2] is not None]
    truth = np.array([bool(r[0]) for r in rows], dtype=bool)
    return truth, np.array([r[1] for r in rows], dtype=float), np.array([r[2] for r in rows], dtype=float)


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
