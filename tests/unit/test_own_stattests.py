"""The stat tests of this project's own that the calibrated profile decides with, each against an
independent computation: Anderson-Darling (scipy's statistic, the limiting distribution, its
false-alarm rate), the Wasserstein distance on the reference's quantile scale (its invariances
and its summary form), the categories' test (its false-alarm rate at few and many levels, its
power for a move in one level) and the largest share change."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.stats._morestats import _anderson_ksamp_midrank

from monitor.metrics import anderson_darling
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, reference_summary, summary_from_json
from monitor.metrics.stattests import (
    FeatureKind,
    categories_p_value,
    drift_from_summaries,
    homogeneity_p_value,
    hypergeom_tails,
    largest_share_p_value,
    test_drift,
)


def on_reference_edges(ref: np.ndarray, cur: np.ndarray) -> tuple[NumericSummary, NumericSummary]:
    r = summary_from_json(reference_summary(ref.tolist(), numerical=True))
    assert isinstance(r, NumericSummary)
    return r, NumericSummary.of(cur, r.edges)


# -- Anderson-Darling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draw",
    [
        lambda r: (r.normal(0, 1, 300), r.normal(0.2, 1.1, 200)),
        lambda r: (r.poisson(2, 300).astype(float), r.poisson(2.3, 120).astype(float)),  # ties
        lambda r: (r.lognormal(0, 2, 50), r.lognormal(0, 2, 500)),
    ],
)
def test_anderson_statistic_is_scipy_s_for_tied_values(draw) -> None:  # type: ignore[no-untyped-def]
    x, y = draw(np.random.default_rng(1))
    pooled = np.sort(np.concatenate([x, y]))
    values = np.unique(pooled)
    theirs = _anderson_ksamp_midrank([x, y], pooled, values, 2, np.array([len(x), len(y)]), len(pooled))
    ours = anderson_darling.statistic(
        np.array([np.sum(x == v) for v in values]), np.array([np.sum(y == v) for v in values])
    )
    assert ours == pytest.approx(theirs, rel=1e-12)


def _imhof_sf(x: float) -> float:
    """P(A > x) of sum_j chi2_1 / (j (j + 1)), by Imhof's inversion (400 terms, the rest as its mean)."""
    lam = 1.0 / (np.arange(1, 401) * np.arange(2, 402))
    y = x - (1.0 - lam.sum())

    def f(u: float) -> float:
        return float(
            np.sin(0.5 * np.arctan(lam * u).sum() - 0.5 * y * u) / (u * np.exp(0.25 * np.log1p((lam * u) ** 2).sum()))
        )

    return 0.5 + integrate.quad(f, 0, np.inf, limit=2000, epsabs=1e-13)[0] / np.pi


@pytest.mark.parametrize("x", [0.35, 1.0, 1.933, 2.492, 3.857, 5.05, 6.0, 7.5, 10.0, 14.0])
def test_anderson_limit_is_the_inverted_characteristic_function(x: float) -> None:
    # between table points and beyond the table alike, within 1 % (the classic critical values:
    # 1.933 -> 0.10, 2.492 -> 0.05, 3.857 -> 0.01)
    assert anderson_darling.limit_sf(x) == pytest.approx(_imhof_sf(x), rel=0.01)


@pytest.mark.calibration
@pytest.mark.parametrize(
    ("n_ref", "n_cur", "shape"),
    [(800, 800, "normal"), (5_000, 50, "lognormal"), (200, 50, "pareto"), (20_000, 5_000, "normal")],
)
def test_anderson_on_summaries_flags_no_drift_at_the_rate_it_claims(n_ref: int, n_cur: int, shape: str) -> None:
    draw = {
        "normal": lambda r, n: r.normal(0, 1, n),
        "lognormal": lambda r, n: r.lognormal(0, 2, n),
        "pareto": lambda r, n: r.pareto(1.5, n),
    }[shape]
    windows = 600
    p = np.array(
        [
            drift_from_summaries(*on_reference_edges(draw(rng, n_ref), draw(rng, n_cur)), test="anderson").score
            for rng in map(np.random.default_rng, range(windows))
        ]
    )
    # 3 binomial standard errors around the nominal rate; well below it would be a test that
    # throws away power, above it one that pages on noise
    for alpha in (0.1, 0.05, 0.01):
        se = np.sqrt(alpha * (1 - alpha) / windows)
        assert alpha - 3 * se <= np.mean(p < alpha) <= alpha + 3 * se, (alpha, np.mean(p < alpha))


