from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import psycopg
from alembic import command
from sqlalchemy import inspect, text

from monitor.db.migrate import alembic_config, current_revision, head_revision
from monitor.metrics.names import METRICS
from monitor.services.catalog import keys
from tests.integration.helpers import scratch_engine
from tests.servers import free_port


def test_demo_streams_traffic_with_labels(settings, ctx) -> None:  # type: ignore[no-untyped-def]
    # ctx: an empty database, whatever the tests before this one left; a run before left its keys
    stale, _ = keys.create_key(ctx, "demo-admin", [keys.Scope.admin])
    env = {**os.environ, "MONITOR_DATABASE_URL": settings.database_url}
    dashboard_port = free_port()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dashboards.cli",
            "demo",
            "--duration",
            "6",
            "--rate",
            "40",
            "--drift-after",
            "2",
            "--label-delay",
            "0.5",
            "--history-hours",
            "3",
            "--port",
            str(free_port()),
            "--dashboard-port",
            str(dashboard_port),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Model Monitor demo is running" in out.stdout
    assert "admin key      mon_" in out.stdout
    assert "dashboard      http://127.0.0.1:" in out.stdout
    assert "0 rejected, 0 dropped" in out.stdout
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        n_pred = conn.execute(
            "SELECT count(*) FROM predictions p JOIN models m ON m.id = p.model_id WHERE m.name = 'credit-default'"
        ).fetchone()[0]
        n_lab = conn.execute(
            "SELECT count(*) FROM labels l JOIN models m ON m.id = l.model_id "
            "WHERE m.name = 'credit-default' AND prediction_ts IS NOT NULL"
        ).fetchone()[0]
        n_ref = conn.execute("SELECT row_count FROM reference_datasets WHERE is_active").fetchone()[0]
        n_drift = conn.execute("SELECT count(*) FROM metric_points WHERE metric = 'feature_drift'").fetchone()[0]
        coverage = conn.execute(
            "SELECT count(*) FROM metric_points WHERE metric = 'quality.label_coverage' AND labels = '{}'::jsonb"
        ).fetchone()[0]
        rules = conn.execute("SELECT count(*) FROM rules").fetchone()[0]
        receivers = conn.execute("SELECT array_agg(kind ORDER BY kind) FROM receivers").fetchone()[0]
        history = conn.execute(
            "SELECT count(DISTINCT window_end) FROM metric_points WHERE metric = 'dataset_drift' "
            "AND window_end <= date_trunc('hour', now()) AND window_end - window_start = interval '1 hour'"
        ).fetchone()[0]
        # links in what the alerts say point at this run's dashboard, on the port it was given
        links = conn.execute("SELECT array_agg(annotations ->> 'dashboard') FROM alerts").fetchone()[0]
        # the history's incident: alerts that fired and resolved before the live traffic began
        incident = conn.execute(
            "SELECT array_agg(DISTINCT to_state ORDER BY to_state) FROM alert_history "
            "WHERE rule = 'dataset-drift' AND at < date_trunc('hour', now())"
        ).fetchone()[0]
        segments = conn.execute(
            "SELECT count(DISTINCT labels->>'segment_value') FROM metric_points "
            "WHERE metric = 'dataset_drift' AND labels->>'segment' = 'region'"
        ).fetchone()[0]
        # quality estimated from the scores, with its band, and multivariate drift
        written = {row[0] for row in conn.execute("SELECT DISTINCT metric FROM metric_points")}
        label_free = conn.execute(
            "SELECT count(*) FILTER (WHERE metric = 'estimated.accuracy' AND details ? 'upper'), "
            "count(*) FILTER (WHERE metric = 'multivariate_drift') "
            "FROM metric_points WHERE labels ->> 'segment' IS NULL"
        ).fetchone()
    assert n_pred > 100
    assert n_lab > 20
    assert n_ref == 5000
    assert n_drift >= 8  # the scheduler ran: every feature's drift over the live window
    assert coverage >= 1  # quality against labels, with its coverage
    assert segments >= 2  # and per region
    assert label_free[0] >= 1 and label_free[1] >= 1, label_free
    # every metric a run writes is one a rule may name (monitor.metrics.names)
    assert written and written <= set(METRICS), written - set(METRICS)
    assert rules == 6 and receivers == ["retrain", "webhook"]  # the demo's rules and its two receivers
    assert history >= 3  # the hours before the demo started were computed: the charts start full
    assert incident == ["firing", "resolved"], incident
    assert links and all(link.startswith(f"http://127.0.0.1:{dashboard_port}/models/") for link in links), links
    assert "[story] in the history: from 2 to 1 hours ago" in out.stdout
    assert "replaying 3 hours of past traffic" in out.stdout and "[story] drift injected" in out.stdout
    assert "monitor.access" not in out.stdout + out.stderr  # no access log lines in the story
    active = [k["name"] for k in keys.list_keys(ctx) if k["name"].startswith("demo-") and not k["revoked_at"]]
    assert sorted(active) == ["demo-admin", "demo-ingest", "demo-read"]  # the earlier run's went
    assert stale.split("_")[1] not in {k["prefix"] for k in keys.list_keys(ctx) if not k["revoked_at"]}


