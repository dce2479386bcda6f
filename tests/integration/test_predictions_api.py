from __future__ import annotations

import gzip
import threading
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from tests.integration.helpers import Api, prediction


def stored(api: Api) -> int:
    return api.count("SELECT count(*) FROM predictions")


def test_batch_lands_once_and_a_retry_counts_duplicates(churn: Api) -> None:
    body = {"model": "churn", "records": [prediction("a"), prediction("b"), prediction(None)]}
    r = churn.http.post("/v1/predictions", json=body, headers=churn.ingest)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["duplicates"], out["rejected"]) == (3, 0, 0)
    assert out["ids"][:2] == ["a", "b"] and len(out["ids"][2]) == 32

    retry = churn.http.post(
        "/v1/predictions", json={"model": "churn", "records": [prediction("a"), prediction("c")]}, headers=churn.ingest
    ).json()
    assert (retry["accepted"], retry["duplicates"], retry["duplicate_ids"]) == (1, 1, ["a"])
    assert stored(churn) == 4
    assert churn.count("SELECT count(*) FROM prediction_keys") == 4


def test_repeated_id_inside_one_request_is_a_duplicate(churn: Api) -> None:
    out = churn.http.post(
        "/v1/predictions", json=[{"model": "churn", **prediction("x")}] * 3, headers=churn.ingest
    ).json()
    assert (out["accepted"], out["duplicates"], out["ids"]) == (1, 2, ["x", "x", "x"])
    assert stored(churn) == 1


def test_stored_row_holds_the_normalised_record(churn: Api) -> None:
    rec = prediction(
        "s1", latency_ms=7.5, segments={"country": "NO"}, features={"tenure": 3, "plan": 5, "autopay": True}
    )
    now = datetime.now(UTC)
    rec["timestamp"] = (now - timedelta(days=2)).isoformat()
    churn.http.post("/v1/predictions", json={"model": "churn", "records": [rec]}, headers=churn.ingest)
    with churn.ctx.engine.connect() as conn:
        from sqlalchemy import text

        row = conn.execute(text("SELECT features, prediction, scores, latency_ms, segments, ts FROM predictions")).one()
    assert row.features == {"tenure": 3, "plan": "5", "autopay": True}
    assert row.prediction == "stay" and row.scores == {"leave": 0.3} and row.latency_ms == 7.5
    assert row.segments == {"plan": "5", "country": "NO"}
    assert abs((row.ts - (now - timedelta(days=2))).total_seconds()) < 1
    # a back-filled day got its own partition on demand
    day = (now - timedelta(days=2)).strftime("%Y%m%d")
    assert churn.count("SELECT count(*) FROM pg_class WHERE relname = :n", n=f"predictions_{day}") == 1


