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
from dataclasses import dataclass

from scipy import stats

from monitor.metrics.fairness import Z95, wilson


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


def unpaired(champion_k: int, champion_n: int, challenger_k: int, challenger_n: int) -> Difference | None:
    """Newcombe's hybrid score interval and the pooled z-test; None without rows on either side."""
    if champion_n == 0 or challenger_n == 0:
        return None
    p1, p2 = champion_k / champion_n, challenger_k / challenger_n
    l1, u1 = wilson(champion_k, champion_n)
    l2, u2 = wilson(challenger_k, challenger_n)
    d = p2 - p1
    lower = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    pooled = (champion_k + challenger_k) / (champion_n + challenger_n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / champion_n + 1 / challenger_n))
    p_value = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(d) / se))
    return Difference(d, max(-1.0, lower), min(1.0, upper), p_value, False, champion_n + challenger_n)


def paired(both_right: int, champion_only: int, challenger_only: int, both_wrong: int) -> Difference | None:
    """Newcombe's paired interval (method 10) and McNemar's exact test; None without pairs."""
    a, b, c, d_ = both_right, champion_only, challenger_only, both_wrong
    n = a + b + c + d_
    if n == 0:
        return None
    p1, p2 = (a + b) / n, (a + c) / n  # the champion's share, the challenger's
    l1, u1 = wilson(a + b, n)
    l2, u2 = wilson(a + c, n)
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


def z_interval(diff: float, se_a: float, se_b: float) -> tuple[float, float]:
    """A 95 % interval of a difference of two independent estimates (label-free estimates, whose
    standard errors are known)."""
    half = Z95 * math.hypot(se_a, se_b)
    return diff - half, diff + half
