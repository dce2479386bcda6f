"""The scheduler killed (SIGKILL) in the middle of a catch-up job, then two schedulers started at
once: every window computed exactly once into the points table, none missed, and every
window's counts match the prediction log."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.config import Settings
from monitor.db import watermark_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.windows import HOUR, hour_floor
from tests.integration.helpers import LOG_ROWS
from tests.integration.processes import monitor_process, stop_process

pytestmark = pytest.mark.timeout(300)

DOWN_HOURS = 72  # how long the scheduler "was down": the catch-up job the first process is killed in
WINDOWS = {"1h": HOUR, "3h": 3 * HOUR}


def _seed(ctx: ServiceContext) -> tuple[int, datetime, datetime]:
    """A model whose scheduler last ran DOWN_HOURS ago, with 20 predictions in every hour before and since."""
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(600).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)
    # run once per process: what a second run would redo is not what this test is about
    registry.set_monitoring(ctx, demo_data.MODEL_NAME, MonitoringConfig(windows=list(WINDOWS), schedule_seconds=3600))
    now = datetime.now(UTC)
    n = (DOWN_HOURS + 3) * 20
    a = demo_data.applicants(n, np.random.default_rng(3))
    records = [
        {"prediction_id": f"k{i}", "timestamp": (now - timedelta(minutes=3 * i)).isoformat(), "features": rec}
        | {"prediction": "repaid"}
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    version_id = registry.resolve_version(ctx, demo_data.MODEL_NAME, None).version_id
    last_run = hour_floor(now) - DOWN_HOURS * HOUR
    run_model(ctx, demo_data.MODEL_NAME, last_run - timedelta(minutes=1))  # its last run, then down
    assert _watermark(ctx, version_id, "drift:3h") == last_run
    return version_id, last_run, now


def _scalar(ctx: ServiceContext, sql: str, **params: object) -> object:
    with ctx.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def _watermark(ctx: ServiceContext, version_id: int, job: str) -> datetime | None:
    with ctx.engine.connect() as conn:
        return watermark_repo.get(conn, version_id, job)


def test_a_scheduler_killed_mid_job_then_two_at_once_compute_every_window_once(
    ctx: ServiceContext, settings: Settings, tmp_path: Path
) -> None:
    version_id, last_run, newest = _seed(ctx)
    # a short lease: the killed process's model is taken over within 3 s, not the default 30
    env = {
        "MONITOR_DATABASE_URL": settings.database_url or "",
        "MONITOR_LOG_FORMAT": "text",
        "MONITOR_SCHEDULER_LEASE_SECONDS": "3",
    }
    args = ["scheduler", "--tick", "0.5"]
    windows_sql = "SELECT count(*) FROM metric_points WHERE metric = 'dataset_drift' AND labels = '{}'::jsonb"
    before = _scalar(ctx, windows_sql)
    assert before == len(WINDOWS)  # the last run's windows

    # 1. the first scheduler is killed once it has computed some of the missed windows
    first = monitor_process(args, env, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while _scalar(ctx, windows_sql) < before + 5:  # type: ignore[operator]
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first scheduler never started computing windows"
            time.sleep(0.02)
        first.kill()
        first.wait()
    finally:
        stop_process(first)
    # killed in the middle: some windows written, no watermark moved past them
    partial = _scalar(ctx, windows_sql)
    assert _watermark(ctx, version_id, "drift:3h") == last_run
    assert partial < before + DOWN_HOURS * len(WINDOWS)  # type: ignore[operator]

    # 2. two schedulers started at once take over
    logs = [tmp_path / "second.log", tmp_path / "third.log"]
    procs = [monitor_process(args, env, p) for p in logs]
    try:
        deadline = time.monotonic() + 180
        while not all(
            (w := _watermark(ctx, version_id, f"drift:{s}")) is not None and w > last_run for s in WINDOWS
        ) or not _scalar(ctx, "SELECT count(*) FROM job_runs WHERE job = 'rules' AND last_success_at IS NOT NULL"):
            assert all(p.poll() is None for p in procs), [p.read_text()[-3000:] for p in logs]
            assert time.monotonic() < deadline, "the catch-up never finished"
            time.sleep(0.2)
        # exactly one of them led the fleet-wide chores (read before stopping them: the one
        # stopped first hands the lead over to the other)
        texts = [p.read_text() for p in logs]
        assert sorted(len(re.findall("this scheduler is the leader", t)) for t in texts) == [0, 1], texts
    finally:
        codes = [stop_process(p) for p in procs]
    assert codes == [0, 0], [p.read_text()[-3000:] for p in logs]

    done_until = _watermark(ctx, version_id, "drift:1h")
    assert done_until is not None and done_until >= hour_floor(datetime.now(UTC))
    # every hour boundary since the last run, and the window sliding to the minute after the last run
    expected_ends = [last_run + HOUR * k for k in range(int((done_until - last_run) / HOUR) + 1)]
    expected_ends += [] if done_until == hour_floor(done_until) else [done_until]
    with ctx.engine.connect() as conn:
        # A window's drift points are written whole by one run (one transaction): a window whose
        # points came from two runs (the killed one's half and a taker-over's rest) shows two times.
        # (The table's unique index keeps one point per series and window, whatever the runs did.)
        mixed = conn.execute(
            text(
                "SELECT window_start, window_end, count(DISTINCT computed_at) FROM metric_points "
                "WHERE metric IN ('dataset_drift', 'feature_drift') GROUP BY 1, 2 "
                "HAVING count(DISTINCT computed_at) > 1"
            )
        ).all()
        assert mixed == []
        for spec, length in WINDOWS.items():
            rows = conn.execute(
                text(
                    "SELECT window_end, sample_size FROM metric_points WHERE metric = 'dataset_drift' "
                    "AND labels = '{}'::jsonb AND window_end - window_start = :len ORDER BY window_end"
                ),
                {"len": length},
            ).all()
            # none missed, none extra; a window that starts after the newest prediction (the test ran
            # across the top of an hour) has no rows and so no drift point
            with_rows = [e for e in expected_ends if e - length <= newest]
            assert [end for end, _ in rows] == with_rows, spec
            # and none computed from a half-written summary: each window holds every row of its hours
            for end, sample_size in rows:
                in_log = conn.execute(
                    text(f"SELECT count(*) FROM {LOG_ROWS} p WHERE ts >= :s AND ts < :e"),
                    {"s": end - length, "e": end},
                ).scalar_one()
                assert sample_size == in_log, (spec, end)
