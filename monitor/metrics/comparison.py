"""Two versions of a model compared on a share (accuracy, a class's recall...): the challenger's
minus the champion's, with a 95 % interval and a two-sided p-value.

- **Unpaired** (a canary or an A/B split: different requests): Newcombe's hybrid score
  interval for a difference of independent proportions (his method 10, from each share's Wilson
  interval), and the pooled two-proportion z-test.
- **Paired** (a shadow: the same requests scored by both, paired by request id): each labelled
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
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
    champion_value: float | None = None  # the two versions' own values, where they have one
    challenger_value: float | None = None

    def as_details(self) -> dict[str, float | bool | int]:
        out = {"lower": self.lower, "upper": self.upper, "p_value": self.p_value, "paired": self.paired}
        if self.champion_value is not None and self.challenger_value is not None:
            out |= {"champion_value": self.champion_value, "challenger_value": self.challenger_value}
        return out


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


# -- ROC AUC: DeLong's placements -----------------------------------------------------------------


def _share_below(values: np.ndarray, ref: np.ndarray, ref_weights: np.ndarray) -> np.ndarray:
    """For each of ``values``, the weighted share of ``ref`` below it, ties counted half."""
    order = np.argsort(ref, kind="stable")
    sorted_ref = ref[order]
    cum = np.concatenate([[0.0], np.cumsum(ref_weights[order], dtype=float)])
    lo = np.searchsorted(sorted_ref, values, "left")
    hi = np.searchsorted(sorted_ref, values, "right")
    return np.asarray((cum[lo] + 0.5 * (cum[hi] - cum[lo])) / cum[-1], dtype=float)


def _weighted_cov(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The covariance of the columns of ``v``, row i standing for ``w[i]`` rows (divisor: rows - 1)."""
    centred = v - np.average(v, axis=0, weights=w)
    return np.asarray((centred * w[:, None]).T @ centred / (w.sum() - 1), dtype=float)


@dataclass(frozen=True)
class Placements:
    """DeLong's structural components of one or more versions' scores on the same rows: for
    each positive, the share of negatives it outscores (``v10``: positives x versions), for each
    negative the share of positives that outscore it (``v01``), ties counted half. A row may
    stand for several (``w10``, ``w01``: a histogram bin's rows). Each version's AUC is the
    weighted mean of its column of either."""

    v10: np.ndarray
    w10: np.ndarray
    v01: np.ndarray
    w01: np.ndarray

    @classmethod
    def of(cls, pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> Placements:
        """``pos`` (positives x versions) and ``neg`` (negatives x versions): the scores."""
        k = pos.shape[1]
        v10 = np.column_stack([_share_below(pos[:, j], neg[:, j], w_neg) for j in range(k)])
        v01 = np.column_stack([1.0 - _share_below(neg[:, j], pos[:, j], w_pos) for j in range(k)])
        return cls(v10, w_pos.astype(float), v01, w_neg.astype(float))

    @classmethod
    def of_histogram(cls, pos: np.ndarray, neg: np.ndarray) -> Placements | None:
        """One version's, from a quality summary's score histograms of its positives and its
        negatives (the bins ordered by score); None without two rows of each."""
        if pos.sum() < 2 or neg.sum() < 2:
            return None
        bins = np.arange(len(pos), dtype=float)
        p, n = pos > 0, neg > 0
        return cls.of(bins[p, None], bins[n, None], pos[p], neg[n])

    @property
    def auc(self) -> np.ndarray:
        return np.asarray(np.average(self.v10, axis=0, weights=self.w10), dtype=float)

    def covariance(self) -> np.ndarray:
        """The AUCs' covariance matrix (DeLong, DeLong and Clarke-Pearson 1988): S10/m + S01/n."""
        return np.asarray(
            _weighted_cov(self.v10, self.w10) / self.w10.sum() + _weighted_cov(self.v01, self.w01) / self.w01.sum()
        )


def _normal_difference(aucs: np.ndarray, se: float, z: float, paired: bool, n: int) -> Difference:
    """``aucs``: the champion's and the challenger's."""
    a, b = float(aucs[0]), float(aucs[1])
    d = b - a
    p_value = float(2 * stats.norm.sf(abs(d) / se)) if se > 0 else float(d == 0)
    return Difference(d, max(-1.0, d - z * se), min(1.0, d + z * se), p_value, paired, n, a, b)


def auc_unpaired(champion: Placements | None, challenger: Placements | None, z: float = Z95) -> Difference | None:
    """The difference of two versions' ROC AUC on different rows (a split), from each one's
    placements (``Placements.of_histogram``): DeLong's variances added."""
    if champion is None or challenger is None:
        return None
    se = math.sqrt(float(champion.covariance()[0, 0] + challenger.covariance()[0, 0]))
    n = int(champion.w10.sum() + champion.w01.sum() + challenger.w10.sum() + challenger.w01.sum())
    return _normal_difference(np.array([champion.auc[0], challenger.auc[0]]), se, z, False, n)


def auc_paired(
    truth: np.ndarray,
    champion: np.ndarray,
    challenger: np.ndarray,
    z: float = Z95,
    weights: np.ndarray | None = None,
) -> Difference | None:
    """The difference of two versions' ROC AUC on the same labelled requests (a shadow):
    DeLong's test for correlated curves. ``truth``: whether each request is of the positive
    class; the others, each version's score of it; ``weights``: the requests each row stands for
    (a joint histogram's cells), one each by default. None without two of each outcome."""
    w = np.ones(len(truth)) if weights is None else np.asarray(weights, dtype=float)
    both = np.column_stack([champion, challenger]).astype(float)
    pos, neg = both[truth], both[~truth]
    if w[truth].sum() < 2 or w[~truth].sum() < 2:
        return None
    pl = Placements.of(pos, neg, w[truth], w[~truth])
    cov = pl.covariance()
    se = math.sqrt(max(0.0, float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])))
    return _normal_difference(pl.auc, se, z, True, int(w.sum()))


