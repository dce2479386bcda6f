"""Label-free performance estimation and multivariate drift, end to end on a real Postgres: a
rule fires on the estimated drop (and asks for retraining) before a single label is posted, and
the realized quality that the labels give afterwards lies inside the estimate's band."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sqlalchemy import text

from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.metrics.points import MetricPoint
from monitor.services.alerting import alert_config, alert_ops
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.rollup import rollup
from monitor.services.jobs.window_job import compute_window
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic


def _overall(points: list[MetricPoint], metric: str, **labels: str) -> MetricPoint:
    return next(
        p
        for p in points
        if p.metric == metric and "segment" not in p.labels and all(p.labels.get(k) == v for k, v in labels.items())
    )


def test_a_rule_fires_on_the_estimated_drop_before_any_label_and_the_labels_agree(ctx: ServiceContext) -> None:
    register_demo(ctx)
    alert_config.put_receiver(ctx, {"name": "retrain", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})
    alert_config.put_rule(
        ctx,
        {
            "name": "estimated-drop",
            "model": MODEL,
            "metric": "estimated.quality_drop",
            "match": {"segment": ""},
            "window": "1h",
            "condition": {"drifted": True},
            "retrain": {"receiver": "retrain"},
        },
        create=True,
    )
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    # a population that moved towards applicants the model is less sure of: the same model, the
    # same relation of inputs to outcome, a lower accuracy (0.85 in the reference, ~0.68 here)
    frames = [traffic(ctx, start + timedelta(hours=h), 1500, f"h{h}-", seed=40 + h, drift=1.0) for h in range(2)]
    report = backfill(ctx, MODEL, start, start + timedelta(hours=2))
    assert not report.failures

    assert evaluate_model(ctx, MODEL) == {"firing": 1}
    (alert,) = alert_ops.list_alerts(ctx, state="firing")
    assert alert["labels"]["alertname"] == "estimated-drop"
    (message,) = alert_ops.list_outbox(ctx, None, "retrain", 10)
    assert message["body"]["type"] == "model.retrain_requested"
    assert "estimated.quality_drop" in message["body"]["data"]["reason"]
    with ctx.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM labels")).scalar_one() == 0  # from the scores alone

    # the labels arrive: realized accuracy of each hour lies inside the band estimated before them
    for f in frames:
        label(ctx, f)
    rollup(ctx, MODEL, None, start, start + timedelta(hours=2))
    for h, f in enumerate(frames):
        hour = start + timedelta(hours=h)
        points = compute_window(ctx, MODEL, None, hour, hour + timedelta(hours=1))
        realized = _overall(points, "quality.accuracy")
        estimated = _overall(points, "estimated.accuracy")
        truth = skm.accuracy_score(f.label, f.prediction)
        assert realized.value == truth
        assert estimated.details["lower"] <= truth <= estimated.details["upper"]
        assert estimated.value < 0.78  # the reference's realized accuracy is 0.85


SPEC = {
    "name": "joint",
    "version": "1",
    "task": "regression",
    "features": [{"name": n, "type": "numerical"} for n in ("x1", "x2", "x3")]
    + [{"name": "kind", "type": "categorical"}],
}


def _rows(n: int, rho: float, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal([0, 0, 0], [[1, rho, 0], [rho, 1, 0], [0, 0, 1]], size=n)
    kind = rng.choice(["a", "b", "c"], n)
    return [
        {"x1": round(a, 6), "x2": round(b, 6), "x3": round(c, 6), "kind": k, "prediction": round(a + b, 6)}
        for (a, b, c), k in zip(x.tolist(), kind.tolist(), strict=True)
    ]


def test_a_correlation_that_flips_is_multivariate_drift_while_every_feature_stays_put(ctx: ServiceContext) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(SPEC))
    reference = pd.DataFrame(_rows(3000, 0.8, seed=1))
    upload_reference(ctx, "joint", reference.to_csv(index=False).encode(), TableFormat.csv)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    for h, rho in enumerate((0.8, -0.8)):  # an hour as before, then the correlation flipped
        at = start + timedelta(hours=h)
        records = [
            {
                "prediction_id": f"h{h}-{i}",
                "timestamp": (at + timedelta(seconds=i)).isoformat(),
                "features": {k: r[k] for k in ("x1", "x2", "x3", "kind")},
                "prediction": r["prediction"],
            }
            for i, r in enumerate(_rows(2000, rho, seed=10 + h))
        ]
        assert not ingestion.ingest_predictions(ctx, records, model="joint").errors
    rollup(ctx, "joint", None, start, start + timedelta(hours=2))
    before = compute_window(ctx, "joint", None, start, start + timedelta(hours=1))
    after = compute_window(ctx, "joint", None, start + timedelta(hours=1), start + timedelta(hours=2))

    calm = _overall(before, "multivariate_drift")
    assert calm.drifted is False and calm.sample_size == 2000
    assert calm.details["lower"] <= calm.value <= calm.details["upper"]
    flipped = _overall(after, "multivariate_drift")
    assert flipped.drifted is True and flipped.value > flipped.details["upper"]
    # the features one by one (and the prediction, x1 + x2, whose spread the flip shrinks,
    # aside): nothing to see
    features = [p for p in after if p.metric == "feature_drift" and p.labels["feature"] != "prediction"]
    assert len(features) == 4 and not any(p.drifted for p in features)