@pytest.mark.calibration
def test_anderson_finds_a_small_shift_ks_misses() -> None:
    """+0.2 sd, 800 rows a side, at the level one feature of 20 gets (0.05 / 20)."""
    found = {"anderson": 0, "ks": 0}
    for seed in range(100):
        rng = np.random.default_rng(seed)
        r, c = on_reference_edges(rng.normal(0, 1, 800), rng.normal(0.2, 1, 800))
        for test in found:
            found[test] += drift_from_summaries(r, c, test=test).score < 0.0025
    assert found["anderson"] >= found["ks"] + 10, found


# -- Wasserstein on the reference's quantile scale -----------------------------------------------


def _qw(ref: np.ndarray, cur: np.ndarray) -> float:
    return test_drift(ref, cur, FeatureKind.numerical, test="quantile_wasserstein").score


def test_quantile_wasserstein_does_not_see_units_or_tails() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 2, 20_000), rng.normal(0.5, 2, 20_000)
    d = _qw(x, y)
    # a monotone transform of both (a heavy tail, a change of units) leaves it unchanged
    assert _qw(np.exp(x), np.exp(y)) == pytest.approx(d, rel=1e-12)
    assert _qw(1000 * x - 7, 1000 * y - 7) == pytest.approx(d, rel=1e-12)
    # a normal's mean shift of 0.25 sd: the integral of |Phi(z - 0.25) - Phi(z)| phi(z)
    exact = integrate.quad(lambda z: abs(stats.norm.cdf(z - 0.25) - stats.norm.cdf(z)) * stats.norm.pdf(z), -9, 9)[0]
    assert d == pytest.approx(exact, abs=0.01)
    assert _qw(x, x) == 0.0 and _qw(x, x + 100) == pytest.approx(0.5) and _qw(x, x - 100) == pytest.approx(0.5)


def test_quantile_wasserstein_of_a_count_spreads_each_value_over_its_share() -> None:
    """Poisson 0.3 -> 0.45: the CDF differences at 0, 1, 2, ... each weighed by the reference's
    share there (linear across it)."""
    ref = np.repeat([0.0, 1.0, 2.0], [700, 250, 50])
    cur = np.repeat([0.0, 1.0, 2.0, 3.0], [600, 300, 80, 20])
    # u from 0 to 0.7: d from 0 to -0.1; 0.7 to 0.95: -0.1 to -0.05; 0.95 to 1: -0.05 to -0.02
    # (the 3s are beyond the reference: a step at u = 1)
    expected = 0.7 * 0.05 + 0.25 * 0.075 + 0.05 * 0.035
    assert _qw(ref, cur) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shape", ["normal", "lognormal", "pareto", "mostly_zero"])
def test_quantile_wasserstein_on_summaries_is_the_sample_s(shape: str) -> None:
    draw = {
        "normal": lambda r, n, s: r.normal(s, 1, n),
        "lognormal": lambda r, n, s: r.lognormal(s, 2, n),
        "pareto": lambda r, n, s: (1 + s) * (r.pareto(1.5, n) + 1),
        "mostly_zero": lambda r, n, s: np.where(r.random(n) < 0.8 - s / 4, 0.0, r.exponential(5, n)),
    }[shape]
    for seed, shift in enumerate((0.0, 0.1, 0.3)):
        rng = np.random.default_rng(seed)
        ref, cur = draw(rng, 20_000, 0.0), draw(rng, 5_000, shift)
        summary = drift_from_summaries(*on_reference_edges(ref, cur), test="quantile_wasserstein").score
        assert summary == pytest.approx(_qw(ref, cur), abs=0.001)


# -- categories ---------------------------------------------------------------------------------


