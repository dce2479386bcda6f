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
from sklearn.metrics import f1_score, precision_score, roc_auc_score
from sqlalchemy import text

from monitor.db import summary_repo
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
from monitor.services.catalog import registry
from monitor.services.catalog.reference import upload_reference
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion
from monitor.services.jobs import metric_store
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.windows import hour_floor
from tests.integration.helpers import BINARY_SPEC, unnamed_metrics

REFERENCE = (Path(__file__).parents[2] / "docs" / "examples" / "churn-reference.csv").read_bytes()


def _version(ctx: ServiceContext, version: str, mode: str, reference: bytes = REFERENCE) -> None:
    registry.register_model(ctx, ModelSpec.model_validate({**BINARY_SPEC, "version": version}))
    upload_reference(ctx, "churn", reference, TableFormat.csv, version=version)
    registry.set_deployment(ctx, "churn", version, registry.Deployment(mode))


def _log(
    ctx: ServiceContext,
    version: str,
    start: datetime,
    truth: np.ndarray,
    right: np.ndarray,
    prefix: str,
    requests: str,
    scores: np.ndarray | None = None,
    every: float = 3.0,
    after: float = 0.0,
) -> None:
    """``scores``: each request's score of "leave" (the positive class); request i at ``after``
    + ``every`` x i seconds from ``start``."""
    other = {"stay": "leave", "leave": "stay"}
    records = [
        {
            "prediction_id": f"{prefix}{i}",
            "request_id": f"{requests}{i}",
            "timestamp": (start + timedelta(seconds=after + every * i)).isoformat(),
            "features": {"tenure": 10 + i % 30, "plan": "basic"},
            "prediction": str(t) if r else other[str(t)],
            "latency_ms": 5.0 + (3.0 if version == "2" else 0.0),
        }
        | ({} if scores is None else {"scores": {"leave": float(scores[i]), "stay": 1 - float(scores[i])}})
        for i, (t, r) in enumerate(zip(truth, right, strict=True))
    ]
    assert not ingestion.ingest_predictions(ctx, records, model="churn", version=version).errors


def _scores(rng: np.random.Generator, positive: np.ndarray, predicted: np.ndarray, separation: float) -> np.ndarray:
    """Scores of "leave" that agree with the prediction (above 0.5 exactly where it is "leave")
    and rank the positives higher the larger ``separation``."""
    spread = 0.25 * rng.random(len(positive)) + separation * positive * 0.2
    return np.round(np.where(predicted, 0.5 + spread, 0.5 - 0.25 * rng.random(len(positive))), 3).clip(0.001, 0.999)


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
    positive = truth == "leave"
    champion_says, shadow_says = positive == champion_right, positive == shadow_right  # predicted "leave"
    champion_scores = _scores(rng, positive, champion_says, 0.0)
    shadow_scores = _scores(rng, positive, shadow_says, 1.0)
    _log(ctx, "1", start, truth, champion_right, "c", "r", champion_scores)
    _log(ctx, "2", start, truth, shadow_right, "s", "r", shadow_scores)  # the same requests
    canary_truth = np.where(rng.random(600) < 0.4, "leave", "stay")
    canary_right = rng.random(600) < 0.70
    canary_scores = _scores(rng, canary_truth == "leave", (canary_truth == "leave") == canary_right, 0.0)
    _log(ctx, "3", start, canary_truth, canary_right, "k", "q", canary_scores)  # its own requests
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
    assert not unnamed_metrics(ctx)  # every metric a champion, a shadow and a canary write, a rule may name
    assert _newest(ctx, "comparison.latency_mean_ms", "2")["value"] == pytest.approx(3.0)
    # precision, F1 and ROC AUC of "leave", paired over the same requests
    for metric, score in (("precision", precision_score), ("f1", f1_score)):
        point = _newest(ctx, f"comparison.{metric}", "2")
        theirs, mine = score(positive, champion_says), score(positive, shadow_says)
        assert point["details"]["paired"] is True and point["sample_size"] == n
        assert (point["details"]["champion_value"], point["details"]["challenger_value"]) == (
            pytest.approx(theirs),
            pytest.approx(mine),
        )
        assert point["value"] == pytest.approx(mine - theirs) and point["details"]["lower"] <= mine - theirs
    auc = _newest(ctx, "comparison.roc_auc", "2")
    theirs, mine = roc_auc_score(positive, champion_scores), roc_auc_score(positive, shadow_scores)
    # from the pairs' joint score histogram: within a bin's width of the raw scores' difference
    assert auc["details"]["paired"] is True and auc["value"] == pytest.approx(mine - theirs, abs=1e-3)
    assert auc["drifted"] is True and auc["details"]["lower"] > 0  # the shadow ranks better, surely
    # drift of both against one reference, the champion's: the same requests, the same drift
    own = {
        (p["labels"]["feature"], p["window_end"]): p
        for p in metric_store.query_metrics(ctx, "churn", metric="feature_drift", version="1")
        if "segment" not in p["labels"]
    }
    shared = metric_store.query_metrics(ctx, "churn", metric="comparison.feature_drift", version="2")
    assert {p["labels"]["feature"] for p in shared} == {"tenure", "plan"}
    for p in shared:
        value = own[p["labels"]["feature"], p["window_end"]]["value"]
        assert p["value"] == pytest.approx(value) and p["details"]["champion_value"] == pytest.approx(value)
        assert p["details"]["coverage"] == 1.0 and p["labels"]["champion"] == "1"
    prediction = _newest(ctx, "comparison.prediction_drift", "2")
    assert prediction["details"]["champion_value"] != prediction["value"]  # the shadow predicts otherwise

    canary = _newest(ctx, "comparison.accuracy", "3")
    assert canary["details"]["paired"] is False and canary["sample_size"] == n + 600
    assert canary["value"] == pytest.approx(canary_right.mean() - champion_right.mean())
    assert canary["details"]["upper"] < 0  # worse, and surely so
    assert _newest(ctx, "comparison.traffic_share", "3")["value"] == pytest.approx(600 / (600 + n))
    canary_positive = canary_truth == "leave"
    canary_precision = _newest(ctx, "comparison.precision", "3")
    expected = precision_score(canary_positive, canary_positive == canary_right) - precision_score(
        positive, champion_says
    )
    assert canary_precision["details"]["paired"] is False and canary_precision["value"] == pytest.approx(expected)
    canary_auc = _newest(ctx, "comparison.roc_auc", "3")  # from the score histograms: within a bin's width
    expected = roc_auc_score(canary_positive, canary_scores) - roc_auc_score(positive, champion_scores)
    assert canary_auc["details"]["paired"] is False and canary_auc["value"] == pytest.approx(expected, abs=2e-3)
    # the champion compares with nobody
    assert metric_store.query_metrics(ctx, "churn", metric="comparison.accuracy", version="1") == []


