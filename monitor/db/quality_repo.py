"""Quality summaries of labelled predictions, computed inside Postgres (see
``monitor.metrics.quality_summary``). Functions take a connection and never commit.

Predictions of the bucket are joined to their labels by the client's prediction id; only the
aggregates travel to Python, except a regression bucket's targets and predictions (two float
arrays: its residuals are counted on the reference's residual edges in numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from monitor.db.summary_repo import Segment, segment_filter
from monitor.metrics.quality_summary import EPS, SCORE_BINS, ClassificationSummary, RegressionSummary

_JOINED = """
    SELECT p.ts, p.prediction #>> '{{}}' AS yhat, l.label #>> '{{}}' AS y, p.scores
    FROM predictions p
    JOIN labels l ON l.model_id = p.model_id AND l.prediction_id = p.prediction_id
    WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end {segment}
"""

_COUNT = """
    SELECT count(*) FROM predictions p
    WHERE p.model_id = :model_id AND p.model_version_id = :version_id AND p.ts >= :start AND p.ts < :end {segment}
"""


def _probabilities_sql(classes: Sequence[str], binary: bool, params: dict[str, Any]) -> str:
    """An array of each class's raw score; for a binary model that sent one class's probability,
    the other's is its complement. NULL elements mark an unscored row."""
    for i, c in enumerate(classes):
        params[f"c{i}"] = c
    if binary:
        a, b = "(j.scores ->> :c0)::float8", "(j.scores ->> :c1)::float8"
        return f"ARRAY[coalesce({a}, 1 - {b}), coalesce({b}, 1 - {a})]"
    return "ARRAY[" + ", ".join(f"(j.scores ->> :c{i})::float8" for i in range(len(classes))) + "]"


def summarise_classification(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    classes: Sequence[str],
    segment: Segment = None,
) -> ClassificationSummary:
    params: dict[str, Any] = {"model_id": model_id, "version_id": version_id, "start": start, "end": end}
    seg = segment_filter(segment, params)
    s = ClassificationSummary(list(classes))
    s.n_predictions = int(conn.execute(text(_COUNT.format(segment=seg)), params).scalar_one())
    if not s.n_predictions:
        return s
    joined = _JOINED.format(segment=seg)
    rows = conn.execute(
        text(
            f"SELECT j.y, j.yhat, floor(extract(epoch FROM j.ts) / 60)::bigint AS minute, count(*) "
            f"FROM ({joined}) j GROUP BY 1, 2, 3"
        ),
        params,
    ).all()
    for y, yhat, minute, n in rows:
        s.add_row_counts(y, yhat, int(minute), int(n))
    if not rows:
        return s
    probs = _probabilities_sql(classes, len(classes) == 2, params)
    params.update(bins=SCORE_BINS, eps=EPS, class_names=list(classes))
    scored = f"""
        WITH raw AS (
            SELECT array_position(CAST(:class_names AS text[]), j.y) AS truth, {probs} AS p
            FROM ({joined}) j WHERE j.scores IS NOT NULL
        ),
        norm AS (  -- rows scaled to sum to one; rows missing a class's score are left out
            SELECT r.truth, ARRAY(SELECT v / t.total FROM unnest(r.p) AS v) AS p
            FROM raw r CROSS JOIN LATERAL (SELECT sum(v) AS total, count(v) AS k FROM unnest(r.p) AS v) t
            WHERE t.k = cardinality(r.p) AND t.total > 0
        )
    """
    n_scored, loss = conn.execute(
        text(scored + "SELECT count(*), sum(-ln(least(greatest(p[truth], :eps), 1 - :eps))) FROM norm"), params
    ).one()
    s.n_scored, s.log_loss_sum = int(n_scored), float(loss or 0.0)
    if s.n_scored:
        hist = conn.execute(
            text(
                scored
                + """SELECT u.i - 1 AS cls, (u.i = n.truth)::int AS own,
                            least(floor(u.v * :bins)::int, :bins - 1) AS bin, count(*)
                     FROM norm n CROSS JOIN LATERAL unnest(n.p) WITH ORDINALITY AS u(v, i)
                     GROUP BY 1, 2, 3"""
            ),
            params,
        ).all()
        for cls, own, b, n in hist:
            s.hist[cls, own, b] = n
    return s


def summarise_regression(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    residual_edges: np.ndarray | None,
    segment: Segment = None,
) -> RegressionSummary:
    params: dict[str, Any] = {"model_id": model_id, "version_id": version_id, "start": start, "end": end}
    seg = segment_filter(segment, params)
    s = RegressionSummary(residuals=None)
    s.n_predictions = int(conn.execute(text(_COUNT.format(segment=seg)), params).scalar_one())
    if not s.n_predictions:
        return s
    ys, yhats = conn.execute(
        text(f"SELECT array_agg(j.y::float8), array_agg(j.yhat::float8) FROM ({_JOINED.format(segment=seg)}) j"),
        params,
    ).one()
    y = np.asarray(ys or [], dtype=float)
    yhat = np.asarray(yhats or [], dtype=float)
    s.add_rows(y, yhat, residual_edges)
    return s
