"""One workload, run the same on a single Postgres and on the Citus cluster: several models
registered with references, days of predictions through the API (JSON and NDJSON), labels
before and after their predictions, the backfill, the rules evaluated and a webhook delivered
to a receiver on loopback. ``snapshot`` reads back what it produced, without ids or clocks, for
the two databases to be compared."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import orjson
from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor import demo_data
from monitor.api.app import create_app
from monitor.services.alerting import alert_config
from monitor.services.alerting.delivery import deliver_due
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill
from tests.integration.helpers import Receiver

MODELS = [f"credit-{k}" for k in range(4)]
HOURS = 8  # of traffic before ``end``; the last three drift for the odd models
PER_HOUR = 150  # past min_sample_size (100), so that drift is decided
SHADOWED = MODELS[0]  # its version 2 scores the same requests in shadow


def _records(model: int, hour: int, start: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(1000 * model + hour)
    drift = 1.0 if model % 2 and hour >= HOURS - 3 else 0.0
    a = demo_data.applicants(PER_HOUR, rng, drift)
    scores = demo_data.model_scores(a)
    truth = demo_data.true_default(a, rng, drift)
    preds, labels = [], []
    for i, rec in enumerate(a.records()):
        pid = f"m{model}-h{hour}-{i}"
        preds.append(
            {
                "prediction_id": pid,
                "request_id": pid,
                "timestamp": (start + timedelta(seconds=3600 * i / PER_HOUR)).isoformat(),
                "features": rec,
                "prediction": "default" if scores[i] >= 0.5 else "repaid",
                "scores": round(float(scores[i]), 6),
                "latency_ms": round(float(rng.gamma(2.0, 6.0)), 3),
                "segments": {"channel": demo_data.CHANNELS[i % len(demo_data.CHANNELS)]},
            }
        )
        if i % 5:
            labels.append({"prediction_id": pid, "label": "default" if truth[i] else "repaid"})
    return preds, labels


def _shadow(http: TestClient, admin: dict[str, str], ingest: dict[str, str], start: datetime) -> None:
    """Version 2 of ``SHADOWED`` in shadow: the same requests, 20 s later, scored otherwise."""
    name = SHADOWED
    assert (
        http.post("/v1/models", json={**demo_data.SPEC, "name": name, "version": "2"}, headers=admin).status_code == 201
    )
    csv = io.BytesIO()
    demo_data.reference_frame(1500, seed=9).to_csv(csv, index=False)
    r = http.post(
        f"/v1/models/{name}/reference?version=2", content=csv.getvalue(), headers={**admin, "Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    for version, mode in (("1", "champion"), ("2", "shadow")):
        r = http.put(f"/v1/models/{name}/versions/{version}/deployment", json={"mode": mode}, headers=admin)
        assert r.status_code == 200, r.text
    rng = np.random.default_rng(77)
    for hour in range(HOURS):
        preds, _ = _records(MODELS.index(name), hour, start + timedelta(hours=hour))
        shadowed = []
        for p in preds:
            score = float(np.clip(p["scores"] + 0.2 * rng.standard_normal(), 0.0, 1.0))
            at = datetime.fromisoformat(p["timestamp"]) + timedelta(seconds=20)
            shadowed.append(
                p
                | {"prediction_id": f"v2-{p['prediction_id']}", "timestamp": at.isoformat(), "scores": round(score, 6)}
                | {"prediction": "default" if score >= 0.5 else "repaid"}
            )
        r = http.post("/v1/predictions", json={"model": name, "version": "2", "records": shadowed}, headers=ingest)
        assert r.status_code == 200 and r.json()["accepted"] == PER_HOUR, r.text


def run(ctx: ServiceContext, end: datetime, receiver: Receiver) -> None:
    admin, _ = keys.create_key(ctx, "admin", [keys.Scope.admin])
    ingest, _ = keys.create_key(ctx, "ingest", [keys.Scope.ingest])
    start = end - timedelta(hours=HOURS)
    with TestClient(create_app(ctx=ctx)) as http:
        a, i = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {ingest}"}
        for m, name in enumerate(MODELS):
            spec = {**demo_data.SPEC, "name": name}
            assert http.post("/v1/models", json=spec, headers=a).status_code == 201
            csv = io.BytesIO()
            demo_data.reference_frame(1500, seed=m).to_csv(csv, index=False)
            csv_type = {**a, "Content-Type": "text/csv"}
            r = http.post(f"/v1/models/{name}/reference", content=csv.getvalue(), headers=csv_type)
            assert r.status_code == 201, r.text
            http.put(f"/v1/models/{name}/monitoring", json={"windows": ["1h"]}, headers=a)
            for hour in range(HOURS):
                preds, labels = _records(m, hour, start + timedelta(hours=hour))
                early, late = labels[: len(labels) // 3], labels[len(labels) // 3 :]
                # a third of the labels come before their predictions, the rest after
                assert http.post("/v1/labels", json={"model": name, "records": early}, headers=i).status_code == 200
                if m % 2:
                    body = b"\n".join(orjson.dumps({**p, "model": name}) for p in preds)
                    ndjson = {**i, "Content-Type": "application/x-ndjson"}
                    r = http.post("/v1/predictions", content=body, headers=ndjson)
                else:
                    r = http.post("/v1/predictions", json={"model": name, "records": preds}, headers=i)
                assert r.status_code == 200 and r.json()["accepted"] == PER_HOUR, r.text
                assert http.post("/v1/labels", json={"model": name, "records": late}, headers=i).status_code == 200
        _shadow(http, a, i, start)
    alert_config.put_receiver(
        ctx, {"name": "oncall", "url": receiver.url, "secret": "whsec_" + "A" * 32, "group_wait": "0s"}
    )
    alert_config.put_rule(
        ctx,
        {
            "name": "dataset-drift",
            "model": "*",
            "metric": "dataset_drift",
            "window": "1h",
            "match": {"segment": ""},
            "condition": {"drifted": True},
            "receivers": ["oncall"],
        },
    )
    for name in MODELS:
        backfill(ctx, name, start, end, version="1")
        if name == SHADOWED:  # after its champion, whose windows it is compared with
            backfill(ctx, name, start, end, version="2")
        evaluate_model(ctx, name, now=end - timedelta(seconds=1))
    with httpx.Client() as client:
        for k in range(5):  # past each backoff, should the receiver refuse an attempt
            deliver_due(ctx, client, now=end + timedelta(minutes=30 * k))


def snapshot(ctx: ServiceContext, receiver: Receiver) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        points = conn.execute(
            text(
                "SELECT m.name, p.metric, p.labels::text, p.window_start, p.window_end, v.version, "
                "round(p.value::numeric, 9)::float8, p.sample_size, p.drifted "
                "FROM metric_points p JOIN models m ON m.id = p.model_id "
                "JOIN model_versions v ON v.id = p.model_version_id "
                "ORDER BY 1, 2, 3, 4, 5, 6"
            )
        ).all()
        alerts = conn.execute(
            text(
                "SELECT rule, model, labels::text, state, round(value::numeric, 9)::float8 FROM alerts ORDER BY 1, 2, 3"
            )
        ).all()
        stored = conn.execute(
            text(
                "SELECT m.name, count(*), count(l.prediction_ts) FROM labels l JOIN models m ON m.id = l.model_id "
                "GROUP BY 1 ORDER BY 1"
            )
        ).all()
    messages = sorted(
        (
            a["status"],
            a["labels"]["model"],
            a["annotations"].get("summary", ""),
        )
        for r in receiver.accepted()
        for a in orjson.loads(r["body"])["alerts"]
    )
    return {
        "points": [tuple(p) for p in points],
        "alerts": [tuple(a) for a in alerts],
        "labels": [tuple(n) for n in stored],
        "messages": messages,
    }