def _pair_hours(ctx: ServiceContext) -> dict[datetime, tuple[int, datetime]]:
    """The shadow's stored pair summaries: hour -> (pairs, computed at)."""
    with ctx.uow() as uow:
        rows = uow.conn.execute(
            text(
                "SELECT bucket_start, n_rows, computed_at FROM bucket_summaries "
                "WHERE starts_with(column_name, '_pairs:') AND n_rows > 0"
            )
        ).all()
    return {b: (int(n), at) for b, n, at in rows}


def test_a_shadows_pairs_are_summarised_by_the_hour_and_paired_again_when_labels_land(ctx: ServiceContext) -> None:
    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", MonitoringConfig(windows=["1d"]))
    _version(ctx, "2", "shadow")
    rng = np.random.default_rng(8)
    n = 900
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=4)
    truth = np.where(rng.random(n) < 0.4, "leave", "stay")
    difficulty = rng.random(n)
    champion_right, shadow_right = difficulty < 0.75, difficulty < 0.85
    # over three hours, every 12 s; the shadow answers 15 s later, some requests across an hour's end
    _log(ctx, "1", start, truth, champion_right, "c", "r", every=12)
    _log(ctx, "2", start, truth, shadow_right, "s", "r", every=12, after=15)
    first = np.arange(n) < 300  # the first hour's requests, labelled on the champion's predictions
    _label(ctx, "c", truth[first])
    assert not run_model(ctx, "churn").failures

    hours = _pair_hours(ctx)
    assert sorted(hours) == [start, start + timedelta(hours=1), start + timedelta(hours=2)]
    assert sum(pairs for pairs, _ in hours.values()) == n  # each request paired once
    assert _newest(ctx, "comparison.agreement", "2")["sample_size"] == n
    with ctx.uow() as uow:  # the hourly volume counts predictions, not pairs
        model_id = uow.conn.execute(text("SELECT id FROM models WHERE name = 'churn'")).scalar_one()
        volume = summary_repo.hourly_rows(uow.conn, model_id, start - timedelta(hours=1))
    assert sum(rows for _, rows in volume) == 2 * n

    def accuracy_difference(labelled: np.ndarray) -> float:
        b = int((labelled & champion_right & ~shadow_right).sum())
        c = int((labelled & ~champion_right & shadow_right).sum())
        return (c - b) / int(labelled.sum())

    accuracy = _newest(ctx, "comparison.accuracy", "2")
    assert accuracy["sample_size"] == 300 and accuracy["value"] == pytest.approx(accuracy_difference(first))

    # the last hour's labels land on the shadow's predictions: its pairs (and the hour before,
    # whose shadow rows reach into it) are made again; the first hour's are kept
    last = np.arange(n) >= 600
    records = [{"prediction_id": f"s{i}", "label": str(truth[i])} for i in np.flatnonzero(last)]
    assert not ingestion.ingest_labels(ctx, records, model="churn").errors
    assert not run_model(ctx, "churn").failures
    again = _pair_hours(ctx)
    assert again[start] == hours[start]
    assert again[start + timedelta(hours=2)][1] > hours[start + timedelta(hours=2)][1]
    accuracy = _newest(ctx, "comparison.accuracy", "2")
    assert accuracy["sample_size"] == 600
    assert accuracy["value"] == pytest.approx(accuracy_difference(first | last))


