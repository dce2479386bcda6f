"""What the dashboard's pages read, from a real database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from monitor.domain.monitoring import MonitoringConfig
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.windows import hour_floor
from monitor.services.read_models import dashboard_data
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
    from monitor.services.jobs import job_log
    from monitor.services.jobs.monitoring_run import run_model

    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    now = datetime.now(UTC)
    before = dashboard_data.model_info(ctx, MODEL)["scheduler"]
    assert before == {
        "last_run_at": None,
        "last_duration_s": None,
        "waiting_rows": 0,
        "waiting_since": None,
        "owner": None,  # no scheduler process has taken the model yet
        "due_at": None,
        "last_run_by": None,
    }
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
    from monitor.services.catalog import registry

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
            ctx,
            registry.primary_version(ctx, "wide"),
            start,
            end,
            timedelta(hours=1),
            "",
            match,
            page,
            40,
            figures.MAX_LINES,
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


def _drift_points(features: list[str], end: datetime, rng: object, segment: dict[str, str] | None = None) -> list:
    import random

    from monitor.metrics.points import MetricPoint

    assert isinstance(rng, random.Random)
    out = []
    for f in features:
        value = rng.random() * 0.05
        labels = {"feature": f, "method": "wasserstein", **(segment or {})}
        out.append(
            MetricPoint(
                "feature_drift",
                end - HOUR,
                end,
                value,
                300,
                labels,
                threshold=0.025,
                drifted=value > 0.025,
                details={"kind": "distance"},
            )
        )
    return out


def test_feature_peaks_follow_the_points_through_rewrites_sliding_windows_and_retention(ctx: ServiceContext) -> None:
    """The digests the page ranks by are written and deleted with their points: every peak equals
    the one every point gives, for all predictions and a segment, after a window is computed
    again with lower scores, after a sliding window is replaced and after retention."""
    import random

    from dashboards import figures
    from monitor.db import history_repo, metrics_repo
    from monitor.domain.schema import ModelSpec
    from monitor.metrics.points import drift_severity
    from monitor.services.catalog import registry

    features = [f"f{i:02d}" for i in range(12)]
    spec = {
        "name": "digests",
        "task": "regression",
        "features": [{"name": f, "type": "numerical"} for f in features],
        "segments": ["region"],
    }
    registry.register_model(ctx, ModelSpec.model_validate(spec))
    vrow = registry.resolve_version(ctx, "digests", None)
    end = hour_floor(datetime.now(UTC))
    rng = random.Random(11)
    north = {"segment": "region", "segment_value": "north"}

    def write(points: list) -> None:
        with ctx.uow() as uow:
            metrics_repo.upsert_points(uow.conn, vrow.model_id, vrow.version_id, points)
            uow.commit()

    def check(segment: tuple[str, str] | None) -> None:
        start = end - 30 * HOUR
        seg = "" if segment is None else "=".join(segment)
        # the ranking every point gives (the old path), against the digests' (the page's)
        everything = dashboard_data.window_points(ctx, "digests", start, end + HOUR, HOUR, seg)
        where = metrics_repo.WindowFilter(vrow.model_id, vrow.version_id, 3600, start, end + HOUR, segment)
        with ctx.uow() as uow:
            peaks = metrics_repo.feature_peaks(uow.conn, where, vrow.feature_names)
        drift = [p for p in everything if p["metric"] == "feature_drift"]
        assert {p.feature for p in peaks} == {p["labels"]["feature"] for p in drift}
        for peak in peaks:
            own = [p for p in drift if p["labels"]["feature"] == peak.feature]
            assert peak.drifted == sum(bool(p["drifted"]) for p in own)
            assert abs(peak.peak - max(drift_severity(p) for p in own)) < 1e-5
        assert dashboard_data.model_page_points(
            ctx, registry.primary_version(ctx, "digests"), start, end + HOUR, HOUR, seg, "", 1, 40, figures.MAX_LINES
        ).ranked == figures.ranked_features(everything, "")

    for h in range(24):
        write(_drift_points(features, end - h * HOUR, rng) + _drift_points(features[:6], end - h * HOUR, rng, north))
    check(None)
    check(("region", "north"))
    # the newest window again, every score lower: its old peaks must not stand
    write([replace(p, value=0.001, drifted=False) for p in _drift_points(features, end, rng)])
    check(None)
    # sliding windows: each replaces the one before, which leaves with its digest
    for minute in (10, 20):
        with ctx.uow() as uow:
            metrics_repo.delete_sliding_points(
                uow.conn, vrow.model_id, vrow.version_id, HOUR, end, end + timedelta(minutes=minute)
            )
            uow.commit()
        sliding = [
            replace(p, value=0.2 if minute == 10 else 0.01, drifted=minute == 10)
            for p in _drift_points(features, end + timedelta(minutes=minute), rng)
        ]
        write(sliding)
    check(None)
    with ctx.uow() as uow:
        newer = text("SELECT count(*) FROM feature_digests WHERE window_end > :e")
        assert uow.conn.execute(newer, {"e": end}).scalar() == 1  # the 20th minute's only
        history_repo.delete_older(uow.conn, end - 12 * HOUR)
        uow.commit()
        left = uow.conn.execute(text("SELECT min(window_end) FROM feature_digests")).scalar()
    assert left >= end - 12 * HOUR
    check(None)
    check(("region", "north"))


def test_the_model_page_says_which_scheduler_process_holds_the_model_and_when_it_runs_next(
    ctx: ServiceContext,
) -> None:
    from dashboards.pages import overview
    from dashboards.pages.model import _scheduler_status
    from monitor.scheduler import MetricScheduler

    register_demo(ctx, MonitoringConfig(windows=["1h"], schedule_seconds=60))
    traffic(ctx, hour_floor(datetime.now(UTC)), 50, "s-", seed=1)
    scheduler = MetricScheduler(ctx, lease_seconds=30)
    try:
        before = datetime.now(UTC)
        scheduler.tick()
        me = scheduler.process.process_id
        status = dashboard_data.model_info(ctx, MODEL)["scheduler"]
        assert status["owner"] == me and status["last_run_by"] == me
        assert before + timedelta(seconds=59) < status["due_at"] < datetime.now(UTC) + timedelta(seconds=61)
        said = _scheduler_status(status).children
        assert f"by {me}" in said and f"Held by scheduler process {me}, next run due" in said
        page = str(overview.layout(ctx))
        assert me in page and "live, leader" in page and "Every model is held" in page
    finally:
        scheduler.stop()
    status = dashboard_data.model_info(ctx, MODEL)["scheduler"]
    assert status["owner"] is None
    assert "No live scheduler process holds this model" in _scheduler_status(status).children
    page = str(overview.layout(ctx))
    assert "No scheduler process is running" in page
