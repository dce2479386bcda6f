"""Whether each column of a window drifted: the decision rule of a stat-test profile.

``calibrated`` (the default) calls a feature drifted when its change is both *significant* and
*material*: significant when its two-sample test's p-value survives Benjamini-Hochberg across the
window's features at ``alpha``, and material when an effect size reaches its threshold. A small
window then cannot flag noise (its p-values stay large) and a large window cannot flag trivia
(its effect sizes stay small), and the rule is the same at every reference size. Below
``min_sample_size`` rows in the window no decision is made: ``drifted`` is None and the numbers
are still reported.

Which test and which effect size is fixed by the reference, never by the window
(``column_kind``): a continuous feature takes Anderson-Darling and the Wasserstein distance on the
reference's quantile scale (the mean number of reference quantiles the values moved, which no
heavy tail or unit can shrink, at least 0.025: a normal's mean moved by ~0.09 sd); a
numerical one with many equal values takes KS (valid with ties) and the same distance; one with
at most five values, and a categorical one, the categories' test (chi-square, or the largest
move of one category by an exact test, whichever is stronger) and the largest change of one
category's share (at least 3 points).

``evidently`` is Evidently's rule, to the number: its choice of test by reference size (p-value
tests up to 1,000 reference rows, distances above), its thresholds, one test per feature, and
Benjamini-Hochberg only when asked (``fdr``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.profiles import CategoricalSummary, NumericSummary
from monitor.metrics.stattests import REGISTRY, DriftResult, benjamini_hochberg, drift_from_summaries

Profile = Literal["calibrated", "evidently"]

# A numerical column with more distinct values than this is tested as a distribution (KS, normed
# Wasserstein); with fewer, as categories (Evidently's cut-off too).
FEW_VALUES = 5


@dataclass(frozen=True)
class ColumnTest:
    """A column's override: a test (a p-value test or a distance) and its threshold."""

    test: str | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Decision:
    """One column's result, as its metric point carries it. ``value`` is the effect size (the
    calibrated profile) or the Evidently test's score; ``method`` names what it is."""

    value: float
    method: str
    kind: Literal["p_value", "distance"]
    threshold: float
    drifted: bool | None
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    profile: Profile = "calibrated"
    alpha: float = 0.05  # significance, after Benjamini-Hochberg across the window's features
    min_sample_size: int = 100
    fdr: bool = False  # the evidently profile's optional Benjamini-Hochberg


def rule_for(cfg: MonitoringConfig) -> Rule:
    """How the window job decides drift, for features and for regression residuals alike."""
    return Rule(cfg.stattest_profile, cfg.fdr_alpha, cfg.min_sample_size, cfg.fdr)


def decide(
    columns: Mapping[str, tuple[NumericSummary | CategoricalSummary, NumericSummary | CategoricalSummary, int | None]],
    features: set[str],
    rule: Rule,
    overrides: Mapping[str, ColumnTest] | None = None,
) -> dict[str, Decision]:
    """Every column's decision. ``columns``: name -> (reference summary, current summary, the
    reference's distinct values). ``features``: the columns tested together as one family
    (Benjamini-Hochberg); the others (prediction, scores) are tested each at ``alpha``.

    A pure function of its inputs, remembered for the last ``MEMO_SIZE`` distinct ones: windows
    sliding hourly over a quiet stretch hold the same summaries hour after hour (a backfill of
    months), and are decided once."""
    overrides = overrides or {}
    key = (
        tuple(
            (col, _signature(ref), _signature(cur), distinct) for col, (ref, cur, distinct) in sorted(columns.items())
        ),
        frozenset(features),
        rule,
        tuple(sorted(overrides.items())),
        (FEW_VALUES, MAX_TIE_SHARE, EXACT_P_BELOW, EXACT_P_UP_TO),  # the module's own settings, read by the profiles
    )
    with _MEMO_LOCK:
        known = _MEMO.get(key)
        if known is not None:
            _MEMO.move_to_end(key)
    if known is None:
        known = (
            _evidently(columns, features, rule, overrides)
            if rule.profile == "evidently"
            else _calibrated(columns, features, rule, overrides)
        )
        with _MEMO_LOCK:
            _MEMO[key] = known
            while len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    # each caller gets details of its own (a point may add to them)
    return {col: replace(d, details=dict(d.details)) for col, d in known.items()}


MEMO_SIZE = 256
_MEMO: OrderedDict[Any, dict[str, Decision]] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _signature(s: NumericSummary | CategoricalSummary) -> tuple[Any, ...]:
    """Everything a test can read of a summary, hashable."""
    if isinstance(s, NumericSummary):
        return (
            s.edges.tobytes(),
            s.counts.tobytes(),
            s.n,
            s.missing,
            s.non_finite,
            s.total,
            s.total_sq,
            s.low_sum,
            s.high_sum,
            s.minimum,
            s.maximum,
        )
    return (tuple(sorted(s.counts.items())), s.missing)


def _evidently(
    columns: Mapping[str, tuple[Any, Any, int | None]],
    features: set[str],
    rule: Rule,
    overrides: Mapping[str, ColumnTest],
) -> dict[str, Decision]:
    results: dict[str, DriftResult] = {}
    for col, (ref, cur, distinct) in columns.items():
        o = overrides.get(col, ColumnTest())
        results[col] = drift_from_summaries(ref, cur, ref_distinct=distinct, test=o.test, threshold=o.threshold)
    decisions = {c: r.drifted for c, r in results.items()}
    if rule.fdr:
        tested = [c for c in results if c in features and results[c].kind == "p_value"]
        for c, rejected in zip(tested, benjamini_hochberg([results[c].score for c in tested], rule.alpha), strict=True):
            decisions[c] = rejected
    out = {}
    for col, r in results.items():
        details: dict[str, Any] = {"profile": "evidently", "stattest": r.test, "kind": r.kind}
        if rule.fdr and col in features and r.kind == "p_value":
            details["fdr"] = {"alpha": rule.alpha, "unadjusted_drifted": r.drifted}
        out[col] = Decision(r.score, r.test, r.kind, r.threshold, decisions[col], r.n_reference, r.n_current, details)
    return out


