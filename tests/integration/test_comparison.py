"""A challenger against the champion, end to end on a real Postgres: the scheduler runs every
live version, a shadow's predictions are paired with the champion's by request id (McNemar), a
canary's are compared unpaired, and the comparison points say by how much, how surely and on
how many rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services import ingestion, metric_store, registry
from monitor.services.context import ServiceContext
from monitor.services.monitoring_run import run_model
from monitor.services.reference import upload_reference
from monitor.services.windows import hour_floor
from tests.integration.helpers import BINARY_SPEC

REFERENCE = (Path(__file__).parents[2] / "docs" / "examples" / "churn-reference.csv").read_bytes()


def _version(ctx: ServiceContext, version: str, mode: str) -> None:
    registry.register_model(ctx, ModelSpec.model_validate({**BINARY_SPEC, "version": version}))
    upload_reference(ctx, "churn", REFERENCE, TableFormat.csv, version=version)
    registry.set_deployment(ctx, "churn", version, registry.Deployment(mode))


def _log(
    ctx: ServiceContext, version: str, start: datetime, truth: np.ndarray, right: np.ndarray, prefix: str, requests: str
) -> None:
    other = {"stay": "leave", "leave": "stay"}
    records = [
        {
            "prediction_id": f"{prefix}{i}",
            "request_id": f"{requests}{i}",
            "timestamp": (start + timedelta(seconds=3 * i)).isoformat(),
            "features": {"tenure": 10 + i % 30, "plan": "basic"},
            "prediction": str(t) if r else other[str(t)],
            "latency_ms": 5.0 + (3.0 if version == "2" else 0.0),
        }
        for i, (t, r) in enumerate(zip(truth, right, strict=True))
    ]
    assert not ingestion.ingest_predictions(ctx, records, model="churn", version=version).errors


def _label(ctx: ServiceContext, prefix: str, truth: np.ndarray) -> None:
    records = [{"prediction_id": f"{prefix}{i}", "label": str(t)} for i, t in enumerate(truth)]
    assert not ingestion.ingest_labels(ctx, records, model="churn").errors


def _newest(ctx: ServiceContext, metric: str, version: str) -> dict[str, Any]:
    points = metric_store.query_metrics(ctx, "churn", metric=metric, version=version)
    assert points, metric
    return max(points, key=lambda p: p["window_end"])


def test_a_shadow_is_paired_with_the_champion_and_a_canary_compared_unpaired(ctx: ServiceContext) -> None:
    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", MonitoringConfig(windows=["1d"]))
    _version(ctx, "2", "shadow")
    _version(ctx, "3", "canary")
    rng = np.random.default_rng(5)
    n = 1200
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    truth = np.where(rng.random(n) < 0.4, "leave", "stay")
    difficulty = rng.random(n)  # the same requests are hard for both versions
    champion_right = difficulty < 0.80
    shadow_right = difficulty < 0.86  # right wherever the champion is, and on 6 % more
    _log(ctx, "1", start, truth, champion_right, "c", "r")
    _log(ctx, "2", start, truth, shadow_right, "s", "r")  # the same requests
    canary_truth = np.where(rng.random(600) < 0.4, "leave", "stay")
    canary_right = rng.random(600) < 0.70
    _log(ctx, "3", start, canary_truth, canary_right, "k", "q")  # its own requests
    _label(ctx, "c", truth)  # the champion's predictions get the labels; the shadow's pair with them
    _label(ctx, "k", canary_truth)

    report = run_model(ctx, "churn")
    assert not report.failures
    assert sorted(report.versions) == ["1", "2", "3"] and report.versions[0] == "1"  # the champion first

    shadow = _newest(ctx, "comparison.accuracy", "2")
    b = int((champion_right & ~shadow_right).sum())
    c = int((~champion_right & shadow_right).sum())
    assert shadow["labels"] == {"champion": "1"} and shadow["details"]["paired"] is True
    assert shadow["value"] == pytest.approx((c - b) / n) and shadow["sample_size"] == n
    assert shadow["details"]["lower"] > 0 and shadow["details"]["p_value"] < 1e-6 and shadow["drifted"] is True
    assert shadow["details"]["confidence"] == 0.95
    positive = truth == "leave"
    recall = _newest(ctx, "comparison.recall", "2")
    b_pos = int((positive & champion_right & ~shadow_right).sum())
    c_pos = int((positive & ~champion_right & shadow_right).sum())
    assert recall["details"]["paired"] is True and recall["sample_size"] == int(positive.sum())
    assert recall["value"] == pytest.approx((c_pos - b_pos) / positive.sum())
    agreement = _newest(ctx, "comparison.agreement", "2")
    assert agreement["value"] == pytest.approx(float((champion_right == shadow_right).mean()))
    assert _newest(ctx, "comparison.traffic_share", "2")["value"] == pytest.approx(0.5)
    assert _newest(ctx, "comparison.latency_mean_ms", "2")["value"] == pytest.approx(3.0)

    canary = _newest(ctx, "comparison.accuracy", "3")
    assert canary["details"]["paired"] is False and canary["sample_size"] == n + 600
    assert canary["value"] == pytest.approx(canary_right.mean() - champion_right.mean())
    assert canary["details"]["upper"] < 0  # worse, and surely so
    assert _newest(ctx, "comparison.traffic_share", "3")["value"] == pytest.approx(600 / (600 + n))
    # the champion compares with nobody
    assert metric_store.query_metrics(ctx, "churn", metric="comparison.accuracy", version="1") == []


def test_a_rule_on_the_comparisons_lower_bound_suggests_promoting_the_challenger(ctx: ServiceContext) -> None:
    from monitor.services import alert_config, alert_ops
    from monitor.services.alerting import evaluate_model

    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", MonitoringConfig(windows=["1d"]))
    _version(ctx, "2", "shadow")
    alert_config.put_receiver(ctx, {"name": "deploy", "kind": "retrain", "url": "https://deploy.example.com/hook"})
    alert_config.put_rule(
        ctx,
        {
            "name": "promote-the-shadow",
            "model": "churn",
            "metric": "comparison.accuracy",
            "condition": {"op": ">=", "threshold": 0.02, "on": "lower"},
            "promote": {"receiver": "deploy", "cooldown": "1d"},
        },
        create=True,
    )
    rng = np.random.default_rng(8)
    n = 1500
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    truth = np.where(rng.random(n) < 0.4, "leave", "stay")
    difficulty = rng.random(n)
    _log(ctx, "1", start, truth, difficulty < 0.78, "c", "r")
    _log(ctx, "2", start, truth, difficulty < 0.86, "s", "r")
    _label(ctx, "c", truth)
    assert not run_model(ctx, "churn").failures
    assert evaluate_model(ctx, "churn") == {"firing": 1}
    (message,) = alert_ops.list_outbox(ctx, None, "deploy", 10)
    body = message["body"]
    assert body["type"] == "model.promotion_suggested"
    assert (body["data"]["champion"], body["data"]["challenger"]) == ("1", "2")
    assert body["data"]["evidence"][0]["details"]["lower"] >= 0.02
    (trigger,) = alert_ops.list_retrain_triggers(ctx, "churn", 10)
    assert trigger["event"] == "model.promotion_suggested"
