"""Backfill over sparse history: 30-day windows sliding hourly over months where traffic came in
a few bursts, as `monitor backfill --step 1h` computes them: as before (merged days and weeks
with no rows merged again on every read, every window's drift decided again), with such merges
stored, and with decisions remembered for summaries equal to a recent window's, side by side;
and how many windows `--step window` (the default) computes for the same period.

    .venv/bin/python benchmarks/backfill.py [--days 90] [--windows 48]

MONITOR_DATABASE_URL chooses the Postgres (default: an embedded one in a temporary directory).
The target: at least 10 windows/s over sparse history."""

from __future__ import annotations

import argparse
import io
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text
from timing import timed

from monitor import demo_data
from monitor.config import Settings
from monitor.db import summary_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.metrics import drift_decision
from monitor.services.bootstrap import open_context
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import window_ends
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.window_job import compute_window

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
MODEL = demo_data.MODEL_NAME
WINDOW = 30 * DAY


def seed(ctx: ServiceContext, start: datetime, end: datetime) -> None:
    """The demo model, its reference, and a burst of 300 predictions every 20 days."""
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    registry.set_monitoring(ctx, MODEL, MonitoringConfig(windows=["30d"]))
    buf = io.BytesIO()
    demo_data.reference_frame(2000).to_csv(buf, index=False)
    upload_reference(ctx, MODEL, buf.getvalue(), TableFormat.csv)
    rng = np.random.default_rng(0)
    burst = start + HOUR
    while burst < end:
        a = demo_data.applicants(300, rng)
        records = [
            {"timestamp": (burst + timedelta(seconds=10 * i)).isoformat(), "features": rec, "prediction": "repaid"}
            for i, rec in enumerate(a.records())
        ]
        ingestion.ingest_predictions(ctx, records, model=MODEL)
        burst += 20 * DAY
    rollup(ctx, MODEL, None, start, end)


def forget_merges(ctx: ServiceContext) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM bucket_summaries WHERE bucket_hours > 1"))


def windows_per_second(ctx: ServiceContext, ends: list[datetime]) -> float:
    cfg = MonitoringConfig(windows=["30d"])

    def run() -> None:
        for end in ends:
            compute_window(ctx, MODEL, None, end - WINDOW, end, cfg)

    _, seconds = timed(run)
    return len(ends) / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=90, help="days of history")
    p.add_argument("--windows", type=int, default=48, help="hourly 30-day windows timed, at the history's end")
    args = p.parse_args()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - 2 * DAY
    start = end - args.days * DAY
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=os.environ.get("MONITOR_DATABASE_URL"),
            retention_days=args.days + 10,
            history_retention_days=max(400, args.days + 10),
        )
        ctx = open_context(settings, migrate=True)
        seed(ctx, start, end)
        ends = [end - HOUR * i for i in range(args.windows)][::-1]
        print("| merged days and weeks with no rows | drift decisions | hourly 30-day windows/s over sparse history |")
        print("|---|---|---|")
        variants = [
            ("merged again on every read", "made again every window", False, 0),
            ("stored once", "made again every window", True, 0),
            ("stored once", "remembered for equal summaries", True, 256),
        ]
        for merges, decisions, store, memo in variants:
            summary_repo.STORE_EMPTY_MERGES = store
            drift_decision.MEMO_SIZE = memo
            drift_decision._MEMO.clear()
            forget_merges(ctx)
            windows_per_second(ctx, ends[:2])  # the first merges of the period, done once either way
            print(f"| {merges} | {decisions} | {windows_per_second(ctx, ends):.1f} |")
        hourly = len(window_ends(start, end, HOUR))
        tiled = len(window_ends(start, end, WINDOW))
        print(f"\nwindows over {args.days} days: --step 1h {hourly:,}, --step window (default) {tiled:,}")
        ctx.close()


if __name__ == "__main__":
    main()
