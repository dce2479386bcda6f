from __future__ import annotations

from tests.integration.helpers import BINARY_SPEC, Api


def test_register_is_idempotent_and_versions_are_immutable(api: Api) -> None:
    r = api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    assert r.status_code == 201
    body = r.json()
    assert body["name"] == "churn" and body["latest_version"] == "1"
    assert body["versions"][0]["schema"]["positive_class"] == "leave"

    again = api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    assert again.status_code == 200

    changed = {**BINARY_SPEC, "features": BINARY_SPEC["features"][:2]}
    conflict = api.http.post("/v1/models", json=changed, headers=api.admin)
    assert conflict.status_code == 409
    assert "different schema" in conflict.json()["error"]["message"]

    v2 = api.http.post("/v1/models", json={**changed, "version": "2"}, headers=api.admin)
    assert v2.status_code == 201
    assert [v["version"] for v in v2.json()["versions"]] == ["1", "2"]
    assert v2.json()["latest_version"] == "2"

    task_change = api.http.post(
        "/v1/models", json={**changed, "version": "3", "task": "regression", "classes": None}, headers=api.admin
    )
    assert task_change.status_code == 409


def test_list_and_get(api: Api) -> None:
    api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    api.http.post("/v1/models", json={**BINARY_SPEC, "name": "other"}, headers=api.admin)
    listed = api.http.get("/v1/models", headers=api.read).json()["models"]
    assert sorted(m["name"] for m in listed) == ["churn", "other"]
    got = api.http.get("/v1/models/churn", headers=api.read)
    assert got.status_code == 200 and got.json()["task"] == "binary_classification"
    missing = api.http.get("/v1/models/nope", headers=api.read)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": "not_found", "message": "model 'nope' is not registered", "details": []}
    }


def test_bad_spec_is_422_in_the_error_shape(api: Api) -> None:
    r = api.http.post(
        "/v1/models", json={"name": "m", "task": "binary_classification", "features": []}, headers=api.admin
    )
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert any(d["field"] == "features" for d in err["details"])
    bad_json = api.http.post("/v1/models", content=b"{nope", headers={**api.admin, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "malformed_json"


def test_openapi_documents_the_routes_and_the_ingestion_bodies(api: Api) -> None:
    spec = api.http.get("/openapi.json").json()
    for path in ("/v1/models", "/v1/models/{name}", "/v1/models/{name}/reference", "/v1/predictions", "/v1/labels"):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/predictions"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson"} <= set(body)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert api.http.get("/docs").status_code == 200


def test_monitoring_settings_default_and_change(api: Api) -> None:
    api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    got = api.http.get("/v1/models/churn/monitoring", headers=api.read).json()
    assert got["windows"] == ["1h", "1d"] and got["schedule_seconds"] == 30 and got["fdr"] is False
    new = {**got, "windows": ["6h", "7d"], "fdr": True, "feature_tests": {"tenure": {"test": "psi", "threshold": 0.2}}}
    r = api.http.put("/v1/models/churn/monitoring", json=new, headers=api.admin)
    assert r.status_code == 200
    assert api.http.get("/v1/models/churn/monitoring", headers=api.read).json()["windows"] == ["6h", "7d"]
    for windows in (["90s"], ["0m"], ["60m", "1h"], ["400d"]):
        bad = api.http.put("/v1/models/churn/monitoring", json={**new, "windows": windows}, headers=api.admin)
        assert bad.status_code == 422 and "window" in bad.text, windows
    assert "whole number of minutes, hours or days" in bad.text or "longer than" in bad.text
    bad = api.http.put(
        "/v1/models/churn/monitoring", json={**new, "feature_tests": {"x": {"test": "magic"}}}, headers=api.admin
    )
    assert bad.status_code == 422 and "unknown stat test 'magic'" in bad.text
    assert api.http.get("/v1/models/ghost/monitoring", headers=api.read).status_code == 404
