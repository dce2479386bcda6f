"""Rules, alerts and webhooks end to end: metric points in a real Postgres, the rules engine,
the outbox, and a real HTTP receiver on loopback that fails its first attempts."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import text as text_sql

from alerts.signing import verify
from monitor.metrics.points import MetricPoint
from monitor.scheduler import MetricScheduler
from monitor.services.alerting import alert_config
from monitor.services.alerting.alert_config import RulesFile
from monitor.services.alerting.evaluation import evaluate_model, flush_groups
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api, Receiver, deliver_all, drift_point


@pytest.fixture
def wired(churn: Api, receiver: Receiver) -> dict[str, str]:
    secrets = {}
    for name, kind in (("oncall", "webhook"), ("retrain", "retrain")):
        r = churn.http.put(
            f"/v1/receivers/{name}",
            json={
                "kind": kind,
                "url": receiver.url,
                "group_wait": "0s",
                "group_interval": "0s",
                "group_by": ["alertname", "model"],
            },
            headers=churn.admin,
        )
        assert r.status_code == 200, r.text
        secrets[name] = r.json()["secret"]
    rule = {
        "name": "dataset-drift",
        "model": "churn",
        "metric": "dataset_drift",
        "window": "1h",
        "condition": {"drifted": True},
        "for": "0s",
        "severity": "critical",
        "annotations": {"summary": "{model}: {value} of features drifted", "dashboard": "{dashboard_url}"},
        "receivers": ["oncall"],
        "retrain": {"receiver": "retrain", "cooldown": "6h"},
    }
    r = churn.http.post("/v1/rules", json=rule, headers=churn.admin)
    assert r.status_code == 201, r.text
    return secrets


def test_an_incident_across_an_hour_boundary_stays_firing(churn: Api, wired: dict[str, str]) -> None:
    """The window just after the hour turns holds a few seconds of rows: too few to decide. That
    changes nothing: the alert stays firing with the evidence that decided, and only a decided
    "no drift" resolves it."""
    end = hour_floor(datetime.now(UTC))
    record_points(churn.ctx, "churn", "1", [drift_point(end, True, 0.67)])
    assert evaluate_model(churn.ctx, "churn") == {"firing": 1}
    early = MetricPoint("dataset_drift", end, end + timedelta(hours=1), 0.0, sample_size=3, threshold=0.5, drifted=None)
    record_points(churn.ctx, "churn", "1", [early])
    assert evaluate_model(churn.ctx, "churn") == {}
    (alert,) = churn.http.get("/v1/alerts?state=firing", headers=churn.read).json()["alerts"]
    assert alert["annotations"]["summary"] == "churn: 0.67 of features drifted"  # the window that decided
    history = churn.http.get("/v1/alerts/history", headers=churn.read).json()
    assert [h["to_state"] for h in history["history"]] == ["firing"]
    later = MetricPoint(
        "dataset_drift", end, end + timedelta(hours=1), 0.1, sample_size=900, threshold=0.5, drifted=False
    )
    record_points(churn.ctx, "churn", "1", [later])
    assert evaluate_model(churn.ctx, "churn") == {"resolved": 1}


def test_a_sliding_windows_baseline_is_the_nearest_window_kept(churn: Api) -> None:
    """A sliding window's point is replaced by the next one, so the window exactly a baseline
    back is rarely kept: the window of the same length that ended last in the hour before it is
    the baseline."""
    from monitor.services.catalog import registry

    hour = timedelta(hours=1)
    end = hour_floor(datetime.now(UTC))
    record_points(churn.ctx, "churn", "1", [drift_point(end - 2 * hour, True, 0.2), drift_point(end - hour, True, 0.4)])
    vrow = registry.resolve_version(churn.ctx, "churn", "1")
    sliding_end = end + timedelta(minutes=17)

    def baseline(back: timedelta, length: timedelta = hour) -> float | None:
        with churn.ctx.uow() as uow:
            args = (vrow.model_id, vrow.version_id, "dataset_drift", {})
            return uow.alerts.point_value(*args, sliding_end - length - back, sliding_end - back)

    assert baseline(hour) == 0.4  # ending 43 minutes before the hour: the hour window before it
    assert baseline(2 * hour) == 0.2
    assert baseline(hour, length=2 * hour) is None  # another length is another series
    assert baseline(5 * hour) is None


def test_firing_alert_is_delivered_signed_once_after_retries_and_resolves(
    churn: Api, receiver: Receiver, wired: dict[str, str]
) -> None:
    end = hour_floor(datetime.now(UTC))
    record_points(churn.ctx, "churn", "1", [drift_point(end, True, 0.67)])
    assert evaluate_model(churn.ctx, "churn") == {"firing": 1}
    alerts = churn.http.get("/v1/alerts?state=firing", headers=churn.read).json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["annotations"]["summary"] == "churn: 0.67 of features drifted"
    assert alerts[0]["annotations"]["dashboard"].startswith("http://127.0.0.1:8050/models/churn?")
    messages = churn.http.get("/v1/outbox", headers=churn.read).json()["messages"]
    assert sorted(m["receiver"] for m in messages) == ["oncall", "retrain"]  # one transaction wrote both

    deliver_all(churn)
    # every message id: two refused attempts (503) by the first ones, then each accepted once
    accepted = receiver.accepted()
    ids = [r["headers"]["webhook-id"] for r in accepted]
    assert sorted(ids) == sorted(m["message_id"] for m in messages) and len(set(ids)) == len(ids)
    for r in accepted:
        secret = wired["retrain"] if orjson.loads(r["body"]).get("type") else wired["oncall"]
        assert verify(secret, r["headers"], r["body"]) == r["headers"]["webhook-id"]
    log = churn.http.get("/v1/deliveries", headers=churn.read).json()["deliveries"]
    first = receiver.requests[0]["headers"]["webhook-id"]
    attempts = sorted((d["attempt"], d["status_code"], d["outcome"]) for d in log if d["message_id"] == first)
    assert attempts == [(1, 503, "retry"), (2, 503, "retry"), (3, 200, "delivered")]
    assert all(d["latency_ms"] >= 0 for d in log)

    notice = next(orjson.loads(r["body"]) for r in accepted if not orjson.loads(r["body"]).get("type"))
    assert notice["version"] == "4" and notice["status"] == "firing" and notice["receiver"] == "oncall"
    assert notice["alerts"][0]["labels"]["alertname"] == "dataset-drift"
    assert notice["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    event = next(orjson.loads(r["body"]) for r in accepted if orjson.loads(r["body"]).get("type"))
    assert event["type"] == "model.retrain_requested" and event["data"]["model"] == "churn"
    assert event["data"]["evidence"][0]["value"] == 0.67 and "dataset_drift" in event["data"]["reason"]
    triggers = churn.http.get("/v1/retrain-triggers", headers=churn.read).json()["triggers"]
    assert len(triggers) == 1 and triggers[0]["delivery_status"] == "delivered"

    # a scheduler restarting and evaluating again sends nothing new: no transition, no group change
    scheduler = MetricScheduler(churn.ctx)
    try:
        scheduler.tick(force=True)
    finally:
        scheduler.stop()
    deliver_all(churn)
    assert len(receiver.accepted()) == 2

    # the next window is calm: resolved, and the group is told so, once
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=1), False, 0.1)])
    assert evaluate_model(churn.ctx, "churn") == {"resolved": 1}
    deliver_all(churn)
    resolved = orjson.loads(receiver.accepted()[-1]["body"])
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    evaluate_model(churn.ctx, "churn")
    deliver_all(churn)
    assert len(receiver.accepted()) == 3
    history = churn.http.get(f"/v1/alerts/{alerts[0]['fingerprint']}", headers=churn.read).json()["history"]
    assert [(h["from_state"], h["to_state"]) for h in reversed(history)] == [
        ("inactive", "firing"),
        ("firing", "resolved"),
    ]


def test_retraining_cooldown_and_silences(churn: Api, receiver: Receiver, wired: dict[str, str]) -> None:
    receiver.fail_first = 0
    end = hour_floor(datetime.now(UTC))
    record_points(churn.ctx, "churn", "1", [drift_point(end, True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=1), False, 0.1)])
    evaluate_model(churn.ctx, "churn")
    # a new incident within the cooldown: it fires and notifies, but retraining is not asked again
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=2), True, 0.8)])
    assert evaluate_model(churn.ctx, "churn") == {"firing": 1}
    assert len(churn.http.get("/v1/retrain-triggers", headers=churn.read).json()["triggers"]) == 1

    # silenced: still firing, but nobody is notified
    silence = {
        "matchers": [{"name": "model", "value": "churn"}],
        "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "created_by": "on-call",
        "comment": "known incident",
    }
    r = churn.http.post("/v1/silences", json=silence, headers=churn.admin)
    assert r.status_code == 201, r.text
    deliver_all(churn)
    before = len(receiver.accepted())
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=3), False, 0.1)])
    evaluate_model(churn.ctx, "churn")
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=4), True, 0.9)])
    evaluate_model(churn.ctx, "churn")
    alerts = churn.http.get("/v1/alerts?state=firing", headers=churn.read).json()["alerts"]
    assert len(alerts) == 1 and alerts[0]["silenced_by"] == [r.json()["id"]]
    deliver_all(churn)
    assert len(receiver.accepted()) == before
    ack = churn.http.post(f"/v1/alerts/{alerts[0]['fingerprint']}/ack", json={"by": "ana"}, headers=churn.admin)
    assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "ana"


def test_bad_rules_and_receivers_are_refused_with_field_and_reason(churn: Api) -> None:
    r = churn.http.post("/v1/rules", json={"name": "x", "metric": "m", "condition": {}}, headers=churn.admin)
    assert r.status_code == 400
    assert r.json()["error"]["details"] == [
        {"index": None, "rule": "x", "field": "condition", "reason": r.json()["error"]["details"][0]["reason"]}
    ]
    assert "exactly one" in r.json()["error"]["message"]
    r = churn.http.post(
        "/v1/rules",
        json={"name": "x", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["nobody"]},
        headers=churn.admin,
    )
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "receivers.0"
    r = churn.http.put("/v1/receivers/bad", json={"url": "ftp://x/y"}, headers=churn.admin)
    assert r.status_code == 400 and "only http and https" in r.json()["error"]["message"]
    r = churn.http.put("/v1/receivers/bad", json={"url": "https://x/y", "headers": {"Host": "a"}}, headers=churn.admin)
    assert r.status_code == 400 and r.json()["error"]["details"] == [
        {"field": "headers", "reason": "Value error, 'Host' is set by the monitor itself"}
    ]


def test_a_rule_that_can_never_fire_is_refused_with_the_names_it_may_mean(churn: Api) -> None:
    """An unknown metric (``accuracy`` for ``quality.accuracy``) or a bound its points lack, from
    the API (400, field and reason) and from the rules file (reported, the good rules load)."""
    r = churn.http.post(
        "/v1/rules",
        json={"name": "acc", "metric": "accuracy", "condition": {"op": "<", "threshold": 0.8}},
        headers=churn.admin,
    )
    assert r.status_code == 400
    (detail,) = r.json()["error"]["details"]
    assert (detail["rule"], detail["field"]) == ("acc", "metric") and "'quality.accuracy'" in detail["reason"]
    bound = {"name": "b", "metric": "feature_drift", "condition": {"op": ">", "threshold": 0.1, "on": "lower"}}
    r = churn.http.post("/v1/rules", json=bound, headers=churn.admin)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "condition.on"
    text = """
