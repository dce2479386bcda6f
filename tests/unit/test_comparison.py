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


@pytest.mark.calibration
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


@pytest.mark.calibration
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

    from monitor.metrics.comparison import PAIR_CELL_NAMES, Pairs, Side, comparison_points

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
    pairs |= dict.fromkeys(PAIR_CELL_NAMES, 0) | {"cell_111": 290, "cell_110": 10, "cell_101": 50, "cell_100": 50}
    shadow = {
        p.metric: p
        for p in comparison_points(champion, challenger, Pairs(pairs), 0.95, start, start + timedelta(hours=1))
    }
    assert shadow["comparison.recall"].details["paired"] is True and shadow["comparison.recall"].sample_size == 400
    assert shadow["comparison.recall"].value == pytest.approx((50 - 10) / 400)
    assert shadow["comparison.accuracy"].value == pytest.approx((70 - 20) / 1000)


# -- ROC AUC, precision and F1 ---------------------------------------------------------------------


def _delong_by_definition(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placements straight from their definition, every positive against every
    negative: the AUCs and their covariance."""
    v10, v01 = [], []
    for s in scores.T:
        psi = (s[truth][:, None] > s[~truth][None, :]) + 0.5 * (s[truth][:, None] == s[~truth][None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    cov = np.cov(np.array(v10)) / truth.sum() + np.cov(np.array(v01)) / (~truth).sum()
    return np.array([v.mean() for v in v10]), np.atleast_2d(cov)


def _scored(rng: np.random.Generator, n: int, gain: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n requests, a third positive; two versions' scores, correlated, the challenger's
    separating the classes ``gain`` further; rounded, so that there are ties."""
    truth = rng.random(n) < 1 / 3
    shared = rng.standard_normal(n)
    a = np.round(truth * 1.0 + shared + 0.6 * rng.standard_normal(n), 1)
    b = np.round(truth * (1.0 + gain) + shared + 0.6 * rng.standard_normal(n), 1)
    return truth, a, b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delongs_paired_test_equals_its_definition_and_scikit_learns_auc(seed: int) -> None:
    from sklearn.metrics import roc_auc_score

    from monitor.metrics.comparison import auc_paired

    truth, a, b = _scored(np.random.default_rng(seed), 300, 0.5)
    d = auc_paired(truth, a, b)
    assert d is not None and d.paired and d.n == 300
    aucs, cov = _delong_by_definition(truth, np.column_stack([a, b]))
    assert (d.champion_value, d.challenger_value) == (
        pytest.approx(roc_auc_score(truth, a)),
        pytest.approx(roc_auc_score(truth, b)),
    )
    assert d.value == pytest.approx(aucs[1] - aucs[0])
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert d.upper - d.value == pytest.approx(1.959964 * se, rel=1e-5)
    assert d.p_value == pytest.approx(2 * stats.norm.sf(abs(d.value) / se))


def test_the_unpaired_auc_comes_from_the_score_histograms_as_delong_defines_it() -> None:
    from monitor.metrics.comparison import Placements, auc_unpaired

    rng = np.random.default_rng(4)
    bins = np.linspace(-4, 6, 41)
    sides = []
    for gain in (0.0, 0.8):
        truth, a, _ = _scored(rng, 400, 0.0)
        a = a + gain * truth
        binned = np.digitize(a, bins).astype(float)
        pos, neg = (np.bincount(np.digitize(a[m], bins), minlength=len(bins) + 1) for m in (truth, ~truth))
        placements = Placements.of_histogram(pos, neg)
        assert placements is not None
        aucs, cov = _delong_by_definition(truth, binned[:, None])
        assert placements.auc[0] == pytest.approx(aucs[0]) and placements.covariance()[0, 0] == pytest.approx(cov[0, 0])
        sides.append((placements, aucs[0], cov[0, 0]))
    d = auc_unpaired(sides[0][0], sides[1][0])
    assert d is not None and not d.paired
    assert d.value == pytest.approx(sides[1][1] - sides[0][1])
    assert d.upper - d.value == pytest.approx(1.959964 * np.sqrt(sides[0][2] + sides[1][2]), rel=1e-5)
    assert Placements.of_histogram(np.array([0, 1, 0]), np.array([3, 0, 0])) is None  # one positive


@pytest.mark.calibration
def test_pairing_the_auc_sees_a_gain_a_split_misses() -> None:
    from monitor.metrics.comparison import Placements, auc_paired, auc_unpaired

    rng = np.random.default_rng(6)
    found_paired = found_split = false_alarms = 0
    for _ in range(200):
        truth, a, b = _scored(rng, 600, 0.25)
        d = auc_paired(truth, a, b)
        found_paired += d is not None and d.p_value < 0.05
        half = rng.random(600) < 0.5  # the same requests split between the two
        sides = [
            Placements.of(
                s[m & truth, None], s[m & ~truth, None], np.ones((m & truth).sum()), np.ones((m & ~truth).sum())
            )
            for s, m in ((a, half), (b, ~half))
        ]
        split = auc_unpaired(*sides)
        found_split += split is not None and split.p_value < 0.05
        truth, a, b = _scored(rng, 600, 0.0)
        same = auc_paired(truth, a, b)
        false_alarms += same is not None and same.p_value < 0.05
    assert found_paired > 2 * found_split, (found_paired, found_split)
    assert false_alarms <= 18, false_alarms  # 5 % of 200, and noise


def _cells(rng: np.random.Generator, n: int, tpr: tuple[float, float], fpr: tuple[float, float]) -> list[int]:
    """n labelled pairs, 30 % positive; each version predicts the positive class at its rates,
    the two predictions correlated through a shared draw: the counts of ``PAIR_CELLS``."""
    from monitor.metrics.comparison import PAIR_CELLS

    truth = rng.random(n) < 0.3
    u = rng.random(n)  # shared: what makes a request look positive to both
    noise = rng.random((2, n))
    preds = [np.where(truth, 0.7 * u + 0.3 * noise[i] < tpr[i], 0.7 * u + 0.3 * noise[i] < fpr[i]) for i in (0, 1)]
    return [int(((truth == y) & (preds[0] == c) & (preds[1] == s)).sum()) for y, c, s in PAIR_CELLS]


def _true_ratio(metric: str, tpr: float, fpr: float) -> float:
    tp, fp, fn = 0.3 * tpr, 0.7 * fpr, 0.3 * (1 - tpr)
    return tp / (tp + fp) if metric == "precision" else 2 * tp / (2 * tp + fp + fn)


@pytest.mark.calibration
@pytest.mark.parametrize("paired_cells", [True, False])
def test_precision_and_f1_intervals_hold_the_true_difference_about_95_percent_of_the_time(paired_cells: bool) -> None:
    from monitor.metrics.comparison import ratio_differences

    rng = np.random.default_rng(7)
    # the share of uniform draws under a threshold: 0.7 u + 0.3 v < t has probability F(t)
    u, v = rng.random(2_000_000), rng.random(2_000_000)
    f = lambda t: float((0.7 * u + 0.3 * v < t).mean())  # noqa: E731
    tpr, fpr = (0.6, 0.66), (0.2, 0.22)
    truth = {
        m: _true_ratio(m, f(tpr[1]), f(fpr[1])) - _true_ratio(m, f(tpr[0]), f(fpr[0])) for m in ("precision", "f1")
    }
    held = dict.fromkeys(truth, 0)
    for _ in range(400):
        if paired_cells:
            counts = _cells(rng, 1500, tpr, fpr)
        else:  # two samples of 800, each side's (tp, fp, fn, tn)
            counts = []
            for i in (0, 1):
                c = _cells(rng, 800, (tpr[i], tpr[i]), (fpr[i], fpr[i]))
                tp, fp = c[0] + c[1], c[4] + c[5]  # truth and the first prediction positive; negative truth
                fn, tn = c[2] + c[3], c[6] + c[7]
                counts += [tp, fp, fn, tn]
        out = ratio_differences(counts, paired_cells, 0.95, rng)
        for m, d in out.items():
            held[m] += d.lower <= truth[m] <= d.upper
    for m, k in held.items():
        assert 368 <= k <= 395, (m, k)  # 95 % of 400, and noise


def test_precision_is_left_out_where_a_version_predicts_no_positive() -> None:
    from monitor.metrics.comparison import PAIR_CELL_NAMES, ratio_differences

    cells = dict.fromkeys(PAIR_CELL_NAMES, 0) | {"cell_110": 30, "cell_010": 5, "cell_100": 10, "cell_000": 50}
    out = ratio_differences(list(cells.values()), True, 0.95, np.random.default_rng(0))
    assert "precision" not in out  # the challenger never predicted the positive class
    assert out["f1"].challenger_value == 0.0 and out["f1"].value < 0 and out["f1"].upper < 0


def test_drift_against_one_reference_sets_the_champions_decision_beside_the_challengers() -> None:
    from datetime import UTC, datetime, timedelta

    from monitor.metrics.comparison import drift_against_one_reference
    from monitor.metrics.points import MetricPoint

    t = datetime(2026, 12, 1, tzinfo=UTC)
    end = t + timedelta(days=1)

    def drift(value: float, drifted: bool, feature: str) -> MetricPoint:
        labels = {"feature": feature, "method": "psi"}
        return MetricPoint("feature_drift", t, end, value, 500, labels, drifted=drifted, details={"p_value": 0.5})

    champion = [drift(0.01, False, "tenure"), drift(0.3, True, "plan")]
    challenger = [drift(0.4, True, "tenure"), drift(0.02, False, "autopay")]
    out = {p.labels["feature"]: p for p in drift_against_one_reference(champion, challenger, "1", 7, 0.5)}
    assert set(out) == {"tenure", "autopay"}
    tenure = out["tenure"]
    assert tenure.metric == "comparison.feature_drift" and tenure.labels == {
        "feature": "tenure",
        "method": "psi",
        "champion": "1",
    }
    assert tenure.value == 0.4 and tenure.drifted is True
    assert tenure.details == {
        "p_value": 0.5,
        "reference_id": 7,
        "coverage": 0.5,
        "champion_value": 0.01,
        "champion_drifted": False,
    }
    assert "champion_value" not in out["autopay"].details  # the champion has no such column
