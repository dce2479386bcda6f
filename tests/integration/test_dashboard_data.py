"""What the dashboard's pages read, from a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.domain.monitoring import MonitoringConfig
from monitor.services import dashboard_data
from monitor.services.context import ServiceContext
from monitor.services.monitoring_run import backfill
from monitor.services.windows import hour_floor
from tests.integration.demo_model import MODEL, register_demo, traffic

HOUR = timedelta(hours=1)


def test_the_overview_counts_predictions_by_their_own_hours(ctx: ServiceContext) -> None:
    """A shipper that sends three past hours at once (a backfill, a replay) shows three hours of
    volume, as the windows count them, not one bar at the hour they arrived."""
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(datetime.now(UTC)) - 6 * HOUR
    for i, n in enumerate((120, 80, 200)):
        traffic(ctx, base + i * HOUR, n, f"h{i}-", seed=i)
    backfill(ctx, MODEL, base, base + 3 * HOUR)
    [model] = dashboard_data.overview(ctx)
    assert model["volume"] == [(base, 120), (base + HOUR, 80), (base + 2 * HOUR, 200)]


def test_the_overview_shows_the_estimated_quality_before_any_label(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(datetime.now(UTC)) - 3 * HOUR
    traffic(ctx, base, 600, "h-", seed=3)  # no labels posted
    backfill(ctx, MODEL, base, base + HOUR)
    [model] = dashboard_data.overview(ctx)
    assert model["quality"] is None  # nothing realized without labels
    estimated = model["estimated_quality"]
    assert estimated["metric"] == "estimated.accuracy" and estimated["sample_size"] == 540  # the scored ones
    assert 0.75 < estimated["value"] < 0.95


def test_the_model_page_says_how_fresh_its_windows_are(ctx: ServiceContext) -> None:
    """What arrived since the scheduler's last run waits to be folded: the page says how much and
    since when, and when the metrics were last computed."""
    from monitor.services import job_log
    from monitor.services.monitoring_run import run_model

    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    now = datetime.now(UTC)
    before = dashboard_data.model_info(ctx, MODEL)["scheduler"]
    assert before == {"last_run_at": None, "last_duration_s": None, "waiting_rows": 0, "waiting_since": None}
    traffic(ctx, hour_floor(now), 90, "fresh-", seed=4, minutes=10)
    waiting = dashboard_data.model_info(ctx, MODEL)["scheduler"]
    assert waiting["waiting_rows"] == 90 and waiting["waiting_since"] <= datetime.now(UTC)
    run_model(ctx, MODEL, now)
    job_log.succeeded(ctx, MODEL, "metrics", 0.25)
    after = dashboard_data.model_info(ctx, MODEL)["scheduler"]
    assert after["waiting_rows"] == 0 and after["waiting_since"] is None
    assert after["last_run_at"] is not None and after["last_duration_s"] == 0.25
