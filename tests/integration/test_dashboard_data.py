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


def test_the_model_page_reads_the_features_it_draws_in_the_order_all_points_give(ctx: ServiceContext) -> None:
    """A wide model: the page's features are ranked from a summary computed in Postgres, in the
    order ranking every point gives, and only the per-feature series it draws are read (the
    heatmap page's features, each data-quality chart's highest)."""
    import random

    from dashboards import figures
    from monitor.db import metrics_repo
    from monitor.domain.schema import ModelSpec
    from monitor.metrics.points import MetricPoint
    from monitor.services import registry

    features = [f"f{i:03d}" for i in range(90)]
    spec = {"name": "wide", "task": "regression", "features": [{"name": f, "type": "numerical"} for f in features]}
    registry.register_model(ctx, ModelSpec.model_validate(spec))
    vrow = registry.resolve_version(ctx, "wide", None)
    end = hour_floor(datetime.now(UTC))
    rng = random.Random(3)
    points = []
    for h in range(6):
        we = end - timedelta(hours=h)
        for i, f in enumerate(features):
            score = rng.random() * 0.05
            p_kind = i % 3 == 0  # a third tested by p-value (drift when small)
            value = rng.random() if p_kind else score
            threshold = 0.05 if p_kind else 0.025
            drifted = value < threshold if p_kind else value > threshold
            kind = {"kind": "p_value" if p_kind else "distance"}
            labels = {"feature": f, "method": "ks" if p_kind else "wasserstein"}
            common = {"window_start": we - timedelta(hours=1), "window_end": we, "sample_size": 500}
            points.append(
                MetricPoint(
                    "feature_drift",
                    **common,
                    value=value,
                    threshold=threshold,
                    drifted=drifted,
                    details=kind,
                    labels=labels,
                )
            )
            points.append(
                MetricPoint("data_quality.missing_share", **common, value=rng.random() * 0.1, labels={"feature": f})
            )
        points.append(MetricPoint("dataset_drift", we - timedelta(hours=1), we, 0.1, sample_size=500))
    with ctx.uow() as uow:
        metrics_repo.upsert_points(uow.conn, vrow.model_id, vrow.version_id, points)
        uow.commit()
    start = end - timedelta(hours=7)
    everything = dashboard_data.window_points(ctx, "wide", start, end, timedelta(hours=1))
    missing = "data_quality.missing_share"
    full_chart = figures.series(everything, missing, "m", by="feature")
    highest = {t["name"] for t in full_chart["data"]}
    for match, page in (("", 1), ("", 3), ("f0", 1)):
        shown = dashboard_data.model_page_points(
            ctx, "wide", start, end, timedelta(hours=1), "", match, page, 40, figures.MAX_LINES
        )
        assert shown.ranked == figures.ranked_features(everything, match)
        on_page = set(shown.ranked[(page - 1) * 40 : page * 40])
        assert {p["labels"]["feature"] for p in shown.points if "feature" in p["labels"]} == on_page | highest
        chart = figures.series(shown.points, missing, "m", by="feature", of=shown.features[missing])
        assert [(t["name"], t["y"]) for t in chart["data"]] == [(t["name"], t["y"]) for t in full_chart["data"]]
        assert (
            chart["layout"]["title"]
            == full_chart["layout"]["title"]
            == f"m — the {figures.MAX_LINES} highest of 90 features"
        )
        assert shown.features == {missing: 90}
        whole = [p for p in everything if "feature" not in p["labels"]]
        assert [p for p in shown.points if "feature" not in p["labels"]] == whole
