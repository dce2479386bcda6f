"""Two versions of a model compared on a share (accuracy, a class's recall...): the challenger's
minus the champion's, with a 95 % interval and a two-sided p-value.

- **Unpaired** (a canary or an A/B split: different requests): Newcombe's hybrid score
  interval for a difference of independent proportions (his method 10, from each share's Wilson
  interval), and the pooled two-proportion z-test.
- **Paired** (a shadow: the same requests scored by both, joined by request id): each labelled
  request is right or wrong under each version, so only the discordant ones tell them apart —
  ``b`` right only under the champion, ``c`` only under the challenger. The difference is
  (c - b) / n; its interval is Newcombe's for paired proportions (his method 10 for the paired
  case, with the phi correction for the correlation), and its p-value McNemar's exact test (the
  discordant pairs binomial with p = 1/2). Pairing removes the requests' own difficulty from the
  comparison, so a shadow tells a smaller difference apart on fewer labels than a split.

Pure: counts in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scipy import stats

from monitor.metrics.fairness import Z95, wilson
from monitor.metrics.points import MetricPoint


@dataclass(frozen=True)
class Difference:
    """The challenger's share minus the champion's."""

    value: float
    lower: float
    upper: float
    p_value: float
    paired: bool
    n: int  # rows it rests on: both samples (unpaired), or the pairs

    def as_details(self) -> dict[str, float | bool | int]:
        return {"lower": self.lower, "upper": self.upper, "p_value": self.p_value, "paired": self.paired}


def unpaired(
    champion_k: int, champion_n: int, challenger_k: int, challenger_n: int, z: float = Z95
) -> Difference | None:
    """Newcombe's hybrid score interval and the pooled z-test; None without rows on either side.
    ``z``: the normal quantile of the interval's confidence (1.96: 95 %)."""
    if champion_n == 0 or challenger_n == 0:
        return None
    p1, p2 = champion_k / champion_n, challenger_k / challenger_n
    l1, u1 = wilson(champion_k, champion_n, z)
    l2, u2 = wilson(challenger_k, challenger_n, z)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    pooled = (champion_k + challenger_k) / (champion_n + challenger_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(d) / se))
    return Difference(d, max(-1.0, lower), min(1.0, upper), p_value, False, champion_n + challenger_n)


def paired(
    both_right: int, champion_only: int, challenger_only: int, both_wrong: int, z: float = Z95
) -> Difference | None:
    """Newcombe's paired interval (method 10) and McNemar's exact test; None without pairs."""
    a, b, c, d_ = both_right, champion_only, challenger_only, both_wrong
    n = a + b + c + d_
    if n == 0:
        return None
    p1, p2 = (a + b) / n, (a + c) / n  # the champion's share, the challenger's
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    diff = p2 - p1
    # the correlation of the two versions' outcomes over the pairs (phi), 0 where undefined
    margins = (a + b) * (c + d_) * (a + c) * (b + d_)
    phi = 0.0 if margins == 0 else (a * d_ - b * c) / math.sqrt(margins)
    # Newcombe: phi taken down to 0 when (a d - b c) is positive but smaller than n / 2
    if a * d_ - b * c > 0:
        phi = max(a * d_ - b * c - n / 2, 0) / math.sqrt(margins) if margins else 0.0
    dl2, du2, dl1, du1 = p2 - l2, u2 - p2, p1 - l1, u1 - p1
    lower = diff - math.sqrt(max(0.0, dl2**2 - 2 * phi * dl2 * du1 + du1**2))
    upper = diff + math.sqrt(max(0.0, du2**2 - 2 * phi * du2 * dl1 + dl1**2))
    discordant = b + c
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(min(b, c), discordant, 0.5).pvalue)
    return Difference(diff, max(-1.0, lower), min(1.0, upper), p_value, True, n)


def z_interval(diff: float, se_a: float, se_b: float, z: float = Z95) -> tuple[float, float]:
    """An interval of a difference of two independent estimates (label-free estimates, whose
    standard errors are known)."""
    half = z * math.hypot(se_a, se_b)
    return diff - half, diff + half


