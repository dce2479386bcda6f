"""Fairness from counts, against Fairlearn's own functions on the same rows; and decisions that
hold the error rate their intervals claim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fairlearn import metrics as fl

from monitor.metrics.fairness import (
    GroupCounts,
    Thresholds,
    confusion_counts,
    fairness_points,
    pair_intervals,
    wilson,
)
from monitor.metrics.points import MetricPoint

START = datetime(2026, 11, 30, tzinfo=UTC)
END = START + timedelta(hours=1)


def counts_of(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> dict[str, GroupCounts]:
    out = {}
    for g in np.unique(group):
        t, p = y_true[group == g], y_pred[group == g]
        out[str(g)] = GroupCounts(
            predictions=len(p),
            selected=int(p.sum()),
            positives=int(t.sum()),
            true_positives=int((t & p).sum()),
            negatives=int((~t).sum()),
            false_positives=int((~t & p).sum()),
        )
    return out


def by_metric(points: list[MetricPoint]) -> dict[str, MetricPoint]:
    return {p.metric + ("/" + p.labels["group"] if "group" in p.labels else ""): p for p in points}


def rows(seed: int, sizes: dict[str, int], select: dict[str, float], base: float = 0.3) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    group = np.concatenate([np.full(n, g) for g, n in sizes.items()])
    y_true = rng.random(len(group)) < base
    score = np.concatenate([rng.random(n) * 0.6 + select[g] * 0.8 for g, n in sizes.items()])
    y_pred = (score + 0.3 * y_true) > 0.6
    return y_true, y_pred, group


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_measure_is_fairlearns_on_the_same_rows(seed: int) -> None:
    y_true, y_pred, group = rows(seed, {"a": 700, "b": 300, "c": 90}, {"a": 0.3, "b": 0.2, "c": 0.45})
    got = by_metric(fairness_points("sex", counts_of(y_true, y_pred, group), Thresholds(), START, END))
    kw = {"sensitive_features": group}
    expected = {
        "fairness.demographic_parity_difference": fl.demographic_parity_difference(y_true, y_pred, **kw),
        "fairness.demographic_parity_ratio": fl.demographic_parity_ratio(y_true, y_pred, **kw),
        "fairness.equal_opportunity_difference": fl.equal_opportunity_difference(y_true, y_pred, **kw),
        "fairness.equal_opportunity_ratio": fl.equal_opportunity_ratio(y_true, y_pred, **kw),
        "fairness.equalized_odds_difference": fl.equalized_odds_difference(y_true, y_pred, **kw),
        "fairness.equalized_odds_ratio": fl.equalized_odds_ratio(y_true, y_pred, **kw),
    }
    for name, value in expected.items():
        assert got[name].value == pytest.approx(value, abs=1e-12), name
        assert got[name].labels == {"attribute": "sex"}
    frame = fl.MetricFrame(
        metrics={
            "selection_rate": fl.selection_rate,
            "true_positive_rate": fl.true_positive_rate,
            "false_positive_rate": fl.false_positive_rate,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=group,
    )
    for g, row in frame.by_group.iterrows():
        for name in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            point = got[f"fairness.{name}/{g}"]
            assert point.value == pytest.approx(row[name], abs=1e-12)
            assert point.details["lower"] <= point.value <= point.details["upper"]
    assert got["fairness.selection_rate/c"].sample_size == 90


def test_the_intervals_cover_the_populations_gap_at_least_as_often_as_they_claim() -> None:
    """Groups drawn again and again from one population: the difference's interval (each bound
    one-sided at 5 %, over three pairs at once) holds the population's own difference in at least
    90 % of windows (at least 85 % of 300)."""
    truth = {"a": 0.30, "b": 0.22, "c": 0.26}
    rng = np.random.default_rng(7)
    held = 0
    for i in range(300):
        groups = {}
        for g, p in truth.items():
            n = {"a": 800, "b": 200, "c": 120}[g]
            k = int(rng.binomial(n, p))
            groups[g] = GroupCounts(n, k, 0, 0, 0, 0)
        start = START + timedelta(hours=i)
        (dp,) = [
            p
            for p in fairness_points("x", groups, Thresholds(), start, start + timedelta(hours=1))
            if p.metric == "fairness.demographic_parity_difference"
        ]
        held += dp.details["lower"] <= 0.08 <= dp.details["upper"]
    assert held >= 255, held


@pytest.mark.parametrize(("ratio", "at_most", "at_least"), [(1.0, 0.0, 0.0), (0.8, 0.08, 0.01), (0.6, 1.0, 0.95)])
def test_the_four_fifths_rule_pages_only_when_the_interval_is_wholly_below(
    ratio: float, at_most: float, at_least: float
) -> None:
    """At a true ratio of exactly 0.8 (the boundary) a window is decided violating in at most the
    one-sided 5 % the interval allows (with room for 200 windows), and not far less (a bound that
    wide would throw power away); a fair model never; a ratio of 0.6 with 1,000-row groups nearly
    always."""
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(200):
        groups = {
            "a": GroupCounts(1000, int(rng.binomial(1000, 0.5)), 0, 0, 0, 0),
            "b": GroupCounts(1000, int(rng.binomial(1000, 0.5 * ratio)), 0, 0, 0, 0),
        }
        start = START + timedelta(hours=i)
        (point,) = [
            p
            for p in fairness_points("x", groups, Thresholds(), start, start + timedelta(hours=1))
            if p.metric == "fairness.demographic_parity_ratio"
        ]
        hits += bool(point.drifted)
    assert at_least * 200 <= hits <= at_most * 200


def test_small_groups_get_numbers_but_no_decision_and_a_lone_group_no_gap() -> None:
    groups = {"a": GroupCounts(50, 40, 10, 8, 40, 5), "b": GroupCounts(60, 5, 10, 2, 50, 1)}
    got = by_metric(fairness_points("x", groups, Thresholds(min_group_size=100), START, END))
    assert got["fairness.demographic_parity_ratio"].value < 0.2
    assert got["fairness.demographic_parity_ratio"].drifted is None
    lone = fairness_points("x", {"a": groups["a"]}, Thresholds(), START, END)
    assert lone == []


def test_equalized_odds_leaves_out_a_group_without_positives_and_predictions_may_be_uncounted() -> None:
    groups = {
        "a": GroupCounts(None, None, 100, 60, 300, 30),
        "b": GroupCounts(None, None, 80, 40, 200, 50),
        "c": GroupCounts(None, None, 0, 0, 50, 10),  # no positives: no true positive rate
    }
    got = by_metric(fairness_points("x", groups, Thresholds(), START, END))
    assert "fairness.demographic_parity_ratio" not in got  # predictions not counted: no selection rates
    assert got["fairness.equalized_odds_difference"].value == pytest.approx(max(0.6 - 0.5, 0.25 - 0.1))
    assert set(got["fairness.equalized_odds_difference"].details["groups"]["false_positive_rate"]) == {"a", "b"}
    assert got["fairness.false_positive_rate/c"].value == pytest.approx(0.2)


def test_confusion_counts_and_wilson() -> None:
    confusion = {"yes\x1fyes": 30, "yes\x1fno": 10, "no\x1fyes": 5, "no\x1fno": 55}
    assert confusion_counts("yes", confusion) == (40, 30, 60, 5)
    lo, hi = wilson(30, 40)
    assert lo == pytest.approx(0.5981, abs=1e-3) and hi == pytest.approx(0.8581, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("sizes", [(1000, 60), (150, 150), (800, 200, 120)])
def test_a_fair_model_s_intervals_hold_parity(sizes: tuple[int, ...]) -> None:
    """Every group selected at 0.4: the ratio's interval holds 1 and the difference's holds 0 in
    about 90 % of windows, its nominal coverage (at least 85 % of 300: three binomial standard
    errors); a bootstrap of the largest gap never did: its draws all lie past parity."""
    rng = np.random.default_rng(5)
    ratio_held = difference_held = 0
    for i in range(300):
        groups = {f"g{j}": GroupCounts(n, int(rng.binomial(n, 0.4)), 0, 0, 0, 0) for j, n in enumerate(sizes)}
        start = START + timedelta(hours=i)
        got = by_metric(fairness_points("x", groups, Thresholds(), start, start + timedelta(hours=1)))
        ratio_held += got["fairness.demographic_parity_ratio"].details["upper"] == 1.0
        difference_held += got["fairness.demographic_parity_difference"].details["lower"] == 0.0
    assert ratio_held >= 255 and difference_held >= 255, (ratio_held, difference_held)


def test_pair_intervals_are_newcombe_s_and_the_log_ratio_s() -> None:
    # Newcombe (1998), Statistics in Medicine 17, table II: 56/70 against 48/80, method 10
    difference, ratio = pair_intervals(56, 70, 48, 80, 1.959963984540054)
    assert difference == pytest.approx((0.0524, 0.3339), abs=1e-4)
    # with many rows, the MOVER ratio is Katz's log interval
    _, ratio = pair_intervals(400, 1000, 300, 1000, 1.959963984540054)
    half = 1.959963984540054 * np.sqrt(0.6 / 400 + 0.7 / 300)
    assert ratio == pytest.approx((4 / 3 * np.exp(-half), 4 / 3 * np.exp(half)), rel=2e-3)
    # a rate of 0: the ratio's lower bound is 0, its upper bound finite while the other rate is not 0
    _, (lo, hi) = pair_intervals(0, 50, 20, 100, 1.645)
    assert lo == 0.0 and 0 < hi < 1
