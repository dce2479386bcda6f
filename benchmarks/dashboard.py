"""Dashboard pages over a big prediction log: every page must render in under a second with
10M predictions stored.

    python benchmarks/dashboard.py [--rows 10000000] [--days 30] [--rounds 5]

Setup (not timed against the target): the demo model with a 5,000-row reference; ``--rows``
predictions spread over ``--days`` days, generated inside Postgres; labels for 30 % of them;
the hourly rollup and every 1h and 1d window computed by the scheduler's own code
(``backfill``); a firing alert. The model tracks no segments here: each tracked segment value
adds a pass over every hour to the rollup, which would multiply the setup, not the pages.

Timed, per page: the server building the page (the Dash route's layout, every query and figure
included), median and max of ``--rounds`` runs; with Chromium installed, also the time from
navigation to the page fully drawn in a headless browser (all charts rendered).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from dashboards.app import create_dashboard
from dashboards.headless import available, start_chromium
from dashboards.pages import alerts, model, overview, reports
from dashboards.serve import DashboardServer
from monitor import demo_data
from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.alerting import alert_config
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.windows import hour_floor
from monitor.services.read_models import dashboard_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import bulk

MODEL = demo_data.MODEL_NAME


def setup(ctx: ServiceContext, rows: int, days: int) -> datetime:
    spec = dict(demo_data.SPEC)
    registry.register_model(ctx, ModelSpec.model_validate(spec))
    registry.set_monitoring(ctx, MODEL, MonitoringConfig(windows=["1h", "1d"], segment_top_values=0))
    upload_reference(ctx, MODEL, demo_data.reference_frame(5000).to_csv(index=False).encode(), TableFormat.csv)
    vrow = registry.resolve_version(ctx, MODEL, None)
    end = hour_floor(datetime.now(UTC))
    start = end - timedelta(days=days)
    step = timedelta(days=days) / rows
    t = time.perf_counter()
    chunk = 1_000_000
    for first in range(0, rows, chunk):
        with ctx.uow() as uow:
            last = min(first + chunk, rows) - 1
            bulk.demo_predictions(uow.conn, vrow.model_id, vrow.version_id, start, step, first, last)
            uow.commit()
        print(f"  generated {min(first + chunk, rows):,} predictions ({time.perf_counter() - t:.0f} s)", flush=True)
    with ctx.uow() as uow:
        uow.conn.execute(
            text(
                "INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, first_received_at, "
                "revision, prediction_ts) SELECT model_id, prediction_id, "
                "to_jsonb(CASE WHEN random() < (scores ->> 'default')::float8 THEN 'default' ELSE 'repaid' END), "
                "ts, ts, ts, 1, ts FROM predictions WHERE model_id = :m AND random() < 0.3"
            ),
            {"m": vrow.model_id},
        )
        uow.conn.execute(
            text(
                "INSERT INTO ingest_stats (model_id, bucket, kind, accepted, duplicates, rejected) "
                "SELECT model_id, date_trunc('hour', ts, 'UTC'), 'prediction', count(*), 0, 0 FROM predictions "
                "WHERE model_id = :m GROUP BY 1, 2"
            ),
            {"m": vrow.model_id},
        )
        uow.commit()
        uow.conn.execute(text("ANALYZE"))
    print(f"  labels and hourly counts ({time.perf_counter() - t:.0f} s)", flush=True)
    t = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  windows {done:,}/{total:,} ({time.perf_counter() - t:.0f} s)", flush=True)

    backfill(ctx, MODEL, start, end + timedelta(hours=1), progress)
    print(f"  rollup and every 1h and 1d window ({time.perf_counter() - t:.0f} s)", flush=True)
    alert_config.put_receiver(ctx, {"name": "oncall", "url": "https://hooks.example.com/oncall", "group_wait": "1h"})
    alert_config.put_rule(
        ctx,
        {"name": "dataset-drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["oncall"]},
    )
    evaluate_model(ctx, MODEL)
    return end


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), max(times)


READY_JS = (
    "const r = document.querySelector(arguments[0]);"
    " const graphs = [...document.querySelectorAll('#page .dash-graph')];"
    " return r !== null && document.querySelector('[data-old]') === null"
    " && document.querySelector('._dash-loading') === null && graphs.every(g => g.querySelector('.main-svg'))"
)


def browser_times(
    ctx: ServiceContext, pages: list[tuple[str, str, str]], rounds: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per page: a full load (a deep link opened cold: the browser evaluates Dash's and Plotly's
    JavaScript again), and an in-app navigation (what a click on a link in the dashboard costs)."""
    if not available():
        return {}
    driver = start_chromium()
    server = DashboardServer(create_dashboard(ctx, open_access=True), "127.0.0.1", 0).start()

    def wait_ready(name: str, ready: str) -> None:
        deadline = time.monotonic() + 30
        while not driver.execute_script(READY_JS, ready):
            if time.monotonic() > deadline:
                raise TimeoutError(name)
            time.sleep(0.01)

    out: dict[str, dict[str, tuple[float, float]]] = {}
    try:
        driver.get(server.url + "/")  # the browser caches the JavaScript bundles from here on
        wait_ready("overview", "#models")
        for name, path, ready in pages:

            def cold(name: str = name, path: str = path, ready: str = ready) -> None:
                driver.get(server.url + path)
                wait_ready(name, ready)

            def in_app(name: str = name, path: str = path, ready: str = ready) -> None:
                start, start_ready = (
                    ("/alerts", "#alerts-table") if path == "/reports" else ("/reports", "#report-build")
                )
                driver.get(server.url + start)
                wait_ready(start, start_ready)
                driver.execute_script(
                    "document.querySelector('#page').firstChild.setAttribute('data-old', '1');"
                    "window.history.pushState({}, '', arguments[0]);"
                    "window.dispatchEvent(new PopStateEvent('popstate'));",
                    path,
                )
                t = time.perf_counter()
                wait_ready(name, ready)
                in_app.last = time.perf_counter() - t  # type: ignore[attr-defined]

            cold_times = timed(cold, rounds)
            nav = []
            for _ in range(rounds):
                in_app()
                nav.append(in_app.last)  # type: ignore[attr-defined]
            out[name] = {"deep link, cold": cold_times, "in-app navigation": (statistics.median(nav), max(nav))}
    finally:
        driver.quit()
        server.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--reuse", action="store_true", help="MONITOR_DATABASE_URL already holds an earlier run's data: only measure"
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=os.environ.get("MONITOR_DATABASE_URL"))
        ctx = open_context(settings, migrate=True)
        where = "MONITOR_DATABASE_URL" if settings.database_url else "embedded pgserver"
        print(f"Postgres: {where}; {args.rows:,} predictions over {args.days} days", flush=True)
        t = time.perf_counter()
        if args.reuse:
            end = hour_floor(datetime.now(UTC))
        else:
            end = setup(ctx, args.rows, args.days)
            print(f"setup: {time.perf_counter() - t:.0f} s", flush=True)
        with ctx.engine.connect() as conn:
            n_pred = conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
            n_points = conn.execute(text("SELECT count(*) FROM metric_points")).scalar_one()
        print(f"stored: {n_pred:,} predictions, {n_points:,} metric points")

        first_day = (end - timedelta(days=1)).isoformat()
        server_pages: list[tuple[str, Callable[[], Any]]] = [
            ("overview", lambda: overview.layout(ctx)),
            ("model, last 24h of 1h windows", lambda: model.layout(ctx, MODEL, "?range=24h&window=1h")),
            ("model, last 7d of 1h windows", lambda: model.layout(ctx, MODEL, "?range=7d&window=1h")),
            ("model, last 30d of 1d windows", lambda: model.layout(ctx, MODEL, "?range=30d&window=1d")),
            (
                "distribution of a 1d window (heatmap click)",
                lambda: dashboard_data.feature_distribution(
                    ctx,
                    MODEL,
                    "features.income",
                    datetime.fromisoformat(first_day) - timedelta(days=1),
                    datetime.fromisoformat(first_day),
                ),
            ),
            ("alerts", lambda: alerts.layout(ctx)),
            ("reports", lambda: reports.layout(ctx, "")),
        ]
        print(f"\nserver-side page build ({args.rounds} rounds)        median     max   target < 1 s")
        worst = 0.0
        for name, fn in server_pages:
            med, mx = timed(fn, args.rounds)
            worst = max(worst, mx)
            print(f"  {name:<46} {med * 1000:7.0f} ms {mx * 1000:6.0f} ms  {'MET' if mx < 1 else 'MISSED'}")
        browser = browser_times(
            ctx,
            [
                ("overview", "/", "#models .model-row"),
                ("model, last 7d of 1h windows", f"/models/{MODEL}?range=7d&window=1h", "#drift-heatmap .main-svg"),
                ("model, last 30d of 1d windows", f"/models/{MODEL}?range=30d&window=1d", "#drift-heatmap .main-svg"),
                ("alerts", "/alerts", "#alerts-table"),
                ("reports", "/reports", "#report-build"),
            ],
            args.rounds,
        )
        if browser:
            print(f"\nin headless Chromium, until every chart is drawn ({args.rounds} rounds)   median     max")
            for name, kinds in browser.items():
                for kind, (med, mx) in kinds.items():
                    worst = max(worst, mx) if kind == "in-app navigation" else worst
                    label = f"{name}, {kind}"
                    print(f"  {label:<58} {med * 1000:7.0f} ms {mx * 1000:6.0f} ms  {'MET' if mx < 1 else 'MISSED'}")
        print(
            f"\nslowest page (server build; in-app navigation): {worst * 1000:.0f} ms  target < 1000 ms  "
            f"{'MET' if worst < 1 else 'MISSED'}"
        )
        ctx.close()


if __name__ == "__main__":
    main()
