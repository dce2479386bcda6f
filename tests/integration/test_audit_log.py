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
from monitor.services import audit, maintenance
from monitor.services.alerting import evaluate_model
from monitor.services.keys import Scope
from monitor.services.metric_store import record_points
from monitor.services.windows import hour_floor
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