rules:
  - {name: good, metric: "quality.*", condition: {op: "<", threshold: 0.8}}
  - {name: typo, metric: quality.acuracy, condition: {op: "<", threshold: 0.8}}
"""
    errors = alert_config.load_rules_file(churn.ctx, text, "rules.yaml")
    assert [(e["rule"], e["field"]) for e in errors] == [("typo", "metric")]
    assert "'quality.accuracy'" in errors[0]["reason"]
    assert [r["name"] for r in churn.http.get("/v1/rules", headers=churn.read).json()["rules"]] == ["good"]


def test_a_receivers_own_headers_are_sent_kept_and_never_shown(churn: Api, receiver: Receiver) -> None:
    receiver.fail_first = 0
    doc = {"url": receiver.url, "group_wait": "0s", "headers": {"Authorization": "Bearer hook-t0ken"}}
    r = churn.http.put("/v1/receivers/oncall", json=doc, headers=churn.admin)
    assert r.status_code == 200, r.text
    assert r.json()["headers"] == {"Authorization": "<hidden>"} and r.json()["secret"].startswith("whsec_")
    # replaced without headers (say, to change a timer): the old headers are kept
    r = churn.http.put("/v1/receivers/oncall", json={"url": receiver.url, "group_wait": "0s"}, headers=churn.admin)
    assert r.json()["headers"] == {"Authorization": "<hidden>"}
    listed = churn.http.get("/v1/receivers", headers=churn.read).json()["receivers"]
    assert listed[0]["headers"] == {"Authorization": "<hidden>"} and "secret" not in listed[0]
    assert "hook-t0ken" not in churn.http.get("/v1/receivers", headers=churn.admin).text
    rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["oncall"]}
    assert churn.http.post("/v1/rules", json=rule, headers=churn.admin).status_code == 201
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    deliver_all(churn)
    (sent,) = receiver.requests
    assert sent["headers"]["Authorization"] == "Bearer hook-t0ken" and sent["headers"]["webhook-signature"]


def test_a_receiver_url_resolving_to_loopback_is_refused_unless_allowed(
    churn: Api, receiver: Receiver, wired: dict[str, str]
) -> None:
    ctx = churn.ctx
    strict = ctx.settings.model_copy(update={"allow_loopback_receivers": False})
    object.__setattr__(ctx, "settings", strict)
    try:
        record_points(ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
        evaluate_model(ctx, "churn")
        deliver_all(churn)
    finally:
        object.__setattr__(ctx, "settings", strict.model_copy(update={"allow_loopback_receivers": True}))
    assert receiver.requests == []
    log = churn.http.get("/v1/deliveries", headers=churn.read).json()["deliveries"]
    assert {d["outcome"] for d in log} == {"failed"} and all("loopback" in d["error"] for d in log)
    # an operator who fixes the settings can send them again
    message_id = log[0]["message_id"]
    assert churn.http.post(f"/v1/outbox/{message_id}/redeliver", headers=churn.admin).status_code == 202
    deliver_all(churn)
    assert [r["headers"]["webhook-id"] for r in receiver.accepted()] == [message_id]


def test_rules_file_loads_good_rules_and_reports_bad_ones(churn: Api, receiver: Receiver) -> None:
    text = f"""
