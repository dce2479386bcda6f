"""Fairness across the groups of a protected attribute, from counts the summaries keep.

Fairlearn's definitions (``fairlearn.metrics``), for a binary classifier's positive class:

- selection rate of a group: the share of its predictions that are the positive class;
- demographic parity difference: the largest selection rate minus the smallest, between groups;
  the ratio: the smallest over the largest;
- true and false positive rates of a group, on its labelled rows;
- equal opportunity difference (ratio): of the true positive rates;
- equalized odds difference: the larger of the true and false positive rates' differences (the
  ratio: the smaller of their ratios), Fairlearn's ``agg="worst_case"``.

A group's counts come from the window's mergeable summaries, so any window costs what an hour
does: selection rates from the prediction column's category counts (every prediction, labelled
or not, so demographic parity needs no label), the rates on labelled rows from the confusion
counts of the quality summary.

A group's rate carries Wilson's 95 % interval. A difference or ratio carries an interval whose
each bound is a one-sided bound at ``alpha`` (5 %: together a 90 % interval), simultaneous over
every pair of groups the measure compares (Bonferroni): for each pair, Newcombe's interval of
the pair's own difference p_i - p_j and the MOVER interval of its ratio p_i / p_j (Donner and
Zou: Wilson's intervals of both rates, combined on the log scale), and the measure's interval
is what the pairs' intervals allow of the largest gap (the smallest ratio). A pair's own
difference can be 0 and its ratio 1, so a fair model's interval holds parity (a bootstrap of
the largest gap itself cannot: the largest of several noisy rates is always above the
smallest). A measure is ``drifted`` (the decision a rule pages on with ``{drifted: true}``) only
when its interval lies wholly past the threshold: a ratio whose upper bound is under
``fairness_ratio_threshold`` (0.8: the four-fifths rule), a difference whose lower bound is over
``fairness_difference_threshold`` (0.1). So at a true ratio of exactly the threshold at most
``alpha`` of windows are decided violating, the error rate the drift decisions hold; a small
group's noise widens its interval instead of paging. With fewer than two groups of
``min_sample_size`` rows, a measure gets its value but no decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from math import exp, inf, log, sqrt
from statistics import NormalDist
from typing import Any

import numpy as np

from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality_summary import confusion_cells

Z95 = 1.959963984540054


@dataclass(frozen=True)
class GroupCounts:
    """One group's counts in a window. ``predictions`` is None when the window's predictions
    were not counted (a recomputation for late labels only reads the labelled rows)."""

    predictions: int | None
    selected: int | None  # predictions of the positive class
    positives: int  # labelled rows whose truth is the positive class
    true_positives: int
    negatives: int  # labelled rows of the other class
    false_positives: int


@dataclass(frozen=True)
class Thresholds:
    ratio: float = 0.8
    difference: float = 0.1
    min_group_size: int = 100
    alpha: float = 0.05  # each bound of a gap's interval is one-sided at this level


def thresholds_for(cfg: MonitoringConfig) -> Thresholds:
    """When the fairness measures decide a violation, as the model's monitoring says."""
    return Thresholds(
        cfg.fairness_ratio_threshold, cfg.fairness_difference_threshold, cfg.min_sample_size, cfg.fdr_alpha
    )


def confusion_counts(positive: str, confusion: Mapping[str, int]) -> tuple[int, int, int, int]:
    """(positives, true positives, negatives, false positives) of a quality summary's confusion
    counts ("truth\\x1fprediction" -> rows)."""
    pos = tp = neg = fp = 0
    for truth, predicted, n in confusion_cells(confusion):
        if truth == positive:
            pos += n
            tp += n if predicted == positive else 0
        else:
            neg += n
            fp += n if predicted == positive else 0
    return pos, tp, neg, fp


def group_counts(positive: str, selected: tuple[int, int] | None, confusion: Mapping[str, int]) -> GroupCounts:
    """A group's counts: ``selected`` (predictions of the positive class, predictions) from the
    prediction column's counts, or None; the rest from the quality summary's confusion counts."""
    pos, tp, neg, fp = confusion_counts(positive, confusion)
    k, n = selected if selected is not None else (None, None)
    return GroupCounts(n, k, pos, tp, neg, fp)