ColumnKind = Literal["continuous", "discrete", "few_valued", "categorical"]

# A value holding more than this share of the reference makes a numerical column discrete: the
# Anderson-Darling p-value assumes values that are (nearly) all distinct, KS holds with ties.
MAX_TIE_SHARE = 0.01


def column_kind(ref: NumericSummary | CategoricalSummary, distinct: int | None) -> ColumnKind:
    """How a column is tested, fixed by its reference (its summary and the distinct values stored
    with it): a window's values never switch it, so one stray value of a count cannot move it from
    the categories' test to the distributions'. A reference stored without its distinct count
    falls back to the values its own summary shows.

    - ``categorical``: a categorical feature;
    - ``few_valued``: a numerical one with at most ``FEW_VALUES`` values, tested as categories;
    - ``discrete``: more values, one of them (or one bucket of the summary) more than
      ``MAX_TIE_SHARE`` of the reference: counts, rounded values, a feature mostly zero;
    - ``continuous``: the rest."""
    if isinstance(ref, CategoricalSummary):
        return "categorical"
    seen = distinct if distinct is not None else ref.distinct_lower_bound()
    if seen <= FEW_VALUES:
        return "few_valued"
    if ref.n == 0 or ref.counts.max() > MAX_TIE_SHARE * ref.n:
        return "discrete"
    return "continuous"


# (significance test, effect size) of each kind under the calibrated profile
CALIBRATED_TESTS: dict[ColumnKind, tuple[str, str]] = {
    "continuous": ("anderson", "quantile_wasserstein"),
    "discrete": ("ks", "quantile_wasserstein"),
    "few_valued": ("categories_2samp", "largest_share_change"),
    "categorical": ("categories_2samp", "largest_share_change"),
}


def _tests_for(kind: ColumnKind, override: ColumnTest) -> tuple[str, str]:
    """(significance test, effect size): the override replaces the one of its kind."""
    significance, effect = CALIBRATED_TESTS[kind]
    if override.test is not None:
        if REGISTRY[override.test].kind == "p_value":
            significance = override.test
        else:
            effect = override.test
    return significance, effect


# KS p-values: scipy's exact distribution where it can decide something and is cheap; Smirnov's
# asymptotic one elsewhere (the point says which applies: ``p_exact_below``, ``p_exact_up_to``).
# A p-value above alpha decides nothing, even within Benjamini-Hochberg (its thresholds are at
# most alpha), so above 0.25 (or four times the threshold) the asymptotic one is kept; and the
# exact one costs ~1 ms a feature at 2,000 rows a side but ~17 ms at 10,000 (2.5 s of a
# 500-feature window), where the asymptotic one is within 3 % of it (relative, for p-values
# between 0.001 and 0.3). Evidently's profile keeps scipy's default (exact up to 10,000).
EXACT_P_BELOW = 0.25
EXACT_P_UP_TO = 2_000


def _calibrated(
    columns: Mapping[str, tuple[Any, Any, int | None]],
    features: set[str],
    rule: Rule,
    overrides: Mapping[str, ColumnTest],
) -> dict[str, Decision]:
    tested: dict[str, tuple[DriftResult, DriftResult, float | None, float, ColumnKind]] = {}
    for col, (ref, cur, distinct) in columns.items():
        override = overrides.get(col, ColumnTest())
        kind = column_kind(ref, distinct)
        significance, effect = _tests_for(kind, override)
        # the override's threshold belongs to the test it names
        sig_threshold = override.threshold if significance == override.test else rule.alpha
        eff_threshold = override.threshold if effect == override.test else None
        exact_below = min(1.0, max(EXACT_P_BELOW, 4 * (sig_threshold or rule.alpha)))
        p = drift_from_summaries(
            ref,
            cur,
            ref_distinct=distinct,
            test=significance,
            threshold=sig_threshold,
            exact_p_below=exact_below,
            exact_p_up_to=EXACT_P_UP_TO,
        )
        e = drift_from_summaries(ref, cur, ref_distinct=distinct, test=effect, threshold=eff_threshold)
        tested[col] = (p, e, sig_threshold, exact_below, kind)
    family = [c for c in tested if c in features]
    significant = {c: tested[c][0].drifted for c in tested}  # outside the family: each at alpha
    if family:
        adjusted = benjamini_hochberg([tested[c][0].score for c in family], rule.alpha)
        significant.update(zip(family, adjusted, strict=True))
    out = {}
    for col, (p, e, sig_threshold, exact_below, kind) in tested.items():
        material = e.drifted
        enough = p.n_current >= rule.min_sample_size
        drifted = (significant[col] and material) if enough else None
        details = {
            "profile": "calibrated",
            "column_kind": kind,
            "stattest": e.test,
            "kind": e.kind,
            "p_value": p.score,
            "p_test": p.test,
            "p_exact_below": exact_below if p.test == "ks" else None,
            "p_exact_up_to": EXACT_P_UP_TO if p.test == "ks" else None,
            "alpha": sig_threshold,
            "fdr": col in features,
            "significant": significant[col],
            "effect": e.score,
            "effect_threshold": e.threshold,
            "material": material,
            "min_sample_size": rule.min_sample_size,
        }
        out[col] = Decision(e.score, e.test, e.kind, e.threshold, drifted, p.n_reference, p.n_current, details)
    return out
