"""Drift stat tests, one registry entry per test, with Evidently's definitions and defaults.

A user who knows Evidently gets the numbers they expect: the same formulas (including
Evidently's binning and its zero-filling for PSI and KL), the same thresholds (p < 0.05 for
the p-value tests, >= 0.1 for the distances) and the same default choice of test by
reference size, feature type and number of distinct values (``default_stattest``).
Tests of this project's own, which Evidently does not have, are said so where registered:
``chisquare_2samp`` (a two-sample chi-square whose false-alarm rate is the one it claims),
``anderson`` (two-sample Anderson-Darling), ``categories_2samp`` (chi-square or the largest move
of one category), ``quantile_wasserstein`` (Wasserstein on the reference's quantile scale) and
``largest_share_change``: the calibrated profile's tests and effect sizes.

On top, ``benjamini_hochberg`` controls the false-discovery rate across the p-value tests
of one window, which none of the popular open libraries offers: with 50 features and no
drift at all, plain p < 0.05 flags two or three of them on average in every window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from math import sqrt
from typing import Literal

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

from monitor.domain.monitoring import STAT_TESTS
from monitor.metrics import anderson_darling, bucket_tests
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, Summary


class FeatureKind(StrEnum):
    numerical = "numerical"
    categorical = "categorical"  # booleans are tested as categories, as Evidently does


# on two samples (missing values dropped)
TestFunc = Callable[[np.ndarray, np.ndarray, FeatureKind], float]
# on the two samples' shares per bucket or category, and their sizes (reference, current)
SharesFunc = Callable[[np.ndarray, np.ndarray, int, int], float]
# on two numerical summaries on the same edges
NumericSummaryFunc = Callable[[NumericSummary, NumericSummary, bucket_tests.SummaryOptions], float]


@dataclass(frozen=True)
class StatTest:
    """One test, in both forms: on samples (``func``) and on summaries (``numeric_summary`` for
    a numerical feature's buckets where the test has one; else ``shares``, the formula the test
    applies to shares per bucket or category, which ``func`` applies too)."""

    name: str
    display_name: str
    kind: Literal["p_value", "distance"]
    default_threshold: float
    applies_to: frozenset[FeatureKind]
    func: TestFunc
    shares: SharesFunc | None = None
    numeric_summary: NumericSummaryFunc | None = None
    # Evidently's KS calls drift at p <= threshold; its other p-value tests at p < threshold.
    inclusive: bool = False

    def on_summaries(self, ref: Summary, cur: Summary, opts: bucket_tests.SummaryOptions) -> float:
        if isinstance(ref, NumericSummary) and self.numeric_summary is not None:
            assert isinstance(cur, NumericSummary)
            return self.numeric_summary(ref, cur, opts)
        if self.shares is None:
            raise ValueError(f"{self.name} has no summary form for categories")
        r, c = bucket_tests.shares(ref, cur)
        return self.shares(r, c, ref.n, cur.n)

    def drifted(self, score: float, threshold: float | None = None) -> bool:
        t = self.default_threshold if threshold is None else threshold
        if self.kind == "p_value":
            return bool(score <= t if self.inclusive else score < t)
        return bool(score >= t)


REGISTRY: dict[str, StatTest] = {}


def register(test: StatTest) -> StatTest:
    if test.name in REGISTRY:
        raise ValueError(f"stat test {test.name!r} is registered twice")
    if test.name not in STAT_TESTS:  # configurations are validated against that list
        raise ValueError(f"stat test {test.name!r} is not in monitor.domain.monitoring.STAT_TESTS")
    REGISTRY[test.name] = test
    return test


def get_stattest(name: str) -> StatTest:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown stat test {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


# -- shared pieces ---------------------------------------------------------------------------


def _keys(ref: np.ndarray, cur: np.ndarray) -> list[object]:
    """The values seen in either sample, in a fixed order (Evidently's keys)."""
    return sorted(set(np.unique(ref).tolist()) | set(np.unique(cur).tolist()), key=repr)


def _counts(values: np.ndarray, keys: Sequence[object]) -> np.ndarray:
    uniq, counts = np.unique(values, return_counts=True)
    by_key = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    return np.array([by_key.get(k, 0) for k in keys], dtype=float)


def _shares(values: np.ndarray, keys: Sequence[object]) -> np.ndarray:
    return _counts(values, keys) / len(values)


def _fill_zeroes(p: np.ndarray) -> np.ndarray:
    """Evidently's guard against log(0): empty buckets get a tiny share."""
    p = p.copy()
    smallest = p[p != 0].min()
    p[p == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return p


def binned_shares(
    ref: np.ndarray, cur: np.ndarray, kind: FeatureKind, fill_zeroes: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Shares per bucket as Evidently bins them: Sturges bins over both samples for numerical
    features with more than 20 distinct reference values, else one bucket per distinct value."""
    if kind is FeatureKind.numerical and len(np.unique(ref)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r = np.histogram(ref, edges)[0] / len(ref)
        c = np.histogram(cur, edges)[0] / len(cur)
    else:
        keys = _keys(ref, cur)
        r, c = _shares(ref, keys), _shares(cur, keys)
    if fill_zeroes:
        r, c = _fill_zeroes(r), _fill_zeroes(c)
    return r, c


# -- the tests ----------------------------------------------------------------------------------


def ks(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    return float(stats.ks_2samp(ref, cur).pvalue)


def anderson(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    """Two-sample Anderson-Darling p-value (``monitor.metrics.anderson_darling``), each distinct
    value a group."""
    values = np.unique(np.concatenate([ref, cur])).tolist()
    return anderson_darling.p_value(_counts(ref, values), _counts(cur, values))


def chisquare_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    # A category the reference never had makes the statistic infinite and p = 0, as in Evidently.
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(stats.chisquare(c * n_cur, r * n_cur).pvalue)


def chisquare(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    keys = _keys(ref, cur)
    return chisquare_shares(_shares(ref, keys), _shares(cur, keys), len(ref), len(cur))


# Tables with an expected count under this take the conditional (permutation) test, by simulation.
_MIN_EXPECTED = 5.0
_DRAWS = 9_999  # the smallest p-value it can give is 1e-4
# Drawing stops once this many drawn tables were at least as extreme as the observed one (Besag
# and Clifford's sequential rule): a window with no change, the usual one, is settled in a few
# hundred draws instead of 9,999 (a 200-level category against a 50,000-row reference took 0.5 s
# a window, 2,000 levels 5.8 s).
_EXCEEDANCES = 50
_BATCH = 500


def _table(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Two samples' counts per category as whole numbers, the categories neither sample has left
    out; None when there is nothing to test (under two categories, or an empty sample)."""
    # rounded, not truncated: counts rebuilt from shares (15/22 * 22) fall a hair below the integer
    ref = np.rint(np.asarray(ref_counts, dtype=float)).astype(np.int64)
    cur = np.rint(np.asarray(cur_counts, dtype=float)).astype(np.int64)
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    if len(ref) < 2 or ref.sum() == 0 or cur.sum() == 0:
        return None
    return ref, cur


def homogeneity_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Chi-square test of homogeneity of two samples' counts per category: did both come from one
    distribution? Both samples' sizes enter its variance, unlike ``chisquare``, which takes the
    reference's shares as exact and so flags a quarter to a half of no-drift windows between two
    samples of 800. A category only one sample has is a count like any other, not p = 0.

    The statistic is Pearson's on the 2 x k table. Where every expected count is at least 5 its
    p-value is the chi-square distribution's; otherwise it is the share of tables, drawn with the
    same category totals and sample sizes as the observed one (multivariate hypergeometric: every
    way of splitting the pooled rows into the two samples equally likely), whose statistic is at
    least the observed, which holds its error rate whatever the counts (a fixed seed keeps it
    repeatable)."""
    table = _table(ref_counts, cur_counts)
    if table is None:
        return 1.0
    ref_counts, cur_counts = table
    totals = ref_counts + cur_counts
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    n = n_ref + n_cur
    exp_ref, exp_cur = totals * (n_ref / n), totals * (n_cur / n)

    def statistic(cur: np.ndarray) -> np.ndarray:
        chi2: np.ndarray = np.sum((cur - exp_cur) ** 2 / exp_cur + (totals - cur - exp_ref) ** 2 / exp_ref, axis=-1)
        return chi2

    observed = float(statistic(cur_counts))
    if min(exp_ref.min(), exp_cur.min()) >= _MIN_EXPECTED:
        return float(stats.chi2.sf(observed, len(totals) - 1))
    return _simulated_p_value(statistic, observed, totals, n_cur)


def _simulated_p_value(
    statistic: Callable[[np.ndarray], np.ndarray], observed: float, totals: np.ndarray, n_cur: int
) -> float:
    """The share of tables drawn with the observed margins whose statistic is at least the
    observed: (1 + k) / (1 + 9,999) after every draw, or h / l when the h-th such table
    (``_EXCEEDANCES``) came at draw l, sooner. Both are valid p-values (Besag & Clifford, 1991,
    "Sequential Monte Carlo p-values"): under no change, P(p <= a) <= a. The second is at least
    h / 9,999 = 0.005; a p-value near a decision threshold (0.005 to 0.05) comes from 1,000 to
    9,999 draws, a large one from a few hundred."""
    rng = np.random.default_rng(0)
    at_least = drawn = 0
    while drawn < _DRAWS:
        size = min(_BATCH, _DRAWS - drawn)
        hits = statistic(rng.multivariate_hypergeometric(totals, n_cur, size=size)) >= observed * (1 - 1e-12)
        found = int(hits.sum())
        if at_least + found >= _EXCEEDANCES:
            last = drawn + int(np.flatnonzero(hits)[_EXCEEDANCES - at_least - 1]) + 1
            return _EXCEEDANCES / last
        at_least, drawn = at_least + found, drawn + size
    return (1 + at_least) / (_DRAWS + 1)


def homogeneity_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    return homogeneity_p_value(r * n_ref, c * n_cur)  # shares of whole counts: the counts back


def chisquare_two_sample(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    keys = _keys(ref, cur)
    return homogeneity_p_value(_counts(ref, keys), _counts(cur, keys))


def largest_share_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Did any one category's share move? Each category's count in the current sample, given its
    total over both samples, is hypergeometric when nothing changed (every way of splitting the
    pooled rows equally likely), so its two-sided p-value is exact at any count (twice the smaller
    tail); the smallest over the k categories, times k (Bonferroni), is the answer. Where
    Pearson's statistic spreads a move of one category over k - 1 degrees of freedom, this test
    sees it undiluted: a 5-point move of the top level of 200 at 10,000 rows a side is p < 1e-15
    here and p ~ 0.3 there. With two categories both counts are one test (Fisher's exact)."""
    table = _table(ref_counts, cur_counts)
    if table is None:
        return 1.0
    ref_counts, cur_counts = table
    totals = ref_counts + cur_counts
    n_cur = int(cur_counts.sum())
    tails = hypergeom_tails(totals, cur_counts, n_cur, int(totals.sum()))
    tests = 1 if len(totals) == 2 else len(totals)
    return float(min(1.0, 2 * tests * float(tails.min())))


# A tail is summed from the observed count outward over this many standard deviations (and a
# few terms more): past 10 the terms are below 1e-20 of the largest.
_TAIL_SDS = 10


def hypergeom_tails(totals: np.ndarray, drawn: np.ndarray, draws: int, population: int) -> np.ndarray:
    """For each category, the tail of Hypergeometric(population, total, draws) beyond the count
    drawn, on the far side of the mean: P(X >= drawn) when drawn is at least the mean, else
    P(X <= drawn). Exact: the probabilities summed term by term from log-gamma, outward from the
    count over ten standard deviations, so the cost grows with the square root of the counts
    (scipy's ``hypergeom`` took ~0.2 ms a category: 0.35 s for 2,000 categories)."""
    t = np.asarray(totals, dtype=np.int64)
    c = np.asarray(drawn, dtype=np.int64)
    low, high = np.maximum(0, draws - (population - t)), np.minimum(t, draws)
    share = draws / population
    mean = t * share
    sd = np.sqrt(t * share * (1 - share) * (population - t) / max(population - 1, 1))
    width = np.ceil(_TAIL_SDS * sd).astype(np.int64) + 10
    upper = c >= mean
    first = np.where(upper, c, np.maximum(low, c - width))
    last = np.where(upper, np.minimum(high, c + width), c)
    sizes = np.maximum(last - first + 1, 0)
    level = np.repeat(np.arange(len(t)), sizes)
    x = (np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes) + first[level]).astype(float)
    tk = t[level].astype(float)
    log_pmf = (
        _log_choose(tk, x) + _log_choose(population - tk, draws - x) - _log_choose(float(population), float(draws))
    )
    tails: np.ndarray = np.minimum(np.bincount(level, np.exp(log_pmf), minlength=len(t)), 1.0)
    return tails


def _log_choose(n: np.ndarray | float, k: np.ndarray | float) -> np.ndarray:
    out: np.ndarray = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return out


def categories_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Did the categories' shares change, broadly (the chi-square of homogeneity) or in one
    category (``largest_share_p_value``)? The smaller p-value of the two, doubled (Bonferroni): as
    valid as either, with the power of the better one for the change at hand. With two
    categories the two ask the same question, and the exact one answers.

    The chi-square here needs no drawn tables: categories too rare for its distribution (an
    expected count under 5) are pooled into one, chosen by their totals over both samples, which
    a change cannot steer (every split of the pooled rows is as likely under no change), so its
    distribution holds; a move inside the rare ones is the largest-share test's to find. It costs
    ~1 ms at any number of categories (the simulated one up to seconds near a threshold)."""
    table = _table(ref_counts, cur_counts)
    if table is None:
        return 1.0
    one = largest_share_p_value(*table)
    if len(table[0]) == 2:
        return one
    return float(min(1.0, 2 * min(one, _pooled_homogeneity_p_value(*table))))


def _pooled_homogeneity_p_value(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Pearson's chi-square of homogeneity with the rare categories pooled: the categories, rarest
    first by total, go into one pool until its expected counts, and every category's left
    outside it, are at least 5. ``ref_counts``, ``cur_counts``: a ``_table``."""
    totals = ref_counts + cur_counts
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    smaller = min(n_ref, n_cur) / (n_ref + n_cur)  # the expected count of a total t is t * smaller
    order = np.argsort(totals, kind="stable")
    rare = 0
    while rare < len(order) and totals[order[rare]] * smaller < _MIN_EXPECTED:
        rare += 1
    # the pool itself must reach 5 too: the next rarest categories join it until it does
    while 0 < rare < len(order) and totals[order[:rare]].sum() * smaller < _MIN_EXPECTED:
        rare += 1
    pooled_ref = np.append(ref_counts[order[rare:]], ref_counts[order[:rare]].sum()) if rare else ref_counts
    pooled_cur = np.append(cur_counts[order[rare:]], cur_counts[order[:rare]].sum()) if rare else cur_counts
    return homogeneity_p_value(pooled_ref, pooled_cur)  # a pool of everything: 1.0 there


def categories_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    return categories_p_value(r * n_ref, c * n_cur)


def categories_two_sample(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    keys = _keys(ref, cur)
    return categories_p_value(_counts(ref, keys), _counts(cur, keys))


def largest_share_change_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    """The largest move of one category's share (0 to 1): 0.05 when a category went from 30 % of
    the rows to 35 %, however many categories there are, which a distance over all of them
    (Jensen-Shannon, PSI) sees diluted, and without the bias their sum of many small noisy
    differences has at many levels."""
    return float(np.max(np.abs(r - c))) if len(r) else 0.0


def largest_share_change(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    keys = _keys(ref, cur)
    return largest_share_change_shares(_shares(ref, keys), _shares(cur, keys), len(ref), len(cur))


def quantile_wasserstein(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    """``bucket_tests.quantile_wasserstein`` on summaries whose edges are every reference value:
    exact."""
    edges = np.unique(ref)
    return bucket_tests.quantile_wasserstein(
        NumericSummary.of(ref, edges), NumericSummary.of(cur, edges), bucket_tests.SummaryOptions()
    )


def z_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    """Two-proportion Z-test on the share of values other than the first key."""
    if len(r) == 1:
        return 1.0
    p1, p2 = 1 - r[0], 1 - c[0]
    pooled = (p1 * n_ref + p2 * n_cur) / (n_ref + n_cur)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def z_proportions(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    keys = _keys(ref, cur)
    return z_shares(_shares(ref, keys), _shares(cur, keys), len(ref), len(cur))


def wasserstein_norm(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    norm = max(float(np.std(ref)), 0.001)
    return float(stats.wasserstein_distance(ref, cur) / norm)


def jensenshannon_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    return float(distance.jensenshannon(r, c))


def psi_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    r, c = _fill_zeroes(r), _fill_zeroes(c)
    return float(np.sum((r - c) * np.log(r / c)))


def kl_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    return float(stats.entropy(_fill_zeroes(r), _fill_zeroes(c)))


def hellinger_shares(r: np.ndarray, c: np.ndarray, n_ref: int, n_cur: int) -> float:
    return sqrt(1 - float(np.clip(np.sum(np.sqrt(r * c)), 0, 1)))


def _on_binned_shares(formula: SharesFunc) -> TestFunc:
    """The sample form of a test on Evidently's binned shares (``binned_shares``)."""

    def test(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
        r, c = binned_shares(ref, cur, kind, fill_zeroes=False)
        return formula(r, c, len(ref), len(cur))

    return test


def hellinger(ref: np.ndarray, cur: np.ndarray, kind: FeatureKind) -> float:
    if kind is FeatureKind.categorical:
        keys = _keys(ref, cur)
        return hellinger_shares(_shares(ref, keys), _shares(cur, keys), len(ref), len(cur))
    edges = np.histogram_bin_edges(np.unique(np.concatenate([ref, cur])), bins="sturges")
    h1 = np.histogram(ref, bins=edges, density=True)[0]
    h2 = np.histogram(cur, bins=edges, density=True)[0]
    width = (edges.max() - edges.min()) / (len(edges) - 1)
    overlap = float(np.sum(np.sqrt(h1 * h2)) * width)
    return sqrt(1 - float(np.clip(overlap, 0, 1)))


_BOTH = frozenset(FeatureKind)
_NUM = frozenset({FeatureKind.numerical})
KS = register(StatTest("ks", "K-S p_value", "p_value", 0.05, _NUM, ks, numeric_summary=bucket_tests.ks, inclusive=True))
ANDERSON = register(
    StatTest(
        "anderson",
        "Anderson-Darling p_value",
        "p_value",
        0.05,
        _NUM,
        anderson,
        numeric_summary=bucket_tests.anderson,
    )
)
CHISQUARE = register(StatTest("chisquare", "chi-square p_value", "p_value", 0.05, _BOTH, chisquare, chisquare_shares))
Z = register(StatTest("z", "Z-test p_value", "p_value", 0.05, _BOTH, z_proportions, z_shares))
CHISQUARE_TWO_SAMPLE = register(
    StatTest(
        "chisquare_2samp",
        "chi-square test of homogeneity p_value",
        "p_value",
        0.05,
        _BOTH,
        chisquare_two_sample,
        homogeneity_shares,
    )
)
CATEGORIES_TWO_SAMPLE = register(
    StatTest(
        "categories_2samp",
        "chi-square or largest share change p_value",
        "p_value",
        0.05,
        _BOTH,
        categories_two_sample,
        categories_shares,
    )
)
QUANTILE_WASSERSTEIN = register(
    StatTest(
        "quantile_wasserstein",
        "Wasserstein distance on the reference's quantile scale",
        "distance",
        0.025,
        _NUM,
        quantile_wasserstein,
        numeric_summary=bucket_tests.quantile_wasserstein,
    )
)
LARGEST_SHARE_CHANGE = register(
    StatTest(
        "largest_share_change",
        "largest change of one value's share",
        "distance",
        0.03,
        _BOTH,
        largest_share_change,
        largest_share_change_shares,
    )
)
WASSERSTEIN = register(
    StatTest(
        "wasserstein",
        "Wasserstein distance (normed)",
        "distance",
        0.1,
        _NUM,
        wasserstein_norm,
        numeric_summary=bucket_tests.wasserstein_norm,
    )
)
JENSENSHANNON = register(
    StatTest(
        "jensenshannon",
        "Jensen-Shannon distance",
        "distance",
        0.1,
        _BOTH,
        _on_binned_shares(jensenshannon_shares),
        jensenshannon_shares,
    )
)
PSI = register(StatTest("psi", "PSI", "distance", 0.1, _BOTH, _on_binned_shares(psi_shares), psi_shares))
KL_DIV = register(
    StatTest("kl_div", "Kullback-Leibler divergence", "distance", 0.1, _BOTH, _on_binned_shares(kl_shares), kl_shares)
)
HELLINGER = register(
    StatTest(
        "hellinger",
        "Hellinger distance (normed)",
        "distance",
        0.1,
        _BOTH,
        hellinger,
        hellinger_shares,
        numeric_summary=bucket_tests.hellinger,
    )
)


def default_stattest(n_reference: int, n_unique: int, kind: FeatureKind) -> StatTest:
    """Evidently's choice. ``n_unique``: distinct values across reference and current together."""
    if n_reference <= 1000:
        if kind is FeatureKind.numerical and n_unique > 5:
            return KS
        return CHISQUARE if n_unique > 2 else Z
    if kind is FeatureKind.numerical and n_unique > 5:
        return WASSERSTEIN
    return JENSENSHANNON


@dataclass(frozen=True)
class DriftResult:
    test: str
    kind: Literal["p_value", "distance"]
    score: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int


def _clean(values: np.ndarray, kind: FeatureKind) -> np.ndarray:
    """Drop missing and infinite values, as Evidently does before testing."""
    if kind is FeatureKind.numerical:
        numbers: np.ndarray = np.asarray(values, dtype=float)
        finite: np.ndarray = numbers[np.isfinite(numbers)]
        return finite
    objects: np.ndarray = np.asarray(values, dtype=object)
    return objects[np.array([v is not None and v == v for v in objects], dtype=bool)] if len(objects) else objects


def test_drift(
    reference: np.ndarray,
    current: np.ndarray,
    kind: FeatureKind,
    test: str | None = None,
    threshold: float | None = None,
) -> DriftResult:
    """Run one feature's drift test on raw samples (missing values dropped first)."""
    ref, cur = _clean(reference, kind), _clean(current, kind)
    if len(ref) == 0 or len(cur) == 0:
        raise ValueError("drift needs at least one non-missing value in both samples")
    if test is None:
        n_unique = len(set(np.unique(ref).tolist()) | set(np.unique(cur).tolist()))
        chosen = default_stattest(len(ref), n_unique, kind)
    else:
        chosen = get_stattest(test)
        if kind not in chosen.applies_to:
            raise ValueError(f"stat test {chosen.name!r} does not apply to {kind.value} features")
    t = chosen.default_threshold if threshold is None else threshold
    score = chosen.func(ref, cur, kind)
    return DriftResult(chosen.name, chosen.kind, score, t, chosen.drifted(score, t), len(ref), len(cur))


test_drift.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def drift_from_summaries(
    ref: Summary,
    cur: Summary,
    *,
    ref_distinct: int | None = None,
    test: str | None = None,
    threshold: float | None = None,
    exact_p_below: float = 1.0,
    exact_p_up_to: int = 10_000,
) -> DriftResult:
    """Drift of one feature from summaries (the registry entry's summary form), choosing the
    test as Evidently would. ``ref_distinct``: distinct reference values (numerical); the default
    choice needs it."""
    if ref.n == 0 or cur.n == 0:
        raise ValueError("drift needs at least one non-missing value in both samples")
    numerical = isinstance(ref, NumericSummary)
    kind = FeatureKind.numerical if numerical else FeatureKind.categorical
    if test is None:
        if isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
            n_unique = max(ref_distinct or 0, cur.distinct_lower_bound())
        else:
            assert isinstance(ref, CategoricalSummary) and isinstance(cur, CategoricalSummary)
            n_unique = len(set(ref.counts) | set(cur.counts))
        chosen = default_stattest(ref.n, n_unique, kind)
    else:
        chosen = get_stattest(test)
        if kind not in chosen.applies_to:
            raise ValueError(f"stat test {chosen.name!r} does not apply to {kind.value} features")
    t = chosen.default_threshold if threshold is None else threshold
    score = chosen.on_summaries(ref, cur, bucket_tests.SummaryOptions(exact_p_below, exact_p_up_to))
    return DriftResult(chosen.name, chosen.kind, score, t, chosen.drifted(score, t), ref.n, cur.n)


def benjamini_hochberg(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Which hypotheses to reject with the false-discovery rate held at ``alpha`` (BH step-up)."""
    if len(p_values) == 0:
        return []
    adjusted = stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
    return [bool(a <= alpha) for a in adjusted]


def dataset_drift(drifted: Sequence[bool], drift_share: float = 0.5) -> tuple[float, bool]:
    """Share of drifted features, and whether it reaches ``drift_share`` (Evidently's DatasetDrift)."""
    if not drifted:
        return 0.0, False
    share = sum(drifted) / len(drifted)
    return share, share >= drift_share