receivers:
  - name: file-hook
    url: {receiver.url}
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
rules:
  - name: from-file
    metric: quality.accuracy
    condition: {{op: "<", threshold: 0.8}}
    receivers: [file-hook]
  - name: broken
    metric: x
    condition: {{op: "<"}}
"""
    errors = alert_config.load_rules_file(churn.ctx, text, "rules.yaml")
    assert [(e["rule"], e["field"]) for e in errors] == [("broken", "condition")]
    listed = churn.http.get("/v1/rules", headers=churn.read).json()
    assert [r["name"] for r in listed["rules"]] == ["from-file"] and listed["rules"][0]["source"] == "file"
    assert listed["file_errors"][0]["errors"][0]["rule"] == "broken"
    r = churn.http.delete("/v1/rules/from-file", headers=churn.admin)
    assert r.status_code == 409  # defined in the file
    # the file changes: its rules follow; garbage keeps what was loaded
    alert_config.load_rules_file(churn.ctx, "rules: [", "rules.yaml")
    assert [r["name"] for r in churn.http.get("/v1/rules", headers=churn.read).json()["rules"]] == ["from-file"]
    alert_config.load_rules_file(churn.ctx, "rules: []", "rules.yaml")
    assert churn.http.get("/v1/rules", headers=churn.read).json()["rules"] == []


def test_a_deliverer_that_dies_mid_attempt_is_taken_over_and_each_id_arrives_once(
    churn: Api, receiver: Receiver, wired: dict[str, str]
) -> None:
    from monitor.services.alerting.delivery import DeliveryWorker

    receiver.fail_first = 0
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    # a deliverer claims both messages and dies before sending: their lease holds them...
    with churn.ctx.uow() as uow:
        claimed = uow.alerts.claim_due(datetime.now(UTC), 60, 10)
        uow.commit()
    assert len(claimed) == 2
    worker = DeliveryWorker(churn.ctx, idle_seconds=0.05)
    worker.start()
    try:
        threading.Event().wait(1.0)  # a few of the worker's rounds
        assert receiver.requests == []  # ... so a live deliverer leaves them alone
    finally:
        worker.stop()
    # ... until the lease runs out: then they are taken over, and each arrives once
    deliver_all(churn)
    ids = [r["headers"]["webhook-id"] for r in receiver.accepted()]
    assert sorted(ids) == sorted(m["message_id"] for m in claimed)
    deliver_all(churn)
    assert len(receiver.accepted()) == 2


def test_alertmanager_receiver_gets_api_v2_alerts_and_a_4xx_is_not_retried(churn: Api, receiver: Receiver) -> None:
    receiver.fail_first = 0
    receiver.status_by_path["/gone"] = 410
    base = receiver.url.removesuffix("/hook")
    for name, kind, url in (("am", "alertmanager", base), ("gone", "webhook", base + "/gone")):
        r = churn.http.put(f"/v1/receivers/{name}", json={"kind": kind, "url": url}, headers=churn.admin)
        assert r.status_code == 200, r.text
    rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["am", "gone"]}
    assert churn.http.post("/v1/rules", json=rule, headers=churn.admin).status_code == 201
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")  # alertmanager's group_wait is 0s: sent at once
    flush_groups(churn.ctx, datetime.now(UTC) + timedelta(seconds=31))  # the webhook's default 30s wait
    deliver_all(churn)
    am = [r for r in receiver.requests if r["path"] == "/api/v2/alerts"]
    assert len(am) == 1
    body = orjson.loads(am[0]["body"])
    assert body[0]["labels"]["alertname"] == "drift" and "endsAt" not in body[0]  # firing: no end
    gone = [r for r in receiver.requests if r["path"] == "/gone"]
    assert len(gone) == 1  # 410: failed for good, not retried
    log = churn.http.get("/v1/deliveries?receiver=gone", headers=churn.read).json()["deliveries"]
    assert [(d["status_code"], d["outcome"]) for d in log] == [(410, "failed")]
    failed = churn.http.get("/v1/outbox?status=failed", headers=churn.read).json()["messages"]
    assert [m["receiver"] for m in failed] == ["gone"] and failed[0]["last_error"].startswith("HTTP 410")


def test_the_rules_file_is_reloaded_when_it_changes(churn: Api, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: one, metric: dataset_drift, condition: {drifted: true}}\n")
    watcher = RulesFile(path)
    assert watcher.sync(churn.ctx) is True
    assert watcher.sync(churn.ctx) is False  # unchanged: not read again
    path.write_text("rules:\n  - {name: two, metric: dataset_drift, condition: {drifted: true}}\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert watcher.sync(churn.ctx) is True
    assert [r["name"] for r in churn.http.get("/v1/rules", headers=churn.read).json()["rules"]] == ["two"]


def test_a_receiver_down_for_several_attempts_gets_every_message_once_when_back(
    churn: Api, wired: dict[str, str]
) -> None:
    from tests.servers import free_port

    port = free_port()
    down = f"http://127.0.0.1:{port}/hook"
    for name in ("oncall", "retrain"):  # both receivers point at a port where nothing listens yet
        r = churn.http.put(f"/v1/receivers/{name}", json={"url": down, "group_wait": "0s"}, headers=churn.admin)
        assert r.status_code == 200, r.text
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])
    evaluate_model(churn.ctx, "churn")
    deliver_all(churn, rounds=4)  # connection refused, four times each
    log = churn.http.get("/v1/deliveries", headers=churn.read).json()["deliveries"]
    assert len(log) == 8 and {d["outcome"] for d in log} == {"retry"} and all(d["status_code"] is None for d in log)
    assert all("ConnectError" in d["error"] for d in log)

    back = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            back.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "status": 200})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        deliver_all(churn)
        deliver_all(churn)
    finally:
        server.shutdown()
    ids = [r["headers"]["webhook-id"] for r in back.requests]
    messages = churn.http.get("/v1/outbox", headers=churn.read).json()["messages"]
    assert sorted(ids) == sorted(m["message_id"] for m in messages)  # every message, each once
    assert {m["status"] for m in messages} == {"delivered"} and {m["attempts"] for m in messages} == {5}


def test_a_silence_regex_re2_cannot_run_is_refused_naming_the_matcher(api: Api) -> None:
    base = {"ends_at": "2099-01-01T00:00:00Z", "created_by": "ana", "comment": "c"}
    bad = {**base, "matchers": [{"name": "model", "value": "credit"}, {"name": "pad", "value": r"(a)\1", "op": "=~"}]}
    r = api.http.post("/v1/silences", json=bad, headers=api.admin)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == "matchers.1" and "RE2" in detail["reason"] and "invalid escape" in detail["reason"]
    ok = {**base, "matchers": [{"name": "pad", "value": "(a+)+$", "op": "=~"}]}
    assert api.http.post("/v1/silences", json=ok, headers=api.admin).status_code == 201


def test_a_stored_silence_re2_cannot_run_mutes_nothing_and_breaks_nothing(api: Api) -> None:
    from monitor.services.alerting.evaluation import active_silences

    now = datetime.now(UTC)
    with api.ctx.uow() as uow:  # stored before patterns were checked with RE2
        old = [{"name": "model", "value": r"(c)\1", "op": "=~"}]
        uow.alerts.create_silence(old, now - timedelta(hours=1), now + timedelta(hours=1), "a", "old")
        good = [{"name": "model", "value": "credit", "op": "="}]
        kept = uow.alerts.create_silence(good, now - timedelta(hours=1), now + timedelta(hours=1), "a", "ok")
        uow.commit()
    with api.ctx.uow() as uow:
        assert [s.id for s in active_silences(uow.alerts, now)] == [kept]
    assert api.http.get("/v1/alerts", headers=api.read).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://100.100.100.200/latest/meta-data",
        "http://192.0.0.170/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[fd00::1]/hook",
        "http://169.254.169.254/",
    ],
)
def test_a_receiver_at_a_literal_address_that_is_not_public_is_refused_when_made(
    api: Api, url: str, tmp_path: Path
) -> None:
    # the test settings allow loopback receivers and nothing else
    r = api.http.put("/v1/receivers/internal", json={"url": url}, headers=api.admin)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == "url"
    assert api.count("SELECT count(*) FROM receivers") == 0
    secret = "whsec_" + "A" * 32
    errors = alert_config.load_rules_file(
        api.ctx, f"receivers:\n  - {{name: internal, url: '{url}', secret: '{secret}'}}\n", "rules.yaml"
    )
    assert [(e["receiver"], e["field"]) for e in errors] == [("internal", "url")]
    assert (
        api.http.put("/v1/receivers/local", json={"url": "http://127.0.0.1:9/x"}, headers=api.admin).status_code == 200
    )


def test_receiver_secrets_are_encrypted_at_rest_and_rotated(api: Api, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import text

    from monitor.secret_box import SecretUnavailable
    from monitor.services.infra.context import ServiceContext

    secret = "whsec_" + "B" * 40
    doc = {"url": "http://127.0.0.1:9/hook", "secret": secret, "headers": {"Authorization": "Bearer hunter2"}}
    assert api.http.put("/v1/receivers/enc", json=doc, headers=api.admin).status_code == 200
    with api.ctx.engine.connect() as conn:
        stored = conn.execute(text("SELECT secret, headers::text FROM receivers WHERE name = 'enc'")).one()
    assert secret not in str(stored) and "hunter2" not in str(stored) and stored[0].startswith("enc:v1:")
    assert api.ctx.secrets.open(stored[0]) == secret  # what delivery signs with

    def ctx_with(keys: str) -> ServiceContext:
        settings = api.ctx.settings.model_copy(update={"secret_keys": SecretStr(keys)})
        return ServiceContext(settings=settings, engine=api.ctx.engine)

    assert api.ctx.settings.secret_keys is not None
    old = api.ctx.settings.secret_keys.get_secret_value()
    new = Fernet.generate_key().decode()
    assert alert_config.rotate_secrets(ctx_with(f"{new},{old}")) == 1
    with api.ctx.engine.connect() as conn:
        rotated = conn.execute(text("SELECT secret, headers->>'Authorization' FROM receivers WHERE name = 'enc'")).one()
    assert ctx_with(new).secrets.open(rotated[0]) == secret
    assert ctx_with(new).secrets.open(rotated[1]) == "Bearer hunter2"
    with pytest.raises(SecretUnavailable):
        ctx_with(old).secrets.open(rotated[0])
    # replacing the receiver without a secret keeps (and shows) the one it had
    kept = ctx_with(f"{new},{old}")
    assert alert_config.put_receiver(kept, {"name": "enc", "url": "http://127.0.0.1:9/other"})["secret"] == secret


def test_dataset_drift_inhibits_the_feature_drift_alerts_of_its_model_and_window(
    churn: Api, receiver: Receiver, wired: dict[str, str]
) -> None:
    text = f"""
