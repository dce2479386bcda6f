"""A shadow compared with its champion over a week: the window's pairs from hourly pair summaries
against joining the window's rows by request id in Postgres on every run.

    python benchmarks/pairs.py [--per-hour 5000] [--days 7]

Setup (not timed): the demo model, version 1 the champion and version 2 its shadow, each with a
reference; ``--per-hour`` requests an hour for ``--days`` days scored by both (the shadow 20 s
later, its scores correlated with the champion's), labels for 30 % of the champion's
predictions, both versions' hourly quality summaries; ANALYZE, so that the join is planned with
statistics (its best case).

Timed, for a window of all the days:
- the join: the window's two versions' rows joined by request id in one SQL statement (the
  counts and the labelled pairs' scores the comparison needs), what each run costs without
  summaries;
- pair summaries, first run: every hour paired and stored, then merged;
- nothing changed: the hours' summaries merged;
- one hour relabelled: new labels for an hour, its quality summary made again, then the window
  again (that hour and the one before paired again, the rest merged).
The counts of both ways are checked equal, and the paired ROC AUC difference from the joint
histogram against the raw scores'.

Uses ``MONITOR_DATABASE_URL`` when set, else an embedded Postgres in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text

from monitor import demo_data
from monitor.config import Settings
from monitor.db import partitions
from monitor.domain.schema import ModelSpec, schema_from_json
from monitor.domain.tabular import TableFormat
from monitor.metrics.comparison import PAIR_CELL_NAMES, PAIR_COUNTS, auc_paired
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import comparison_job
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import HOUR, hour_floor

MODEL = demo_data.MODEL_NAME

# Both versions' rows of one day: the shadow's 20 s after the champion's, same request id.
ROWS_SQL = """
INSERT INTO predictions (model_id, model_version_id, prediction_id, request_id, ts, received_at, features,
                         prediction, scores, latency_ms)
SELECT :m, v.id, v.prefix || g, 'q' || g, t.ts + v.lag, t.ts + v.lag, '{"age": 40}'::jsonb,
       to_jsonb(CASE WHEN v.s >= 0.5 THEN 'default' ELSE 'repaid' END), jsonb_build_object('default', v.s), 5
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) g
CROSS JOIN LATERAL (SELECT :start + make_interval(secs => (g - :first)::float8 * :step) AS ts,
                           random() AS u) t
CROSS JOIN LATERAL (VALUES (:champion, 'c', interval '0 s', round(t.u::numeric, 4)::float8),
                           (:shadow, 's', interval '20 s',
                            round(least(1, greatest(0, t.u + 0.2 * (random() - 0.5)))::numeric, 4)::float8))
     AS v(id, prefix, lag, s)
"""
LABELS_SQL = """
INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, first_received_at, revision, prediction_ts)
SELECT model_id, prediction_id,
       to_jsonb(CASE WHEN random() < (scores ->> 'default')::float8 THEN 'default' ELSE 'repaid' END),
       ts, ts, ts, 1, ts
FROM predictions
WHERE model_id = :m AND model_version_id = :v AND ts >= :start AND ts < :end AND random() < :share
ON CONFLICT DO NOTHING
"""
# The join, as comparisons were made without summaries: the window's rows of both versions by
# request id, the counts over all pairs and the labelled pairs' scores.
JOIN_SQL = """
SELECT c.prediction #>> '{}', s.prediction #>> '{}', l.label #>> '{}',
       (c.scores ->> 'default')::float8, (s.scores ->> 'default')::float8
FROM predictions c
JOIN predictions s ON s.model_id = c.model_id AND s.request_id = c.request_id AND s.model_version_id = :shadow
     AND s.ts >= :start - interval '1 hour' AND s.ts < :end + interval '1 hour'
LEFT JOIN labels l ON l.model_id = c.model_id AND l.prediction_id = c.prediction_id
WHERE c.model_id = :m AND c.model_version_id = :champion AND c.ts >= :start AND c.ts < :end
  AND c.request_id IS NOT NULL