def test_migrations_go_down_and_up_again(database_url: str) -> None:
    with scratch_engine(database_url, "mig") as engine:
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            command.downgrade(cfg, "base")
            assert "predictions" not in inspect(conn).get_table_names()
            command.upgrade(cfg, "head")
        assert current_revision(engine) == head_revision()


def test_notification_groups_stored_before_alertmanagers_keys_carry_over(database_url: str) -> None:
    """A group stored under the old key (receiver and JSON labels) is found under Alertmanager's
    key after the migration, so an alert told firing before is told resolved after; and back."""
    from alerts.dispatch import group_key

    labels = {"alertname": "feature-drift", "model": 'credit "v2"\n', "window": ""}
    old_key = 'oncall:{"alertname":"feature-drift","model":"credit \\"v2\\"\\n","window":""}'
    with scratch_engine(database_url, "groups") as engine, engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0024")
        conn.execute(
            text(
                "INSERT INTO receivers (name, kind, url, group_by, group_wait_s, group_interval_s, "
                "repeat_interval_s, source, secret) VALUES ('oncall', 'webhook', 'https://h.example.com', "
                "'{alertname,model,window}', 30, 300, 14400, 'api', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO notification_groups (receiver, group_key, group_labels, first_seen_at, last_sent) "
                "VALUES ('oncall', :k, CAST(:l AS jsonb), now(), '[[\"fp\", \"firing\"]]')"
            ),
            {"k": old_key, "l": json.dumps(labels)},
        )
        command.upgrade(cfg, "head")
        row = conn.execute(text("SELECT group_key, group_labels, last_sent FROM notification_groups")).one()
        assert row.group_key == group_key("oncall", ["alertname", "model", "window"], labels)
        assert row.group_key == '{}/{receiver="oncall"}:{alertname="feature-drift", model="credit \\"v2\\"\\n"}'
        assert row.group_labels == {"alertname": "feature-drift", "model": 'credit "v2"\n'}
        assert row.last_sent == [["fp", "firing"]]
        command.downgrade(cfg, "0024")
        assert conn.execute(text("SELECT group_key FROM notification_groups")).scalar_one() == old_key


