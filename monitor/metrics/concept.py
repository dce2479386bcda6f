"""Concept drift: the relation between inputs and outcome changing, seen on labelled rows.

Per window: a quality drop against the reference, significant and beyond a tolerance, and for
regression a shift of the residuals. Classification's error stream is watched across windows by
``monitor.metrics.error_stream``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import sqrt

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class ResidualShift:
    drift: bool
    p_value: float
    statistic: float
    n_reference: int
    n_current: int


def residual_shift(
    reference_residuals: Sequence[float], current_residuals: Sequence[float], threshold: float = 0.05
) -> ResidualShift:
    """Two-sample KS test between reference and current residuals (prediction - truth)."""
    r = np.asarray(reference_residuals, dtype=float)
    c = np.asarray(current_residuals, dtype=float)
    res = stats.ks_2samp(r, c)
    return ResidualShift(bool(res.pvalue < threshold), float(res.pvalue), float(res.statistic), len(r), len(c))


@dataclass(frozen=True)
class QualityDrop:
    drift: bool
    reference: float
    current: float
    relative_change: float  # negative when worse, for metrics where higher is better
    material: bool = False  # worse by more than the tolerance
    p_value: float | None = None  # one-sided: this much worse by chance; None when the metric has no standard error
    significant: bool | None = None


def standard_error(metric: str, values: dict[str, float], n: int, positive_class: str | None = None) -> float | None:
    """The standard error of a window's (or the reference's) metric from what its summary gives:
    accuracy is a share of ``n`` labelled rows, recall of the positive class's rows and precision
    of the rows predicted positive (binomial); ROC AUC by Hanley and McNeil (1982) from the
    numbers of positives and negatives; MAE is a mean of absolute errors whose mean square is
    RMSE squared. None for the metrics without one here (F1, macro averages, log loss, RMSE,
    ...): for those the tolerance alone decides."""
    if n < 2 or metric not in values:
        return None
    v = values[metric]
    if metric == "accuracy":
        return _binomial(v, n)
    if metric == "mae" and "rmse" in values:
        return sqrt(max(values["rmse"] ** 2 - values["mae"] ** 2, 0.0) / (n - 1))
    positives = values.get(f"support.{positive_class}") if positive_class else None
    if not positives:
        return None
    if metric == "recall":
        return _binomial(v, positives)
    if metric == "precision" and v > 0 and "recall" in values:
        return _binomial(v, values["recall"] * positives / v)  # rows predicted positive: tp / precision
    if metric == "roc_auc" and positives < n:
        n_pos, n_neg = positives, n - positives
        q1, q2 = v / (2 - v), 2 * v * v / (1 + v)
        var = (v * (1 - v) + (n_pos - 1) * (q1 - v * v) + (n_neg - 1) * (q2 - v * v)) / (n_pos * n_neg)
        return sqrt(max(var, 0.0))
    return None


def _binomial(p: float, n: float) -> float | None:
    return sqrt(max(p * (1 - p), 0.0) / n) if n >= 2 else None


def quality_drop(
    reference: float,
    current: float,
    tolerance: float = 0.1,
    higher_is_better: bool = True,
    *,
    se_reference: float | None = None,
    se_current: float | None = None,
    alpha: float = 0.05,
) -> QualityDrop:
    """Whether quality fell by more than ``tolerance`` (relative) from the reference's and, where
    both standard errors are known, by more than chance explains: a one-sided z-test of the
    difference at ``alpha`` (so 25 labelled rows cannot page anyone for an unlucky hour, and
    5,000 can for a 3 % drop). Without them the tolerance alone decides."""
    if reference == 0:
        change = 0.0 if current == 0 else (1.0 if current > 0 else -1.0)
    else:
        change = (current - reference) / abs(reference)
    worse = -change if higher_is_better else change
    material = worse > tolerance
    if se_reference is None or se_current is None:
        return QualityDrop(material, reference, current, change, material)
    gap = (reference - current) if higher_is_better else (current - reference)
    se = sqrt(se_reference**2 + se_current**2)
    p = float(stats.norm.sf(gap / se)) if se > 0 else (0.0 if gap > 0 else 1.0)
    significant = p < alpha
    return QualityDrop(material and significant, reference, current, change, material, p, significant)
