"""Each class of hostile input, sent to each ingestion route over real HTTP on one keep-alive
client: a 4xx in the one error shape (never a 500), nothing half-written, and the client's next
request on the same connection pool still answered."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from monitor.api.app import create_app
from monitor.domain.kserve import REQUEST, RESPONSE
from monitor.server import ThreadedServer
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.window_job import compute_window
from tests.integration.helpers import Api
from tests.servers import free_port

HUGE = "1" + "0" * 400
DEEP = "[" * 5000 + "]" * 5000


def _record(pid: str, features: str = '{"tenure": 1, "plan": "basic"}', extra: str = "") -> str:
    return f'{{"prediction_id": "{pid}", "features": {features}, "prediction": "stay"{extra}}}'


def _batch(*records: str) -> bytes:
    return ('{"model": "churn", "records": [' + ", ".join(records) + "]}").encode()


def _array(*records: str) -> bytes:
    return ("[" + ", ".join(r[:-1] + ', "model": "churn"}' for r in records) + "]").encode()


def _ndjson(*records: str) -> bytes:
    return "\n".join(r[:-1] + ', "model": "churn"}' for r in records).encode()


BAD_RECORDS = {
    "feature 1e200": _record("h1", '{"tenure": 1e200, "plan": "basic"}'),
    "feature of 400 digits": _record("h2", '{"tenure": ' + HUGE + ', "plan": "basic"}'),
    "latency of 400 digits": _record("h3", extra=', "latency_ms": ' + HUGE),
    "latency 1e300": _record("h4", extra=', "latency_ms": 1e300'),
    "feature nested 5000 deep": _record("h5", '{"tenure": ' + DEEP + ', "plan": "basic"}'),
    "NUL in a category": _record("h6", '{"tenure": 1, "plan": "ba\\u0000sic"}'),
    "timestamp not a date": _record("h7", extra=', "timestamp": "2026-13-45T99:00:00Z"'),
    "timestamp of 400 digits": _record("h8", extra=', "timestamp": ' + HUGE),
}
SHAPES = {"batch": _batch, "array": _array, "ndjson": _ndjson}
# cells refused with their row and column: past 2^53, or not a number (Parquet's float column can
# only hold the first)
HOSTILE_CELLS = [("csv", c) for c in ("1e200", HUGE, "NaNx")] + [("json", c) for c in ("1e200", HUGE, "NaNx")]
HOSTILE_CELLS += [("parquet", "1e200")]


@pytest.fixture
def live(churn: Api) -> Iterator[tuple[httpx.Client, Api]]:
    server = ThreadedServer(create_app(ctx=churn.ctx), "127.0.0.1", free_port()).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, churn
    server.stop()


def _refused(client: httpx.Client, r: httpx.Response) -> None:
    assert 400 <= r.status_code < 500, f"{r.status_code} {r.text[:300]}"
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"] and isinstance(body["error"]["details"], list)
    assert client.get("/healthz").status_code == 200  # the client goes on


def _nothing_stored(api: Api) -> None:
    assert api.count("SELECT count(*) FROM predictions") == 0
    assert api.count("SELECT count(*) FROM prediction_keys") == 0
    assert api.count("SELECT count(*) FROM labels") == 0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("what", BAD_RECORDS)
def test_hostile_prediction_records(live: tuple[httpx.Client, Api], shape: str, what: str) -> None:
    client, api = live
    content_type = "application/x-ndjson" if shape == "ndjson" else "application/json"
    good = _record("good")
    body = SHAPES[shape](good, BAD_RECORDS[what])
    r = client.post("/v1/predictions", content=body, headers={**api.ingest, "Content-Type": content_type})
    _refused(client, r)
    details = r.json()["error"]["details"]
    if r.status_code == 422:  # per record: the bad one (index 1) named with its field
        assert {d["index"] for d in details} == {1} and all(d["field"] for d in details), details
    _nothing_stored(api)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "churn", "records": [{"prediction_id": "x", "label": ' + HUGE.encode() + b"}]}",
        b'{"model": "churn", "records": [{"prediction_id": "x", "label": ' + DEEP.encode() + b"}]}",
        b'{"model": "churn", "records": [{"prediction_id": "' + b"x" * 5000 + b'", "label": "stay"}]}',
        b'{"model": "churn", "records": [{"prediction_id": "x\\u0000", "label": "stay"}]}',
        b'{"model": "churn", "records": 5}',
        DEEP.encode(),
    ],
)
def test_hostile_labels(live: tuple[httpx.Client, Api], body: bytes) -> None:
    client, api = live
    r = client.post("/v1/labels", content=body, headers={**api.ingest, "Content-Type": "application/json"})
    _refused(client, r)
    _nothing_stored(api)


@pytest.mark.parametrize(("fmt", "cell"), HOSTILE_CELLS)
def test_hostile_reference_cells(live: tuple[httpx.Client, Api], fmt: str, cell: str) -> None:
    client, api = live
    frame = pd.DataFrame({"tenure": ["1", cell], "plan": ["basic", "pro"], "prediction": ["stay", "leave"]})
    if fmt == "csv":
        content, media = frame.to_csv(index=False).encode(), "text/csv"
    elif fmt == "json":
        content = ('[{"tenure": 1, "plan": "basic"}, {"tenure": ' + cell + ', "plan": "pro"}]').encode()
        media = "application/json"
    else:
        buf = io.BytesIO()
        frame.assign(tenure=[1.0, float(cell)]).to_parquet(buf)
        content, media = buf.getvalue(), "application/vnd.apache.parquet"
    r = client.post("/v1/models/churn/reference", content=content, headers={**api.admin, "Content-Type": media})
    _refused(client, r)
    assert api.count("SELECT count(*) FROM reference_datasets") == 0


@pytest.mark.parametrize(
    ("request_body", "response_body"),
    [
        (b'{"instances": [[1, "basic"]]}', b'{"predictions": [["x", "y"]]}'),
        (b'{"instances": [[1, "basic"]]}', b'{"predictions": [[null, 0.5]]}'),
        (b'{"instances": 5}', b'{"predictions": [0.5]}'),
        (b'{"inputs": [5]}', b'{"predictions": [0.5]}'),
        (b'{"instances": [[1, "basic"]]}', b"not json"),
        (DEEP.encode(), b'{"predictions": [0.5]}'),
    ],
)
def test_hostile_kserve_pairs(live: tuple[httpx.Client, Api], request_body: bytes, response_body: bytes) -> None:
    client, api = live
    statuses = []
    for kind, body in ((REQUEST, request_body), (RESPONSE, response_body)):
        headers = {**api.ingest, "Ce-Id": "ev-h", "Ce-Type": kind, "Ce-Inferenceservicename": "churn"}
        r = client.post("/v1/kserve", content=body, headers={**headers, "Content-Type": "application/json"})
        statuses.append(r.status_code)
        if r.status_code >= 400:
            _refused(client, r)
            break
    assert any(400 <= s < 500 for s in statuses), statuses
    _nothing_stored(api)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_timestamp_with_any_offset_python_reads_is_stored_in_utc(live: tuple[httpx.Client, Api], shape: str) -> None:
    """+23:59 is a valid offset that Postgres does not read (it stops at ±15:59): it used to reach
    the COPY and answer 500. It is stored as the same instant in UTC."""
    from datetime import UTC, datetime, timedelta, timezone

    client, api = live
    instant = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    local = instant.astimezone(timezone(timedelta(hours=23, minutes=59))).isoformat()
    content_type = "application/x-ndjson" if shape == "ndjson" else "application/json"
    body = SHAPES[shape](_record("tz", extra=f', "timestamp": "{local}"'))
    r = client.post("/v1/predictions", content=body, headers={**api.ingest, "Content-Type": content_type})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    with api.ctx.engine.connect() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT ts FROM predictions")).scalar_one() == instant


# ±inf as each format spells it: data for the feature, not a broken row
INFINITE_CELLS = {
    "csv": ["Infinity", "-inf"],
    "json": ["Infinity", "-Infinity", '"Infinity"', "1e400"],
    "parquet": ["inf"],
}


@pytest.mark.parametrize(("fmt", "cell"), [(f, c) for f, cells in INFINITE_CELLS.items() for c in cells])
def test_an_infinite_reference_cell_is_counted_not_refused(live: tuple[httpx.Client, Api], fmt: str, cell: str) -> None:
    client, api = live
    frame = pd.DataFrame({"tenure": ["1", "2", cell], "plan": ["basic", "pro", "pro"], "prediction": ["stay"] * 3})
    if fmt == "csv":
        content, media = frame.to_csv(index=False).encode(), "text/csv"
    elif fmt == "json":
        rows = [
            '{"tenure": 1, "plan": "basic"}',
            '{"tenure": 2, "plan": "pro"}',
            f'{{"tenure": {cell}, "plan": "pro"}}',
        ]
        content, media = ("[" + ", ".join(rows) + "]").encode(), "application/json"
    else:
        buf = io.BytesIO()
        frame.assign(tenure=[1.0, 2.0, float(cell)]).to_parquet(buf)
        content, media = buf.getvalue(), "application/vnd.apache.parquet"
    r = client.post("/v1/models/churn/reference", content=content, headers={**api.admin, "Content-Type": media})
    assert r.status_code == 201, r.text
    with api.ctx.engine.connect() as conn:
        summary = conn.execute(
            text("SELECT summary FROM reference_summaries WHERE column_name = 'features.tenure' AND segment = ''")
        ).scalar_one()
    assert summary["non_finite"] == 1 and summary["n"] == 2 and summary["missing"] == 0
    assert summary["edges"] == [1.0, 2.0]  # the edges, sums and range are the finite values'


def test_infinite_features_are_a_data_quality_share_not_rejected_records(live: tuple[httpx.Client, Api]) -> None:
    """±inf arrives as a JSON Infinity literal (Python's json.dumps), a number past float64's
    range, or protobuf's strings; each record is stored, the infinities are counted per feature
    and hour, and drift is measured on the finite values only."""
    client, api = live
    ref = pd.DataFrame({"tenure": np.arange(200) % 50, "plan": ["basic", "pro"] * 100, "prediction": ["stay"] * 200})
    r = client.post(
        "/v1/models/churn/reference",
        content=ref.to_csv(index=False).encode(),
        headers={**api.admin, "Content-Type": "text/csv"},
    )
    assert r.status_code == 201, r.text
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    at = f', "timestamp": "{(hour + timedelta(minutes=5)).isoformat()}"'
    finite = [_record(f"f{i}", f'{{"tenure": {i % 50}, "plan": "basic"}}', at) for i in range(120)]
    infinite = [
        _record("inf1", '{"tenure": Infinity, "plan": "basic"}', at),
        _record("inf2", '{"tenure": -Infinity, "plan": "basic"}', at),
        _record("inf3", '{"tenure": 1e400, "plan": "pro"}', at),
        _record("inf4", '{"tenure": "-Infinity", "plan": "pro"}', at),
        _record("nan1", '{"tenure": NaN, "plan": "pro"}', at),
    ]
    r = client.post(
        "/v1/predictions",
        content=_batch(*finite, *infinite),
        headers={**api.ingest, "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 125, r.text
    assert api.count("SELECT count(*) FROM predictions WHERE features ->> 'tenure' IN ('Infinity', '-Infinity')") == 4
    rollup(api.ctx, "churn", None, hour, hour + timedelta(hours=1))
    points = compute_window(api.ctx, "churn", None, hour, hour + timedelta(hours=1))
    mine = {p.metric: p for p in points if p.labels.get("feature") == "tenure" and "segment" not in p.labels}
    assert mine["data_quality.non_finite_share"].value == pytest.approx(4 / 125)
    assert mine["data_quality.non_finite_share"].details == {"non_finite": 4}
    assert mine["data_quality.missing_share"].value == pytest.approx(1 / 125)
    drift = mine["feature_drift"]
    assert drift.sample_size == 120 and drift.drifted is False  # the same values as the reference, infinities apart
