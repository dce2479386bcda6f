"""Versions live side by side on a real Postgres: how each is deployed, and the request id that
pairs a shadow's predictions with the champion's, through the API, the SDK and KServe's logger."""

from __future__ import annotations

from typing import Any

import orjson

from monitor.domain.kserve import REQUEST, RESPONSE
from monitor.services.read_models import audit
from tests.integration.helpers import BINARY_SPEC, Api, prediction


def _versions(api: Api) -> dict[str, str]:
    model = api.http.get("/v1/models/churn", headers=api.read).json()
    return {v["version"]: v["deployment"] for v in model["versions"]}


def _deploy(api: Api, version: str, mode: str) -> Any:
    return api.http.put(f"/v1/models/churn/versions/{version}/deployment", json={"mode": mode}, headers=api.admin)


def test_a_version_is_deployed_as_champion_canary_or_shadow_and_one_champion_retires_the_other(churn: Api) -> None:
    api = churn
    assert api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin).status_code == 201
    assert _versions(api) == {"1": "unspecified", "2": "unspecified"}
    assert _deploy(api, "1", "champion").status_code == 200
    r = _deploy(api, "2", "shadow")
    assert r.status_code == 200 and {v["version"]: v["deployment"] for v in r.json()["versions"]}["2"] == "shadow"
    _deploy(api, "2", "champion")
    assert _versions(api) == {"1": "retired", "2": "champion"}
    assert _deploy(api, "9", "canary").status_code == 404
    assert _deploy(api, "1", "primary").status_code == 422
    assert _deploy(api, "1", "canary").json()["versions"][0]["deployment_since"] is not None
    changes = audit.list_entries(api.ctx, action="deployment.changed")["entries"]
    assert [(e["target"], e["details"]["mode"]) for e in changes][::-1] == [
        ("1", "champion"),
        ("2", "shadow"),
        ("2", "champion"),
        ("1", "canary"),
    ]


def _stored_versions(api: Api) -> dict[str, str]:
    with api.ctx.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.prediction_id, v.version FROM predictions p JOIN model_versions v ON v.id = p.model_version_id"
        ).all()
    return dict(rows)


def test_records_without_a_version_are_the_champions_once_one_is_declared(churn: Api) -> None:
    """A shadow or canary registered after the champion does not take the champion's unversioned
    traffic, on either decoding path; the model's pages and series show the champion too."""
    from monitor.services.read_models import dashboard_data

    api = churn
    api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin)

    def log(pid: str) -> None:
        r = api.http.post("/v1/predictions", json={"model": "churn", "records": [prediction(pid)]}, headers=api.ingest)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        line = orjson.dumps({"model": "churn", **prediction(f"{pid}-nd")})
        r = api.http.post(
            "/v1/predictions", content=line, headers={**api.ingest, "Content-Type": "application/x-ndjson"}
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    log("a")  # no champion declared: the newest version's
    assert dashboard_data.model_info(api.ctx, "churn")["version"] == "2"
    _deploy(api, "1", "champion")
    _deploy(api, "2", "shadow")
    log("b")
    assert _stored_versions(api) == {"a": "2", "a-nd": "2", "b": "1", "b-nd": "1"}
    assert dashboard_data.model_info(api.ctx, "churn")["version"] == "1"


def _request_ids(api: Api) -> dict[str, str | None]:
    with api.ctx.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT prediction_id, request_id FROM predictions").all()
    return dict(rows)


def test_the_request_id_pairs_a_shadows_prediction_with_the_champions_on_both_decoding_paths(churn: Api) -> None:
    api = churn
    api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin)
    fast = {"model": "churn", "version": "1", "records": [prediction("c1", request_id="req-1")]}
    # an integer category leaves the one-pass decoder: the explaining validator stores it
    slow = {
        "model": "churn",
        "version": "2",
        "records": [prediction("s1", request_id="req-1", features={"tenure": 3, "plan": 7})],
    }
    for body in (fast, slow):
        r = api.http.post("/v1/predictions", json=body, headers=api.ingest)
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    assert _request_ids(api) == {"c1": "req-1", "s1": "req-1"}
    bad = {"model": "churn", "records": [prediction("x", request_id="r" * 300)]}
    r = api.http.post("/v1/predictions", json=bad, headers=api.ingest)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "request_id"


def test_the_sdk_sends_the_version_and_request_id(churn: Api) -> None:
    from monitor_client import MonitorClient

    from monitor.api.app import create_app
    from monitor.server import ThreadedServer
    from tests.servers import free_port

    api = churn
    api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin)
    server = ThreadedServer(create_app(ctx=api.ctx), "127.0.0.1", free_port()).start()
    try:
        client = MonitorClient(server.url, api.ingest["Authorization"].split()[1], model="churn")
        for version, pid in (("1", "champ"), ("2", "shadow")):
            client.log_prediction(
                {"tenure": 1, "plan": "basic"}, "stay", prediction_id=pid, version=version, request_id="r9"
            )
        assert client.flush(10)
        client.close()
    finally:
        server.stop()
    assert _request_ids(api) == {"champ": "r9", "shadow": "r9"}
    with api.ctx.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.prediction_id, v.version FROM predictions p JOIN model_versions v ON v.id = p.model_version_id"
        ).all()
    assert dict(rows) == {"champ": "1", "shadow": "2"}


def _event(api: Api, kind: str, event_id: str, body: dict[str, Any], endpoint: str | None, query: str = "") -> int:
    headers = {
        "Ce-Id": event_id,
        "Ce-Type": kind,
        "Ce-Specversion": "1.0",
        "Ce-Inferenceservicename": "churn",
        "Content-Type": "application/json",
        **({"Ce-Endpoint": endpoint} if endpoint else {}),
        **api.ingest,
    }
    return api.http.post(f"/v1/kserve{query}", content=orjson.dumps(body), headers=headers).status_code


def test_kserves_canary_and_a_shadows_logger_land_on_their_versions_paired_by_the_request(churn: Api) -> None:
    api = churn
    api.http.post("/v1/models", json={**BINARY_SPEC, "version": "2"}, headers=api.admin)
    api.http.post("/v1/models", json={**BINARY_SPEC, "version": "3"}, headers=api.admin)
    _deploy(api, "1", "champion")
    _deploy(api, "2", "canary")
    _deploy(api, "3", "shadow")
    request, response = {"instances": [[12, "basic"]]}, {"predictions": [0.8]}
    # one inference request, logged by the champion's predictor, the canary's and a shadow's
    # (mirrored traffic keeps the request's id); halves of different versions never mix
    for kind, body in ((REQUEST, request), (RESPONSE, response)):
        assert _event(api, kind, "ev-1", body, "default") in (200, 202)
        assert _event(api, kind, "ev-1", body, "canary") in (200, 202)
        assert _event(api, kind, "ev-1", body, None, "?version=3") in (200, 202)
    with api.ctx.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.prediction_id, p.request_id, v.version FROM predictions p "
            "JOIN model_versions v ON v.id = p.model_version_id ORDER BY 3"
        ).all()
    assert [tuple(r) for r in rows] == [
        ("ev-1-0", "ev-1-0", "1"),
        ("ev-1-0@2", "ev-1-0", "2"),
        ("ev-1-0@3", "ev-1-0", "3"),
    ]
    # a logger's retry of a stored pair is a duplicate, for a named version too
    assert _event(api, REQUEST, "ev-1", request, "canary") == 202
    with api.ctx.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM predictions").scalar_one() == 3