def counts_of_rows(positive: str, attribute: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, GroupCounts]:
    """Each value's counts among rows with ``prediction``, ``label`` (None: unlabelled) and
    ``segments`` (a full report's sample: every value there, not only the tracked ones)."""
    tally: dict[str, list[int]] = {}
    for r in rows:
        value = (r.get("segments") or {}).get(attribute)
        if value is None:
            continue
        t = tally.setdefault(str(value), [0] * 6)
        chosen = r["prediction"] == positive
        t[0] += 1
        t[1] += chosen
        if r.get("label") is not None:
            truth = r["label"] == positive
            t[2] += truth
            t[3] += truth and chosen
            t[4] += not truth
            t[5] += (not truth) and chosen
    return {g: GroupCounts(*t) for g, t in tally.items()}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion k/n (95 % by default; ``z`` the normal quantile)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n * n)) / (1 + z**2 / n)
    # at 0 of n or n of n the interval reaches the bound exactly (rounding would leave it short)
    return (0.0 if k == 0 else float(max(0.0, centre - half))), (1.0 if k == n else float(min(1.0, centre + half)))


def _difference(rates: np.ndarray) -> np.ndarray:
    return np.asarray(rates.max(axis=-1) - rates.min(axis=-1))


def _ratio(rates: np.ndarray) -> np.ndarray:
    top = rates.max(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(top > 0, rates.min(axis=-1) / np.where(top > 0, top, 1.0), 0.0))


@dataclass(frozen=True)
class _Rates:
    """A rate per group: k of n."""

    name: str  # selection_rate, true_positive_rate, false_positive_rate
    groups: list[str]
    k: np.ndarray
    n: np.ndarray

    @classmethod
    def of(cls, name: str, pairs: Mapping[str, tuple[int, int]]) -> _Rates | None:
        kept = {g: kn for g, kn in pairs.items() if kn[1] > 0}  # a group without rows has no rate
        if len(kept) < 2:
            return None
        k = np.array([kn[0] for kn in kept.values()], dtype=float)
        n = np.array([kn[1] for kn in kept.values()], dtype=float)
        return cls(name, list(kept), k, n)

    @property
    def rates(self) -> np.ndarray:
        return np.asarray(self.k / self.n)

    def shown(self) -> dict[str, dict[str, float]]:
        return {g: {"rate": float(r), "rows": int(n)} for g, r, n in zip(self.groups, self.rates, self.n, strict=True)}


Point = Callable[..., MetricPoint]


def _rate_points(rates: _Rates, point: Point) -> list[MetricPoint]:
    """Each group's rate, with Wilson's interval."""
    out = []
    for j, g in enumerate(rates.groups):
        lo, hi = wilson(int(rates.k[j]), int(rates.n[j]))
        details = {"lower": lo, "upper": hi, "count": int(rates.k[j])}
        out.append(
            point(f"fairness.{rates.name}", float(rates.rates[j]), {"group": g}, int(rates.n[j]), None, None, details)
        )
    return out


Interval = tuple[float, float]


