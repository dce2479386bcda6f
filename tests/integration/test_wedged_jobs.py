"""Stored data a job cannot handle never wedges a model: the hour or window that fails is skipped
and reported (the run's failures, the job's failure count on the model and in /metrics, an
alertable job_failures point), and every other hour and window is computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.domain.monitoring import MonitoringConfig
from monitor.services.jobs import monitoring_run
from monitor.services.jobs.monitoring_run import JOB_FAILURES, backfill, run_model
from monitor.services.jobs.windows import HOUR, hour_floor
from tests.integration.demo_model import MODEL, register_demo, traffic
from tests.integration.helpers import Api


def _poison(api: Api, hour: datetime) -> None:
    """A value stored before ingestion bounded numbers: income 1e200 overflows the sums of squares."""
    with api.ctx.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE predictions SET features = jsonb_set(features, '{income}', '1e200'::jsonb) "
                "WHERE prediction_id = (SELECT prediction_id FROM predictions WHERE ts >= :h AND ts < :e LIMIT 1)"
            ),
            {"h": hour, "e": hour + HOUR},
        )


def test_a_poisoned_hour_is_skipped_and_reported_and_the_rest_computed(api: Api) -> None:
    ctx = api.ctx
    register_demo(ctx, MonitoringConfig(windows=["1h"], schedule_seconds=10))
    now = hour_floor(datetime.now(UTC)) + HOUR / 2
    current = hour_floor(now)
    for k, hour in enumerate((current - 2 * HOUR, current - HOUR, current)):
        traffic(ctx, hour, 60, f"h{k}-", seed=k, minutes=25)
    _poison(api, current - HOUR)

    report = run_model(ctx, MODEL, now)
    assert len(report.failures) >= 1 and all(f"{(current - HOUR).isoformat()}" in f for f in report.failures)
    assert report.rows_summarised == 120  # the two good hours
    with ctx.engine.connect() as conn:
        drift_windows = {
            r[0] for r in conn.execute(text("SELECT window_end FROM metric_points WHERE metric = 'dataset_drift'"))
        }
        point = conn.execute(
            text("SELECT value, sample_size, details FROM metric_points WHERE metric = :m"), {"m": JOB_FAILURES}
        ).one()
    assert now + timedelta(minutes=1) in drift_windows  # the live window computed, from the hours that are good
    assert point.value == len(report.failures) and point.details["skipped"] == report.failures

    model = api.http.get(f"/v1/models/{MODEL}", headers=api.read).json()
    (job,) = [j for j in model["jobs"] if j["job"] == "metrics"]
    assert job["failures"] == len(report.failures) and "skipped" in job["last_error"]
    scrape = api.http.get("/metrics/database", headers=api.read).text
    assert f'monitor_job_failures_total{{model="{MODEL}",task="metrics"}} {float(len(report.failures))}' in scrape

    # fixed (the value removed), the next run computes the hour and writes 0, resolving any alert
    with ctx.engine.begin() as conn:
        conn.execute(
            text("UPDATE predictions SET features = features - 'income' WHERE (features->>'income')::float8 > 1e100")
        )
    again = run_model(ctx, MODEL, now + HOUR / 4)
    assert again.failures == []
    with ctx.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT value FROM metric_points WHERE metric = :m"), {"m": JOB_FAILURES}).scalar() == 0
        )


def test_a_window_that_fails_is_skipped_and_the_others_computed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = api.ctx
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    start = hour_floor(datetime.now(UTC)) - 4 * HOUR
    for k in range(3):
        traffic(ctx, start + k * HOUR, 40, f"w{k}-", seed=k, minutes=30)
    real = monitoring_run.compute_version_window
    bad_end = start + 2 * HOUR

    def failing(ctx_, vrow, window, cfg, **kw):  # type: ignore[no-untyped-def]
        if window.end == bad_end:
            raise ZeroDivisionError("a bug this window's data hits")
        return real(ctx_, vrow, window, cfg, **kw)

    monkeypatch.setattr(monitoring_run, "compute_version_window", failing)
    report = backfill(ctx, MODEL, start, start + 3 * HOUR)
    window = f"window [{(bad_end - HOUR).isoformat()}, {bad_end.isoformat()})"
    assert report.failures == [f"{window}: ZeroDivisionError: a bug this window's data hits"]
    with ctx.engine.connect() as conn:
        ends = {r[0] for r in conn.execute(text("SELECT window_end FROM metric_points WHERE metric = 'dataset_drift'"))}
    assert ends == {start + HOUR, start + 3 * HOUR}


def test_the_dashboard_model_page_says_what_was_skipped(api: Api) -> None:
    from dashboards.pages import model as model_page
    from monitor.services.jobs import job_log

    register_demo(api.ctx, MonitoringConfig(windows=["1h"]))
    job_log.failed(api.ctx, MODEL, "metrics", "1 skipped; last: summary of the hour X: DataError: overflow")
    page = str(model_page.layout(api.ctx, MODEL, ""))
    assert "job-errors" in page and "summary of the hour X: DataError: overflow" in page
