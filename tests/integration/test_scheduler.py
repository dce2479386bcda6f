"""The scheduled runs: idempotent, catching up after downtime, one leader at a time."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.scheduler import MetricScheduler
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill, run_model
from monitor.services.jobs.windows import hour_floor, minute_floor


def seed(ctx: ServiceContext, hours_back: int = 5) -> datetime:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(600).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    registry.set_monitoring(ctx, demo_data.MODEL_NAME, MonitoringConfig(windows=["1h", "3h"], schedule_seconds=10))
    now = datetime.now(UTC)
    a = demo_data.applicants(hours_back * 60, np.random.default_rng(1))
    records = [
        {
            "prediction_id": f"s{i}",
            "timestamp": (now - timedelta(minutes=i)).isoformat(),
            "features": rec,
            "prediction": "repaid",
        }
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    return now


def drift_windows(ctx: ServiceContext) -> list[tuple[str, datetime]]:
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT window_end - window_start, window_end FROM metric_points "
                "WHERE metric = 'dataset_drift' ORDER BY 2, 1"
            )
        ).all()
    return [(str(length), end) for length, end in rows]


def count_points(ctx: ServiceContext) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM metric_points")).scalar_one()


def test_a_run_computes_the_live_windows_and_reruns_overwrite(ctx: ServiceContext) -> None:
    now = seed(ctx)
    report = run_model(ctx, demo_data.MODEL_NAME, now)
    assert report.skipped is None and report.windows == {"1h": 1, "3h": 1}
    assert report.rows_summarised >= 60  # the current hour and the late-data margin before it
    live_end = minute_floor(now) + timedelta(minutes=1)  # both windows slide by the minute
    assert {end for _, end in drift_windows(ctx)} == {live_end}
    n = count_points(ctx)
    run_model(ctx, demo_data.MODEL_NAME, now)
    assert count_points(ctx) == n  # the same windows again: overwritten, not duplicated


def test_after_downtime_missed_windows_are_caught_up(ctx: ServiceContext) -> None:
    now = seed(ctx)
    run_model(ctx, demo_data.MODEL_NAME, now - timedelta(hours=3))
    report = run_model(ctx, demo_data.MODEL_NAME, now)
    # every hour boundary since the last window computed, and the window ending at the next
    # minute; the sliding window the first run left is replaced
    assert report.windows == {"1h": 4, "3h": 4}
    ends = sorted({end for _, end in drift_windows(ctx)})
    live = minute_floor(now) + timedelta(minutes=1)
    boundaries = [hour_floor(now) + timedelta(hours=h) for h in range(-2, 1)]
    assert ends == sorted({*boundaries, live, hour_floor(live)})


def test_backfill_and_no_reference(ctx: ServiceContext) -> None:
    now = seed(ctx)
    seen: list[tuple[int, int]] = []
    report = backfill(ctx, demo_data.MODEL_NAME, now - timedelta(hours=4), now, lambda d, t: seen.append((d, t)))
    assert report.windows == {"1h": 4, "3h": 4} and seen[-1] == (8, 8)
    registry.register_model(ctx, ModelSpec.model_validate({**demo_data.SPEC, "name": "bare"}))
    assert run_model(ctx, "bare").skipped == "no reference dataset"


def test_only_one_scheduler_leads(ctx: ServiceContext) -> None:
    now = seed(ctx)
    first, second = MetricScheduler(ctx), MetricScheduler(ctx)
    try:
        assert first.tick(now) == [demo_data.MODEL_NAME]
        assert second.tick(now) == []  # standing by
        assert first.tick(now) == []  # not due again within schedule_seconds
        first.stop()  # the leader goes away...
        assert second.tick(now) == [demo_data.MODEL_NAME]  # ...and the other takes over
    finally:
        first.stop()
        second.stop()


def test_sigterm_stops_the_scheduler_process_cleanly_and_hands_over_the_lead(
    ctx: ServiceContext, settings: object
) -> None:
    """``monitor scheduler`` as its own process: SIGTERM (docker stop) ends it through its cleanup
    (delivery attempt finished, lock released), so a standby takes the lead at once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "MONITOR_DATABASE_URL": settings.database_url, "MONITOR_LOG_FORMAT": "text"}  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboards.cli", "scheduler", "--tick", "1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        standby = MetricScheduler(ctx)
        deadline = time.monotonic() + 60
        while standby.is_leader():  # wait until the process holds the lead
            standby.stop()
            assert time.monotonic() < deadline, "the scheduler process never took the lead"
            time.sleep(0.2)
            standby = MetricScheduler(ctx)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "scheduler stopped cleanly" in err
    assert standby.is_leader()  # the lock was handed over, not left to a dying session
    standby.stop()


def test_a_model_runs_on_every_tick_its_schedule_allows(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Schedule 10 s, tick 10 s: every tick runs it, though the run itself takes time and a tick
    may come a little early (the schedule counts from the run's start)."""
    import monitor.scheduler as scheduler_module

    now = seed(ctx)
    clock = [1000.0]
    real_run = scheduler_module.run_model

    def slow_run(*args: object, **kwargs: object) -> object:
        clock[0] += 2.0  # the run takes 2 s
        return real_run(*args, **kwargs)

    monkeypatch.setattr(scheduler_module, "run_model", slow_run)
    s = MetricScheduler(ctx, tick_seconds=10, clock=lambda: clock[0])
    try:
        ran = []
        for tick_at in (1000.0, 1010.0, 1019.95, 1030.0):
            clock[0] = tick_at
            ran.append(s.tick(now) == [demo_data.MODEL_NAME])
        assert ran == [True, True, True, True]
        clock[0] = 1035.0
        assert s.tick(now) == []  # half a schedule later: not due
    finally:
        s.stop()
