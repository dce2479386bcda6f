"""Which drift the model cares about: feature importance and attribution drift. Pure functions.

A feature's importance is the model's mean absolute attribution to it (SHAP values a serving
system logs, averaged over a window or the reference). Two questions follow:

- **Has what the model relies on changed?** SageMaker Clarify's feature-attribution drift: the
  NDCG of the window's ranking of features by importance, judged with the reference's
  importances as the gains (``ndcg``). 1 when the ranking is the reference's; Clarify alarms
  below 0.90.
- **Does a drift matter?** The share of the model's importance carried by the features that
  drifted (``weighted_drift_share``), beside the share of columns: one drifted feature carrying
  a third of what the model decides weighs a third, one it ignores weighs nothing.

Where no attributions are logged, ``estimate_importance`` estimates each feature's importance
on the reference: how much of the model's output a surrogate fitted on the reference's features
loses when the feature's values are shuffled (permutation importance).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

IMPORTANCE_COLUMN = "_importance"  # the reference's estimated importances, among its extras
NDCG_ALARM = 0.90  # SageMaker Clarify's threshold for feature-attribution drift
# Shuffling costs a prediction of the held-out rows per feature and repeat: 100 features of 8,000
# rows took seconds here (200 of 5,000, half a minute), on the reference upload's path.
MAX_FEATURES = 100
# Below this, the held-out quarter (250 rows) ranks features by little more than its noise
MIN_ROWS = 1_000
# the surrogate takes at most 255 categories a feature (its bins); beyond, they share one
MAX_CATEGORY_CODES = 250


def ndcg(reference: Mapping[str, float], current: Mapping[str, float]) -> float:
    """SageMaker Clarify's NDCG of feature-attribution drift: with F the features sorted by their
    reference importance a(f), and F' sorted by their importance in the window,
    DCG = sum_i a(F'_i) / log2(i + 1) and iDCG = sum_i a(F_i) / log2(i + 1), NDCG = DCG / iDCG.

    Every feature of ``reference`` is ranked; one the window lacks ranks last (importance 0).
    Features tied in the window share the discounts of the positions they occupy (the mean of
    every order of them, as scikit-learn's ``ndcg_score`` takes ties), so the result does not
    depend on the order they are listed in. 1.0 when the reference has no importance at all."""
    gains = {f: max(0.0, float(a)) for f, a in reference.items()}
    ideal = sorted(gains.values(), reverse=True)
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg <= 0.0:
        return 1.0
    ranked = sorted(gains, key=lambda f: -float(current.get(f, 0.0)))
    dcg, i = 0.0, 0
    while i < len(ranked):  # a group of features tied in the window, positions i .. j - 1
        level = float(current.get(ranked[i], 0.0))
        j = i
        while j < len(ranked) and float(current.get(ranked[j], 0.0)) == level:
            j += 1
        mean_gain = sum(gains[f] for f in ranked[i:j]) / (j - i)
        dcg += mean_gain * sum(1.0 / math.log2(k + 2) for k in range(i, j))
        i = j
    return dcg / idcg


def importance_values(stored: Mapping[str, Any] | None) -> dict[str, float]:
    """Each feature's importance as a reference stores it (``IMPORTANCE_COLUMN``: its method,
    output and features, each with its value and range); empty where it has none."""
    return {f: float(v["value"]) for f, v in (stored or {}).get("features", {}).items()}


def importance_shares(importance: Mapping[str, float]) -> dict[str, float]:
    """Each feature's share of the model's importance (negative importances count as none)."""
    clipped = {f: max(0.0, float(v)) for f, v in importance.items()}
    total = sum(clipped.values())
    if total <= 0.0:
        return dict.fromkeys(clipped, 0.0)
    return {f: v / total for f, v in clipped.items()}


def weighted_drift_share(importance: Mapping[str, float], drifted: Iterable[str]) -> float:
    """The share of the model's importance whose features drifted: the sum of the drifted
    features' shares (``importance_shares``). A drifted feature without an importance counts for
    nothing; the share of columns that drifted is the same with every importance equal."""
    shares = importance_shares(importance)
    return float(sum(shares.get(f, 0.0) for f in set(drifted)))  # 0.0, not 0, when none drifted


def by_importance(importance: Mapping[str, float], features: Iterable[str]) -> list[tuple[str, float]]:
    """``features`` with their share of the model's importance, the most important first (then
    by name): the order a notification lists drifted features in."""
    shares = importance_shares(importance)
    return sorted(((f, shares.get(f, 0.0)) for f in set(features)), key=lambda fs: (-fs[1], fs[0]))


@dataclass(frozen=True)
class Importance:
    """A feature's estimated importance: the share of the model's output variance (R² of the
    surrogate) lost when its values are shuffled, with the range of that loss over the shuffles."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def estimate_importance(
    numerical: Mapping[str, np.ndarray],
    categorical: Mapping[str, list[str | None]],
    output: np.ndarray,
    *,
    repeats: int = 5,
    max_rows: int = 8_000,
    seed: int = 0,
    min_rows: int = MIN_ROWS,
) -> dict[str, Importance]:
    """Each feature's importance to the model's ``output`` (a number a row: a regression's
    prediction, a classifier's score), from rows of the reference: a gradient-boosted surrogate
    (scikit-learn's ``HistGradientBoostingRegressor``, which takes missing values and categories
    as they are) fitted on three quarters of them, then each feature shuffled ``repeats`` times
    in the other quarter (``permutation_importance``). ``low``/``high``: the least and most lost
    over the shuffles. Empty with fewer than ``min_rows`` usable rows (the service's
    ``MIN_ROWS``; a benchmark may ask what a smaller reference would give), an output that does
    not vary, or more than ``MAX_FEATURES`` features."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance

    names = [*numerical, *categorical]
    if len(names) > MAX_FEATURES:
        return {}
    y = np.asarray(output, dtype=float)
    keep = np.isfinite(y)
    if keep.sum() < min_rows or not names or np.nanstd(y[keep]) == 0.0:
        return {}
    columns = [np.asarray(v, dtype=float) for v in numerical.values()]
    for values in categorical.values():  # codes by first appearance; a missing value is its own
        codes: dict[str | None, int] = {}
        coded = np.array([codes.setdefault(v, len(codes)) for v in values], dtype=float)
        columns.append(np.minimum(coded, MAX_CATEGORY_CODES - 1))  # the rest share the last code
    x = np.column_stack(columns)[keep]
    y = y[keep]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))[:max_rows]
    x, y = x[order], y[order]
    split = (3 * len(y)) // 4
    is_category = [False] * len(numerical) + [True] * len(categorical)
    surrogate = HistGradientBoostingRegressor(categorical_features=is_category, random_state=seed)
    surrogate.fit(x[:split], y[:split])
    found = permutation_importance(surrogate, x[split:], y[split:], n_repeats=repeats, random_state=seed)
    return {
        name: Importance(
            float(found.importances_mean[j]), float(found.importances[j].min()), float(found.importances[j].max())
        )
        for j, name in enumerate(names)
    }
