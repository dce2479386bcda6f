"""Logged attributions (per-feature contributions to a prediction, such as SHAP values the serving
system computed) summarised mergeably, and the attribution drift of a window. Pure functions.

A feature's global importance is the mean absolute attribution to it (SageMaker Clarify's and
SHAP's global importance). Its summary keeps, per feature, the attributions counted, their sum,
the sum of their absolute values and of their squares: the mean |attribution| and its standard
error follow (|a|^2 = a^2), and summaries of hours, minutes and segments add up exactly, so a
window of any size costs its buckets. A row without an attribution to a feature counts for none
of that feature's sums: missing is not zero.

Per window, against the reference (``attribution_points``):
- ``attribution_drift.ndcg``: Clarify's NDCG of the window's ranking of features by importance,
  the reference's importances the gains (``monitor.metrics.importance.ndcg``); drifted below 0.90
  as Clarify alarms. The reference's importances are its own attributions' when it carries them,
  otherwise the estimate made at its upload (NDCG reads only their ranking and ratios).
- ``attribution_drift.change``, per feature, when the reference carries attributions: the change
  of the mean |attribution|, with its 95 % interval (Welch's normal interval: window and
  reference are independent samples, each thousands of rows); drifted when it excludes 0.
- ``attribution.importance``, per feature: the window's mean |attribution| and its share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import numpy as np

from monitor.domain.feature_values import feature_block
from monitor.metrics.importance import NDCG_ALARM, Importance, importance_shares, importance_values, ndcg
from monitor.metrics.points import MetricPoint

ATTRIBUTIONS_COLUMN = "_attributions"  # the summary of logged attributions, and the reference's
Z_95 = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
TOP_FEATURES = 10  # the features a point's details list (by importance)


def attribution_matrix(attributions: Sequence[dict[str, Any] | None], features: Sequence[str]) -> np.ndarray:
    """Rows' attributions as logged (None: a row without any) as a rows x features matrix, NaN
    where missing; rows x 0 when no row has any (most models log none: a scan, no matrix)."""
    if not any(attributions):
        return np.empty((len(attributions), 0))
    return feature_block([a or {} for a in attributions], list(features))


@dataclass
class AttributionSummary:
    """Per feature (``features``, sorted): attributions counted, their sum, their absolute
    values' sum and their squares' sum."""

    features: tuple[str, ...]
    n: np.ndarray
    total: np.ndarray
    abs_total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, features: Sequence[str]) -> Self | None:
        """The summary of a rows x features matrix (NaN: no attribution); None when it holds none."""
        v = np.asarray(values, dtype=float)
        present = ~np.isnan(v)
        n = present.sum(axis=0)
        if not n.any():
            return None
        x = np.where(present, v, 0.0)
        order = np.argsort(np.asarray(features, dtype=object))
        keep = order[n[order] > 0]
        return cls(
            tuple(features[i] for i in keep),
            n[keep].astype(np.int64),
            x.sum(axis=0)[keep],
            np.abs(x).sum(axis=0)[keep],
            np.square(x).sum(axis=0)[keep],
        )

    @classmethod
    def of_records(cls, attributions: Sequence[dict[str, Any] | None], features: Sequence[str]) -> Self | None:
        """The summary of rows' attributions as logged; None when no row has any."""
        values = attribution_matrix(attributions, features)
        return cls.of(values, features) if values.shape[1] else None

    def merge(self, other: Self) -> Self:
        if self.features == other.features:
            return type(self)(
                self.features,
                self.n + other.n,
                self.total + other.total,
                self.abs_total + other.abs_total,
                self.total_sq + other.total_sq,
            )
        names = tuple(sorted(set(self.features) | set(other.features)))
        index = {f: i for i, f in enumerate(names)}
        sums = [np.zeros(len(names)) for _ in range(4)]
        for s in (self, other):
            at = [index[f] for f in s.features]
            for acc, part in zip(sums, (s.n, s.total, s.abs_total, s.total_sq), strict=True):
                np.add.at(acc, at, part)
        return type(self)(names, sums[0].astype(np.int64), sums[1], sums[2], sums[3])

    def to_parts(self) -> tuple[dict[str, Any], bytes | None]:
        return {
            "type": "attributions",
            "features": list(self.features),
            "n": self.n.tolist(),
            "sum": self.total.tolist(),
            "abs_sum": self.abs_total.tolist(),
            "sum_sq": self.total_sq.tolist(),
        }, None

    @classmethod
    def from_parts(cls, stats: Mapping[str, Any], _counts: bytes | None = None) -> Self:
        return cls(
            tuple(stats["features"]),
            np.asarray(stats["n"], dtype=np.int64),
            np.asarray(stats["sum"], dtype=float),
            np.asarray(stats["abs_sum"], dtype=float),
            np.asarray(stats["sum_sq"], dtype=float),
        )

    @property
    def rows(self) -> int:
        """The most attributions any feature has: the rows that carried them."""
        return int(self.n.max()) if len(self.n) else 0

    def mean_abs(self) -> dict[str, float]:
        """Each feature's global importance: its mean absolute attribution."""
        return {f: float(a / n) for f, a, n in zip(self.features, self.abs_total, self.n, strict=True)}

    def importances(self) -> dict[str, Importance]:
        """Each feature's importance: its mean |attribution|, with its 95 % interval."""
        variance = self.mean_abs_variance()
        out = {}
        for f, mean in self.mean_abs().items():
            half = Z_95 * math.sqrt(variance[f])
            out[f] = Importance(mean, mean - half, mean + half)
        return out

    def mean_abs_variance(self) -> dict[str, float]:
        """The variance of each feature's mean |attribution| (its standard error squared)."""
        out = {}
        for f, a, sq, n in zip(self.features, self.abs_total, self.total_sq, self.n, strict=True):
            mean = a / n
            spread = max(sq / n - mean * mean, 0.0) * n / (n - 1) if n > 1 else math.inf
            out[f] = float(spread / n)
        return out


