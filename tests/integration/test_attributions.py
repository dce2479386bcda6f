"""Attributions in the log: validated like features on every path, stored with the row (and its
block), summarised mergeably per group, and compared with the reference's as attribution drift."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.domain.tabular import TableFormat
from monitor.services.catalog.reference import upload_reference
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.read_models import reports
from tests.integration.helpers import Api

SPEC: dict[str, Any] = {
    "task": "regression",
    "features": [
        {"name": "a", "type": "numerical"},
        {"name": "b", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
    ],
}


def _frame(rng: np.random.Generator, n: int, weights: tuple[float, float]) -> pd.DataFrame:
    a, b = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "pro"], size=n)
    frame = pd.DataFrame({"a": a, "b": b, "plan": plan, "prediction": weights[0] * a + weights[1] * b})
    frame["attribution.a"] = weights[0] * a
    frame["attribution.b"] = weights[1] * b
    frame["attribution.plan"] = np.where(plan == "pro", 0.1, -0.1)
    return frame


def _records(name: str, frame: pd.DataFrame, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "prediction_id": f"{name}-{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "features": {"a": row["a"], "b": row["b"], "plan": row["plan"]},
            "prediction": row["prediction"],
            "attributions": {f: row[f"attribution.{f}"] for f in ("a", "b", "plan")},
        }
        for i, row in enumerate(frame.to_dict("records"))
    ]


def _latest(api: Api, name: str, metric: str) -> list[dict[str, Any]]:
    points = api.http.get(f"/v1/models/{name}/metrics", params={"metric": metric}, headers=api.read).json()["points"]
    end = max((p["window_end"], p["window_start"]) for p in points)
    return [p for p in points if (p["window_end"], p["window_start"]) == end]


def test_a_model_relying_on_another_feature_shows_as_attribution_drift(api: Api) -> None:
    rng = np.random.default_rng(3)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    name = "attributed"
    r = api.http.post("/v1/models", json={**SPEC, "name": name}, headers=api.admin)
    assert r.status_code == 201, r.text
    stored = upload_reference(
        api.ctx, name, _frame(rng, 2000, (3.0, 1.0)).to_csv(index=False).encode(), TableFormat.csv
    )
    assert stored["attributions"] is True
    known = api.http.get(f"/v1/models/{name}/importance", headers=api.read).json()
    assert known["method"] == "mean absolute attribution" and known["attributions"] is True
    assert [f["feature"] for f in known["features"]] == ["a", "b", "plan"]
    a = known["features"][0]  # 3 E|N(0, 1)| = 3 sqrt(2 / pi), its interval around it
    assert a["low"] < a["value"] < a["high"] and a["low"] < 3 * np.sqrt(2 / np.pi) < a["high"]
    r = api.http.post(
        "/v1/predictions",
        json={"model": name, "records": _records(name, _frame(rng, 1200, (1.0, 3.0)), start)},
        headers=api.ingest,
    )
    assert r.status_code == 200, r.text
    run_model(api.ctx, name)
    (ndcg,) = _latest(api, name, "attribution_drift.ndcg")
    assert ndcg["value"] < 0.9 and ndcg["drifted"] is True, ndcg
    assert ndcg["details"]["reference_importance"] == "attributions"
    assert ndcg["details"]["window_top"][0][0] == "b"
    change = {p["labels"]["feature"]: p for p in _latest(api, name, "attribution_drift.change")}
    assert change["a"]["details"]["upper"] < 0 < change["b"]["details"]["lower"]
    assert change["plan"]["drifted"] is False


def test_attributions_are_refused_like_features_and_nothing_is_stored(api: Api) -> None:
    name = "refusing"
    assert api.http.post("/v1/models", json={**SPEC, "name": name}, headers=api.admin).status_code == 201
    good = {"features": {"a": 1.0, "b": 2.0, "plan": "pro"}, "prediction": 1.0}
    for bad, field in (
        ({"a": 1.0, "zip": 2.0}, "attributions.zip"),
        ({"a": "high"}, "attributions.a"),
        ({"b": True}, "attributions.b"),
        ({"a": 1e300}, "attributions.a"),
        ([1.0, 2.0], "attributions"),
    ):
        records = [{**good, "prediction_id": "fine"}, {**good, "prediction_id": "bad", "attributions": bad}]
        r = api.http.post("/v1/predictions", json={"model": name, "records": records}, headers=api.ingest)
        assert r.status_code == 422, r.text
        assert [(e["index"], e["field"]) for e in r.json()["error"]["details"]] == [(1, field)], r.text
    assert api.count("SELECT count(*) FROM predictions") == 0


def test_the_look_up_explains_a_prediction_by_its_attributions_on_either_path(api: Api) -> None:
    name = "explained"
    assert api.http.post("/v1/models", json={**SPEC, "name": name}, headers=api.admin).status_code == 201
    records = [
        {
            "prediction_id": "fast",
            "features": {"a": 1.0, "b": 2.0, "plan": "pro"},
            "prediction": 4.0,
            "attributions": {"a": 0.5, "b": 3.0, "plan": -0.5},
        },
        {  # a category given as a number takes the full path
            "prediction_id": "full",
            "features": {"a": 1.0, "b": 2.0, "plan": 7},
            "prediction": 4.0,
            "attributions": {"a": 2, "plan": None},
        },
        {"prediction_id": "none", "features": {"a": 1.0, "b": 2.0, "plan": "pro"}, "prediction": 4.0},
    ]
    for record in records:
        r = api.http.post("/v1/predictions", json={"model": name, "records": [record]}, headers=api.ingest)
        assert r.status_code == 200, r.text
    found = {
        pid: api.http.get(f"/v1/predictions/{pid}", params={"model": name}, headers=api.data).json()["explanation"]
        for pid in ("fast", "full", "none")
    }
    assert found["fast"] == {
        "total": 3.0,
        "contributions": [
            {"feature": "b", "value": 2.0, "attribution": 3.0, "share": 0.75},
            {"feature": "a", "value": 1.0, "attribution": 0.5, "share": 0.125},
            {"feature": "plan", "value": "pro", "attribution": -0.5, "share": 0.125},
        ],
    }
    assert found["full"] == {
        "total": 2.0,
        "contributions": [{"feature": "a", "value": 1.0, "attribution": 2.0, "share": 1.0}],
    }
    assert found["none"] is None


def test_a_reference_names_its_attribution_columns_by_mapping_and_segments_compare_their_own(api: Api) -> None:
    rng = np.random.default_rng(8)
    name = "segmented"
    spec = {**SPEC, "name": name, "segments": ["plan"]}
    assert api.http.post("/v1/models", json=spec, headers=api.admin).status_code == 201
    frame = _frame(rng, 3000, (3.0, 1.0)).rename(columns={"attribution.a": "shap_a"})
    r = api.http.post(
        f"/v1/models/{name}/reference",
        params={"attribution": "a:shap_a"},
        content=frame.to_csv(index=False).encode(),
        headers=api.admin | {"content-type": "text/csv"},
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["attributions"] is True
    live = _frame(rng, 1200, (3.0, 1.0))
    pro = live["plan"] == "pro"  # only the pro plan's model leans on b now
    live.loc[pro, "attribution.a"] *= 1 / 3
    live.loc[pro, "attribution.b"] *= 3
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    r = api.http.post(
        "/v1/predictions", json={"model": name, "records": _records(name, live, start)}, headers=api.ingest
    )
    assert r.status_code == 200, r.text
    run_model(api.ctx, name)
    by_group = {p["labels"].get("segment_value", ""): p for p in _latest(api, name, "attribution_drift.ndcg")}
    assert by_group["pro"]["drifted"] is True and by_group["basic"]["drifted"] is False, by_group
    assert by_group[""]["value"] > by_group["pro"]["value"]


def test_the_full_report_says_what_the_model_relies_on_with_names_escaped(api: Api) -> None:
    rng = np.random.default_rng(9)
    name = "reported"
    hostile = "<img src=x onerror=alert(1)>"
    spec = {
        "task": "regression",
        "name": name,
        "features": [{"name": "a", "type": "numerical"}, {"name": hostile, "type": "numerical"}],
    }
    assert api.http.post("/v1/models", json=spec, headers=api.admin).status_code == 201

    def frame(n: int, weights: tuple[float, float]) -> pd.DataFrame:
        a, b = rng.normal(size=n), rng.normal(size=n)
        out = pd.DataFrame({"a": a, hostile: b, "prediction": weights[0] * a + weights[1] * b})
        out["attribution.a"], out[f"attribution.{hostile}"] = weights[0] * a, weights[1] * b
        return out

    upload_reference(api.ctx, name, frame(2000, (3.0, 1.0)).to_csv(index=False).encode(), TableFormat.csv)
    live = frame(1500, (1.0, 3.0))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    records = [
        {
            "prediction_id": f"r{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "features": {"a": row["a"], hostile: row[hostile]},
            "prediction": row["prediction"],
            "attributions": {"a": row["attribution.a"], hostile: row[f"attribution.{hostile}"]},
        }
        for i, row in enumerate(live.to_dict("records"))
    ]
    assert (
        api.http.post("/v1/predictions", json={"model": name, "records": records}, headers=api.ingest).status_code
        == 200
    )
    built = reports.build_report(api.ctx, name, None, start, start + timedelta(hours=1), sample_size=1000)
    importance = built["importance"]
    assert importance["reference_importance"] == "mean absolute attribution"
    assert importance["window_rows_with_attributions"] == 1000
    assert importance["ndcg"] < 0.9 and importance["attribution_drift"] is True
    by_feature = {r["feature"]: r for r in importance["features"]}
    assert by_feature["a"]["reference_share"] == pytest.approx(0.75, abs=0.03)
    assert by_feature[hostile]["window_share"] == pytest.approx(0.75, abs=0.03)
    assert by_feature["a"]["upper"] < 0 < by_feature[hostile]["lower"] and by_feature["a"]["changed"] is True
    page = reports.get_report(api.ctx, name, built["id"], with_html=True)["html"]
    assert "What the model relies on" in page
    assert html.escape(hostile) in page and "<td><img src=x" not in page