def test_a_rule_on_the_comparisons_lower_bound_suggests_promoting_the_challenger(ctx: ServiceContext) -> None:
    from monitor.services.alerting import alert_config, alert_ops
    from monitor.services.alerting.evaluation import evaluate_model

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


def _shifted_reference(years: int) -> bytes:
    """The reference with every tenure ``years`` longer: another version's own reference."""
    lines = REFERENCE.decode().splitlines()
    rows = [line.split(",", 1) for line in lines[1:]]
    return "\n".join([lines[0], *(f"{int(t) + years},{rest}" for t, rest in rows)]).encode() + b"\n"


def _drift(points: list[Any], metric: str) -> dict[str, Any]:
    return {p.labels["feature"]: p for p in points if p.metric == metric and "segment" not in p.labels}


def test_a_challengers_drift_is_measured_against_the_champions_reference_from_its_first_window(
    ctx: ServiceContext,
) -> None:
    from monitor.services.jobs.window_job import compute_window

    cfg = MonitoringConfig(windows=["1d"])
    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", cfg)
    _version(ctx, "2", "unspecified", _shifted_reference(40))  # its own reference is not the champion's
    rng = np.random.default_rng(11)
    n = 600
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    truth = np.where(rng.random(n) < 0.4, "leave", "stay")
    right = rng.random(n) < 0.8
    _log(ctx, "1", start, truth, right, "c", "r")
    _log(ctx, "2", start, truth, right, "s", "r")
    assert not run_model(ctx, "churn").failures  # version 2 is nobody's challenger yet
    assert metric_store.query_metrics(ctx, "churn", metric="comparison.feature_drift", version="2") == []

    # Now a shadow: its hours were summarised against its own reference only, and its next
    # window summarises them against the champion's too.
    registry.set_deployment(ctx, "churn", "2", registry.Deployment("shadow"))
    newest = _newest(ctx, "feature_drift", "1")
    window = (newest["window_start"], newest["window_end"])
    points = compute_window(ctx, "churn", "2", *window, cfg)
    shared, own = _drift(points, "comparison.feature_drift"), _drift(points, "feature_drift")
    champion = {
        p["labels"]["feature"]: p["value"]
        for p in metric_store.query_metrics(ctx, "churn", metric="feature_drift", version="1")
        if "segment" not in p["labels"] and (p["window_start"], p["window_end"]) == window
    }
    assert set(shared) == set(champion) == {"tenure", "plan"}
    for feature, p in shared.items():  # the same requests against the same reference: the same drift
        assert p.value == pytest.approx(champion[feature]) and p.details["champion_value"] == pytest.approx(p.value)
        assert p.details["coverage"] == 1.0 and p.sample_size == n
    assert own["tenure"].value != pytest.approx(shared["tenure"].value)  # against its own reference, another story
    assert own["tenure"].drifted is True

    # A late prediction of an hour already summarised: the rollup summarises it again against both.
    late = [
        {
            "prediction_id": "late",
            "timestamp": (start + timedelta(seconds=1)).isoformat(),
            "features": {"tenure": 70, "plan": "basic"},
            "prediction": "stay",
        }
    ]
    assert not ingestion.ingest_predictions(ctx, late, model="churn", version="2").errors
    assert not run_model(ctx, "churn").failures
    (tenure,) = [  # the window computed again replaced its points
        p
        for p in metric_store.query_metrics(ctx, "churn", metric="comparison.feature_drift", version="2")
        if p["labels"]["feature"] == "tenure" and (p["window_start"], p["window_end"]) == window
    ]
    assert tenure["sample_size"] == n + 1 and tenure["details"]["coverage"] == 1.0


