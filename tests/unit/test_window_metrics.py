"""A window's points from its inputs alone: no database (``monitor.metrics.window_metrics``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import schema_from_json
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, reference_summary
from monitor.metrics.quality_summary import ClassificationSummary
from monitor.metrics.window_metrics import (
    ComparisonInputs,
    MergedColumns,
    SegmentInputs,
    Window,
    WindowInputs,
    window_points,
)

T = datetime(2026, 12, 7, 10, 17, tzinfo=UTC)
SCHEMA = schema_from_json(
    {
        "task": "binary_classification",
        "classes": ["no", "yes"],
        "positive_class": "yes",
        "features": [{"name": "x", "type": "numerical"}, {"name": "colour", "type": "categorical"}],
    }
)
COLOURS = ["red", "green", "blue"]


def _reference(rng: np.random.Generator) -> dict[str, dict]:
    return {
        "features.x": reference_summary(list(rng.normal(0, 1, 3000)), True),
        "features.colour": reference_summary(list(rng.choice(COLOURS, 3000, p=[0.5, 0.3, 0.2])), False),
    }


def _current(reference: dict[str, dict], rng: np.random.Generator, shift: float, n: int = 2000) -> MergedColumns:
    edges = np.asarray(reference["features.x"]["edges"], dtype=float)
    colours = rng.choice(COLOURS, n, p=[0.5, 0.3, 0.2])
    return MergedColumns(
        {
            "features.x": NumericSummary.of(rng.normal(shift, 1, n), edges),
            "features.colour": CategoricalSummary.of(list(colours)),
        },
        {},
        n,
    )


def _inputs(shift: float, **kw: object) -> WindowInputs:
    # (seed 7 drew, by chance, colours at p = 0.004: a no-drift window of the 5 % the rule may flag)
    rng = np.random.default_rng(8)
    reference = _reference(rng)
    quality = ClassificationSummary(["no", "yes"])
    quality.n_predictions = 2000  # none labelled
    whole = SegmentInputs(None, reference, {}, _current(reference, rng, shift), quality, None)
    return WindowInputs(Window(T - timedelta(hours=1), T), "2", SCHEMA, {}, [whole], **kw)  # type: ignore[arg-type]


def _point(points: list, metric: str, **labels: str):  # type: ignore[no-untyped-def]
    return next(p for p in points if p.metric == metric and all(p.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.parametrize(("shift", "drifted"), [(0.0, False), (1.0, True)])
def test_drift_of_a_window_from_its_summaries(shift: float, drifted: bool) -> None:
    points = window_points(_inputs(shift), MonitoringConfig(), T)
    x = _point(points, "feature_drift", feature="x")
    assert x.drifted is drifted and x.sample_size == 2000
    assert _point(points, "feature_drift", feature="colour").drifted is False
    assert _point(points, "dataset_drift").value == (0.5 if drifted else 0.0)
    assert all(p.window_start == T - timedelta(hours=1) and p.window_end == T for p in points)
    assert _point(points, "quality.label_coverage").value == 0.0
    assert not any(p.metric.startswith(("comparison.", "data_quality.rejected")) for p in points)


def test_rejected_records_and_a_comparison_come_from_their_inputs() -> None:
    champion = ClassificationSummary(["no", "yes"])
    champion.n_predictions = 2000
    points = window_points(
        _inputs(0.0, rejected=(3, {"features.x": 2}), comparison=ComparisonInputs("1", SCHEMA, {}, champion)),
        MonitoringConfig(),
        T,
    )
    assert _point(points, "data_quality.rejected_records").value == 3
    assert _point(points, "data_quality.schema_violations", field="features.x").sample_size == 2
    share = _point(points, "comparison.traffic_share")
    assert share.labels == {"champion": "1"} and share.value == pytest.approx(0.5)


def test_a_sliding_window_is_not_on_hours() -> None:
    assert Window(T.replace(minute=0), T.replace(minute=0) + timedelta(days=1)).on_hours
    assert not Window(T - timedelta(hours=1), T).on_hours