def attribution_points(
    current: AttributionSummary,
    reference: AttributionSummary | None,
    estimated: Mapping[str, float] | None,
    start: datetime,
    end: datetime,
    labels: Mapping[str, str],
) -> list[MetricPoint]:
    """A window's (one group's) attribution points: its importance per feature, the NDCG of its
    ranking against the reference's importances (``reference``'s attributions, else the
    ``estimated`` importances), each feature's change against the reference's attributions."""
    window = current.mean_abs()
    shares = importance_shares(window)
    points = [
        MetricPoint(
            "attribution.importance",
            start,
            end,
            window[f],
            sample_size=int(n),
            labels={**labels, "feature": f},
            details={"share": round(shares[f], 6)},
        )
        for f, n in zip(current.features, current.n, strict=True)
    ]
    gains = reference.mean_abs() if reference is not None else dict(estimated or {})
    if gains:
        value = ndcg(gains, window)
        points.append(
            MetricPoint(
                "attribution_drift.ndcg",
                start,
                end,
                value,
                sample_size=current.rows,
                labels=dict(labels),
                reference_size=reference.rows if reference is not None else None,
                threshold=NDCG_ALARM,
                drifted=value < NDCG_ALARM,
                details={
                    "reference_importance": "attributions" if reference is not None else "estimated",
                    "reference_top": _top(gains),
                    "window_top": _top(window),
                },
            )
        )
    if reference is not None:
        points += _change_points(current, reference, start, end, labels)
    return points


def stored_attribution_points(
    current: AttributionSummary,
    logged: Mapping[str, Any] | None,
    importance: Mapping[str, Any] | None,
    start: datetime,
    end: datetime,
    labels: Mapping[str, str],
) -> list[MetricPoint]:
    """``attribution_points`` against a reference's stored extras: its attributions' summary
    (``ATTRIBUTIONS_COLUMN``), its importances (``IMPORTANCE_COLUMN``)."""
    reference = None if logged is None else AttributionSummary.from_parts(logged)
    return attribution_points(current, reference, importance_values(importance), start, end, labels)


def _top(importance: Mapping[str, float]) -> list[list[Any]]:
    """The most important features with their shares, most important first."""
    shares = importance_shares(importance)
    ranked = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FEATURES]
    return [[f, round(s, 6)] for f, s in ranked]


def _change_points(
    current: AttributionSummary,
    reference: AttributionSummary,
    start: datetime,
    end: datetime,
    labels: Mapping[str, str],
) -> list[MetricPoint]:
    window, base = current.mean_abs(), reference.mean_abs()
    w_var, r_var = current.mean_abs_variance(), reference.mean_abs_variance()
    n_of = dict(zip(current.features, current.n, strict=True))
    ref_n = dict(zip(reference.features, reference.n, strict=True))
    points = []
    for f in sorted(set(window) & set(base)):
        change = window[f] - base[f]
        half = Z_95 * math.sqrt(w_var[f] + r_var[f])
        lower, upper = change - half, change + half
        points.append(
            MetricPoint(
                "attribution_drift.change",
                start,
                end,
                change,
                sample_size=int(n_of[f]),
                labels={**labels, "feature": f},
                reference_size=int(ref_n[f]),
                drifted=bool(lower > 0 or upper < 0) if math.isfinite(half) else None,
                details={
                    "lower": lower if math.isfinite(lower) else None,
                    "upper": upper if math.isfinite(upper) else None,
                    "window": window[f],
                    "reference": base[f],
                    "relative": change / base[f] if base[f] > 0 else None,
                    "band": "95 % normal interval of the difference of two means (Welch)",
                },
            )
        )
    return points


def explanation(attributions: Mapping[str, float], features: Mapping[str, Any]) -> dict[str, Any]:
    """One prediction's explanation from its logged attributions: each feature's value and
    attribution, its share of the prediction's total absolute attribution, the largest first;
    and the attributions' sum (for SHAP values, the prediction less the explainer's base value)."""
    magnitude = sum(abs(a) for a in attributions.values())
    ranked = sorted(attributions.items(), key=lambda fa: (-abs(fa[1]), fa[0]))
    return {
        "total": float(sum(attributions.values())),
        "contributions": [
            {
                "feature": f,
                "value": features.get(f),
                "attribution": float(a),
                "share": abs(a) / magnitude if magnitude > 0 else 0.0,
            }
            for f, a in ranked
        ],
    }
