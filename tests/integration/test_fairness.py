"""Fairness across a protected attribute, end to end on a real Postgres: the window's points are
Fairlearn's numbers on the same rows, computed from the hourly summaries; the four-fifths rule
pages; late labels update the label-based measures; a protected attribute must be a segment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as fl

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSpec
from monitor.domain.tabular import TableFormat
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
from monitor.services.read_models import reports
from tests.integration.helpers import Api, unnamed_metrics

MODEL = "loans"
SPEC = {
    "name": MODEL,
    "task": "binary_classification",
    "classes": ["deny", "approve"],
    "features": [{"name": "income", "type": "numerical"}, {"name": "region", "type": "categorical"}],
    "segments": ["sex", "region"],
}


def _reference(n: int = 600) -> bytes:
    rng = np.random.default_rng(0)
    lines = ["income,region,sex,prediction,label"]
    for _ in range(n):
        sex = "F" if rng.random() < 0.5 else "M"
        decision = "approve" if rng.random() < 0.45 else "deny"
        lines.append(f"{rng.normal(50, 10):.2f},{rng.choice(['n', 's'])},{sex},{decision},{decision}")
    return "\n".join(lines).encode()


def _setup(ctx: ServiceContext, **cfg: Any) -> None:
    registry.register_model(ctx, ModelSpec.model_validate(SPEC))
    registry.set_monitoring(ctx, MODEL, MonitoringConfig(windows=["1h"], protected_attributes=["sex"], **cfg))
    upload_reference(ctx, MODEL, _reference(), TableFormat.csv)


def _traffic(ctx: ServiceContext, start: datetime, n: int, rates: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """``n`` predictions in the hour from ``start``: each sex approved at its rate; the truth
    agrees with the decision 80 % of the time."""
    rng = np.random.default_rng(seed)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    approve = rng.random(n) < np.vectorize(rates.get)(sex)
    truth = np.where(rng.random(n) < 0.8, approve, ~approve)
    records = [
        {
            "prediction_id": f"p{seed}-{i}",
            "timestamp": (start + timedelta(seconds=3500 * i / n)).isoformat(),
            "features": {"income": 50.0, "region": "n"},
            "prediction": "approve" if approve[i] else "deny",
            "segments": {"sex": str(sex[i])},
        }
        for i in range(n)
    ]
    assert not ingestion.ingest_predictions(ctx, records, model=MODEL).errors
    return {"id": np.array([r["prediction_id"] for r in records]), "sex": sex, "pred": approve, "truth": truth}


def _label(ctx: ServiceContext, rows: dict[str, np.ndarray], which: np.ndarray) -> None:
    records = [
        {"prediction_id": str(pid), "label": "approve" if t else "deny"}
        for pid, t in zip(rows["id"][which], rows["truth"][which], strict=True)
    ]
    assert not ingestion.ingest_labels(ctx, records, model=MODEL).errors


def _points(points: list[Any]) -> dict[str, Any]:
    return {
        p.metric + ("/" + p.labels["group"] if "group" in p.labels else ""): p
        for p in points
        if p.metric.startswith("fairness.")
    }


def test_fairness_points_are_fairlearns_numbers_on_the_windows_rows_and_the_four_fifths_rule_pages(
    ctx: ServiceContext,
) -> None:
    _setup(ctx)
    alert_config.put_receiver(ctx, {"name": "risk", "url": "https://hooks.example.com/risk", "kind": "slack"})
    alert_config.put_rule(
        ctx,
        {
            "name": "four-fifths",
            "model": MODEL,
            "metric": "fairness.demographic_parity_ratio",
            "condition": {"drifted": True},
            "receivers": ["risk"],
        },
        create=True,
    )
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    rows = _traffic(ctx, start, 2400, {"F": 0.30, "M": 0.50}, seed=1)
    labelled = np.arange(len(rows["id"])) % 3 != 0  # two thirds labelled
    _label(ctx, rows, labelled)
    assert not backfill(ctx, MODEL, start, start + timedelta(hours=1)).failures
    got = _points(
        compute_window(ctx, MODEL, None, start, start + timedelta(hours=1), registry.get_monitoring(ctx, MODEL))
    )

    sex, pred, truth = rows["sex"], rows["pred"], rows["truth"]
    # demographic parity on every prediction, labelled or not
    assert got["fairness.demographic_parity_ratio"].value == pytest.approx(
        fl.demographic_parity_ratio(truth, pred, sensitive_features=sex), abs=1e-12
    )
    assert got["fairness.demographic_parity_difference"].value == pytest.approx(
        fl.demographic_parity_difference(truth, pred, sensitive_features=sex), abs=1e-12
    )
    # the rates on labelled rows
    kw = {"sensitive_features": sex[labelled]}
    for name, fn in (
        ("equalized_odds_difference", fl.equalized_odds_difference),
        ("equalized_odds_ratio", fl.equalized_odds_ratio),
        ("equal_opportunity_difference", fl.equal_opportunity_difference),
        ("equal_opportunity_ratio", fl.equal_opportunity_ratio),
    ):
        assert got[f"fairness.{name}"].value == pytest.approx(fn(truth[labelled], pred[labelled], **kw), abs=1e-12)
    assert got["fairness.selection_rate/F"].sample_size == int((sex == "F").sum())
    assert got["fairness.demographic_parity_ratio"].labels == {"attribute": "sex"}
    ratio = got["fairness.demographic_parity_ratio"]
    assert ratio.drifted is True and ratio.details["upper"] < 0.8 and ratio.threshold == 0.8

    assert evaluate_model(ctx, MODEL) == {"firing": 1}
    assert not unnamed_metrics(ctx)  # fairness and quality: names a rule may give
    (alert,) = alert_ops.list_alerts(ctx, state="firing")
    assert alert["labels"]["alertname"] == "four-fifths" and alert["labels"]["attribute"] == "sex"

    # the last third's labels arrive late: the label-based measures take them, parity stays
    _label(ctx, rows, ~labelled)
    rollup(ctx, MODEL, None, start, start + timedelta(hours=1))
    again = _points(
        compute_window(
            ctx, MODEL, None, start, start + timedelta(hours=1), registry.get_monitoring(ctx, MODEL), quality_only=True
        )
    )
    assert "fairness.demographic_parity_ratio" not in again
    assert again["fairness.equalized_odds_difference"].value == pytest.approx(
        fl.equalized_odds_difference(truth, pred, sensitive_features=sex), abs=1e-12
    )


def test_a_fair_model_is_not_paged(ctx: ServiceContext) -> None:
    _setup(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    rows = _traffic(ctx, start, 2000, {"F": 0.45, "M": 0.45}, seed=2)
    _label(ctx, rows, np.ones(len(rows["id"]), dtype=bool))
    assert not backfill(ctx, MODEL, start, start + timedelta(hours=1)).failures
    got = _points(
        compute_window(ctx, MODEL, None, start, start + timedelta(hours=1), registry.get_monitoring(ctx, MODEL))
    )
    assert got["fairness.demographic_parity_ratio"].drifted is False
    assert got["fairness.equalized_odds_difference"].drifted is False


def test_a_protected_attribute_must_be_a_segment_column(churn: Api) -> None:
    r = churn.http.put(
        "/v1/models/churn/monitoring", json={"protected_attributes": ["plan", "religion"]}, headers=churn.admin
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"][0]["field"] == "protected_attributes.1"
    ok = churn.http.put("/v1/models/churn/monitoring", json={"protected_attributes": ["country"]}, headers=churn.admin)
    assert ok.status_code == 200 and ok.json()["protected_attributes"] == ["country"]


def test_a_full_report_lists_the_samples_fairness_with_group_names_escaped(ctx: ServiceContext) -> None:
    _setup(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    rows = _traffic(ctx, start, 400, {"F": 0.2, "M": 0.6}, seed=3)
    # a group whose name is markup: shown as text in the report
    hostile = "<img src=x onerror=alert(1)>"
    records = [
        {
            "prediction_id": f"h{i}",
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
            "features": {"income": 50.0, "region": "n"},
            "prediction": "approve",
            "segments": {"sex": hostile},
        }
        for i in range(30)
    ]
    assert not ingestion.ingest_predictions(ctx, records, model=MODEL).errors
    _label(ctx, rows, np.ones(len(rows["id"]), dtype=bool))
    meta = reports.build_report(ctx, MODEL, None, start, start + timedelta(hours=1), kind="drift", sample_size=1000)
    by_measure = {e["measure"]: e for e in meta["fairness"]}
    parity = by_measure["demographic_parity_ratio"]
    sex = np.concatenate([rows["sex"], [hostile] * 30])
    pred = np.concatenate([rows["pred"], np.ones(30, dtype=bool)])
    assert parity["value"] == pytest.approx(fl.demographic_parity_ratio(pred, pred, sensitive_features=sex), abs=1e-12)
    assert parity["violated"] is True and hostile in parity["groups"]["selection_rate"]
    page = reports.get_report(ctx, MODEL, meta["id"], with_html=True)["html"]
    assert "Fairness across protected attributes" in page
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
