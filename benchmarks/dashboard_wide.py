"""The model page of a wide model: a 1,000-feature model with a week of hourly windows must open
in under a second, as the demo model's does (``benchmarks/dashboard.py``).

    MONITOR_DATABASE_URL=postgresql://…/empty_db python benchmarks/dashboard_wide.py [--features 1000] [--days 7]

Setup (not timed): the model registered with ``--features`` features (four in five numerical),
and the metric points a scheduler stores for it, written as the scheduler writes them (a
window's points at a time, with their per-feature digests) — per hourly 1 h window, each
feature's drift (with its decision's details) and its data-quality shares, and the model's
dataset drift, prediction drift, quality, latency and throughput. The page reads metric points
and digests only, never the log or its summaries, so points are what make it wide.

Timed, as ``benchmarks/dashboard.py`` times pages: the server building the model page (its
queries and figures), median and max of ``--rounds``; with Chromium installed, the time from
navigation until every chart is drawn, for a deep link opened cold and for in-app navigation.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

from dashboards.pages import model
from monitor.config import Settings
from monitor.db import metrics_repo
from monitor.domain.schema import ModelSpec
from monitor.metrics.points import MetricPoint
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import hour_floor

sys.path.insert(0, str(Path(__file__).parent))
from dashboard import browser_times, timed  # the dashboard benchmark's timings, in Chromium too

MODEL = "wide-model"
HOUR = timedelta(hours=1)


def setup(ctx: ServiceContext, features: int, days: int) -> datetime:
    numerical = features * 4 // 5
    names = [f"f{i:04d}" for i in range(features)]
    spec = {
        "name": MODEL,
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "positive_class": "yes",
        "features": [
            {"name": name, "type": "numerical" if i < numerical else "categorical"} for i, name in enumerate(names)
        ],
    }
    registry.register_model(ctx, ModelSpec.model_validate(spec))
    vrow = registry.resolve_version(ctx, MODEL, None)
    end = hour_floor(datetime.now(UTC))
    rng = np.random.default_rng(5)
    model_metrics = {
        "dataset_drift": 0.03,
        "prediction_drift": 0.01,
        "quality.accuracy": 0.9,
        "quality.label_coverage": 0.3,
        "estimated.accuracy": 0.9,
        "latency.p50": 5.0,
        "latency.p90": 8.0,
        "latency.p95": 9.0,
        "latency.p99": 12.0,
        "throughput.per_minute": 100.0,
    }
    # Written as the scheduler writes a window's points (metrics_repo.upsert_points, which keeps
    # the per-feature digests too), a window at a time.
    for h in range(days * 24):
        we = end - timedelta(hours=h)
        ws = we - HOUR
        points = []
        # each feature's drift, decided as the calibrated profile decides (about 3 % drifted)
        for i, (name, x) in enumerate(zip(names, rng.random(features) * 0.0258, strict=True)):
            method = "quantile_wasserstein" if i < numerical else "largest_share_change"
            details = {"kind": "distance", "significant": x > 0.02, "p_value": 0.5 - x, "material": x > 0.025}
            details["min_sample_size"] = 100
            labels = {"feature": name, "method": method}
            points.append(MetricPoint("feature_drift", ws, we, x, 2000, labels, 5000, 0.025, x > 0.025, details))
        for metric in ("data_quality.missing_share", "data_quality.out_of_range_share"):
            for name, x in zip(names, rng.random(features) * 0.02, strict=True):
                points.append(MetricPoint(metric, ws, we, x, 2000, {"feature": name}))
        for metric, value in model_metrics.items():
            labels = {"column": "prediction"} if metric == "prediction_drift" else {}
            x = value * (0.95 + rng.random() * 0.1)
            details = {"lower": value * 0.9, "upper": value * 1.1}
            points.append(MetricPoint(metric, ws, we, x, 2000, labels, details=details))
        with ctx.uow() as uow:
            metrics_repo.upsert_points(uow.conn, vrow.model_id, vrow.version_id, points)
            uow.commit()
    with ctx.uow() as uow:
        uow.conn.execute(text("ANALYZE metric_points"))
        uow.conn.execute(text("ANALYZE feature_digests"))
        uow.commit()  # statistics are kept only with the transaction that gathered them
    return end


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", type=int, default=1000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reuse", action="store_true", help="the database already holds an earlier run's points")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        t = time.perf_counter()
        if not args.reuse:
            setup(ctx, args.features, args.days)
            print(f"setup: {time.perf_counter() - t:.0f} s", flush=True)
        with ctx.engine.connect() as conn:
            n_points = conn.execute(text("SELECT count(*) FROM metric_points")).scalar_one()
        print(f"{args.features:,} features, {args.days} days of hourly windows: {n_points:,} metric points")
        pages = [
            ("model, last 24h of 1h windows", "?range=24h&window=1h"),
            ("model, last 7d of 1h windows", "?range=7d&window=1h"),
        ]
        print(f"\nserver-side page build ({args.rounds} rounds)        median     max   target < 1 s")
        for name, search in pages:
            med, mx = timed(lambda search=search: model.layout(ctx, MODEL, search), args.rounds)
            print(f"  {name:<46} {med * 1000:7.0f} ms {mx * 1000:6.0f} ms  {'MET' if mx < 1 else 'MISSED'}")
        found = browser_times(
            ctx, [(name, f"/models/{MODEL}{search}", "#drift-heatmap") for name, search in pages], args.rounds
        )
        if found:
            print(f"\nheadless Chromium, until every chart is drawn ({args.rounds} rounds)      median     max")
            for name, kinds in found.items():
                for kind, (med, mx) in kinds.items():
                    print(f"  {name + ', ' + kind:<60} {med * 1000:7.0f} ms {mx * 1000:6.0f} ms")
        ctx.close()


if __name__ == "__main__":
    main()