def _moved(p: np.ndarray, points: float) -> np.ndarray:
    q = p.copy()
    q[0] += points
    q[1:] *= (p[1:].sum() - points) / p[1:].sum()
    return q


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "levels", "shape"),
    [(800, 800, 2, "equal"), (10_000, 10_000, 5, "equal"), (800, 10_000, 50, "zipf"), (5_000, 50, 200, "zipf")],
)
def test_the_categories_test_flags_no_drift_at_most_at_the_rate_it_claims(
    n_ref: int, n_cur: int, levels: int, shape: str
) -> None:
    p = np.ones(levels) if shape == "equal" else 1.0 / np.arange(1, levels + 1)
    p /= p.sum()
    windows = 400
    flagged = 0
    for seed in range(windows):
        rng = np.random.default_rng(seed)
        flagged += categories_p_value(rng.multinomial(n_ref, p), rng.multinomial(n_cur, p)) < 0.05
    assert flagged / windows <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / windows), flagged / windows


@pytest.mark.calibration
def test_a_move_in_one_of_200_levels_is_found_where_the_chi_square_is_blind() -> None:
    p = 1.0 / np.arange(1, 201)
    p /= p.sum()
    rng = np.random.default_rng(7)
    ref, cur = rng.multinomial(10_000, p), rng.multinomial(10_000, _moved(p, 0.05))
    assert homogeneity_p_value(ref, cur) > 0.001  # diluted over 199 degrees of freedom
    assert largest_share_p_value(ref, cur) < 1e-12 and categories_p_value(ref, cur) < 1e-12


def test_two_categories_are_one_exact_test() -> None:
    ref, cur = np.array([480, 520]), np.array([430, 570])
    tails = stats.hypergeom(2000, 910, 1000)
    exact = 2 * min(tails.cdf(430), tails.sf(429))
    assert largest_share_p_value(ref, cur) == pytest.approx(exact, rel=1e-12)
    assert categories_p_value(ref, cur) == largest_share_p_value(ref, cur)
    # the same count in the other category is the same test
    assert largest_share_p_value(ref[::-1], cur[::-1]) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("test", ["categories_2samp", "largest_share_change"])
def test_categorical_summaries_and_raw_values_agree(test: str) -> None:
    rng = np.random.default_rng(11)
    levels = np.array([f"c{i}" for i in range(12)], dtype=object)
    ref, cur = rng.choice(levels, 3000), rng.choice(levels, 900, p=_moved(np.full(12, 1 / 12), 0.04))
    raw = test_drift(ref, cur, FeatureKind.categorical, test=test)
    summarised = drift_from_summaries(
        CategoricalSummary.of(ref.tolist()), CategoricalSummary.of(cur.tolist()), test=test
    )
    assert summarised.score == pytest.approx(raw.score, rel=1e-9)
    if test == "largest_share_change":
        shares = [(np.mean(ref == v), np.mean(cur == v)) for v in levels]
        assert raw.score == pytest.approx(max(abs(a - b) for a, b in shares), rel=1e-12)


def test_anderson_on_summaries_is_the_sample_s_where_the_edges_are_the_values() -> None:
    rng = np.random.default_rng(21)
    ref, cur = rng.binomial(40, 0.3, 4000).astype(float), rng.binomial(40, 0.32, 1500).astype(float)
    cur = cur[np.isin(cur, ref)]  # every current value is one of the reference's, so an edge
    raw = test_drift(ref, cur, FeatureKind.numerical, test="anderson").score
    assert drift_from_summaries(*on_reference_edges(ref, cur), test="anderson").score == pytest.approx(raw, rel=1e-12)
    assert raw < 0.01


def test_the_hypergeometric_tails_are_scipy_s() -> None:
    rng = np.random.default_rng(31)
    for _ in range(20):
        population = int(rng.integers(50, 200_000))
        draws = int(rng.integers(1, population))
        totals = np.minimum(rng.integers(1, population // 5 + 2, 40), population)
        drawn = np.array([rng.hypergeometric(t, population - t, draws) if t < population else draws for t in totals])
        drawn[:5] = np.clip(drawn[:5] + (totals[:5] * draws // population) // 3 + 5, 0, np.minimum(totals[:5], draws))
        theirs = stats.hypergeom(population, totals, draws)
        far = np.where(drawn >= totals * draws / population, theirs.sf(drawn - 1), theirs.cdf(drawn))
        assert hypergeom_tails(totals, drawn, draws, population) == pytest.approx(far, rel=1e-8)
