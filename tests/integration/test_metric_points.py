from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.errors import NotFound
from monitor.metrics.points import MetricPoint
from monitor.services.jobs.metric_store import record_points
from tests.integration.helpers import Api

T0 = datetime(2026, 11, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


def drift_point(feature: str, hour: int, value: float, **kw: object) -> MetricPoint:
    return MetricPoint(
        "feature_drift",
        T0 + hour * HOUR,
        T0 + (hour + 1) * HOUR,
        value,
        sample_size=1000,
        labels={"feature": feature, "method": "wasserstein"},
        reference_size=5000,
        threshold=0.1,
        drifted=value >= 0.1,
        **kw,  # type: ignore[arg-type]
    )


def test_rerunning_a_window_overwrites_its_points(churn: Api) -> None:
    record_points(churn.ctx, "churn", None, [drift_point("tenure", 0, 0.05), drift_point("plan", 0, 0.2)])
    record_points(churn.ctx, "churn", None, [drift_point("tenure", 0, 0.15, details={"bins": 30})])
    assert churn.count("SELECT count(*) FROM metric_points") == 2
    r = churn.http.get("/v1/models/churn/metrics", params={"label": "feature:tenure"}, headers=churn.read)
    (point,) = r.json()["points"]
    assert point["value"] == 0.15 and point["drifted"] is True and point["details"] == {"bins": 30}
    assert point["version"] == "1" and point["sample_size"] == 1000 and point["reference_size"] == 5000


def test_filters_by_metric_labels_and_time(churn: Api) -> None:
    points = [drift_point("tenure", h, 0.01 * h) for h in range(6)]
    points.append(MetricPoint("dataset_drift", T0, T0 + HOUR, 0.5, sample_size=1000, drifted=True))
    points.append(MetricPoint("quality.accuracy", T0, T0 + HOUR, float("nan"), sample_size=0))
    record_points(churn.ctx, "churn", "1", points)

    def get(**params: object) -> list[dict]:
        r = churn.http.get("/v1/models/churn/metrics", params=params, headers=churn.read)
        assert r.status_code == 200, r.text
        return r.json()["points"]

    assert len(get()) == 8
    assert [p["metric"] for p in get(metric="dataset_drift")] == ["dataset_drift"]
    window = get(metric="feature_drift", start=(T0 + 2 * HOUR).isoformat(), end=(T0 + 4 * HOUR).isoformat())
    assert [p["window_start"] for p in window] == [(T0 + h * HOUR).isoformat() for h in (2, 3)]
    assert len(get(label=["feature:tenure", "method:wasserstein"])) == 6
    assert get(label="feature:plan") == []
    assert get(metric="quality.accuracy")[0]["value"] is None  # NaN is stored as no value
    assert len(get(limit=3)) == 3


def test_errors(churn: Api) -> None:
    r = churn.http.get("/v1/models/churn/metrics", params={"label": "feature"}, headers=churn.read)
    assert r.status_code == 400 and "key:value" in r.json()["error"]["message"]
    assert churn.http.get("/v1/models/ghost/metrics", headers=churn.read).status_code == 404
    assert churn.http.get("/v1/models/churn/metrics", params={"version": "7"}, headers=churn.read).status_code == 404
    with pytest.raises(NotFound):
        record_points(churn.ctx, "ghost", None, [drift_point("x", 0, 0.1)])
    with pytest.raises(ValueError, match="window_end must be after"):
        MetricPoint("m", T0, T0, 1.0, sample_size=1)
