"""Attribution summaries and attribution drift: the summary of any split of the rows, merged, is
the summary of all of them; the points say what the raw attributions say."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from monitor.metrics.attribution import AttributionSummary, attribution_points, explanation
from monitor.metrics.importance import ndcg
from monitor.metrics.log_summary import AttributionsOfRows, Chunk, GroupSummaries, add_chunk

START = datetime(2026, 12, 1, tzinfo=UTC)
END = START + timedelta(hours=1)
FEATURES = ("b", "a", "c")  # not sorted: the summary sorts them


def _values(rng: np.random.Generator, n: int, scale: tuple[float, ...] = (1.0, 3.0, 0.2)) -> np.ndarray:
    v = rng.normal(size=(n, 3)) * np.asarray(scale)
    v[rng.random(size=(n, 3)) < 0.1] = np.nan  # missing, not zero
    return v


def test_the_summary_holds_each_features_sums_of_its_given_attributions() -> None:
    v = _values(np.random.default_rng(1), 500)
    s = AttributionSummary.of(v, FEATURES)
    assert s is not None and s.features == ("a", "b", "c")
    for j, f in enumerate(FEATURES):
        x = v[:, j][~np.isnan(v[:, j])]
        i = s.features.index(f)
        assert s.n[i] == len(x)
        assert s.total[i] == pytest.approx(x.sum(), rel=1e-12)
        assert s.abs_total[i] == pytest.approx(np.abs(x).sum(), rel=1e-12)
        assert s.total_sq[i] == pytest.approx(np.square(x).sum(), rel=1e-12)
        assert s.mean_abs()[f] == pytest.approx(np.abs(x).mean(), rel=1e-12)
        assert s.mean_abs_variance()[f] == pytest.approx(np.abs(x).var(ddof=1) / len(x), rel=1e-9)


def test_merged_parts_equal_the_summary_of_all_rows_whatever_the_split() -> None:
    rng = np.random.default_rng(2)
    v = _values(rng, 1000)
    whole = AttributionSummary.of(v, FEATURES)
    cuts = sorted(rng.choice(np.arange(1, 1000), size=7, replace=False))
    parts = [AttributionSummary.of(p, FEATURES) for p in np.split(v, cuts)]
    merged = parts[0]
    for p in parts[1:]:
        assert merged is not None and p is not None
        merged = merged.merge(p)
    assert merged is not None and whole is not None
    assert merged.features == whole.features
    np.testing.assert_array_equal(merged.n, whole.n)
    for field in ("total", "abs_total", "total_sq"):
        np.testing.assert_allclose(getattr(merged, field), getattr(whole, field), rtol=1e-12)
    back = AttributionSummary.from_parts(merged.to_parts()[0])
    assert back.features == merged.features and np.array_equal(back.abs_total, merged.abs_total)


def test_summaries_of_different_features_merge_by_name() -> None:
    one = AttributionSummary.of(np.array([[1.0, 3.0, np.nan]]), ["x", "y", "w"])
    two = AttributionSummary.of(np.array([[-2.0, 4.0]]), ["y", "z"])
    assert one is not None and two is not None
    assert one.features == ("x", "y")  # a feature no row attributed is left out
    merged = one.merge(two)
    assert merged.features == ("x", "y", "z")
    assert merged.n.tolist() == [1, 2, 1] and merged.abs_total.tolist() == [1.0, 5.0, 4.0]
    assert merged.total.tolist() == [1.0, 1.0, 4.0] and merged.total_sq.tolist() == [1.0, 13.0, 16.0]
    assert AttributionSummary.of(np.full((3, 2), np.nan), ["x", "y"]) is None


def test_segments_summarise_their_own_rows_and_rows_without_attributions_store_nothing() -> None:
    attributions = [{"a": 1.0, "b": -2.0}, None, {"a": -3.0}, {"b": 0.5, "c": 1.0}]
    chunk = Chunk(
        features=[{}] * 4,
        scores=[None] * 4,
        predictions=[1.0] * 4,
        latency_ms=[None] * 4,
        segments=[{"region": r} for r in ("eu", "eu", "us", "us")],
        attributions=attributions,
    )
    derived = [AttributionsOfRows(("a", "b", "c"))]
    groups = {"": GroupSummaries([], derived), "region=eu": GroupSummaries([], derived)}
    add_chunk(chunk, groups, {"": None, "region=eu": ("region", "eu")}, derived)
    every = AttributionSummary.from_parts(groups[""].parts()["_attributions"][0])
    assert every.mean_abs() == {"a": 2.0, "b": 1.25, "c": 1.0}
    eu = AttributionSummary.from_parts(groups["region=eu"].parts()["_attributions"][0])
    assert eu.mean_abs() == {"a": 1.0, "b": 2.0}
    silent = Chunk([{}] * 2, [None] * 2, [1.0] * 2, [None] * 2, [None] * 2, attributions=[None, None])
    quiet = {"": GroupSummaries([], derived)}
    add_chunk(silent, quiet, {"": None}, derived)
    assert "_attributions" not in quiet[""].parts()


def _summary(rng: np.random.Generator, n: int, scale: tuple[float, ...]) -> AttributionSummary:
    s = AttributionSummary.of(rng.normal(size=(n, len(scale))) * np.asarray(scale), ["a", "b", "c"][: len(scale)])
    assert s is not None
    return s


def test_ndcg_point_ranks_the_window_against_the_reference_and_alarms_below_090() -> None:
    rng = np.random.default_rng(3)
    reference = _summary(rng, 4000, (3.0, 1.0, 0.1))
    same = attribution_points(_summary(rng, 2000, (3.0, 1.0, 0.1)), reference, None, START, END, {})
    (point,) = [p for p in same if p.metric == "attribution_drift.ndcg"]
    assert point.value == 1.0 and point.drifted is False and point.threshold == 0.9
    window = _summary(rng, 2000, (1.0, 3.0, 0.1))
    swapped = attribution_points(window, reference, None, START, END, {"segment": "region", "segment_value": "eu"})
    (point,) = [p for p in swapped if p.metric == "attribution_drift.ndcg"]
    assert point.value == pytest.approx(ndcg(reference.mean_abs(), window.mean_abs()))
    # SageMaker's formula directly: gains the reference's mean |a|, order the window's
    gains = reference.mean_abs()
    order = sorted(gains, key=lambda f: -window.mean_abs()[f])
    dcg = sum(gains[f] / math.log2(i + 2) for i, f in enumerate(order))
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(gains.values(), reverse=True)))
    assert point.value == pytest.approx(dcg / idcg, rel=1e-12)
    assert point.value < 0.9 and point.drifted is True
    assert point.labels == {"segment": "region", "segment_value": "eu"}
    assert point.details["window_top"][0][0] == "b" and point.details["reference_top"][0][0] == "a"


def test_without_reference_attributions_the_estimated_importances_rank_and_no_change_is_claimed() -> None:
    rng = np.random.default_rng(4)
    points = attribution_points(_summary(rng, 500, (1.0, 3.0, 0.1)), None, {"a": 0.6, "b": 0.2}, START, END, {})
    metrics = sorted({p.metric for p in points})
    assert metrics == ["attribution.importance", "attribution_drift.ndcg"]
    (point,) = [p for p in points if p.metric == "attribution_drift.ndcg"]
    assert point.details["reference_importance"] == "estimated"
    assert point.value == pytest.approx(ndcg({"a": 0.6, "b": 0.2}, {"a": 0.8, "b": 2.4}), abs=0.05)
    assert attribution_points(_summary(rng, 50, (1.0,)), None, None, START, END, {})[0].metric == (
        "attribution.importance"
    )


def test_each_features_change_has_an_interval_that_covers_the_true_change_95_times_in_100() -> None:
    rng = np.random.default_rng(5)
    covered = flagged = 0
    trials = 400
    for _ in range(trials):
        reference = _summary(rng, 800, (1.0, 2.0))
        window = _summary(rng, 300, (1.0, 2.2))  # b's mean |a| rises by 0.2 * sqrt(2 / pi)
        change = {
            p.labels["feature"]: p
            for p in attribution_points(window, reference, None, START, END, {})
            if p.metric == "attribution_drift.change"
        }
        a = change["a"]
        covered += a.details["lower"] <= 0.0 <= a.details["upper"]
        truth = 0.2 * math.sqrt(2 / math.pi)
        covered += change["b"].details["lower"] <= truth <= change["b"].details["upper"]
        flagged += bool(a.drifted)
    assert 0.93 <= covered / (2 * trials) <= 0.97
    assert flagged / trials <= 0.08  # no change: flagged about 5 % of the time


def test_the_importance_points_give_the_windows_mean_absolute_attribution_and_share() -> None:
    s = AttributionSummary.of(np.array([[1.0, -3.0], [-1.0, 1.0]]), ["x", "y"])
    assert s is not None
    points = {p.labels["feature"]: p for p in attribution_points(s, None, None, START, END, {})}
    assert points["x"].value == 1.0 and points["y"].value == 2.0
    assert points["x"].details["share"] == pytest.approx(1 / 3) and points["y"].sample_size == 2


def test_a_predictions_explanation_lists_its_largest_attributions_first() -> None:
    found = explanation({"age": -0.5, "plan": 1.5, "tenure": 0.0}, {"age": 41, "plan": "pro", "tenure": 3})
    assert found["total"] == 1.0
    assert [(c["feature"], c["value"], c["attribution"]) for c in found["contributions"]] == [
        ("plan", "pro", 1.5),
        ("age", 41, -0.5),
        ("tenure", 3, 0.0),
    ]
    assert [c["share"] for c in found["contributions"]] == [0.75, 0.25, 0.0]
