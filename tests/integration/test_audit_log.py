"""The audit log on a real Postgres: every administrative route writes who, what, when and from
where in the transaction of its action; nothing changes an entry; the history retention ends it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from monitor.api.app import ROUTE_MODULES
from monitor.api.guard import required_scope
from monitor.db import history_repo
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog.keys import Scope
from monitor.services.jobs import maintenance
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from monitor.services.read_models import audit
from tests.integration.helpers import BINARY_SPEC, Api, drift_point

REFERENCE_CSV = (Path(__file__).parents[2] / "docs" / "examples" / "churn-reference.csv").read_bytes()
RULE = {"name": "drift", "model": "churn", "metric": "dataset_drift", "condition": {"drifted": True}}
RECEIVER = {"url": "https://hooks.example.com/x", "kind": "slack"}
INHIBIT = {
    "source_matchers": [{"name": "alertname", "value": "a"}],
    "target_matchers": [{"name": "alertname", "value": "b"}],
}


def _fired(api: Api) -> tuple[str, str]:
    """A firing alert and the message it queued: (fingerprint, message id)."""
    api.http.put(
        "/v1/receivers/hook", json={"url": "https://hooks.example.com/h", "group_wait": "0s"}, headers=api.admin
    )
    api.http.post("/v1/rules", json={**RULE, "name": "fires", "receivers": ["hook"]}, headers=api.admin)
    record_points(api.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(api.ctx, "churn")
    (alert,) = api.http.get("/v1/alerts", headers=api.read).json()["alerts"]
    (message,) = api.http.get("/v1/outbox", headers=api.read).json()["messages"]
    return alert["fingerprint"], message["message_id"]


# (method, the route, the path asked, body, the action it writes); {prefix}, {silence},
# {fingerprint}, {message} are filled from what the steps before made.
SILENCE = {
    "matchers": [{"name": "model", "value": "churn"}],
    "ends_at": "2099-01-01T00:00:00Z",
    "created_by": "a",
    "comment": "b",
}
ACK = {"by": "<script>alert(1)</script>", "comment": "on it"}
STEPS: list[tuple[str, str, str, Any, str]] = [
    ("POST", "/v1/keys", "/v1/keys", {"name": "ci", "scopes": ["read"]}, "key.created"),
    ("DELETE", "/v1/keys/{prefix}", "/v1/keys/{prefix}", None, "key.revoked"),
    ("POST", "/v1/models", "/v1/models", {**BINARY_SPEC, "version": "2"}, "model.registered"),
    ("POST", "/v1/models/{name}/reference", "/v1/models/churn/reference", REFERENCE_CSV, "reference.uploaded"),
    ("PUT", "/v1/models/{name}/monitoring", "/v1/models/churn/monitoring", {"windows": ["1h"]}, "monitoring.changed"),
    (
        "PUT",
        "/v1/models/{name}/versions/{version}/deployment",
        "/v1/models/churn/versions/1/deployment",
        {"mode": "champion"},
        "deployment.changed",
    ),
    ("POST", "/v1/rules", "/v1/rules", RULE, "rule.created"),
    ("PUT", "/v1/rules/{name}", "/v1/rules/drift", {**RULE, "for": "1h"}, "rule.replaced"),
    ("DELETE", "/v1/rules/{name}", "/v1/rules/drift", None, "rule.deleted"),
    ("PUT", "/v1/receivers/{name}", "/v1/receivers/team", RECEIVER, "receiver.changed"),
    ("DELETE", "/v1/receivers/{name}", "/v1/receivers/team", None, "receiver.deleted"),
    ("PUT", "/v1/inhibit-rules/{name}", "/v1/inhibit-rules/quiet", INHIBIT, "inhibit_rule.changed"),
    ("DELETE", "/v1/inhibit-rules/{name}", "/v1/inhibit-rules/quiet", None, "inhibit_rule.deleted"),
    ("POST", "/v1/silences", "/v1/silences", SILENCE, "silence.created"),
    ("DELETE", "/v1/silences/{silence_id}", "/v1/silences/{silence}", None, "silence.expired"),
    ("POST", "/v1/alerts/{fingerprint}/ack", "/v1/alerts/{fingerprint}/ack", ACK, "alert.acknowledged"),
    ("POST", "/v1/outbox/{message_id}/redeliver", "/v1/outbox/{message}/redeliver", None, "message.redelivered"),
    ("POST", "/v1/erasures", "/v1/erasures", {"subject": "customer-8841"}, "subject.erased"),
]


def test_every_administrative_route_is_audited_with_who_what_when_and_where(churn: Api) -> None:
    api = churn
    fingerprint, message = _fired(api)
    made: dict[str, str] = {"fingerprint": fingerprint, "message": message}
    before = audit.list_entries(api.ctx, limit=5000)["entries"]
    for method, _, template, body, action in STEPS:
        path = template.format(**made)
        kwargs: dict[str, Any] = {"content": body, "headers": {**api.admin, "Content-Type": "text/csv"}}
        if not isinstance(body, bytes):
            kwargs = {"json": body, "headers": {**api.admin, "X-Request-ID": f"req-{action}"}}
        r = api.http.request(method, path, **kwargs)
        assert r.status_code < 300, (path, r.text)
        if action == "key.created":
            made["prefix"] = r.json()["prefix"]
        if action == "silence.created":
            made["silence"] = r.json()["id"]
        (entry, *_) = audit.list_entries(api.ctx, limit=1)["entries"]
        assert entry["action"] == action, path
        assert entry["via"] == "api" and entry["key_name"] == "admin" and entry["key_prefix"]
        assert entry["client_address"] == "testclient"  # the TestClient's address
        if not isinstance(body, bytes):
            assert entry["request_id"] == f"req-{action}"
    after = audit.list_entries(api.ctx, limit=5000)["entries"]
    assert len(after) - len(before) == len(STEPS)
    ack = audit.list_entries(api.ctx, action="alert.acknowledged")["entries"][0]
    assert ack["target"] == fingerprint and ack["details"]["by"] == "<script>alert(1)</script>"  # kept as data
    receiver = audit.list_entries(api.ctx, action="receiver.changed")["entries"][0]
    assert "secret" not in receiver["details"]


def test_the_steps_cover_every_administrative_route() -> None:
    """A new admin route without a step here (and so perhaps without an audit entry) fails."""
    admin_routes = {
        (method, route.path)
        for module in ROUTE_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute) and required_scope(route)[0] is Scope.admin
        for method in route.methods - {"GET", "HEAD"}
    }
    assert admin_routes == {(method, route) for method, route, *_ in STEPS}


def test_the_log_is_admin_only_never_changed_and_kept_for_the_history_retention(churn: Api) -> None:
    api = churn
    assert api.http.get("/v1/audit", headers=api.admin).status_code == 200
    for headers in (api.read, api.data, api.ingest):
        assert api.http.get("/v1/audit", headers=headers).status_code == 403
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        assert api.http.request(method, "/v1/audit", headers=api.admin).status_code == 405
    with pytest.raises(Exception, match="never changed"), api.ctx.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET action = 'nothing'"))
    with pytest.raises(Exception, match="younger than 90 days are never deleted"), api.ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    registered = api.http.get("/v1/audit", params={"action": "model.registered"}, headers=api.admin).json()
    assert [e["model"] for e in registered["entries"]] == ["churn"]

    # paging: newest first, next_before_id reads on
    for i in range(5):
        api.http.put("/v1/receivers/r", json={**RECEIVER, "group_wait": f"{i + 1}s"}, headers=api.admin)
    first = api.http.get("/v1/audit", params={"action": "receiver.", "limit": 3}, headers=api.admin).json()
    rest = api.http.get(
        "/v1/audit", params={"action": "receiver.", "limit": 3, "before_id": first["next_before_id"]}, headers=api.admin
    ).json()
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True) and rest["next_before_id"] is None

    with api.ctx.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, via, action, target, details) "
                "VALUES (now() - interval '500 days', 'system', 'old.thing', 'x', '{}')"
            )
        )
    maintenance.run_maintenance(api.ctx)
    assert audit.list_entries(api.ctx, action="old.thing")["entries"] == []
    assert audit.list_entries(api.ctx, action="model.registered")["entries"]
    # a retention asked for everything (a cutoff in the future) deletes only what the policy lets go
    with api.ctx.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, via, action, target, details) VALUES "
                "(now() - interval '91 days', 'system', 'older.thing', 'x', '{}'), "
                "(now() - interval '89 days', 'system', 'recent.thing', 'x', '{}')"
            )
        )
        assert history_repo.delete_older(conn, datetime.now(UTC) + timedelta(days=1))["audit_log"] == 1
    assert audit.list_entries(api.ctx, action="older.thing")["entries"] == []
    assert audit.list_entries(api.ctx, action="recent.thing")["entries"]
    assert audit.list_entries(api.ctx, action="model.registered")["entries"]


def test_the_services_own_role_cannot_erase_the_log_once_another_role_owns_it(database_url: str) -> None:
    """``docs/postgres/audit-owner.sql`` applied: the service's role, owner of every other table,
    appends and reads entries and its retention deletes those past the policy's age, but it
    cannot delete a recent entry, update, truncate, disable the triggers or change the policy."""
    import shutil
    import uuid

    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from monitor.db import audit_repo
    from monitor.db.migrate import upgrade_to_head
    from monitor.domain.audit import Actor

    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("no psql: apt-get install postgresql-client to run this test")
    url = make_url(database_url)
    admin = url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    tag = uuid.uuid4().hex[:8]
    service, owner, scratch = f"svc_{tag}", f"audit_{tag}", f"{url.database}_audit_{tag}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{service}" LOGIN')
        conn.execute(f'CREATE DATABASE "{scratch}" OWNER "{service}"')
    as_service = create_engine(url.set(database=scratch, username=service, password=None))
    try:
        upgrade_to_head(as_service)  # the service's role owns what the migrations make
        script = Path(__file__).parents[2] / "docs" / "postgres" / "audit-owner.sql"
        target = make_url(admin).set(database=scratch).render_as_string(hide_password=False)
        subprocess.run(
            [
                psql,
                target,
                "-v",
                "ON_ERROR_STOP=1",
                "-v",
                f"service_role={service}",
                "-v",
                f"audit_owner={owner}",
                "-f",
                str(script),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with as_service.begin() as conn:
            audit_repo.append(conn, Actor(via="system"), "key.created", "k")
            conn.execute(
                text(
                    "INSERT INTO audit_log (at, via, action, target, details) VALUES "
                    "(now() - interval '500 days', 'system', 'old.thing', 'x', '{}'), "
                    "(now() - interval '10 days', 'system', 'recent.thing', 'x', '{}')"
                )
            )
        refused = {
            "DELETE FROM audit_log WHERE action = 'key.created'": "never deleted",
            "UPDATE audit_log SET action = 'nothing'": "permission denied",
            "TRUNCATE audit_log": "permission denied",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_kept": "must be owner",
            "UPDATE audit_policy SET min_age = interval '1 day'": "permission denied",
            "DROP TABLE audit_log": "must be owner",
        }
        for sql, why in refused.items():
            with pytest.raises(Exception, match=why), as_service.begin() as conn:
                conn.execute(text(sql))
        # a policy of its own first on the search path changes nothing
        with pytest.raises(Exception, match="never deleted"), as_service.begin() as conn:
            conn.execute(text("CREATE SCHEMA mine"))
            conn.execute(text("CREATE TABLE mine.audit_policy AS SELECT interval '1 day' AS min_age"))
            conn.execute(text("SET LOCAL search_path = mine, public"))
            conn.execute(text("DELETE FROM public.audit_log WHERE action = 'recent.thing'"))
        with as_service.begin() as conn:
            assert history_repo.delete_older(conn, datetime.now(UTC) + timedelta(days=1))["audit_log"] == 1
            kept = conn.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
            assert kept == ["key.created", "recent.thing"]
    finally:
        as_service.dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{owner}"')
            conn.execute(f'DROP ROLE "{service}"')


def test_the_command_line_is_audited_as_the_operating_system_user(ctx: Any) -> None:
    subprocess.run(
        [sys.executable, "-m", "monitor.cli", "keys", "create", "--scope", "data", "--name", "pipeline"],
        capture_output=True,
        env={"MONITOR_DATABASE_URL": ctx.settings.database_url, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    (entry,) = audit.list_entries(ctx, action="key.created")["entries"]
    assert entry["via"] == "cli" and entry["key_name"].startswith("os user ")
    assert entry["details"]["scopes"] == ["data"] and entry["details"]["name"] == "pipeline"
    assert entry["at"] > datetime.now(UTC) - timedelta(minutes=5)