receivers:
  - name: features-hook
    url: {receiver.url}
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    group_wait: 0s
rules:
  - name: feature-drift
    metric: feature_drift
    condition: {{drifted: true}}
    receivers: [features-hook]
inhibit_rules:
  - name: dataset-mutes-features
    source_matchers: [{{name: alertname, value: dataset-drift}}]
    target_matchers: [{{name: alertname, value: feature-drift}}]
    equal: [model, window]
  - name: broken
    source_matchers: []
    target_matchers: [{{name: a, value: b}}]
"""
    errors = alert_config.load_rules_file(churn.ctx, text, "rules.yaml")
    assert [(e.get("inhibit_rule"), e["field"]) for e in errors] == [("broken", "source_matchers")]
    listed = churn.http.get("/v1/inhibit-rules", headers=churn.read).json()["inhibit_rules"]
    assert [(r["name"], r["source"]) for r in listed] == [("dataset-mutes-features", "file")]
    assert churn.http.delete("/v1/inhibit-rules/dataset-mutes-features", headers=churn.admin).status_code == 409

    end = hour_floor(datetime.now(UTC))
    features = [
        MetricPoint(
            "feature_drift", end - timedelta(hours=1), end, 0.3, 900, {"feature": f}, threshold=0.1, drifted=True
        )
        for f in ("age", "income")
    ]
    record_points(churn.ctx, "churn", "1", [drift_point(end, True, 0.67), *features])
    assert evaluate_model(churn.ctx, "churn") == {"firing": 3}
    alerts = {a["labels"]["alertname"] + a["labels"].get("feature", ""): a for a in _alerts(churn)}
    source = alerts["dataset-drift"]["fingerprint"]
    assert alerts["feature-driftage"]["inhibited_by"] == [source]
    assert alerts["feature-driftincome"]["inhibited_by"] == [source]
    assert alerts["dataset-drift"]["inhibited_by"] == []
    bodies = [m["body"] for m in _outbox(churn)]
    told = [a["labels"]["alertname"] for b in bodies if isinstance(b, dict) and "alerts" in b for a in b["alerts"]]
    assert told == ["dataset-drift"]  # the feature alerts fire, muted

    # dataset drift ends: the feature alerts, still firing, are told now
    record_points(churn.ctx, "churn", "1", [drift_point(end + timedelta(hours=1), False, 0.1)])
    later = [replace(p, window_start=p.window_end, window_end=p.window_end + timedelta(hours=1)) for p in features]
    record_points(churn.ctx, "churn", "1", later)
    evaluate_model(churn.ctx, "churn")
    assert all(a["inhibited_by"] == [] for a in _alerts(churn))
    bodies = [m["body"] for m in _outbox(churn)]
    hooked = [b for b in bodies if isinstance(b, dict) and b.get("receiver") == "features-hook"]
    assert [sorted(a["labels"]["feature"] for a in b["alerts"]) for b in hooked] == [["age", "income"]]


def test_inhibit_rules_through_the_api(api: Api) -> None:
    rule = {
        "source_matchers": [{"name": "severity", "value": "critical"}],
        "target_matchers": [{"name": "severity", "value": "warning"}],
        "equal": ["model"],
    }
    r = api.http.put("/v1/inhibit-rules/critical-mutes-warning", json=rule, headers=api.read)
    assert r.status_code == 403
    r = api.http.put("/v1/inhibit-rules/critical-mutes-warning", json=rule, headers=api.admin)
    assert r.status_code == 200, r.text
    assert r.json()["definition"]["equal"] == ["model"]
    bad = {**rule, "target_matchers": [{"name": "x", "value": "(a)\\1", "op": "=~"}]}
    r = api.http.put("/v1/inhibit-rules/bad", json=bad, headers=api.admin)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "target_matchers.0", r.text
    assert api.http.delete("/v1/inhibit-rules/critical-mutes-warning", headers=api.admin).status_code == 204
    assert api.http.get("/v1/inhibit-rules", headers=api.read).json() == {"inhibit_rules": []}


def _alerts(api: Api) -> list[dict]:
    return api.http.get("/v1/alerts", headers=api.read).json()["alerts"]


def _outbox(api: Api) -> list[dict]:
    return api.http.get("/v1/outbox", headers=api.read).json()["messages"]


def test_slack_and_alertmanager_receivers_in_the_rules_file_need_no_secret(api: Api) -> None:
    text = """