def pair_intervals(k1: int, n1: int, k2: int, n2: int, z: float) -> tuple[Interval, Interval]:
    """Intervals of p1 - p2 (Newcombe's hybrid score) and of p1 / p2 (MOVER on the log scale),
    each bound one-sided at the normal quantile ``z``, from Wilson's intervals of both rates. A
    rate of 0 has no logarithm: its ratio takes the ratio of the Wilson bounds (wider, as valid)."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    difference = (d - sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))
    if k1 > 0 and k2 > 0:
        r = log(p1 / p2)
        ratio = (
            exp(r - sqrt(log(p1 / l1) ** 2 + log(u2 / p2) ** 2)),
            exp(r + sqrt(log(u1 / p1) ** 2 + log(p2 / l2) ** 2)),
        )
    else:
        ratio = (l1 / u2, u1 / l2 if l2 > 0 else inf)
    return difference, ratio


def _gap_intervals(parts: list[_Rates], alpha: float) -> tuple[Interval, Interval]:
    """Bounds of the largest |p_i - p_j| and of the smallest min(p_i / p_j, p_j / p_i) over
    every pair of groups within each part, from the pairs' intervals at ``alpha`` / pairs."""
    pairs = [(p, i, j) for p in parts for i in range(len(p.groups)) for j in range(i + 1, len(p.groups))]
    z = float(NormalDist().inv_cdf(1 - alpha / len(pairs)))
    gap_low, gap_high, ratio_low, ratio_high = [], [], [], []
    for p, i, j in pairs:
        (dl, dh), (rl, rh) = pair_intervals(int(p.k[i]), int(p.n[i]), int(p.k[j]), int(p.n[j]), z)
        gap_low.append(0.0 if dl <= 0 <= dh else min(abs(dl), abs(dh)))
        gap_high.append(max(abs(dl), abs(dh)))
        ratio_low.append(min(rl, 1 / rh))
        ratio_high.append(1.0 if rl <= 1 <= rh else (rh if rh < 1 else 1 / rl))
    return (max(gap_low), max(gap_high)), (min(ratio_low), min(ratio_high))


def _gap_points(measure: str, parts: list[_Rates], th: Thresholds, point: Point) -> list[MetricPoint]:
    """A measure's difference (the largest of its parts' max - min) and ratio (the smallest of
    their min / max), each with its interval, simultaneous over the pairs, and decision."""
    sizes = sum(p.n.sum() for p in parts)
    decided = min(int((p.n >= th.min_group_size).sum()) for p in parts) >= 2
    details: dict[str, object] = {"groups": {p.name: p.shown() for p in parts}, "alpha": th.alpha}
    intervals = dict(zip(("difference", "ratio"), _gap_intervals(parts, th.alpha), strict=True))
    out = []
    for kind, fn, worst in (("difference", _difference, np.maximum), ("ratio", _ratio, np.minimum)):
        value = float(worst.reduce([fn(p.rates) for p in parts]))
        lower, upper = intervals[kind]
        threshold = th.ratio if kind == "ratio" else th.difference
        past = upper < threshold if kind == "ratio" else lower > threshold
        decision = bool(past) if decided else None
        shown = {"lower": lower, "upper": upper, **details}
        out.append(point(f"fairness.{measure}_{kind}", value, {}, int(sizes), threshold, decision, shown))
    return out


def fairness_points(
    attribute: str,
    groups: Mapping[str, GroupCounts],
    th: Thresholds,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """The window's fairness points for one protected attribute (``groups``: its values)."""

    def point(
        metric: str,
        value: float,
        labels: dict[str, str],
        size: int,
        threshold: float | None,
        drifted: bool | None,
        details: dict[str, object],
    ) -> MetricPoint:
        return MetricPoint(
            metric,
            window_start,
            window_end,
            value,
            sample_size=size,
            labels={"attribute": attribute, **labels},
            threshold=threshold,
            drifted=drifted,
            details=details,
        )

    counted = {g: c for g, c in groups.items() if c.predictions is not None}
    selection = _Rates.of("selection_rate", {g: (c.selected or 0, c.predictions or 0) for g, c in counted.items()})
    tpr = _Rates.of("true_positive_rate", {g: (c.true_positives, c.positives) for g, c in groups.items()})
    fpr = _Rates.of("false_positive_rate", {g: (c.false_positives, c.negatives) for g, c in groups.items()})
    points = [p for rates in (selection, tpr, fpr) if rates is not None for p in _rate_points(rates, point)]
    if selection is not None:
        points += _gap_points("demographic_parity", [selection], th, point)
    if tpr is not None:
        points += _gap_points("equal_opportunity", [tpr], th, point)
    # equalized odds compares the groups that have both rates
    both = {g: c for g, c in groups.items() if c.positives and c.negatives}
    t = _Rates.of("true_positive_rate", {g: (c.true_positives, c.positives) for g, c in both.items()})
    f = _Rates.of("false_positive_rate", {g: (c.false_positives, c.negatives) for g, c in both.items()})
    if t is not None and f is not None:
        points += _gap_points("equalized_odds", [t, f], th, point)
    return points
