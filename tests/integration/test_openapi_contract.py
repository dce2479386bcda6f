"""Schemathesis against the API's own OpenAPI document, over real HTTP on loopback: generated
requests to every operation (valid and invalid ones) never get a 5xx, and every error comes in
the documented shape (``Error``: ``{"error": {"code", "message", "details"}}``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from monitor.api.app import create_app
from monitor.server import ThreadedServer
from monitor.services.alerting.evaluation import evaluate_model, flush_groups
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import Api, Receiver, deliver_all, drift_point, prediction
from tests.servers import free_port

# The document is built without a database (the app opens its context at start-up, not here).
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture
def live_api(churn: Api) -> Iterator[str]:
    # churn: a real model in a real database, so that some generated paths reach real objects
    server = ThreadedServer(create_app(ctx=churn.ctx), "127.0.0.1", free_port()).start()
    yield server.url
    server.stop()


@schema.parametrize()
# Parquet reference uploads are binary: Schemathesis cannot generate them (tested in test_reference_api).
@pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: a CI failure can be replayed
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_error_in_the_documented_shape(
    case: schemathesis.Case, churn: Api, live_api: str
) -> None:
    response = case.call(base_url=live_api, headers=churn.admin)
    reproduce = case.as_curl_command()
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\n{reproduce}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, reproduce
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), reproduce
        assert isinstance(body["error"]["details"], list), reproduce
    # and the response conforms to what the document says of it (errors: the Error schema)
    case.validate_response(response, checks=[response_schema_conformance])


def test_every_answer_with_real_data_is_what_the_document_says(churn: Api, receiver: Receiver) -> None:
    """The generated cases above mostly meet empty lists; here every read route answers with real
    rows (an alert firing and delivered, a silence, a retraining trigger, points, keys, a
    reference), and each answer is checked against the operation's documented schema."""
    h, admin = churn.http, churn.admin
    checked: list[str] = []

    def call(method: str, path: str, template: str | None = None, **kw: Any) -> Any:
        r = h.request(method, path, headers=kw.pop("headers", admin), **kw)
        assert r.status_code < 300, (path, r.status_code, r.text)
        schema[template or path][method].validate_response(r)
        checked.append(f"{method} {template or path}")
        return r.json() if r.content else None

    reference = "tenure,plan,prediction,label,score\n" + "".join(
        f"{i % 40},{'basic' if i % 3 else 'pro'},{'stay' if i % 4 else 'leave'},stay,0.{i % 9}\n" for i in range(300)
    )
    call(
        "POST",
        "/v1/models/churn/reference",
        "/v1/models/{name}/reference",
        content=reference,
        headers={**admin, "content-type": "text/csv"},
    )
    call("POST", "/v1/predictions", json={"model": "churn", "records": [prediction("p1"), prediction("p2")]})
    call("POST", "/v1/labels", json={"model": "churn", "records": [{"prediction_id": "p1", "label": "stay"}]})
    for name, kind in (("oncall", "webhook"), ("trainer", "retrain")):
        call("PUT", f"/v1/receivers/{name}", "/v1/receivers/{name}", json={"kind": kind, "url": receiver.url})
    rule = {
        "name": "drift",
        "metric": "dataset_drift",
        "condition": {"drifted": True},
        "receivers": ["oncall"],
        "retrain": {"receiver": "trainer"},
        "annotations": {"summary": "{model} drifted"},
    }
    call("POST", "/v1/rules", json=rule)
    call(
        "PUT",
        "/v1/inhibit-rules/quiet",
        "/v1/inhibit-rules/{name}",
        json={
            "source_matchers": [{"name": "severity", "value": "critical"}],
            "target_matchers": [{"name": "severity", "value": "warning"}],
        },
    )
    record_points(churn.ctx, "churn", "1", [drift_point(hour_floor(datetime.now(UTC)), True, 0.8)])
    evaluate_model(churn.ctx, "churn")
    flush_groups(churn.ctx, datetime.now(UTC) + timedelta(minutes=1))
    deliver_all(churn)
    fingerprint = call("GET", "/v1/alerts")["alerts"][0]["fingerprint"]
    call("POST", f"/v1/alerts/{fingerprint}/ack", "/v1/alerts/{fingerprint}/ack", json={"by": "ana"})
    silence = {
        "matchers": [{"name": "model", "value": "churn"}],
        "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "created_by": "ana",
        "comment": "deploying",
    }
    call("POST", "/v1/silences", json=silence)
    message_id = call("GET", "/v1/outbox")["messages"][0]["message_id"]
    call("POST", f"/v1/outbox/{message_id}/redeliver", "/v1/outbox/{message_id}/redeliver")
    for path, template in [
        ("/healthz", None),
        ("/readyz", None),
        ("/v1/models", None),
        ("/v1/models/churn", "/v1/models/{name}"),
        ("/v1/models/churn/monitoring", "/v1/models/{name}/monitoring"),
        ("/v1/models/churn/metrics", "/v1/models/{name}/metrics"),
        ("/v1/models/churn/reports", "/v1/models/{name}/reports"),
        ("/v1/keys", None),
        ("/v1/rules", None),
        ("/v1/rules/drift", "/v1/rules/{name}"),
        ("/v1/inhibit-rules", None),
        ("/v1/receivers", None),
        ("/v1/alerts", None),
        ("/v1/alerts/history", None),
        (f"/v1/alerts/{fingerprint}", "/v1/alerts/{fingerprint}"),
        ("/v1/silences", None),
        ("/v1/outbox", None),
        ("/v1/deliveries", None),
        ("/v1/retrain-triggers", None),
    ]:
        body = call("GET", path, template)
        assert body, path
    assert call("GET", "/v1/retrain-triggers")["triggers"] and call("GET", "/v1/deliveries")["deliveries"]
    # every operation that answers JSON with a body was met here or documented as such
    assert len(checked) >= 30, checked
