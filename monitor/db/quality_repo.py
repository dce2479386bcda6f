"""Quality summaries of labelled predictions, computed inside Postgres (see
``monitor.metrics.quality_summary``). Functions take a connection and never commit.

Predictions of the bucket are joined to their labels by the client's prediction id; only the
aggregates travel to Python, except a regression bucket's targets and predictions (two float
arrays: its residuals are counted on the reference's residual edges in numpy). Each query
summarises all rows and every tracked segment in one pass (``summary_repo.Groups``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from monitor.db.log_rows import in_window, log_rows
from monitor.db.summary_repo import Groups, groups_sql, window_params
from monitor.metrics.quality_summary import EPS, ClassificationSummary, RegressionSummary
from monitor.metrics.score_layout import SCORE_BINS, SCORE_CEILING, SCORE_FLOOR, ScoreLayout

# A window's predictions with their labels. As a full join: Postgres plans one only as a hash or
# a merge join, one pass over each side, never as a nested loop, so no estimate can make it read
# one side once per row of the other (on a day's partition without statistics yet, an inner join
# was planned so: 13.4 s a statement at 30,000 predictions, 0.18 s analysed). The pairs are kept
# by a condition that does not prove either side present (IS NOT DISTINCT FROM is not strict):
# a strict one would let the planner turn the full join back into an inner or a one-sided one,
# which it may plan as a nested loop; OFFSET 0 keeps the conditions of the queries that read it
# (scores IS NOT NULL, ...) from being moved into it for the same reason.
_JOINED = """
    SELECT g.grp, date_trunc('minute', p.ts) AS minute, p.ts, p.prediction #>> '{{}}' AS yhat,
           l.label #>> '{{}}' AS y, p.scores
    FROM (
        SELECT lr.prediction_id, lr.ts, lr.prediction, lr.scores, lr.segments FROM {log_rows} lr
        WHERE lr.model_version_id = :version_id AND {in_window}
    ) p
    FULL JOIN (
        -- a label carries its prediction's time: without it the join reads all the model's labels
        SELECT prediction_id, label FROM labels
        WHERE model_id = :model_id AND prediction_ts >= :start AND prediction_ts < :end
    ) l ON l.prediction_id = p.prediction_id
    {groups}
    WHERE p.prediction_id IS NOT DISTINCT FROM l.prediction_id AND g.grp = ANY(CAST(:groups AS text[]))
    OFFSET 0
""".replace("{log_rows}", log_rows(":model_id", "prediction_id", "prediction", "scores", "segments")).replace(
    "{in_window}", in_window("lr", ":start", ":end")
)


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
    layout: ScoreLayout,
    groups: Groups,
    counts: dict[str, int],
) -> dict[str, ClassificationSummary]:
    """Each group's summary, given its number of predictions (labelled or not) in [start, end),
    its scores on ``layout``'s bins."""
    minute = start  # the whole window as one "minute"
    return summarise_classification_by_minute(
        conn, model_id, version_id, start, end, classes, layout, groups, {minute: counts}, whole=True
    )[minute]


def summarise_classification_by_minute(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    classes: Sequence[str],
    layout: ScoreLayout,
    groups: Groups,
    counts: Mapping[datetime, dict[str, int]],
    *,
    whole: bool = False,
) -> dict[datetime, dict[str, ClassificationSummary]]:
    """``summarise_classification`` of each minute of [start, end) in ``counts`` (each one's
    groups' predictions), from the same three queries as a whole hour's (``whole``: of the
    window as one, keyed by its only key)."""
    out = {m: {key: ClassificationSummary(list(classes), layout=layout) for key in groups.keys} for m in counts}
    for m, summaries in out.items():
        for key, s in summaries.items():
            s.n_predictions = counts[m][key]
    if any(any(c.values()) for c in counts.values()):
        params = window_params(model_id, version_id, start, end, groups)
        bucket = "CAST(:start AS timestamptz)" if whole else "j.minute"
        _fill_classification(conn, params, classes, layout, groups, out, bucket)
    return out


