"""Two versions compared on a share: the intervals hold the true difference as often as they
claim, the tests reject a true null no more often than they claim, and pairing sees a smaller
difference than splitting on the same number of labels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.metrics.comparison import paired, unpaired


def test_the_unpaired_interval_is_newcombes_hybrid_score_interval() -> None:
    """Newcombe (1998), 'Interval estimation for the difference between independent
    proportions', Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339."""
    d = unpaired(48, 80, 56, 70)
    assert d is not None
    assert d.value == pytest.approx(0.2)
    assert (round(d.lower, 4), round(d.upper, 4)) == (0.0524, 0.3339)
    assert not d.paired and d.n == 150
    assert unpaired(0, 0, 3, 10) is None


def _paired_counts(
    rng: np.random.Generator, n: int, p_champion: float, p_challenger: float, rho: float
) -> tuple[int, ...]:
    """n requests, each right or wrong under both versions, their outcomes correlated (a
    request's difficulty): (both right, champion only, challenger only, both wrong)."""
    z = rng.standard_normal(n)
    e1 = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    e2 = rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    right1 = e1 < stats.norm.ppf(p_champion)
    right2 = e2 < stats.norm.ppf(p_challenger)
    return (
        int((right1 & right2).sum()),
        int((right1 & ~right2).sum()),
        int((~right1 & right2).sum()),
        int((~right1 & ~right2).sum()),
    )


@pytest.mark.parametrize(("n", "p1", "p2", "rho"), [(200, 0.8, 0.85, 0.7), (1000, 0.9, 0.9, 0.8), (80, 0.7, 0.6, 0.5)])
def test_the_paired_interval_holds_the_true_difference_about_95_percent_of_the_time(
    n: int, p1: float, p2: float, rho: float
) -> None:
    rng = np.random.default_rng(n)
    held = 0
    for _ in range(1000):
        d = paired(*_paired_counts(rng, n, p1, p2, rho))
        assert d is not None
        held += d.lower <= p2 - p1 <= d.upper
    assert 930 <= held <= 985, held


@pytest.mark.parametrize(("n", "p"), [(150, 0.8), (2000, 0.7)])
def test_the_unpaired_interval_holds_the_true_difference_about_95_percent_of_the_time(n: int, p: float) -> None:
    rng = np.random.default_rng(n)
    held = sum(
        (d := unpaired(int(rng.binomial(n, p)), n, int(rng.binomial(n // 2, p + 0.03)), n // 2)) is not None
        and d.lower <= 0.03 <= d.upper
        for _ in range(1000)
    )
    assert 930 <= held <= 985, held


def test_mcnemars_exact_test_keeps_its_false_alarm_rate_and_pairing_sees_more() -> None:
    rng = np.random.default_rng(3)
    same = [paired(*_paired_counts(rng, 500, 0.85, 0.85, 0.8)) for _ in range(1000)]
    assert sum(d is not None and d.p_value < 0.05 for d in same) <= 55  # at most the 5 % it allows (+ noise)
    # a 2-point gain on 2,000 labelled requests: the shadow (paired) finds it far more often
    # than a split would on the same number of labels
    found_paired = found_split = 0
    for _ in range(300):
        d = paired(*_paired_counts(rng, 2000, 0.85, 0.87, 0.85))
        found_paired += d is not None and d.p_value < 0.05
        s = unpaired(int(rng.binomial(1000, 0.85)), 1000, int(rng.binomial(1000, 0.87)), 1000)
        found_split += s is not None and s.p_value < 0.05
    assert found_paired > 2 * found_split, (found_paired, found_split)


def test_the_paired_p_value_is_mcnemars_exact_binomial_and_edges_are_safe() -> None:
    d = paired(36, 2, 12, 0)
    assert d is not None and d.value == pytest.approx(0.2) and d.paired
    assert d.p_value == pytest.approx(stats.binomtest(2, 14, 0.5).pvalue)
    assert d.lower < 0.2 < d.upper
    agree = paired(50, 0, 0, 10)
    assert agree is not None and agree.p_value == 1.0 and agree.value == 0.0
    assert paired(0, 0, 0, 0) is None
    everything = paired(0, 0, 30, 0)
    assert everything is not None and everything.upper <= 1.0 and everything.lower > 0.8


def test_comparison_points_take_their_confidence_and_compare_recall_on_the_positive_requests() -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.metrics.comparison import Side, comparison_points

    start = datetime(2026, 12, 1, tzinfo=UTC)
    champion = Side("1", 1000, labelled=1000, correct=800, positives=400, true_positives=300)
    challenger = Side("2", 1000, labelled=1000, correct=850, positives=400, true_positives=340)
    points = {
        (p.metric, c): p
        for c in (0.95, 0.99)
        for p in comparison_points(champion, challenger, None, c, start, start + timedelta(hours=1))
    }
    narrow, wide = points[("comparison.accuracy", 0.95)], points[("comparison.accuracy", 0.99)]
    assert wide.details["lower"] < narrow.details["lower"] and wide.details["upper"] > narrow.details["upper"]
    assert narrow.details["confidence"] == 0.95 and narrow.value == pytest.approx(0.05)
    recall = points[("comparison.recall", 0.95)]
    assert recall.value == pytest.approx(0.1) and recall.details["paired"] is False and recall.sample_size == 800
    pairs = {
        "pairs": 1000,
        "agree": 900,
        "both_right": 780,
        "champion_only": 20,
        "challenger_only": 70,
        "both_wrong": 130,
    }
    pairs |= {
        "positive_both_right": 290,
        "positive_champion_only": 10,
        "positive_challenger_only": 50,
        "positive_both_wrong": 50,
    }
    shadow = {
        p.metric: p for p in comparison_points(champion, challenger, pairs, 0.95, start, start + timedelta(hours=1))
    }
    assert shadow["comparison.recall"].details["paired"] is True and shadow["comparison.recall"].sample_size == 400
    assert shadow["comparison.recall"].value == pytest.approx((50 - 10) / 400)
    assert shadow["comparison.accuracy"].value == pytest.approx((70 - 20) / 1000)
