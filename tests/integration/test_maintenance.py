from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.config import Settings
from monitor.db import partitions, summary_repo
from monitor.db.prediction_key import key_of
from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.points import MetricPoint
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.maintenance import run_maintenance
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.windows import MINUTE, MINUTE_HORIZON, hour_floor
from tests.integration.demo_model import MODEL, register_demo, traffic
from tests.integration.helpers import Api, Receiver, deliver_all, drift_point, prediction
from tests.servers import free_port

HOUR = timedelta(hours=1)


def partition_days(api: Api) -> set:
    with api.ctx.engine.connect() as conn:
        return set(partitions.existing_partitions(conn).values())


def test_partitions_are_created_ahead(api: Api) -> None:
    now = datetime.now(UTC)
    run_maintenance(api.ctx, now)
    days = partition_days(api)
    ahead = api.ctx.settings.partitions_ahead_days
    assert {now.date() + timedelta(days=d) for d in range(-1, ahead + 1)} <= days


def test_a_long_read_of_the_log_defers_partitions_and_never_stalls_ingestion(churn: Api) -> None:
    """A new partition needs an exclusive lock on the log, which a long read (an export) holds off:
    waiting for it, the DDL would queue every insert behind it for as long as the read lasts.
    Maintenance gives up after a bounded wait and makes the partitions on a later run; records of
    a day without a partition get a 503 ``log_busy`` (nothing stored), the others go through."""
    import threading
    import time

    import psycopg

    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("first")]}, headers=churn.ingest)
    old_day = (datetime.now(UTC) - timedelta(days=47)).date()  # a back-fill's day: no partition yet
    with churn.ctx.engine.begin() as conn:  # (partitions outlive the tests' emptying of the log)
        conn.execute(text(f"DROP TABLE IF EXISTS {partitions.partition_name(old_day)}"))
    churn.ctx.partitions.forget_before(old_day + timedelta(days=1))
    url = churn.ctx.settings.database_url or ""
    reader = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    threads: list[threading.Thread] = []
    try:
        reader.execute("SELECT count(*) FROM predictions")  # its transaction stays open: a long read
        later = datetime.now(UTC) + timedelta(days=40)
        report: dict = {}
        maintaining = threading.Thread(target=lambda: report.update(run_maintenance(churn.ctx, later)))
        threads.append(maintaining)
        started = time.monotonic()
        maintaining.start()
        time.sleep(0.3)  # the DDL now waits for the reader's lock, inserts queued behind it
        during = {"model": "churn", "records": [prediction("during")]}
        answers: list = []
        ingesting = threading.Thread(
            target=lambda: answers.append(churn.http.post("/v1/predictions", json=during, headers=churn.ingest))
        )
        threads.append(ingesting)
        ingesting.start()
        ingesting.join(timeout=8)  # the DDL's wait is bounded: not the reader's length
        assert answers and answers[0].status_code == 200, "ingestion stalled behind the partition's DDL"
        assert time.monotonic() - started < 8
        maintaining.join(timeout=30)
        assert report["partitions_deferred"] == ["create"] and report["partitions_created"] == 0
        assert later.date() not in partition_days(churn)
        back_filled = prediction("old", timestamp=f"{old_day}T12:00:00+00:00")
        r = churn.http.post("/v1/predictions", json={"model": "churn", "records": [back_filled]}, headers=churn.ingest)
        assert r.status_code == 503 and r.json()["error"]["code"] == "log_busy" and r.headers["Retry-After"] == "5"
    finally:
        reader.close()  # what a stalled ingestion and maintenance waited for
        for thread in threads:
            thread.join(timeout=30)
    assert run_maintenance(churn.ctx, later)["partitions_created"] > 0 and later.date() in partition_days(churn)
    r = churn.http.post("/v1/predictions", json={"model": "churn", "records": [back_filled]}, headers=churn.ingest)
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_retention_drops_old_partitions_keys_and_labels(churn: Api) -> None:
    old = datetime.now(UTC) - timedelta(days=20)
    recent = datetime.now(UTC) - timedelta(hours=1)
    recs = [prediction("old", timestamp=old.isoformat()), prediction("new", timestamp=recent.isoformat())]
    assert (
        churn.http.post("/v1/predictions", json={"model": "churn", "records": recs}, headers=churn.ingest).json()[
            "accepted"
        ]
        == 2
    )
    churn.http.post(
        "/v1/labels",
        json={
            "model": "churn",
            "records": [{"prediction_id": "old", "label": "stay"}, {"prediction_id": "new", "label": "stay"}],
        },
        headers=churn.ingest,
    )
    assert old.date() in partition_days(churn)

    # Once the retention period has passed for the day of "old", that day falls out.
    later = old + timedelta(days=churn.ctx.settings.retention_days + 1)
    report = run_maintenance(churn.ctx, later)
    assert partitions.partition_name(old.date()) in report["partitions_dropped"]
    assert old.date() not in partition_days(churn)
    with churn.ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT prediction_id FROM predictions")).scalars().all() == ["new"]
        kept = conn.execute(text("SELECT replace(CAST(key AS text), '-', '') FROM prediction_keys")).scalars().all()
        assert kept == [key_of("new")]
        assert conn.execute(text("SELECT prediction_id FROM labels")).scalars().all() == ["new"]