# -- precision and F1: posterior draws of the confusion cells -------------------------------------

# The cells of a labelled pair of a binary task, (truth, champion's prediction, challenger's
# prediction) each of the positive class (1) or not (0), in this order: a shadow's pair
# summaries (``monitor.metrics.pairs``) count them under these names.
PAIR_CELLS = [(y, c, s) for y in (1, 0) for c in (1, 0) for s in (1, 0)]
PAIR_CELL_NAMES = [f"cell_{y}{c}{s}" for y, c, s in PAIR_CELLS]
DRAWS = 2000


def _tp_fp_fn(side: int) -> list[list[int]]:
    """Where a version's true positives, false positives and false negatives lie among the pair
    cells (``side`` 1: the champion's prediction, 2: the challenger's)."""
    want = ((1, 1), (0, 1), (1, 0))
    return [[i for i, cell in enumerate(PAIR_CELLS) if (cell[0], cell[side]) == w] for w in want]


Counts = Any  # one count or an array of drawn ones


def _precision(tp: Counts, fp: Counts, fn: Counts) -> Counts:
    return tp / (tp + fp)


def _precision_base(tp: Counts, fp: Counts, fn: Counts) -> Counts:
    return tp + fp


def _f1(tp: Counts, fp: Counts, fn: Counts) -> Counts:
    return 2 * tp / (2 * tp + fp + fn)


def _f1_base(tp: Counts, fp: Counts, fn: Counts) -> Counts:
    return tp + fp + fn


# a ratio of the positive class's counts, and what must not be 0 for it to be defined
RATIOS = {"precision": (_precision, _precision_base), "f1": (_f1, _f1_base)}
# A side's (tp, fp, fn, tn) of an unpaired comparison, laid out like the pair cells' indices
UNPAIRED = ([[0], [1], [2]], [[4], [5], [6]])


def ratio_differences(
    counts: Sequence[int], paired: bool, confidence: float, rng: np.random.Generator
) -> dict[str, Difference]:
    """Precision and F1 of the positive class, the challenger's minus the champion's. ``counts``:
    a shadow's eight pair cells (``PAIR_CELLS``), or both sides' (tp, fp, fn, tn), the
    champion's first. Neither is a share of fixed rows, so the interval comes from draws of the
    cells' probabilities from their Jeffreys posterior (Dirichlet(counts + 1/2)): jointly for
    pairs, which keeps their correlation; each side on its own otherwise. The p-value: twice the
    smaller share of draws on either side of 0."""
    c = np.asarray(counts, dtype=float)
    if paired:
        draws = rng.dirichlet(c + 0.5, DRAWS)
        where = (_tp_fp_fn(1), _tp_fp_fn(2))
    else:
        draws = np.hstack([rng.dirichlet(c[:4] + 0.5, DRAWS), rng.dirichlet(c[4:] + 0.5, DRAWS)])
        where = UNPAIRED
    tail = (1 - confidence) / 2
    out = {}
    for metric, (f, base) in RATIOS.items():
        observed = [[c[idx].sum() for idx in side] for side in where]
        if any(base(*o) == 0 for o in observed):
            continue  # undefined for a side (no predicted positives, for precision)
        drawn = [f(*(draws[:, idx].sum(axis=1) for idx in side)) for side in where]
        diff = drawn[1] - drawn[0]
        theirs, mine = float(f(*observed[0])), float(f(*observed[1]))
        lower, upper = np.quantile(diff, [tail, 1 - tail])
        p_value = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
        out[metric] = Difference(mine - theirs, float(lower), float(upper), p_value, paired, int(c.sum()), theirs, mine)
    return out


@dataclass(frozen=True)
class Side:
    """What a window holds of one version: its predictions, its labelled rows and how many of
    them it got right, its confusion counts of the positive class (binary classifiers), its
    placements of the positive class's scores (ROC AUC), its latency and its label-free
    estimate (None where it has none)."""

    version: str
    predictions: int
    labelled: int = 0
    correct: int = 0
    positives: int = 0  # labelled rows whose truth is the positive class
    true_positives: int = 0
    negatives: int = 0
    false_positives: int = 0
    placements: Placements | None = None
    latency: dict[str, float | None] | None = None  # "p95", "mean" (milliseconds)
    estimated: tuple[float, float] | None = None  # estimated accuracy and its standard error

    @property
    def cells(self) -> list[int]:
        """(tp, fp, fn, tn) of the positive class."""
        tp, fp = self.true_positives, self.false_positives
        return [tp, fp, self.positives - tp, self.negatives - fp]


