"""Drift weighed by what the model uses: the reference's estimated importances, and the share of
them whose features drifted, beside the share of columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.domain.tabular import TableFormat
from monitor.services.catalog.reference import upload_reference
from monitor.services.jobs.monitoring_run import run_model
from tests.integration.helpers import Api

SPEC: dict[str, Any] = {
    "task": "regression",
    "features": [
        {"name": "used", "type": "numerical"},
        {"name": "ignored", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
    ],
}


def _frame(rng: np.random.Generator, n: int, shift: dict[str, float]) -> pd.DataFrame:
    used = rng.normal(size=n) + shift.get("used", 0.0)
    ignored = rng.normal(size=n) + shift.get("ignored", 0.0)
    plan = rng.choice(["basic", "pro"], size=n)
    prediction = 4 * used + (plan == "pro") * 0.5 + rng.normal(scale=0.05, size=n)
    return pd.DataFrame({"used": used, "ignored": ignored, "plan": plan, "prediction": prediction})


def test_a_drifted_feature_weighs_its_share_of_what_the_model_uses(api: Api) -> None:
    rng = np.random.default_rng(5)
    # Every record within the last half hour, so that the hour-long window ending now holds them all
    # whatever the time of day: a window holding part of them tests other data (and drifts otherwise).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    shares = {}
    for name, shift in (("drift-used", {"used": 1.5}), ("drift-ignored", {"ignored": 1.5})):
        r = api.http.post("/v1/models", json={**SPEC, "name": name}, headers=api.admin)
        assert r.status_code == 201, r.text
        stored = upload_reference(api.ctx, name, _frame(rng, 3000, {}).to_csv(index=False).encode(), TableFormat.csv)
        assert stored["importance"] is True
        live = _frame(rng, 1500, shift)
        records = [
            {
                "prediction_id": f"{name}-{i}",
                "timestamp": (start + timedelta(seconds=i)).isoformat(),
                "features": {"used": row.used, "ignored": row.ignored, "plan": row.plan},
                "prediction": row.prediction,
            }
            for i, row in enumerate(live.itertuples())
        ]
        r = api.http.post("/v1/predictions", json={"model": name, "records": records}, headers=api.ingest)
        assert r.status_code == 200, r.text
        run_model(api.ctx, name)
        points = api.http.get(
            f"/v1/models/{name}/metrics", params={"metric": "dataset_drift.importance_weighted"}, headers=api.read
        ).json()["points"]
        columns = api.http.get(
            f"/v1/models/{name}/metrics", params={"metric": "dataset_drift"}, headers=api.read
        ).json()["points"]
        assert points and columns
        latest = max(points, key=lambda p: (p["window_end"], p["window_start"]))
        dataset = next(
            p for p in columns if (p["window_start"], p["window_end"]) == (latest["window_start"], latest["window_end"])
        )
        assert dataset["value"] == 1 / 3  # one of three features drifted, either way
        # what a notification and a retraining request name: the drifted features with their shares
        assert dataset["details"]["by_importance"] == latest["details"]["drifted_features"]
        shares[name] = latest
    known = api.http.get("/v1/models/drift-used/importance", headers=api.read).json()
    assert known["method"] == "permutation of a surrogate" and known["output"] == "prediction"
    assert known["features"][0]["feature"] == "used" and known["attributions"] is False
    assert sum(f["share"] for f in known["features"]) == pytest.approx(1.0)
    used, ignored = shares["drift-used"], shares["drift-ignored"]
    assert used["value"] > 0.8 and ignored["value"] < 0.05, (used, ignored)
    assert used["details"]["drifted_features"][0][0] == "used"
    assert used["details"]["output"] == "prediction"
