"""A window's per-feature series in one row, and peaks over a range of them: the same ranking as
every point read one by one."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.metrics.feature_digest import FeaturePeak, feature_digests, point_peak, range_peaks
from monitor.metrics.points import MetricPoint, drift_severity

END = datetime(2026, 12, 6, 12, tzinfo=UTC)
FEATURES = ["age", "income", "city"]


def drift(
    feature: str, value: float | None, threshold: float, drifted: bool | None, kind: str, **extra: str
) -> MetricPoint:
    return MetricPoint(
        "feature_drift",
        END - timedelta(hours=1),
        END,
        value,
        500,
        {"feature": feature, "method": "ks" if kind == "p_value" else "wasserstein", **extra},
        threshold=threshold,
        drifted=drifted,
        details={"kind": kind},
    )


def test_a_digest_holds_each_feature_in_schema_order_and_nan_where_no_point() -> None:
    points = [
        drift("city", 0.05, 0.025, True, "distance"),
        drift("age", 0.001, 0.05, True, "p_value"),
        MetricPoint("dataset_drift", END - timedelta(hours=1), END, 0.5, 500),  # not per feature
        drift("undeclared", 0.9, 0.025, True, "distance"),  # outside the schema: no place
    ]
    [digest] = feature_digests(points, FEATURES)
    assert (digest.metric, digest.labels, digest.window_end) == ("feature_drift", {}, END)
    assert digest.peaks[0] == math.log(0.001) / math.log(0.05)  # p-values: log(p) / log(threshold)
    assert math.isnan(digest.peaks[1])
    assert digest.peaks[2] == 2.0  # distances: score / threshold
    assert digest.drifted == [True, False, True]


def test_segments_and_metrics_each_have_their_digest_and_a_point_without_a_score_ranks_at_zero() -> None:
    points = [
        drift("age", 0.02, 0.025, False, "distance"),
        drift("age", 0.04, 0.025, True, "distance", segment="region", segment_value="north"),
        drift("income", None, 0.025, None, "distance", segment="region", segment_value="north"),
        MetricPoint("data_quality.missing_share", END - timedelta(hours=1), END, 0.3, 500, {"feature": "city"}),
        MetricPoint("data_quality.missing_share", END - timedelta(hours=1), END, None, 500, {"feature": "age"}),
    ]
    digests = {(d.metric, tuple(sorted(d.labels.items()))): d for d in feature_digests(points, FEATURES)}
    assert set(digests) == {
        ("feature_drift", ()),
        ("feature_drift", (("segment", "region"), ("segment_value", "north"))),
        ("data_quality.missing_share", ()),
    }
    north = digests[("feature_drift", (("segment", "region"), ("segment_value", "north")))]
    assert math.isclose(north.peaks[0], 1.6) and north.peaks[1] == 0.0 and math.isnan(north.peaks[2])
    missing = digests[("data_quality.missing_share", ())]
    assert missing.peaks[0] == 0.0 and math.isnan(missing.peaks[1]) and missing.peaks[2] == 0.3


def test_point_peak_is_drift_severity_or_the_value() -> None:
    for p in (drift("age", 0.2, 0.05, False, "p_value"), drift("age", 0.03, 0.025, True, "distance")):
        assert point_peak(p) == drift_severity({"value": p.value, "threshold": p.threshold, "details": p.details})
    assert point_peak(drift("age", 0.2, 0.0, None, "distance")) == 0.0  # no threshold: no severity
    assert point_peak(MetricPoint("data_quality.missing_share", END - timedelta(hours=1), END, 0.25, 9)) == 0.25


def test_peaks_over_a_range_equal_those_of_every_point() -> None:
    rng = random.Random(7)
    features = [f"f{i}" for i in range(30)]
    points = []
    for h in range(24):
        end = END - timedelta(hours=h)
        for f in features:
            if rng.random() < 0.2:
                continue  # the window has no point for this feature
            kind = "p_value" if f.endswith(("1", "2")) else "distance"
            value = rng.random() if kind == "p_value" else rng.random() * 0.05
            threshold = 0.05 if kind == "p_value" else 0.025
            drifted = value < threshold if kind == "p_value" else value > threshold
            points.append(
                MetricPoint(
                    "feature_drift",
                    end - timedelta(hours=1),
                    end,
                    value,
                    100,
                    {"feature": f, "method": "m"},
                    threshold=threshold,
                    drifted=drifted,
                    details={"kind": kind},
                )
            )
    rows = [
        (d.metric, np.asarray(d.peaks, ">f4"), np.asarray(d.drifted, np.uint8))
        for d in feature_digests(points, features)
    ]
    got = {p.feature: p for p in range_peaks(rows, features)}
    assert set(got) == {p.labels["feature"] for p in points}
    for f, peak in got.items():
        own = [p for p in points if p.labels["feature"] == f]
        assert peak.drifted == sum(bool(p.drifted) for p in own)
        assert math.isclose(peak.peak, max(point_peak(p) for p in own), rel_tol=1e-6)  # stored as float32


def test_a_digest_of_another_length_is_not_read_as_this_schemas() -> None:
    rows = [("feature_drift", np.ones(2, ">f4"), np.zeros(2, np.uint8))]
    assert range_peaks(rows, FEATURES) == []
    rows.append(("feature_drift", np.asarray([2, math.nan, 0.5], ">f4"), np.asarray([1, 0, 0], np.uint8)))
    assert range_peaks(rows, FEATURES) == [
        FeaturePeak("feature_drift", "age", 2.0, 1),
        FeaturePeak("feature_drift", "city", 0.5, 0),
    ]
