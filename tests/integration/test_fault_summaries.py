"""The API and the scheduler killed (SIGKILL) again and again while predictions and labels flow:
every batch is summarised once at ingestion and folded once, so the hours' summaries equal what
reading the stored rows back from the log gives, and every acknowledged record is stored."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.config import Settings
from monitor.domain.monitoring import MonitoringConfig
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.windows import HOUR, hour_floor
from tests.integration.demo_model import MODEL, register_demo
from tests.integration.helpers import LOG_ROWS
from tests.integration.processes import monitor_process, stop_process
from tests.integration.test_summary_deltas import _assert_equal, _summaries
from tests.servers import free_port, wait_ready

pytestmark = pytest.mark.timeout(300)

BATCH = 150
KILLS = 9  # two of the scheduler for one of the API
LEADER = "this scheduler is the leader"


def _batch(i: int, base: datetime) -> list[dict]:
    """A batch of demo predictions: most in the current hour, every third one back-dated two hours."""
    a = demo_data.applicants(BATCH, np.random.default_rng(i))
    p = demo_data.model_scores(a)
    start = base - 2 * HOUR if i % 3 == 0 else base
    return [
        {
            "prediction_id": f"b{i}-{j}",
            "timestamp": (start + timedelta(seconds=(i * BATCH + j) % 3000)).isoformat(),
            "features": rec,
            "prediction": "default" if p[j] >= 0.5 else "repaid",
            "scores": float(round(p[j], 6)),
            "segments": {"channel": demo_data.CHANNELS[j % 3]},
        }
        for j, rec in enumerate(a.records())
    ]


def _count(log: Path, marker: str) -> int:
    return log.read_text(errors="replace").count(marker) if log.exists() else 0


def _wait_for(log: Path, marker: str, at_least: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _count(log, marker) < at_least:
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.02)


def test_killed_api_and_scheduler_leave_every_summary_exact(
    ctx: ServiceContext, settings: Settings, tmp_path: Path
) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"], schedule_seconds=10))
    key = keys.create_key(ctx, "sender", [keys.Scope.ingest])[0]
    base = hour_floor(datetime.now(UTC))
    env = {"MONITOR_DATABASE_URL": settings.database_url or "", "MONITOR_LOG_FORMAT": "text"}
    env |= {"MONITOR_RATE_LIMIT_PER_SECOND": "0"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    api = monitor_process(serve, env, tmp_path / "api.log")
    scheduler = monitor_process(["scheduler", "--tick", "0.2"], env, tmp_path / "scheduler.log")
    acked: list[str] = []
    stop = threading.Event()

    def send() -> None:  # a serving system that retries a batch until it is acknowledged
        i = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            while not stop.is_set():
                records = _batch(i, base)
                labels = [{"prediction_id": r["prediction_id"], "label": "repaid"} for r in records[::3]]
                for path, body in (("/v1/predictions", records), ("/v1/labels", labels)):
                    while not stop.is_set():
                        try:
                            r = client.post(path, json={"model": MODEL, "records": body})
                        except httpx.TransportError:
                            time.sleep(0.05)
                            continue
                        if r.status_code == 200:
                            break
                        assert r.status_code == 503, r.text  # a process restarting; never a 500
                        time.sleep(0.05)
                    else:
                        return
                acked.extend(r["prediction_id"] for r in records)
                i += 1

    wait_ready(url, api)
    sender = threading.Thread(target=send)
    sender.start()
    rng = np.random.default_rng(0)
    scheduler_log = tmp_path / "scheduler.log"
    try:
        for k in range(KILLS):
            if k % 3 != 2:  # the scheduler, at some point of a run it began after it took the lead
                # its first run begins as it takes the lead (~0.4 s here): killed inside that run
                _wait_for(scheduler_log, LEADER, k - k // 3 + 1)
                time.sleep(float(rng.uniform(0.05, 0.4)))
                scheduler.kill()
                scheduler.wait()
                scheduler = monitor_process(["scheduler", "--tick", "0.2"], env, scheduler_log)
            else:  # the API, with requests in flight
                time.sleep(float(rng.uniform(0.2, 0.8)))
                api.kill()
                api.wait()
                api = monitor_process(serve, env, tmp_path / "api.log")
                wait_ready(url, api)
        time.sleep(1.0)
    finally:
        stop.set()
        sender.join(60)
        stop_process(api)
        stop_process(scheduler)
    assert len(acked) >= 5 * BATCH, "too little traffic got through"
    run_model(ctx, MODEL)  # what was still waiting to be folded
    with ctx.engine.connect() as conn:
        stored = set(conn.execute(text(f"SELECT prediction_id FROM {LOG_ROWS} p")).scalars())
    assert set(acked) <= stored
    folded = _summaries(ctx)
    assert sum(n for (b, seg, col), (n, _, _) in folded.items() if seg == "" and col == "latency_ms") == len(stored)
    with ctx.engine.begin() as conn:  # the log's join plans well only with statistics
        conn.exec_driver_sql("ANALYZE predictions, labels")
    rollup(ctx, MODEL, None, base - 2 * HOUR, base + HOUR)  # every hour read back from the log
    _assert_equal(folded, _summaries(ctx))
