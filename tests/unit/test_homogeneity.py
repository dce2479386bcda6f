"""The two-sample chi-square (``chisquare_2samp``): its false-alarm rate under no drift is the one it
claims, at large and small counts and with unequal samples; it detects real changes; a category
only one sample has is weighed as a count; summaries and raw samples give the same p-value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.metrics.profiles import CategoricalSummary
from monitor.metrics.stattests import FeatureKind, drift_from_summaries, homogeneity_p_value, test_drift

ALPHA = 0.05
WINDOWS = 400  # the false-alarm rate is measured over this many no-drift windows


def _probabilities(k: int, rare: bool) -> np.ndarray:
    p = 0.6 ** np.arange(k) if rare else np.ones(k)  # geometric: the last categories are rare
    return p / p.sum()


@pytest.mark.calibration
@pytest.mark.parametrize(
    ("n_ref", "n_cur", "k", "rare"),
    [
        (800, 800, 5, False),  # the window Evidently's goodness-of-fit chi-square flags 23-46 % of
        (800, 10_000, 10, True),  # a large current window against a small reference, rare categories
        (5_000, 10_000, 2, False),
        (50, 50, 30, True),  # small windows, most expected counts under 5: the simulated test
        (5_000, 30, 50, True),  # a tiny window, many rare categories: the asymptotic test flags 13 %
    ],
)
def test_no_drift_is_flagged_at_the_rate_it_claims(n_ref: int, n_cur: int, k: int, rare: bool) -> None:
    p = _probabilities(k, rare)
    flagged = 0
    for seed in range(WINDOWS):
        rng = np.random.default_rng(seed)
        ref, cur = rng.multinomial(n_ref, p), rng.multinomial(n_cur, p)
        flagged += homogeneity_p_value(ref, cur) < ALPHA
    rate = flagged / WINDOWS
    # 3 binomial standard errors above 5 %; below, a test so conservative it would miss drift
    assert 0.015 <= rate <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / WINDOWS), rate


def test_large_counts_give_the_textbook_contingency_test() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.multinomial(3000, [0.2, 0.3, 0.5]), rng.multinomial(2000, [0.22, 0.3, 0.48])
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False).pvalue
    assert homogeneity_p_value(ref, cur) == pytest.approx(expected, rel=1e-9)


def test_a_change_of_category_shares_is_found() -> None:
    found = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        ref = rng.multinomial(2000, [0.25, 0.25, 0.25, 0.25])
        cur = rng.multinomial(2000, [0.30, 0.25, 0.25, 0.20])  # five points moved
        found += homogeneity_p_value(ref, cur) < ALPHA
    assert found >= 90  # its power there is ~97 %


def test_a_new_category_is_a_count_not_certain_drift() -> None:
    ref = np.array([400, 400, 0])  # the reference never had the third category
    assert homogeneity_p_value(ref, np.array([399, 400, 1])) > ALPHA  # one stray value
    assert homogeneity_p_value(ref, np.array([360, 360, 80])) < 1e-3  # a tenth of the window


def test_one_category_or_an_empty_sample_is_no_evidence() -> None:
    assert homogeneity_p_value(np.array([10, 0]), np.array([7, 0])) == 1.0
    assert homogeneity_p_value(np.array([10, 5]), np.array([0, 0])) == 1.0


def test_the_simulated_p_value_is_repeatable() -> None:
    ref, cur = np.array([3, 1, 0, 2]), np.array([1, 2, 3, 0])
    assert homogeneity_p_value(ref, cur) == homogeneity_p_value(ref, cur)


def test_summaries_and_samples_agree() -> None:
    rng = np.random.default_rng(6)
    ref = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), 700, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(np.array(["a", "b", "c", "e"], dtype=object), 90, p=[0.4, 0.3, 0.25, 0.05])
    raw = test_drift(ref, cur, FeatureKind.categorical, test="chisquare_2samp")
    summarised = drift_from_summaries(CategoricalSummary.of(ref), CategoricalSummary.of(cur), test="chisquare_2samp")
    assert summarised.score == raw.score
    assert summarised.drifted == raw.drifted == (raw.score < ALPHA)


def test_counts_rebuilt_from_shares_are_the_counts() -> None:
    """15 of 22 as a share times 22 is 14.999...: rounded back to 15, not truncated to 14."""
    ref, cur = np.array([15.0, 7.0]), np.array([4.0, 18.0])
    assert homogeneity_p_value(ref / 22 * 22, cur / 22 * 22) == homogeneity_p_value(ref, cur)
    raw = test_drift(
        np.array(["a"] * 15 + ["b"] * 7, dtype=object),
        np.array(["a"] * 4 + ["b"] * 18, dtype=object),
        FeatureKind.categorical,
        test="chisquare_2samp",
    )
    assert raw.score == homogeneity_p_value(ref, cur)


def test_drawing_stops_once_enough_drawn_tables_are_as_extreme() -> None:
    """Besag and Clifford's sequential rule: a table like the reference's is settled as soon as 50
    drawn tables were at least as extreme (p = 50 / draws so far), a changed one takes every draw
    (p = (1 + k) / 10,000); both hold their error rate (the no-drift tests above)."""
    rng = np.random.default_rng(11)
    p = _probabilities(200, rare=True) * 0.5 + 0.5 / 200  # 200 levels, many expected counts under 5
    ref = rng.multinomial(5_000, p)
    settled = homogeneity_p_value(ref, rng.multinomial(1_000, p))
    draws = 50 / settled
    assert draws == pytest.approx(round(draws)) and draws < 2_000, settled
    moved = p.copy()
    moved[:5] *= 4.0
    changed = homogeneity_p_value(ref, rng.multinomial(1_000, moved / moved.sum()))
    assert changed * 10_000 == pytest.approx(round(changed * 10_000)) and changed < 0.005, changed