@dataclass(frozen=True)
class Pairs:
    """A shadow's predictions paired with the champion's by request id (``monitor.metrics.pairs``):
    the counts (``PAIR_COUNTS``), and over the labelled pairs both versions scored whether each
    is of the positive class, both versions' scores of it and the pairs each row stands for
    (ROC AUC)."""

    counts: dict[str, int]
    truth: np.ndarray | None = None
    champion_scores: np.ndarray | None = None
    challenger_scores: np.ndarray | None = None
    weights: np.ndarray | None = None


# What a shadow's pairs count: pairs, pairs whose predictions agree, over labelled pairs who was
# right, and the labelled pairs in each of ``PAIR_CELLS``.
PAIR_COUNTS = ["pairs", "agree", "both_right", "champion_only", "challenger_only", "both_wrong", *PAIR_CELL_NAMES]


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
    pairs: Pairs | None,
    confidence: float,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """The challenger against the champion over one window, as points of the challenger labelled
    with the champion's version; ``pairs``: a shadow's. Intervals at ``confidence``;
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
    counts = pairs.counts if pairs is not None else None
    if counts is not None and counts["pairs"]:
        lo, hi = wilson(counts["agree"], counts["pairs"], z)
        agreement = counts["agree"] / counts["pairs"]
        points.append(point("comparison.agreement", agreement, counts["pairs"], {"lower": lo, "upper": hi}))
    points += _quality_points(champion, challenger, pairs, confidence, z, point, window_start, window_end)
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


def _quality_points(
    champion: Side,
    challenger: Side,
    pairs: Pairs | None,
    confidence: float,
    z: float,
    point: Point,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """Accuracy; and of the positive class recall, precision, F1 and ROC AUC: paired over a
    shadow's labelled pairs, unpaired from each side's own labelled rows otherwise."""
    c = pairs.counts if pairs is not None else None
    four = positive_four = None
    if c is not None:
        four = (c["both_right"], c["champion_only"], c["challenger_only"], c["both_wrong"])
        positive_four = (c["cell_111"], c["cell_110"], c["cell_101"], c["cell_100"])
    mine = (challenger.correct, challenger.labelled)
    points = _share("comparison.accuracy", four, (champion.correct, champion.labelled), mine, z, point)
    if champion.positives or challenger.positives or (positive_four is not None and any(positive_four)):
        theirs, mine = (champion.true_positives, champion.positives), (challenger.true_positives, challenger.positives)
        points += _share("comparison.recall", positive_four, theirs, mine, z, point)
    # the same draws whenever the window is computed again
    rng = np.random.default_rng([int(window_start.timestamp()), int(window_end.timestamp())])
    cells = [c[name] for name in PAIR_CELL_NAMES] if c is not None else []
    by_pairs = sum(cells) > 0
    ratios = ratio_differences(cells if by_pairs else champion.cells + challenger.cells, by_pairs, confidence, rng)
    auc = None
    if pairs is not None and pairs.truth is not None:
        assert pairs.champion_scores is not None and pairs.challenger_scores is not None
        auc = auc_paired(pairs.truth, pairs.champion_scores, pairs.challenger_scores, z, pairs.weights)
    if auc is None:
        auc = auc_unpaired(champion.placements, challenger.placements, z)
    for metric, diff in [*ratios.items(), ("roc_auc", auc)]:
        if diff is not None:
            points.append(
                point(f"comparison.{metric}", diff.value, diff.n, diff.as_details(), diff.p_value < 1 - confidence)
            )
    return points


def drift_against_one_reference(
    champion: list[MetricPoint],
    challenger: list[MetricPoint],
    champion_version: str,
    reference_id: int,
    coverage: float,
) -> list[MetricPoint]:
    """Both versions' drift (feature, prediction, dataset) against the same reference, the
    champion's: the challenger's drift points renamed ``comparison.<metric>`` and labelled with
    the champion, each with the champion's value and decision on the same column beside it.
    ``coverage``: the share of the challenger's rows of the window summarised against that
    reference (below 1 where hours were summarised before the reference was the champion's and
    are no longer kept by the hour)."""
    theirs = {(p.metric, tuple(sorted(p.labels.items()))): p for p in champion}
    out = []
    for p in challenger:
        details = {**p.details, "reference_id": reference_id, "coverage": coverage}
        q = theirs.get((p.metric, tuple(sorted(p.labels.items()))))
        if q is not None:
            details |= {"champion_value": q.value, "champion_drifted": q.drifted}
        labels = {**p.labels, "champion": champion_version}
        out.append(replace(p, metric=f"comparison.{p.metric}", labels=labels, details=details))
    return out