receivers:
  - {name: chat, kind: slack, url: "http://127.0.0.1:9/slack"}
  - {name: am, kind: alertmanager, url: "http://127.0.0.1:9093"}
  - {name: hook, kind: webhook, url: "http://127.0.0.1:9/hook"}
rules:
  - name: bad-label
    metric: dataset_drift
    condition: {drifted: true}
    labels: {team-name: risk}
"""
    errors = alert_config.load_rules_file(api.ctx, text, "rules.yaml")
    assert sorted((e.get("receiver") or e.get("rule"), e["field"]) for e in errors) == [
        ("bad-label", "labels"),
        ("hook", "secret"),  # a webhook's receiver verifies the signature: it needs the secret
    ]
    receivers = {r["name"] for r in api.http.get("/v1/receivers", headers=api.read).json()["receivers"]}
    assert receivers == {"chat", "am"}
    with api.ctx.engine.connect() as conn:
        before = api.ctx.secrets.open(
            conn.execute(text_sql("SELECT secret FROM receivers WHERE name = 'chat'")).scalar_one()
        )
    alert_config.load_rules_file(api.ctx, text, "rules.yaml")  # reloaded: the same secret kept
    with api.ctx.engine.connect() as conn:
        after = conn.execute(text_sql("SELECT secret FROM receivers WHERE name = 'chat'")).scalar_one()
    assert api.ctx.secrets.open(after) == before


def test_a_group_whose_wait_ends_is_sent_by_the_leaders_tick_not_by_the_next_evaluation(
    churn: Api, receiver: Receiver
) -> None:
    """A transition plans the groups at once (the alert's group starts its wait); what only a
    timer changes is sent by the leading scheduler's flush at every tick, whichever model runs."""
    import time

    from monitor.scheduler import MetricScheduler

    r = churn.http.put("/v1/receivers/slow", json={"url": receiver.url, "group_wait": "1s"}, headers=churn.admin)
    assert r.status_code == 200, r.text
    rule = {"name": "drift", "metric": "dataset_drift", "condition": {"drifted": True}, "receivers": ["slow"]}
    assert churn.http.post("/v1/rules", json=rule, headers=churn.admin).status_code == 201
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.7)])

    def outbox() -> list[dict]:  # type: ignore[type-arg]
        return churn.http.get("/v1/outbox", headers=churn.read).json()["messages"]

    assert evaluate_model(churn.ctx, "churn") == {"firing": 1}
    assert outbox() == []  # the group waits its second
    time.sleep(1.1)
    assert evaluate_model(churn.ctx, "churn") == {}  # no transition: the groups are not planned again
    assert outbox() == []
    scheduler = MetricScheduler(churn.ctx)
    try:
        scheduler.tick()  # the leader: its flush sends what the timer let through
    finally:
        scheduler.stop()
    assert [m["receiver"] for m in outbox()] == ["slow"]
