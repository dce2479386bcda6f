"""A small, realistic history for the dashboard's browser tests and README screenshots: the demo
model with a reference, hours of traffic whose last hours drift (population and concept),
labels for most predictions, every window computed, and rules that fire on the drift."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor import demo_data
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.alerting import alert_config
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.windows import hour_floor

MODEL = demo_data.MODEL_NAME


def seed(ctx: ServiceContext, *, hours: int = 8, per_hour: int = 300, drift_hours: int = 3, seed: int = 3) -> datetime:
    """Store the history ending at the current hour; returns that hour's end."""
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    registry.set_monitoring(ctx, MODEL, MonitoringConfig(windows=["1h", "6h"]))
    buf = io.BytesIO()
    demo_data.reference_frame(2000).to_csv(buf, index=False)
    upload_reference(ctx, MODEL, buf.getvalue(), TableFormat.csv)
    rng = np.random.default_rng(seed)
    end = hour_floor(datetime.now(UTC)) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    for h in range(hours):
        drift = 1.0 if h >= hours - drift_hours else 0.0
        a = demo_data.applicants(per_hour, rng, drift)
        scores = demo_data.model_scores(a)
        truth = demo_data.true_default(a, rng, drift)
        t0 = start + timedelta(hours=h)
        preds, labels = [], []
        explained = demo_data.attribution_records(a)
        for i, rec in enumerate(a.records()):
            pid = f"h{h}-{i}"
            preds.append(
                {
                    "prediction_id": pid,
                    "timestamp": (t0 + timedelta(seconds=3600 * i / per_hour)).isoformat(),
                    "features": rec,
                    "prediction": "default" if scores[i] >= 0.5 else "repaid",
                    "scores": float(scores[i]),
                    "latency_ms": float(rng.gamma(2.0, 6.0 + 12 * drift)),
                    "segments": {"channel": str(rng.choice(demo_data.CHANNELS))},
                    "attributions": explained[i],
                }
            )
            if rng.random() < 0.8:
                labels.append({"prediction_id": pid, "label": "default" if truth[i] else "repaid"})
        ingestion.ingest_predictions(ctx, preds, model=MODEL)
        ingestion.ingest_labels(ctx, labels, model=MODEL)
    backfill(ctx, MODEL, start, end)
    alert_config.put_receiver(ctx, {"name": "oncall", "url": "https://hooks.example.com/oncall", "group_wait": "1h"})
    for rule in (
        {
            "name": "dataset-drift",
            "metric": "dataset_drift",
            "window": "1h",
            "match": {"segment": ""},
            "condition": {"drifted": True},
            "severity": "critical",
            "annotations": {"summary": "{model}: {value} of the features drifted"},
            "receivers": ["oncall"],
        },
        {
            "name": "accuracy-drop",
            "metric": "concept_drift.quality_drop",
            "window": "1h",
            "match": {"segment": ""},
            "condition": {"drifted": True},
            "for": "2h",
            "annotations": {"summary": "{model}: accuracy {value} worse than the reference's"},
            "receivers": ["oncall"],
        },
    ):
        alert_config.put_rule(ctx, rule)
    evaluate_model(ctx, MODEL)
    return end