"""


def setup(ctx: ServiceContext, per_hour: int, days: int) -> tuple[Any, Any, datetime, datetime]:
    reference = demo_data.reference_frame(2000, seed=1).to_csv(index=False).encode()
    for version, mode in (("1", "champion"), ("2", "shadow")):
        registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "version": version}))
        upload_reference(ctx, MODEL, reference, TableFormat.csv, version=version)
        registry.set_deployment(ctx, MODEL, version, registry.Deployment(mode))
    champion, shadow = (registry.resolve_version(ctx, MODEL, v) for v in ("1", "2"))
    end = hour_floor(datetime.now(UTC)) - 2 * HOUR
    start = end - timedelta(days=days)
    with ctx.uow() as uow:
        days_needed = [(start + timedelta(days=d)).date() for d in range(days + 2)]
        partitions.create_partitions(uow.conn, days_needed)
        ids = {"m": champion.model_id, "champion": champion.version_id, "shadow": shadow.version_id}
        for d in range(days):
            first = d * per_hour * 24
            day = {"start": start + timedelta(days=d), "step": 3600 / per_hour}
            uow.conn.execute(text(ROWS_SQL), ids | day | {"first": first, "last": first + per_hour * 24 - 1})
        window = {"m": champion.model_id, "v": champion.version_id, "start": start, "end": end, "share": 0.3}
        uow.conn.execute(text(LABELS_SQL), window)
        uow.commit()
    with ctx.uow() as uow:
        uow.conn.execute(text("ANALYZE predictions"))
        uow.conn.execute(text("ANALYZE labels"))
        uow.commit()
    for version in ("1", "2"):
        rollup(ctx, MODEL, version, start, end, quality_only=True)
    return champion, shadow, start, end


def timed(f: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def by_join(ctx: ServiceContext, champion: Any, shadow: Any, start: datetime, end: datetime) -> Any:
    ids = {"m": champion.model_id, "champion": champion.version_id, "shadow": shadow.version_id}
    with ctx.uow() as uow:
        rows = uow.conn.execute(text(JOIN_SQL), ids | {"start": start, "end": end}).all()
    counts = dict.fromkeys(PAIR_COUNTS, 0)
    truth, scores = [], ([], [])
    for c, s, y, a, b in rows:
        counts["pairs"] += 1
        counts["agree"] += c == s
        if y is None:
            continue
        counts[
            {(1, 1): "both_right", (1, 0): "champion_only", (0, 1): "challenger_only", (0, 0): "both_wrong"}[
                (int(c == y), int(s == y))
            ]
        ] += 1
        counts[f"cell_{int(y == 'default')}{int(c == 'default')}{int(s == 'default')}"] += 1
        truth.append(y == "default")
        scores[0].append(a)
        scores[1].append(b)
    return counts, auc_paired(np.array(truth), np.array(scores[0]), np.array(scores[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-hour", type=int, default=5000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("MONITOR_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=url, data_dir=tmp) if url else Settings(data_dir=tmp)
        ctx = open_context(settings, migrate=True)
        try:
            t, (champion, shadow, start, end) = timed(lambda: setup(ctx, args.per_hour, args.days))
            requests = args.per_hour * 24 * args.days
            print(f"{requests:,} requests x 2 versions over {args.days} days; setup {t:.0f} s")
            schema = schema_from_json(shadow.schema)

            def summaries() -> Any:
                return comparison_job.shadow_pairs(ctx, shadow, champion, schema, start, end)

            join_s, (counts, raw_auc) = timed(lambda: by_join(ctx, champion, shadow, start, end))
            first_s, pairs = timed(summaries)
            again_s, _ = timed(summaries)
            hour = start + timedelta(days=args.days // 2)
            with ctx.uow() as uow:
                window = {"m": champion.model_id, "v": champion.version_id, "start": hour, "end": hour + HOUR}
                uow.conn.execute(text(LABELS_SQL), window | {"share": 0.5})
                uow.commit()
            rollup(ctx, MODEL, "1", hour, hour + HOUR, quality_only=True)
            changed_s, changed = timed(summaries)
            assert pairs.counts == counts, (pairs.counts, counts)
            assert changed.counts["pairs"] == counts["pairs"] and changed.counts["both_right"] >= counts["both_right"]
            auc = auc_paired(pairs.truth, pairs.champion_scores, pairs.challenger_scores, weights=pairs.weights)
            print(f"pairs {counts['pairs']:,}, labelled {sum(counts[k] for k in PAIR_CELL_NAMES):,}: counts equal")
            print(f"ROC AUC difference: joint histogram {auc.value:+.5f}, raw scores {raw_auc.value:+.5f}")
            print(f"{'':34}{'seconds':>10}")
            print(f"{'join of the window (baseline)':34}{join_s:10.2f}")
            print(f"{'pair summaries, first run':34}{first_s:10.2f}")
            print(f"{'pair summaries, nothing changed':34}{again_s:10.2f}")
            print(f"{'pair summaries, one hour labelled':34}{changed_s:10.2f}")
        finally:
            ctx.close()


if __name__ == "__main__":
    main()
