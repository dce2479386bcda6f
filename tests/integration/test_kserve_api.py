"""KServe's payload logger against the API: pairs in either order, V1 and V2, the key as a query
parameter, a retried event stored once, bad instances counted and skipped."""

from __future__ import annotations

import orjson
import pytest

from monitor.domain.kserve import REQUEST, RESPONSE
from tests.integration.helpers import BINARY_SPEC, Api

V1_REQUEST = {"instances": [[12, "basic"], [40, "pro"]]}
V1_RESPONSE = {"predictions": [0.8, 0.1]}
V2_REQUEST = {
    "inputs": [
        {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [5, 6]},
        {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["basic", "pro"]},
    ]
}
V2_RESPONSE = {"outputs": [{"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.3, 0.7, 0.9, 0.1]}]}


def send(api: Api, kind: str, event_id: str, body: dict, key: dict[str, str] | None = None) -> dict:
    headers = {
        "Ce-Id": event_id,
        "Ce-Type": kind,
        "Ce-Source": "http://churn-predictor.default/",
        "Ce-Specversion": "1.0",
        "Ce-Inferenceservicename": "churn",
        "Ce-Time": "2026-11-22T10:00:00Z",
        "Content-Type": "application/json",
        **(key if key is not None else api.ingest),
    }
    r = api.http.post("/v1/kserve", content=orjson.dumps(body), headers=headers)
    assert r.status_code in (200, 202), r.text
    return r.json()


@pytest.mark.parametrize("response_first", [False, True])
def test_a_pair_in_either_order_becomes_predictions(churn: Api, response_first: bool) -> None:
    halves = [(REQUEST, V1_REQUEST), (RESPONSE, V1_RESPONSE)]
    if response_first:
        halves.reverse()
    first = send(churn, halves[0][0], "ev-1", halves[0][1])
    assert first["status"].startswith("waiting for the")
    assert churn.count("SELECT count(*) FROM predictions") == 0
    done = send(churn, halves[1][0], "ev-1", halves[1][1])
    assert done["status"] == "stored" and done["accepted"] == 2
    rows = churn.http.get("/v1/models/churn", headers=churn.read).json()
    assert rows["name"] == "churn"
    assert churn.count("SELECT count(*) FROM predictions WHERE prediction_id IN ('ev-1-0', 'ev-1-1')") == 2
    assert (
        churn.count("SELECT count(*) FROM predictions WHERE prediction = '\"leave\"' AND features->>'plan' = 'basic'")
        == 1
    )
    assert churn.count("SELECT count(*) FROM kserve_events") == 0


def test_v2_bodies_and_a_query_key(churn: Api) -> None:
    key = churn.ingest["Authorization"].removeprefix("Bearer ")
    r = churn.http.post(
        f"/v1/kserve?api_key={key}",
        content=orjson.dumps(V2_REQUEST),
        headers={"Ce-Id": "v2", "Ce-Type": REQUEST, "Ce-Inferenceservicename": "churn"},
    )
    assert r.status_code == 202, r.text
    assert send(churn, RESPONSE, "v2", V2_RESPONSE)["accepted"] == 2
    assert churn.count("SELECT count(*) FROM predictions WHERE scores->>'leave' = '0.7'") == 1
    r = churn.http.post("/v1/kserve?api_key=mon_00000000_wrong", content=b"{}", headers={"Ce-Id": "x"})
    assert r.status_code == 401


def test_a_retried_event_is_stored_once_and_bad_instances_are_counted(churn: Api) -> None:
    for _ in range(2):
        send(churn, REQUEST, "ev-2", V1_REQUEST)
        send(churn, RESPONSE, "ev-2", V1_RESPONSE)
    assert churn.count("SELECT count(*) FROM predictions") == 2
    send(churn, REQUEST, "ev-3", {"instances": [[12, "basic"], ["long", "pro"]]})
    result = send(churn, RESPONSE, "ev-3", V1_RESPONSE)
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert result["errors"][0]["field"] == "features.tenure"


def test_unreadable_pairs_and_unknown_models_are_refused(churn: Api) -> None:
    send(churn, REQUEST, "ev-4", {"instances": [[1, "a"], [2, "b"]]})
    headers = {"Ce-Id": "ev-4", "Ce-Type": RESPONSE, "Ce-Inferenceservicename": "churn", **churn.ingest}
    r = churn.http.post("/v1/kserve", content=orjson.dumps({"predictions": [0.5]}), headers=headers)
    assert r.status_code == 400 and "2 instances in the request but 1" in r.json()["error"]["message"]
    headers["Ce-Inferenceservicename"] = "nobody"
    assert churn.http.post("/v1/kserve", content=b"{}", headers=headers).status_code == 404
    del headers["Ce-Id"]
    headers["Ce-Inferenceservicename"] = "churn"
    r = churn.http.post("/v1/kserve", content=b"{}", headers=headers)
    assert r.status_code == 400 and "ce-id" in r.json()["error"]["message"]


def test_one_unreadable_instance_loses_only_itself_and_is_counted(churn: Api) -> None:
    send(churn, REQUEST, "ev-p", {"instances": [[12, "basic"], [1, 2, 3, 4], [40, "pro"]]})
    result = send(churn, RESPONSE, "ev-p", {"predictions": [0.8, 0.5, 7]})  # 7: no such class index
    assert result["status"] == "stored" and (result["accepted"], result["rejected"]) == (1, 2)
    assert [(e["index"], e["field"]) for e in result["errors"]] == [(1, "instances"), (2, "predictions")]
    assert churn.count("SELECT count(*) FROM predictions") == 1
    assert churn.count("SELECT coalesce(sum(count), 0) FROM schema_violations") == 2
    assert churn.count("SELECT coalesce(sum(rejected), 0) FROM ingest_stats") == 2


def test_a_pair_with_nothing_stored_is_a_422_naming_each_instance(churn: Api) -> None:
    send(churn, REQUEST, "ev-r", {"instances": [[1, 2, 3, 4], [2, "basic"]]})
    headers = {"Ce-Id": "ev-r", "Ce-Type": RESPONSE, "Ce-Inferenceservicename": "churn", **churn.ingest}
    r = churn.http.post("/v1/kserve", content=b'{"predictions": [0.5, [null, 0.5]]}', headers=headers)
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    assert [(d["index"], d["field"]) for d in details] == [(0, "instances"), (1, "predictions")]
    assert churn.count("SELECT count(*) FROM predictions") == 0


@pytest.mark.parametrize("ids", ["keep", "hash"])
def test_a_half_repeated_after_its_pair_was_stored_is_not_kept_waiting(api: Api, ids: str) -> None:
    """Also for a model that stores its ids hashed: the repeat is found under the hashes."""
    spec = {**BINARY_SPEC, "personal_data": {"prediction_id": ids}}
    assert api.http.post("/v1/models", json=spec, headers=api.admin).status_code == 201
    churn = api
    send(churn, REQUEST, "ev-d", V1_REQUEST)
    assert send(churn, RESPONSE, "ev-d", V1_RESPONSE)["status"] == "stored"
    again = send(churn, RESPONSE, "ev-d", V1_RESPONSE)  # the logger retrying
    assert again["status"].startswith("duplicate")
    assert churn.count("SELECT count(*) FROM kserve_events") == 0
    assert churn.count("SELECT count(*) FROM predictions") == 2


def test_a_first_half_that_is_not_json_is_refused_at_once(churn: Api) -> None:
    headers = {"Ce-Id": "ev-j", "Ce-Type": REQUEST, "Ce-Inferenceservicename": "churn", **churn.ingest}
    r = churn.http.post("/v1/kserve", content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
    assert churn.count("SELECT count(*) FROM kserve_events") == 0