@dataclass(frozen=True)
class Side:
    """What a window holds of one version: its predictions, its labelled rows and how many of
    them it got right (all of them, and those of the positive class), its latency and its
    label-free estimate (None where it has none)."""

    version: str
    predictions: int
    labelled: int = 0
    correct: int = 0
    positives: int = 0  # labelled rows whose truth is the positive class (binary classifiers)
    true_positives: int = 0
    latency: dict[str, float | None] | None = None  # "p95", "mean" (milliseconds)
    estimated: tuple[float, float] | None = None  # estimated accuracy and its standard error


Point = Callable[..., MetricPoint]


def _share(
    metric: str,
    four: tuple[int, int, int, int] | None,
    champion: tuple[int, int],
    challenger: tuple[int, int],
    z: float,
    point: Point,
) -> list[MetricPoint]:
    """A share's difference: paired over ``four`` (both right, champion only, challenger only,
    both wrong) when there are pairs, else unpaired from each side's (right, rows)."""
    n = 0 if four is None else four[0] + four[1] + four[2] + four[3]
    if four is not None and n:  # a shadow: the same requests, judged pair by pair
        diff = paired(*four, z=z)
        values = ((four[0] + four[1]) / n, (four[0] + four[2]) / n)
    else:
        diff = unpaired(*champion, *challenger, z=z)
        values = (champion[0] / max(1, champion[1]), challenger[0] / max(1, challenger[1]))
    if diff is None:
        return []
    shown = diff.as_details() | {"champion_value": values[0], "challenger_value": values[1]}
    return [point(metric, diff.value, diff.n, shown, diff.p_value < 2 * stats.norm.sf(z))]


def comparison_points(
    champion: Side,
    challenger: Side,
    pairs: dict[str, int] | None,
    confidence: float,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """The challenger against the champion over one window, as points of the challenger labelled
    with the champion's version; ``pairs`` (a shadow's): its predictions joined with the
    champion's by request id (``record_repo.paired_outcomes``). Intervals at ``confidence``;
    ``drifted``: the difference is significant at 1 - ``confidence``."""
    labels = {"champion": champion.version}
    z = float(stats.norm.ppf(0.5 + confidence / 2))

    def point(metric: str, value: float, n: int, details: dict[str, Any], drifted: bool | None = None) -> MetricPoint:
        details = details | {"confidence": confidence} if "lower" in details else details
        return MetricPoint(metric, window_start, window_end, value, n, labels, drifted=drifted, details=details)

    points = []
    total = champion.predictions + challenger.predictions
    if total:
        share = {"champion": champion.predictions, "challenger": challenger.predictions}
        points.append(point("comparison.traffic_share", challenger.predictions / total, total, share))
    if pairs is not None and pairs["pairs"]:
        lo, hi = wilson(pairs["agree"], pairs["pairs"], z)
        agreement = pairs["agree"] / pairs["pairs"]
        points.append(point("comparison.agreement", agreement, pairs["pairs"], {"lower": lo, "upper": hi}))
    four = positive_four = None
    if pairs is not None:
        four = (pairs["both_right"], pairs["champion_only"], pairs["challenger_only"], pairs["both_wrong"])
        positive_four = (
            pairs["positive_both_right"],
            pairs["positive_champion_only"],
            pairs["positive_challenger_only"],
            pairs["positive_both_wrong"],
        )
    points += _share(
        "comparison.accuracy",
        four,
        (champion.correct, champion.labelled),
        (challenger.correct, challenger.labelled),
        z,
        point,
    )
    if champion.positives or challenger.positives or (positive_four is not None and any(positive_four)):
        points += _share(
            "comparison.recall",
            positive_four,
            (champion.true_positives, champion.positives),
            (challenger.true_positives, challenger.positives),
            z,
            point,
        )
    for stat in ("p95", "mean"):
        a, b = (champion.latency or {}).get(stat), (challenger.latency or {}).get(stat)
        if a is not None and b is not None:
            values = {"champion_value": a, "challenger_value": b}
            points.append(point(f"comparison.latency_{stat}_ms", b - a, total, values))
    if champion.estimated is not None and challenger.estimated is not None:
        (ea, sa), (eb, sb) = champion.estimated, challenger.estimated
        lo, hi = z_interval(eb - ea, sa, sb, z)
        details = {"lower": lo, "upper": hi, "champion_value": ea, "challenger_value": eb}
        points.append(point("comparison.estimated_accuracy", eb - ea, total, details, not lo <= 0 <= hi))
    return points