def _fill_classification(
    conn: Connection,
    params: dict[str, Any],
    classes: Sequence[str],
    layout: ScoreLayout,
    groups: Groups,
    out: dict[datetime, dict[str, ClassificationSummary]],
    bucket: str,
) -> None:
    """Add the labelled rows to ``out`` (by minute and group; ``bucket``: the SQL of a row's
    minute, or of the window's start for the window as one)."""
    key = f"{bucket} AS bucket, j.grp AS grp"

    def summary(row: Sequence[Any]) -> ClassificationSummary | None:
        return out.get(row[0], {}).get(row[1])  # a minute its counts do not have: left out

    joined = _JOINED.format(groups=groups_sql("p"))
    rows = conn.execute(
        text(
            f"SELECT {key}, j.y, j.yhat, floor(extract(epoch FROM j.ts) / 60)::bigint AS minute, count(*) "
            f"FROM ({joined}) j GROUP BY 1, 2, 3, 4, 5"
        ),
        params,
    ).all()
    for row in rows:
        s = summary(row)
        y, yhat, minute, n = row[2:]
        if s is not None:
            s.add_row_counts(y, yhat, int(minute), int(n))
    if not rows:
        return
    probs = _probabilities_sql(classes, len(classes) == 2, params)
    low, high = layout.ends()
    params.update(
        bins=SCORE_BINS,
        eps=EPS,
        floor=SCORE_FLOOR,
        ceiling=SCORE_CEILING,
        class_names=list(classes),
        centres=list(layout.centres),
        scales=list(layout.scales),
        lows=low.tolist(),
        highs=high.tolist(),
    )
    scored = f"""
        WITH raw AS (
            SELECT {key}, array_position(CAST(:class_names AS text[]), j.y) AS truth, {probs} AS p
            FROM ({joined}) j WHERE j.scores IS NOT NULL
        ),
        norm AS (  -- rows scaled to sum to one; rows missing a class's score are left out
            SELECT r.bucket, r.grp, r.truth, ARRAY(SELECT v / t.total FROM unnest(r.p) AS v) AS p
            FROM raw r CROSS JOIN LATERAL (SELECT sum(v) AS total, count(v) AS k FROM unnest(r.p) AS v) t
            WHERE t.k = cardinality(r.p) AND t.total > 0
        )
    """
    any_scored = False
    for row in conn.execute(
        text(
            scored + "SELECT bucket, grp, count(*), sum(-ln(least(greatest(p[truth], :eps), 1 - :eps))) "
            "FROM norm GROUP BY 1, 2"
        ),
        params,
    ):
        s = summary(row)
        if s is not None:
            s.n_scored, s.log_loss_sum = int(row[2]), float(row[3] or 0.0)
            any_scored = any_scored or bool(s.n_scored)
    if any_scored:
        hist = conn.execute(
            text(
                scored
                + """SELECT n.bucket, n.grp, u.i - 1 AS cls, (u.i = n.truth)::int AS own,
                            -- ScoreLayout.bins: equal bins of asinh((logit - centre) / scale)
                            least(greatest(floor(
                                (asinh((ln(c.v / (1 - c.v)) - l.centre) / l.scale) - l.low) * :bins / (l.high - l.low)
                            )::int, 0), :bins - 1) AS bin,
                            count(*)
                     FROM norm n CROSS JOIN LATERAL unnest(n.p) WITH ORDINALITY AS u(v, i)
                     CROSS JOIN LATERAL (SELECT least(greatest(u.v, :floor), :ceiling) AS v) c
                     CROSS JOIN LATERAL (
                         SELECT (CAST(:centres AS float8[]))[u.i] AS centre, (CAST(:scales AS float8[]))[u.i] AS scale,
                                (CAST(:lows AS float8[]))[u.i] AS low, (CAST(:highs AS float8[]))[u.i] AS high
                     ) l
                     GROUP BY 1, 2, 3, 4, 5"""
            ),
            params,
        ).all()
        for row in hist:
            s = summary(row)
            cls, own, b, n = row[2:]
            if s is not None:
                s.hist[cls, own, b] = n


def summarise_regression(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    residual_edges: dict[str, np.ndarray | None],
    groups: Groups,
    counts: dict[str, int],
) -> dict[str, RegressionSummary]:
    """Each group's summary, its residuals on its own reference's edges (``residual_edges`` by group)."""
    minute = start  # the whole window as one "minute"
    return summarise_regression_by_minute(
        conn, model_id, version_id, start, end, residual_edges, groups, {minute: counts}, whole=True
    ).get(minute, {key: RegressionSummary(residuals=None) for key in groups.keys})


def summarise_regression_by_minute(
    conn: Connection,
    model_id: int,
    version_id: int,
    start: datetime,
    end: datetime,
    residual_edges: dict[str, np.ndarray | None],
    groups: Groups,
    counts: Mapping[datetime, dict[str, int]],
    *,
    whole: bool = False,
) -> dict[datetime, dict[str, RegressionSummary]]:
    """``summarise_regression`` of each minute of [start, end) in ``counts``, from one query
    (``whole``: of the window as one, keyed by its only key)."""
    out = {m: {key: RegressionSummary(residuals=None) for key in groups.keys} for m in counts}
    for m, summaries in out.items():
        for key, s in summaries.items():
            s.n_predictions = counts[m][key]
    if not any(any(c.values()) for c in counts.values()):
        return out
    minute = "CAST(:start AS timestamptz)" if whole else "j.minute"
    found = conn.execute(
        text(
            f"SELECT {minute}, j.grp, array_agg(j.y::float8), array_agg(j.yhat::float8) "
            f"FROM ({_JOINED.format(groups=groups_sql('p'))}) j GROUP BY 1, 2"
        ),
        window_params(model_id, version_id, start, end, groups),
    ).all()
    labelled = {(m, grp): (ys, yhats) for m, grp, ys, yhats in found}
    for m, summaries in out.items():
        for key, s in summaries.items():
            if s.n_predictions:  # a bucket without labels still gets its (empty) residual summary
                ys, yhats = labelled.get((m, key), ([], []))
                s.add_rows(np.asarray(ys, dtype=float), np.asarray(yhats, dtype=float), residual_edges[key])
    return out