def test_alerts_are_evaluated_for_every_live_version_a_challengers_apart_from_the_champions(
    ctx: ServiceContext,
) -> None:
    from monitor.services.alerting import alert_config, alert_ops
    from monitor.services.alerting.evaluation import evaluate_model

    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", MonitoringConfig(windows=["1d"]))
    _version(ctx, "2", "canary")
    registry.register_model(ctx, ModelSpec.model_validate({**BINARY_SPEC, "version": "3"}))  # newer, not live yet
    alert_config.put_rule(
        ctx,
        {"name": "slow", "model": "churn", "metric": "latency.mean", "condition": {"op": ">", "threshold": 1}},
        create=True,
    )
    alert_config.put_rule(
        ctx,
        {
            "name": "canary-worse",
            "model": "churn",
            "metric": "comparison.accuracy",
            "condition": {"op": "<", "threshold": 0, "on": "upper"},
        },
        create=True,
    )
    rng = np.random.default_rng(12)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    truth = np.where(rng.random(1000) < 0.4, "leave", "stay")
    _log(ctx, "1", start, truth, rng.random(1000) < 0.9, "c", "r")
    _log(ctx, "2", start, truth[:500], rng.random(500) < 0.6, "k", "q")
    _label(ctx, "c", truth)
    _label(ctx, "k", truth[:500])
    run_model(ctx, "churn")
    counts = evaluate_model(ctx, "churn")
    alerts = alert_ops.list_alerts(ctx, "firing")
    assert counts == {"firing": len(alerts)}
    firing = {(a["labels"]["alertname"], a["labels"].get("version")) for a in alerts if "segment" not in a["labels"]}
    # the champion's alert as before; the canary's, which is not the newest version, apart
    assert firing == {("slow", None), ("slow", "2"), ("canary-worse", "2")}


def test_a_shadow_without_a_reference_of_its_own_is_measured_against_the_champions(ctx: ServiceContext) -> None:
    """A shadow registered without a reference: every run measures it against its champion's
    (it was skipped as 'no reference dataset' and the compare page gave the wrong reason), and the
    compare page says so."""
    from monitor.services.read_models import dashboard_data

    _version(ctx, "1", "champion")
    registry.set_monitoring(ctx, "churn", MonitoringConfig(windows=["1d"]))
    registry.register_model(ctx, ModelSpec.model_validate({**BINARY_SPEC, "version": "2"}))
    registry.set_deployment(ctx, "churn", "2", registry.Deployment("shadow"))
    rng = np.random.default_rng(8)
    n = 600
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    truth = np.where(rng.random(n) < 0.4, "leave", "stay")
    difficulty = rng.random(n)
    champion_right, shadow_right = difficulty < 0.75, difficulty < 0.85
    positive = truth == "leave"
    champion_scores = _scores(rng, positive, positive == champion_right, 0.0)
    shadow_scores = _scores(rng, positive, positive == shadow_right, 1.0)
    _log(ctx, "1", start, truth, champion_right, "c", "r", champion_scores)
    _log(ctx, "2", start, truth, shadow_right, "s", "r", shadow_scores)
    _label(ctx, "c", truth)

    report = run_model(ctx, "churn")
    assert not report.failures and sorted(report.versions) == ["1", "2"]
    accuracy = _newest(ctx, "comparison.accuracy", "2")
    assert accuracy["details"]["paired"] is True and accuracy["sample_size"] == n
    assert accuracy["value"] == pytest.approx(float((shadow_right & ~champion_right).mean()))
    auc = _newest(ctx, "comparison.roc_auc", "2")
    assert auc["details"]["challenger_value"] == pytest.approx(roc_auc_score(positive, shadow_scores), abs=2e-3)
    drift = metric_store.query_metrics(ctx, "churn", metric="comparison.feature_drift", version="2")
    assert {p["labels"]["feature"] for p in drift} == {"tenure", "plan"}
    assert metric_store.query_metrics(ctx, "churn", metric="dataset_drift", version="2")
    page = dashboard_data.comparison_page(ctx, "churn", "2", start, start + timedelta(days=2), timedelta(days=1))
    assert page["own_reference"] is False and page["comparison"]
