from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor import demo_data
from monitor.db import report_repo
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import registry
from monitor.services.catalog.keys import Scope, create_key
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from tests.integration.helpers import Api, bearer


def _demo_model(ctx: ServiceContext, reference_rows: int) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    buf = io.BytesIO()
    demo_data.reference_frame(reference_rows).to_csv(buf, index=False)
    upload_reference(ctx, demo_data.MODEL_NAME, buf.getvalue(), TableFormat.csv)


def test_drift_and_quality_reports_from_samples(api: Api) -> None:
    ctx = api.ctx
    _demo_model(ctx, reference_rows=1000)
    now = datetime.now(UTC)
    rng = np.random.default_rng(3)
    a = demo_data.applicants(600, rng, 1.0)
    records = [
        {
            "prediction_id": f"r{i}",
            "timestamp": (now - timedelta(minutes=i / 10)).isoformat(),
            "features": rec,
            "prediction": "default" if rec["debt_ratio"] > 0.4 else "repaid",
        }
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    ingestion.ingest_labels(
        ctx, [{"prediction_id": f"r{i}", "label": "default"} for i in range(0, 600, 3)], model=demo_data.MODEL_NAME
    )
    read = bearer(create_key(ctx, "r", [Scope.read])[0])
    window = {"start": (now - timedelta(hours=2)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}

    r = api.http.post(f"/v1/models/{demo_data.MODEL_NAME}/reports", json={**window, "sample_size": 300}, headers=read)
    assert r.status_code == 201, r.text
    drift = r.json()
    assert (drift["sample_size"], drift["window_rows"], drift["reference_sample_size"]) == (300, 600, 300)
    page = api.http.get(f"/v1/models/{demo_data.MODEL_NAME}/reports/{drift['id']}/html", headers=read)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "a random sample of 300 of the window&#x27;s 600 predictions" in page.text
    # sandboxed: its scripts run in an opaque origin with no network, never as this API's origin
    assert page.headers["content-security-policy"].startswith("sandbox allow-scripts;")
    assert "connect-src 'none'" in page.headers["content-security-policy"]

    q = api.http.post(f"/v1/models/{demo_data.MODEL_NAME}/reports", json={**window, "kind": "quality"}, headers=read)
    assert q.status_code == 201, q.text
    assert q.json()["sample_size"] == 200  # only labelled predictions
    listed = api.http.get(f"/v1/models/{demo_data.MODEL_NAME}/reports", headers=read).json()["reports"]
    assert [x["kind"] for x in listed] == ["quality", "drift"]
    detail = api.http.get(f"/v1/models/{demo_data.MODEL_NAME}/reports/{drift['id']}", headers=read).json()
    assert detail["summary"]["metrics"]

    empty = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}
    r = api.http.post(f"/v1/models/{demo_data.MODEL_NAME}/reports", json=empty, headers=read)
    assert r.status_code == 400 and "no predictions in the window" in r.json()["error"]["message"]
    assert api.http.get(f"/v1/models/{demo_data.MODEL_NAME}/reports/999", headers=read).status_code == 404


def test_report_builds_are_bounded_per_key(api: Api) -> None:
    ctx = api.ctx
    _demo_model(ctx, reference_rows=300)
    now = datetime.now(UTC)
    a = demo_data.applicants(200, np.random.default_rng(5), 1.0)
    records = [
        {"prediction_id": f"b{i}", "timestamp": now.isoformat(), "features": rec, "prediction": "repaid"}
        for i, rec in enumerate(a.records())
    ]
    ingestion.ingest_predictions(ctx, records, model=demo_data.MODEL_NAME)
    key, info = create_key(ctx, "reader", [Scope.read])
    read, other = bearer(key), bearer(create_key(ctx, "another", [Scope.read])[0])
    url = f"/v1/models/{demo_data.MODEL_NAME}/reports"
    window = {"start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(minutes=1)).isoformat()}

    most = ctx.settings.report_max_sample_size
    r = api.http.post(url, json={**window, "sample_size": most + 1}, headers=read)
    assert r.status_code == 400 and "MONITOR_REPORT_MAX_SAMPLE_SIZE" in r.json()["error"]["message"]

    # a build of this key in progress, in another process: the lock it holds
    with ctx.engine.connect() as conn:
        assert report_repo.try_lock_builder(conn, info["id"])
        conn.commit()
        r = api.http.post(url, json={**window, "sample_size": 100}, headers=read)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "one at a time" in r.json()["error"]["message"]
        assert api.http.post(url, json={**window, "sample_size": 100}, headers=other).status_code == 201
        report_repo.unlock_builder(conn, info["id"])
        conn.commit()
    assert api.http.post(url, json={**window, "sample_size": 100}, headers=read).status_code == 201