def test_monitor_check_is_a_healthcheck(settings, ctx) -> None:  # type: ignore[no-untyped-def]
    """``monitor check`` (the scheduler container's healthcheck): 0 when the database answers at
    the newest migration, 1 with the reason otherwise."""

    def check(url: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_LOG_FORMAT": "text"}
        return subprocess.run(
            [sys.executable, "-m", "dashboards.cli", "check"], env=env, capture_output=True, text=True, timeout=60
        )

    ok = check(settings.database_url)
    assert ok.returncode == 0 and f"database at revision {head_revision()}" in ok.stdout, ok.stderr
    down = check(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    assert down.returncode == 1 and "database unreachable" in down.stderr


def test_read_only_commands_and_api_workers_neither_migrate_nor_maintain(settings, ctx) -> None:  # type: ignore[no-untyped-def]
    """`monitor keys list` and an API worker's start-up read; migrating is `monitor migrate`'s (and
    the writers'), maintenance the scheduler leader's."""
    import pytest
    from fastapi.testclient import TestClient

    from monitor.api.app import create_app
    from monitor.services.bootstrap import SchemaNotAtHead

    def keys_list(url: str) -> subprocess.CompletedProcess[str]:
        # MONITOR_LOG_FORMAT is json by default: a command run at a terminal logs text all the same
        env = {**os.environ, "MONITOR_DATABASE_URL": url, "MONITOR_LOG_FORMAT": "json"}
        return subprocess.run(
            [sys.executable, "-m", "dashboards.cli", "keys", "list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def partitions() -> int:
        with ctx.engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'predictions'::regclass")
            ).scalar()

    with ctx.engine.begin() as conn:  # what maintenance would create again: the partitions ahead
        for (name,) in conn.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'predictions'::regclass"
            )
        ).all():
            conn.execute(text(f'DROP TABLE "{name}"'))
    ctx.partitions.forget_before(datetime.max.replace(tzinfo=UTC).date())
    listed = keys_list(settings.database_url)
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["PREFIX", "STATE", "SCOPES", "NAME"]
    assert partitions() == 0  # no maintenance ran

    admin = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    scratch = f"scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    url = admin.rsplit("/", 1)[0] + f"/{scratch}"
    try:
        refused = keys_list(url)
        assert refused.returncode == 2 and "run `monitor migrate` first" in refused.stderr, refused.stderr
        assert not any(line.lstrip().startswith("{") for line in refused.stderr.splitlines()), refused.stderr
        with pytest.raises(SchemaNotAtHead), TestClient(create_app(settings.model_copy(update={"database_url": url}))):
            pass
        with psycopg.connect(url) as conn:  # nothing was created: not even Alembic's table
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


def test_feature_digests_carried_over_equal_those_written_with_the_points(database_url: str) -> None:
    """The migration's digests of points stored before it are those the service writes with its
    points, byte for byte: p-values and distances, points without a score, segments, a
    data-quality share, a feature outside the schema, a feature without a point."""
    from datetime import UTC, datetime, timedelta

    from monitor.db import metrics_repo, registry_repo
    from monitor.metrics.points import MetricPoint

    end = datetime(2026, 12, 6, 12, tzinfo=UTC)
    features = ["age", "income", "city", "unseen"]
    points = []
    for h in range(3):
        we, ws = end - timedelta(hours=h), end - timedelta(hours=h + 1)
        for i, (f, kind) in enumerate((("age", "p_value"), ("income", "distance"), ("city", "distance"))):
            value = None if (h, i) == (1, 1) else 0.013 * (h + 1) * (i + 1)
            for segment in ({}, {"segment": "region", "segment_value": "north"}):
                labels = {"feature": f, "method": "ks" if kind == "p_value" else "wasserstein", **segment}
                threshold = 0.05 if kind == "p_value" else 0.025
                drifted = None if value is None else (value < threshold if kind == "p_value" else value > threshold)
                kept = (value, 90, labels, None, threshold, drifted, {"kind": kind})
                points.append(MetricPoint("feature_drift", ws, we, *kept))
            points.append(MetricPoint("data_quality.missing_share", ws, we, value, 90, {"feature": f}))
        points.append(MetricPoint("feature_drift", ws, we, 0.9, 90, {"feature": "undeclared", "method": "x"}))
        points.append(MetricPoint("dataset_drift", ws, we, 0.5, 90))
    digests = "SELECT metric, labels, window_end, peaks, drifted FROM feature_digests "
    digests += "ORDER BY metric, labels::text, window_end"
    with scratch_engine(database_url, "digests") as engine, engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        model_id = registry_repo.insert_model(conn, "m", "regression", "")
        schema = {"task": "regression", "features": [{"name": f, "type": "numerical"} for f in features]}
        version_id = registry_repo.insert_version(conn, model_id, "1", schema, "")
        metrics_repo.upsert_points(conn, model_id, version_id, points)
        written = [tuple(r) for r in conn.execute(text(digests))]
        assert len(written) == 9 and all(len(r[3]) == 16 for r in written)
        command.downgrade(cfg, "0025")
        assert "feature_digests" not in inspect(conn).get_table_names()
        command.upgrade(cfg, "head")
        assert [tuple(r) for r in conn.execute(text(digests))] == written