def test_single_record_ndjson_and_gzip(churn: Api) -> None:
    single = churn.http.post("/v1/predictions", json={"model": "churn", **prediction("one")}, headers=churn.ingest)
    assert single.json()["accepted"] == 1
    lines = b"\n".join(orjson.dumps({"model": "churn", **prediction(f"n{i}")}) for i in range(5))
    nd = churn.http.post(
        "/v1/predictions", content=lines, headers={**churn.ingest, "Content-Type": "application/x-ndjson"}
    )
    assert nd.json()["accepted"] == 5
    gz = churn.http.post(
        "/v1/predictions",
        content=gzip.compress(orjson.dumps({"model": "churn", "records": [prediction("g1")]})),
        headers={**churn.ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert gz.json()["accepted"] == 1
    assert stored(churn) == 7


def test_any_bad_row_rejects_the_batch_and_lists_every_bad_row(churn: Api) -> None:
    records = [
        prediction("ok1"),
        prediction("bad1", features={"tenure": "long", "plan": "basic"}),
        prediction("ok2"),
        prediction("bad2", prediction="maybe", timestamp="not a time"),
        prediction("bad3", features={"plan": "basic", "shoe_size": 44}),
    ]
    r = churn.http.post("/v1/predictions", json={"model": "churn", "records": records}, headers=churn.ingest)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error"
    assert "3 of 5 predictions are invalid; nothing was stored" in err["message"]
    assert [(d["index"], d["field"]) for d in err["details"]] == [
        (1, "features.tenure"),
        (3, "timestamp"),
        (3, "prediction"),
        (4, "features.tenure"),
        (4, "features.shoe_size"),
    ]
    assert stored(churn) == 0
    assert churn.count("SELECT count(*) FROM prediction_keys") == 0
    # the rejections are counted for data quality all the same
    assert churn.count("SELECT sum(rejected) FROM ingest_stats WHERE kind = 'prediction'") == 3
    assert churn.count("SELECT count FROM schema_violations WHERE field = 'features.tenure'") == 2
    assert churn.count("SELECT count FROM schema_violations WHERE field = 'features.<unknown>'") == 1


def test_skip_mode_stores_the_good_rows_and_returns_the_rejects(churn: Api) -> None:
    records = [prediction("ok1"), prediction("bad", prediction="maybe"), prediction("ok2")]
    r = churn.http.post(
        "/v1/predictions?on_error=skip", json={"model": "churn", "records": records}, headers=churn.ingest
    )
    assert r.status_code == 200
    out = r.json()
    assert (out["accepted"], out["rejected"], out["ids"]) == (2, 1, ["ok1", None, "ok2"])
    assert out["errors"] == [{"index": 1, "field": "prediction", "reason": "'maybe' is not one of the model's classes"}]
    assert stored(churn) == 2


def test_on_error_must_be_known(churn: Api) -> None:
    r = churn.http.post("/v1/predictions?on_error=ignore", json={"model": "churn", "records": []}, headers=churn.ingest)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "on_error"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{not json", 400, "malformed_json", "not valid JSON"),
        (
            orjson.dumps({"model": "ghost", "records": [prediction()]}),
            404,
            "not_found",
            "model 'ghost' is not registered",
        ),
        (
            orjson.dumps({"model": "churn", "version": "9", "records": [prediction()]}),
            404,
            "not_found",
            "model 'churn' has no version '9'",
        ),
        (orjson.dumps(prediction()), 422, "validation_error", "1 of 1 predictions are invalid"),
    ],
)
def test_request_level_errors(churn: Api, body: bytes, status: int, code: str, message: str) -> None:
    r = churn.http.post("/v1/predictions", content=body, headers={**churn.ingest, "Content-Type": "application/json"})
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert message in r.json()["error"]["message"]


def test_oversized_body_is_413(churn: Api) -> None:
    small = churn.ctx.settings.model_copy(update={"max_body_bytes": 1000})
    ctx = churn.ctx
    original = ctx.settings
    ctx.settings = small
    try:
        with TestClient(create_app(ctx=ctx)) as http:
            big = {"model": "churn", "records": [prediction(f"id{i}") for i in range(50)]}
            r = http.post("/v1/predictions", json=big, headers=churn.ingest)
            assert r.status_code == 413
            assert r.json()["error"]["code"] == "payload_too_large"
            bomb = gzip.compress(orjson.dumps(big) * 10)
            assert len(bomb) < 1000
            r = http.post(
                "/v1/predictions",
                content=bomb,
                headers={**churn.ingest, "Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
            assert r.status_code == 413
    finally:
        ctx.settings = original
    assert stored(churn) == 0


def test_concurrent_retries_store_each_id_once(churn: Api) -> None:
    """Eight clients send the same 300 ids at the same time: each id is stored exactly once."""
    body = {"model": "churn", "records": [prediction(f"c{i}") for i in range(300)]}
    results: list[dict] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        r = churn.http.post("/v1/predictions", json=body, headers=churn.ingest)
        assert r.status_code == 200, r.text
        results.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["accepted"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 300 * 7
    assert stored(churn) == 300


@pytest.mark.parametrize("path", ["one-pass batch", "full path"])
def test_awkward_strings_survive_copy_exactly(churn: Api, path: str) -> None:
    """Backslashes, tabs, newlines, quotes and non-ASCII in ids and categories reach Postgres intact."""
    awkward = 'tab\there\nnew "quoted" back\\slash é 漢字 \\N'
    rec = prediction(f"id {awkward}", features={"tenure": 1, "plan": awkward}, segments={"country": awkward})
    body = {"model": "churn", "records": [rec]} if path == "one-pass batch" else [{"model": "churn", **rec}]
    r = churn.http.post("/v1/predictions", json=body, headers=churn.ingest)
    assert r.json()["accepted"] == 1, r.text
    with churn.ctx.engine.connect() as conn:
        from sqlalchemy import text

        row = conn.execute(text("SELECT prediction_id, features, segments FROM predictions")).one()
    assert row.prediction_id == f"id {awkward}"
    assert row.features == {"tenure": 1, "plan": awkward}
    assert row.segments == {"plan": awkward, "country": awkward}


def test_text_postgres_cannot_store_is_refused_with_its_record_and_field(churn: Api) -> None:
    """A NUL (\\u0000) or an unpaired surrogate is a 4xx naming the record and field, never a
    500 (which the SDK would retry for ever), and nothing of the batch is stored."""
    body = (
        b'{"model": "churn", "records": [{"prediction_id": "ok", "features": {"tenure": 1, "plan": "basic"},'
        b' "prediction": "stay"}, {"features": {"tenure": 1, "plan": "ba\\u0000sic"}, "prediction": "stay"}]}'
    )
    h = {**churn.ingest, "Content-Type": "application/json"}
    r = churn.http.post("/v1/predictions", content=body, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"] == [
        {"index": 1, "field": "features.plan", "reason": "contains a NUL character (\\u0000), which cannot be stored"}
    ]
    assert churn.count("SELECT count(*) FROM predictions") == 0  # nothing half-written
    r = churn.http.post("/v1/predictions?on_error=skip", content=body, headers=h)
    assert r.status_code == 200 and r.json()["accepted"] == 1  # or the good ones, when asked
    r = churn.http.post(
        "/v1/labels",
        content=b'{"model": "churn", "records": [{"prediction_id": "o\\u0000k", "label": "stay"}]}',
        headers=h,
    )
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "prediction_id"
    # elsewhere than ingestion: the field is named too
    r = churn.http.get("/v1/models/a%00b", headers=churn.read)
    assert r.status_code == 400 and r.json()["error"]["details"] == [
        {"field": "path.name", "reason": "contains a NUL character (\\u0000), which cannot be stored"}
    ]
    for bad, status in ((b"x\\udbda", 422), (b"x\\u0000", 400)):  # an unpaired surrogate, a NUL
        spec = b'{"name": "m", "task": "regression", "features": [{"name": "' + bad + b'", "type": "numerical"}]}'
        r = churn.http.post("/v1/models", content=spec, headers={**churn.admin, "Content-Type": "application/json"})
        assert r.status_code == status, r.text
        assert r.json()["error"]["details"][0]["field"] == "features.0.name"
    assert churn.count("SELECT count(*) FROM models WHERE name = 'm'") == 0


def test_every_gzip_member_is_stored_and_other_encodings_refused(churn: Api) -> None:
    gz = {**churn.ingest, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    members = b"".join(
        gzip.compress(orjson.dumps({"model": "churn", **prediction(f"m{i}")}) + b"\n") for i in range(3)
    )  # what `cat a.gz b.gz c.gz` sends
    r = churn.http.post("/v1/predictions", content=members, headers=gz)
    assert r.status_code == 200 and r.json()["accepted"] == 3 and stored(churn) == 3
    for body, status in (
        (gzip.compress(orjson.dumps({"model": "churn", **prediction("t1")})) + b"\ntrailing", 400),
        (gzip.compress(orjson.dumps({"model": "churn", **prediction("t2")}))[:-6], 400),
    ):
        r = churn.http.post("/v1/predictions", content=body, headers=gz)
        assert r.status_code == status and r.json()["error"]["message"], r.text
    for encoding in ("br", "deflate", "gzip, br", "zstd"):
        h = {**churn.ingest, "Content-Type": "application/json", "Content-Encoding": encoding}
        r = churn.http.post("/v1/predictions", content=orjson.dumps([prediction("e1")]), headers=h)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", r.text
    for media in ("text/plain", "application/xml", "application/x-www-form-urlencoded"):
        h = {**churn.ingest, "Content-Type": media}
        for path in ("/v1/predictions", "/v1/labels"):
            r = churn.http.post(path, content=orjson.dumps({"model": "churn", "records": []}), headers=h)
            assert r.status_code == 415 and "application/json" in r.json()["error"]["message"], (path, r.text)
    assert stored(churn) == 3  # nothing of the refused bodies


def test_gzip_bodies_are_read_on_every_route(churn: Api) -> None:
    silence = {"matchers": [{"name": "model", "value": "churn"}], "ends_at": "2099-01-01T00:00:00Z"}
    body = gzip.compress(orjson.dumps({**silence, "created_by": "a", "comment": "b"}))
    h = {**churn.admin, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert churn.http.post("/v1/silences", content=body, headers=h).status_code == 201


def test_numbers_past_the_stored_bound_are_refused_per_record_and_field(churn: Api) -> None:
    """1e200, a 400-digit integer or a latency of 1e300 would overflow the rollup's sums: they are
    refused at ingestion with the record and field named, on the fast path and the full path."""
    huge = b"1" + b"0" * 400
    ok = orjson.dumps(prediction("fine"))
    records = [
        ok,
        b'{"prediction_id": "a", "features": {"tenure": 1e200, "plan": "basic"}, "prediction": "stay"}',
        b'{"prediction_id": "b", "features": {"tenure": ' + huge + b', "plan": "basic"}, "prediction": "stay"}',
        b'{"prediction_id": "c", "features": {"tenure": 1, "plan": "basic"}, "prediction": "stay", '
        b'"latency_ms": 1e300}',
        b'{"prediction_id": "d", "features": {"tenure": 1, "plan": "basic"}, "prediction": "stay", '
        b'"latency_ms": ' + huge + b"}",
    ]
    h = {**churn.ingest, "Content-Type": "application/json"}
    for body in (
        b'{"model": "churn", "records": [' + b", ".join(records) + b"]}",  # the batch shape: fast path first
        b"[" + b", ".join(r[:-1] + b', "model": "churn"}' for r in records) + b"]",  # an array: the full path
    ):
        r = churn.http.post("/v1/predictions", content=body, headers=h)
        assert r.status_code == 422, r.text
        details = r.json()["error"]["details"]
        assert [(d["index"], d["field"]) for d in details] == [
            (1, "features.tenure"),
            (2, "features.tenure"),
            (3, "latency_ms"),
            (4, "latency_ms"),
        ]
        assert all("2^53" in d["reason"] for d in details)
    r = churn.http.post("/v1/predictions?on_error=skip", content=body, headers=h)
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["rejected"] == 4
    assert churn.count("SELECT count FROM schema_violations WHERE field = 'features.tenure'") >= 2
    assert stored(churn) == 1


@pytest.mark.parametrize("cell", ["1e200", "1" + "0" * 400])  # ±inf is data: test_hostile_input.py
def test_a_reference_cell_past_the_bound_is_refused_naming_row_and_column(churn: Api, cell: str) -> None:
    csv = f"tenure,plan,prediction\n1,basic,stay\n{cell},pro,leave\n".encode()
    h = {**churn.admin, "Content-Type": "text/csv"}
    r = churn.http.post("/v1/models/churn/reference", content=csv, headers=h)
    assert 400 <= r.status_code < 500, r.text
    assert any(d.get("field") == "features.tenure" for d in r.json()["error"]["details"]), r.text
    assert churn.count("SELECT count(*) FROM reference_datasets") == 0