def test_waiting_labels_are_attached_by_maintenance(churn: Api) -> None:
    """A label and its prediction committed at the same instant can miss each other; maintenance joins them."""
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [prediction("race")]}, headers=churn.ingest)
    with churn.ctx.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, "
                "first_received_at) SELECT id, 'race', '\"stay\"', now(), now(), now() FROM models"
            )
        )
    report = run_maintenance(churn.ctx)
    assert report["labels_attached"] == 1
    assert churn.count("SELECT count(*) FROM labels WHERE prediction_ts IS NOT NULL") == 1


def _count(ctx: ServiceContext, sql: str, **params: object) -> int:
    with ctx.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _reports_around(ctx: ServiceContext, cutoff: datetime) -> None:
    with ctx.engine.begin() as conn:
        for created in (cutoff - HOUR, cutoff + HOUR):
            conn.execute(
                text(
                    "INSERT INTO reports (model_id, model_version_id, kind, window_start, window_end, sample_size, "
                    "window_rows, reference_sample_size, summary, html, created_at) "
                    "SELECT model_id, id, 'drift', :c, :c, 1, 1, 1, '{}', '<html/>', :c FROM model_versions"
                ),
                {"c": created},
            )


def test_metric_points_and_summaries_go_after_the_history_retention(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    base = hour_floor(datetime.now(UTC))
    traffic(ctx, base - 5 * HOUR, 100, "old-", seed=1)
    traffic(ctx, base - HOUR, 100, "recent-", seed=2)
    backfill(ctx, MODEL, base - 6 * HOUR, base)
    cutoff = base - 3 * HOUR
    kept = {
        "metric_points": "SELECT count(*) FROM metric_points WHERE window_end >= :c",
        "feature_digests": "SELECT count(*) FROM feature_digests WHERE window_end >= :c",
        "bucket_summaries": "SELECT count(*) FROM bucket_summaries WHERE bucket_hours > 0 AND bucket_start >= :c",
        "error_stream_states": "SELECT count(*) FROM error_stream_states WHERE hour >= :c",
    }
    before = {table: _count(ctx, sql, c=cutoff) for table, sql in kept.items()}
    assert all(before.values()), before
    old = {table: _count(ctx, sql.replace(">=", "<"), c=cutoff) for table, sql in kept.items()}
    assert all(old.values()), old

    minutes = "SELECT count(*) FROM bucket_summaries WHERE bucket_hours = 0"
    minutes_before = _count(ctx, minutes)
    assert minutes_before

    report = run_maintenance(ctx, cutoff + timedelta(days=ctx.settings.history_retention_days))
    assert report["history_deleted"] == old
    assert {table: _count(ctx, sql, c=cutoff) for table, sql in kept.items()} == before
    assert all(_count(ctx, sql.replace(">=", "<"), c=cutoff) == 0 for sql in kept.values())
    # minutes go long before: past the minute horizon
    assert report["minute_summaries_deleted"] == minutes_before and _count(ctx, minutes) == 0


def test_reports_go_after_their_own_retention(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    cutoff = hour_floor(datetime.now(UTC)) - 3 * HOUR
    _reports_around(ctx, cutoff)
    report = run_maintenance(ctx, cutoff + timedelta(days=ctx.settings.report_retention_days))
    assert report["history_deleted"] == {"reports": 1}
    assert _count(ctx, "SELECT count(*) FROM reports WHERE created_at > :c", c=cutoff) == 1
    assert _count(ctx, "SELECT count(*) FROM reports") == 1


def test_alerts_that_ended_and_finished_webhooks_go_after_the_history_retention(churn: Api, receiver: Receiver) -> None:
    receiver.fail_first = 0
    for name, url in (("oncall", receiver.url), ("down", f"http://127.0.0.1:{free_port()}/hook")):
        r = churn.http.put(f"/v1/receivers/{name}", json={"url": url, "group_wait": "0s"}, headers=churn.admin)
        assert r.status_code == 200, r.text
    for rule, metric in (("drift", "dataset_drift"), ("age", "feature_drift")):
        doc = {"name": rule, "metric": metric, "condition": {"drifted": True}, "receivers": ["oncall", "down"]}
        assert churn.http.post("/v1/rules", json=doc, headers=churn.admin).status_code == 201
    end = hour_floor(datetime.now(UTC))
    record_points(churn.ctx, "churn", "1", [drift_point(end, True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    age = MetricPoint("feature_drift", end, end + HOUR, 0.3, 900, {"feature": "age"}, threshold=0.1, drifted=True)
    record_points(churn.ctx, "churn", "1", [drift_point(end + HOUR, False, 0.1), age])
    evaluate_model(churn.ctx, "churn")
    silence = {
        "matchers": [{"name": "model", "value": "other"}],
        "ends_at": (end + 2 * HOUR).isoformat(),
        "created_by": "on-call",
        "comment": "maintenance window",
    }
    assert churn.http.post("/v1/silences", json=silence, headers=churn.admin).status_code == 201
    deliver_all(churn)
    with churn.ctx.engine.connect() as conn:
        states = dict(conn.execute(text("SELECT rule, state FROM alerts")).all())
    assert states == {"drift": "resolved", "age": "firing"}
    pending = churn.count("SELECT count(*) FROM outbox WHERE status = 'pending'")
    # per receiver, two notifications of the group: drift firing, then drift resolved with age firing
    assert pending == 2 and churn.count("SELECT count(*) FROM outbox WHERE status = 'delivered'") == 2

    ctx = churn.ctx
    report = run_maintenance(ctx, datetime.now(UTC) + timedelta(days=ctx.settings.history_retention_days + 1))
    deleted = report["history_deleted"]
    assert deleted["alerts"] == 1 and deleted["outbox"] == 2 and deleted["silences"] == 1
    assert deleted["alert_history"] > 0 and deleted["deliveries"] > 0 and deleted["metric_points"] == 3
    # what has not ended stays: the firing alert, and the messages still being delivered
    assert churn.count("SELECT count(*) FROM alerts WHERE rule = 'age' AND state = 'firing'") == 1
    assert churn.count("SELECT count(*) FROM alerts") == 1
    assert churn.count("SELECT count(*) FROM outbox WHERE status = 'pending'") == pending
    for table in ("alert_history", "deliveries", "metric_points", "silences"):
        assert churn.count(f"SELECT count(*) FROM {table}") == 0, table


def test_the_history_cannot_be_kept_shorter_than_the_log() -> None:
    with pytest.raises(ValueError, match="MONITOR_HISTORY_RETENTION_DAYS"):
        Settings(retention_days=90, history_retention_days=30)


def test_minute_summaries_past_the_horizon_are_dropped_and_their_hours_kept(ctx: ServiceContext) -> None:
    register_demo(ctx, MonitoringConfig(windows=["1h"]))
    now = datetime.now(UTC)
    old, recent = hour_floor(now - MINUTE_HORIZON - 2 * HOUR), hour_floor(now) - HOUR
    for start in (old, recent):
        traffic(ctx, start, 30, f"m{start.hour}-", seed=start.hour)
    backfill(ctx, MODEL, old, hour_floor(now))  # both hours from the log, minutes where kept

    def stored(size: int) -> set[datetime]:
        with ctx.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT DISTINCT date_trunc('hour', bucket_start) FROM bucket_summaries WHERE bucket_hours = :s"),
                {"s": size},
            ).scalars()
            return {r.astimezone(UTC) for r in rows}

    assert stored(summary_repo.MINUTE_BUCKET) == {recent}  # an hour past the horizon: no minutes made
    vrow = registry.resolve_version(ctx, MODEL, None)
    with ctx.uow() as uow:  # a minute left from when the old hour was recent
        ref_id = uow.conn.execute(text("SELECT id FROM reference_datasets")).scalar_one()
        series = summary_repo.Series.of(vrow, ref_id)
        summary_repo.replace_bucket(
            uow.conn, series, old + MINUTE, summary_repo.MINUTE_BUCKET, 1, {"features.age": ({}, None)}
        )
        uow.commit()
    assert stored(summary_repo.MINUTE_BUCKET) == {old, recent}
    assert run_maintenance(ctx, now)["minute_summaries_deleted"] == 1
    assert stored(summary_repo.MINUTE_BUCKET) == {recent} and stored(1) >= {old, recent}
