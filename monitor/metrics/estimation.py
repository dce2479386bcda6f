"""Label-free performance estimation of a classifier: confidence-based, as NannyML's CBPE.

With scores that are calibrated (a score of 0.8 right 80 % of the time), the expected confusion
matrix of a window follows from its scores alone: a row predicted as class k is right with the
probability its calibrated score for k gives, a row predicted otherwise is a missed k with its
calibrated score for k. So accuracy, precision, recall and F1 of a window are estimated from the
scores of all its predictions, labelled or not, and ROC AUC from the calibrated scores weighing
each row as a positive (p) and a negative (1 - p).

Calibration is fitted on the reference (rows with scores and labels). Per class k, one map for
the rows predicted as k and one for the others where the two overlap in score: for a multiclass
model, a score for k means something else on a row the model predicted as another class. Each
map is chosen by measurement: the identity, Platt scaling or isotonic regression, whichever has
the lowest 5-fold cross-validated Brier score on the reference (scores already calibrated stay
as they are: a fitted map would only add its own noise).

Mergeable: an hour keeps, per class, the histogram of every prediction's normalised score for
that class among rows predicted as the class and among the others (``ScoreSummary``), on the
score bins of the quality summaries. The calibration is applied when a window is estimated, so a
new reference changes the estimates without summarising the log again.

Each estimate carries its standard error given the scores: labels drawn independently with the
calibrated probabilities make the realized metric vary around the estimate by exactly that
(accuracy and precision are sums of independent Bernoulli variables; recall, F1 and ROC AUC are
ratios, linearised by the delta method).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.metrics.profiles import pack_counts, unpack_counts
from monitor.metrics.score_layout import SCORE_BINS, ScoreLayout, logits, stored_histogram

SCORES_COLUMN = "_scores"  # the bucket summary of every prediction's scores
CALIBRATION_COLUMN = "_calibration"  # the reference's calibration, among its extras
# Fewer reference rows than this in a (class, predicted) group: the class's map is fitted on all
# its rows instead.
MIN_GROUP_ROWS = 30
FOLDS = 5
RESAMPLES = 20  # bootstrap refits of each fitted map: the calibration's own uncertainty
GRID = 128  # points each refit is kept on
Z_BAND = 1.959963984540054  # the band is the estimate ± this many standard errors (95 %)


def score_matrix(scores: Sequence[dict[str, Any] | None], classes: Sequence[str]) -> np.ndarray:
    """Rows x classes of scores normalised to sum to 1; a row without a usable score for every
    class is NaN. A binary model's missing class takes the complement of the other."""
    m = np.array([[(s or {}).get(c, np.nan) for c in classes] for s in scores], dtype=float).reshape(
        len(scores), len(classes)
    )
    if len(classes) == 2:
        for k in (0, 1):
            m[:, k] = np.where(np.isnan(m[:, k]), 1 - m[:, 1 - k], m[:, k])
    total = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.where(total > 0, m / total, np.nan)
    return out


# -- calibration ----------------------------------------------------------------------------------


Knots = tuple[list[float], list[float]]  # (x, y) of a piecewise-linear map
# A map refitted on resamples of the reference: (grid, one list of y per resample on the grid).
Resampled = tuple[list[float], list[list[float]]]


@dataclass(frozen=True)
class Calibration:
    """Per class and group (0: rows predicted as another class, 1: as this class), a
    non-decreasing map of the score: knots ``(x, y)`` interpolated linearly, or None (identity).
    ``resampled``: each fitted map fitted again on ``RESAMPLES`` bootstrap resamples of its
    reference rows, which is how uncertain the calibration itself is."""

    classes: list[str]
    maps: list[list[Knots | None]]
    resampled: list[list[Resampled | None]] = field(default_factory=list)
    kinds: list[list[str]] = field(default_factory=list)  # per map: identity, platt or isotonic

    @property
    def n_resamples(self) -> int:
        return max((len(r[1]) for per in self.resampled for r in per if r is not None), default=0)

    def apply(self, k: int, group: int, s: np.ndarray, resample: int | None = None) -> np.ndarray:
        """The calibrated scores; ``resample``: under that bootstrap refit instead of the map."""
        again = self.resampled[k][group] if resample is not None and self.resampled else None
        if again is not None and resample is not None:
            out: np.ndarray = np.interp(s, again[0], again[1][resample])
            return out
        knots = self.maps[k][group]
        if knots is None:
            return np.asarray(s, dtype=float)
        out = np.interp(s, knots[0], knots[1])
        return out

    def methods(self) -> list[str]:
        return sorted({kind for per in self.kinds for kind in per})

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "calibration",
            "classes": self.classes,
            "maps": self.maps,
            "resampled": self.resampled,
            "kinds": self.kinds,
            "methods": self.methods(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Calibration:
        maps = [[None if m is None else (list(m[0]), list(m[1])) for m in per] for per in d["maps"]]
        again = d.get("resampled", [])
        resampled = [[None if r is None else (list(r[0]), [list(y) for y in r[1]]) for r in per] for per in again]
        return cls(list(d["classes"]), maps, resampled, [list(k) for k in d.get("kinds", [])])


def _isotonic(s: np.ndarray, y: np.ndarray) -> Knots:
    from sklearn.isotonic import IsotonicRegression  # scikit-learn's import costs ~0.5 s; only here

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    return [float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_]


# Where a Platt map is kept: its value at 512 scores spaced as the standard score bins are (equal
# on asinh of the logit, so scores of 1e-12 keep knots of their own)
_PLATT_GRID = ScoreLayout.standard(1).middles(0, 512)


def _platt(s: np.ndarray, y: np.ndarray) -> Knots:
    """Platt scaling: a logistic regression of the outcome on the score's logit (a model too sure
    or too timid by a constant factor on the logit, the common miscalibration, is mapped by two
    numbers where isotonic regression spends the rows on every step)."""
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return [0.0, 1.0], [float(y[0])] * 2
    fit = LogisticRegression(C=1e6).fit(logits(s)[:, None], y)
    mapped = fit.predict_proba(logits(_PLATT_GRID)[:, None])[:, 1]
    return [float(v) for v in _PLATT_GRID], [float(v) for v in mapped]


FITTERS = {"platt": _platt, "isotonic": _isotonic}


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def choose_map(s: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[str, Knots | None]:
    """The map of the scores ``s`` to the outcome ``y`` (0/1) with the lowest out-of-fold Brier
    score: the identity (None), Platt scaling or isotonic regression (the simpler on a tie)."""
    if len(s) < FOLDS * 2:
        return "identity", None
    folds = np.random.default_rng(seed).permutation(len(s)) % FOLDS
    scores = {"identity": _brier(s, y)}
    for kind, fit in FITTERS.items():
        out_of_fold = np.empty(len(s))
        for f in range(FOLDS):
            held = folds == f
            x, fy = fit(s[~held], y[~held])
            out_of_fold[held] = np.interp(s[held], x, fy)
        scores[kind] = _brier(out_of_fold, y)
    best = min(scores, key=lambda k: scores[k])  # dicts keep order: identity, platt, isotonic
    return best, None if best == "identity" else FITTERS[best](s, y)


def resample_map(kind: str, s: np.ndarray, y: np.ndarray, seed: int = 0) -> Resampled:
    """The map refitted on ``RESAMPLES`` bootstrap resamples of its rows, each kept on a grid of
    ``GRID`` quantiles of the scores (6 digits)."""
    rng = np.random.default_rng(seed)
    grid = np.unique(np.quantile(s, np.linspace(0, 1, GRID)))
    ys = []
    for _ in range(RESAMPLES):
        i = rng.integers(0, len(s), len(s))
        x, fy = FITTERS[kind](s[i], y[i])
        ys.append([round(float(v), 6) for v in np.interp(grid, x, fy)])
    return [float(v) for v in grid], ys


def fit_calibration(p: np.ndarray, truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> Calibration:
    """The calibration of normalised scores ``p`` (rows x classes, no NaN) against the labels'
    class indices ``truth``, given the predicted class indices ``predicted``."""
    maps: list[list[Knots | None]] = []
    kinds: list[list[str]] = []
    resampled: list[list[Resampled | None]] = []
    for k in range(len(classes)):
        s, y, own = p[:, k], (truth == k).astype(float), predicted == k
        # One map for the rows predicted as the class and one for the others where the
        # prediction says more than the class's score: their scores overlap (a multiclass model's
        # row predicted as another class can score higher for this one than a row predicted as
        # it). Where the prediction is a threshold on the score (a binary model's), one map of all
        # the rows knows the same and fits on twice the rows.
        overlap = own.any() and (~own).any() and s[~own].max() > s[own].min()
        if overlap and min(own.sum(), (~own).sum()) >= MIN_GROUP_ROWS:
            groups = [~own, own]
            chosen = [choose_map(s[g], y[g], seed=k) for g in groups]
        else:
            groups = [np.ones(len(s), dtype=bool)] * 2
            chosen = [choose_map(s, y, seed=k)] * 2
        kinds.append([kind for kind, _ in chosen])
        maps.append([m for _, m in chosen])
        resampled.append(
            [
                None if kind == "identity" else resample_map(kind, s[g], y[g], seed=k)
                for (kind, _), g in zip(chosen, groups, strict=True)
            ]
        )
    return Calibration(list(classes), maps, resampled, kinds)


# -- the mergeable summary ------------------------------------------------------------------------


@dataclass
class ScoreSummary:
    """Every prediction's scores in a bucket: [class, 0 = predicted as another class / 1 = as
    this class, bin of the class's normalised score on ``layout``]; ``unscored``: predictions
    without a usable score for every class (left out of the estimate)."""

    n_classes: int
    hist: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, SCORE_BINS), dtype=np.int64))
    unscored: int = 0
    layout: ScoreLayout | None = None  # None: the standard layout

    def __post_init__(self) -> None:
        if self.hist.shape[0] != self.n_classes:
            self.hist = np.zeros((self.n_classes, 2, SCORE_BINS), dtype=np.int64)
        if self.layout is None:
            self.layout = ScoreLayout.standard(self.n_classes)

    @property
    def n(self) -> int:
        return int(self.hist[0].sum()) if self.n_classes else 0

    @classmethod
    def of(cls, p: np.ndarray, predicted: np.ndarray, layout: ScoreLayout | None = None) -> ScoreSummary:
        """``p``: rows x classes normalised scores (NaN rows unscored); ``predicted``: each row's
        predicted class index (-1 or NaN: none); ``layout``: the bins (the standard ones if None)."""
        k = p.shape[1]
        layout = layout or ScoreLayout.standard(k)
        pred = np.asarray(predicted, dtype=float)
        ok = ~np.isnan(p).any(axis=1) & ~np.isnan(pred) & (pred >= 0)
        bins, pred_i = layout.bins(p[ok]), pred[ok].astype(np.int64)
        # each (row, class) cell's place in the flat [class, predicted as it, bin] histogram: one
        # count for all classes (two per class, with their masks, were most of a batch's summary)
        own = pred_i[:, None] == np.arange(k)
        cells = (np.arange(k) * 2 + own) * SCORE_BINS + bins
        hist = np.bincount(cells.ravel(), minlength=k * 2 * SCORE_BINS).reshape(k, 2, SCORE_BINS)
        return cls(k, hist.astype(np.int64, copy=False), int((~ok).sum()), layout)

    def merge(self, other: ScoreSummary) -> ScoreSummary:
        """Both added up, on this one's bins (the other's moved to them if it has others)."""
        assert self.layout is not None and other.layout is not None
        theirs = other.hist
        if other.layout != self.layout:
            k = self.n_classes
            theirs = stored_histogram(other.hist.ravel(), k, other.layout.to_json(), self.layout)
        return ScoreSummary(self.n_classes, self.hist + theirs, self.unscored + other.unscored, self.layout)

    def to_parts(self) -> tuple[dict[str, Any], bytes]:
        assert self.layout is not None
        stats = {"type": "scores", "classes": self.n_classes, "unscored": self.unscored}
        return {**stats, "score_layout": self.layout.to_json()}, pack_counts(self.hist.ravel())

    @classmethod
    def from_parts(cls, stats: dict[str, Any], counts: bytes | None) -> ScoreSummary:
        """As stored, on its own bins (summaries stored before layouts were: on the standard ones)."""
        k = int(stats["classes"])
        stored = stats.get("score_layout")
        layout = ScoreLayout.standard(k) if stored is None else ScoreLayout.from_json(stored)
        if counts is None:
            return cls(k, np.zeros((k, 2, SCORE_BINS), dtype=np.int64), int(stats["unscored"]), layout)
        return cls(k, stored_histogram(unpack_counts(counts), k, stored, layout), int(stats["unscored"]), layout)


# -- estimates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float
    std: float

    @property
    def band(self) -> tuple[float, float]:
        return max(0.0, self.value - Z_BAND * self.std), min(1.0, self.value + Z_BAND * self.std)


@dataclass(frozen=True)
class _Draws:
    """A metric under the calibration (``values[0]``) and under each of its bootstrap refits
    (``values[1:]``), and the labels' sampling error of ``values[0]``."""

    values: np.ndarray
    std: float

    def estimate(self) -> Estimate:
        spread = float(np.std(self.values[1:], ddof=1)) if len(self.values) > 2 else 0.0
        return Estimate(float(self.values[0]), float(np.hypot(self.std, spread)))


@dataclass(frozen=True)
class _ClassSums:
    """Expected counts of one class and the variances of the label-drawn sums behind them, under
    the calibration and each of its refits (arrays, one entry each)."""

    tp: np.ndarray  # expected true positives: rows predicted as the class that are of it
    var_tp: np.ndarray
    fn: np.ndarray  # expected rows of the class predicted as another
    var_fn: np.ndarray
    predicted: float  # rows predicted as the class (known)


def _ratio(num: np.ndarray, den: np.ndarray | float) -> np.ndarray:
    """num / den, 0 where den is 0 (zero_division=0, as scikit-learn's and the realized metrics)."""
    den_ = np.broadcast_to(np.asarray(den, dtype=float), np.shape(num))
    out: np.ndarray = np.divide(num, den_, out=np.zeros(np.shape(num)), where=den_ > 0)
    return out


def _auc(pos: np.ndarray, neg: np.ndarray, var: np.ndarray) -> _Draws | None:
    """ROC AUC of binned rows weighing ``pos`` as positives and ``neg`` as negatives (ties in a
    bin count half; one row per calibration draw), and the standard error of the first when each
    row's label is drawn independently: the delta method over each row's label, with the row's
    variance summed per bin in ``var``."""
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    if n_pos[0] <= 0 or n_neg[0] <= 0:
        return None
    neg_below = np.cumsum(neg, axis=1) - 0.5 * neg
    pos_above = n_pos[:, None] - np.cumsum(pos, axis=1) + 0.5 * pos
    pairs = n_pos * n_neg
    u = (pos * neg_below).sum(axis=1)
    # d AUC / d y for a row of the bin: as a positive it gains the negatives below it, as a
    # negative the positives above; and it moves the number of pairs
    grad = (neg_below[0] - pos_above[0]) / pairs[0] - u[0] * (n_neg[0] - n_pos[0]) / pairs[0] ** 2
    return _Draws(_ratio(u, pairs), float(np.sqrt((var * grad**2).sum())))


def estimate_classification(
    s: ScoreSummary, cal: Calibration, positive_class: str | None = None
) -> dict[str, Estimate]:
    """The window's estimated metrics, keyed as ``quality_summary.classification_metrics`` keys
    the realized ones: accuracy, precision/recall/f1 per class and macro (and unsuffixed for the
    positive class of a binary model), roc_auc (the positive class's, or the one-vs-rest mean).

    Each one's standard error adds the labels' sampling given the scores and the calibration's
    own error: the spread of the estimate under the calibration's bootstrap refits (without it,
    an isotonic map fitted on 5,000 rows left the realized accuracy of a miscalibrated model
    outside the 95 % band in 15 % of windows). The refits are computed together, as arrays, and
    on the bins that hold rows only."""
    n = s.n
    if n == 0:
        return {}
    draws: list[int | None] = [None, *range(cal.n_resamples)]
    binary = s.n_classes == 2 and positive_class in cal.classes
    ks = [cal.classes.index(positive_class)] if binary else list(range(s.n_classes))  # type: ignore[arg-type]
    sums: dict[int, _ClassSums] = {}
    aucs: dict[int, _Draws] = {}
    for k in ks:
        held = np.flatnonzero(s.hist[k].sum(axis=0))
        x = (s.layout or ScoreLayout.standard(s.n_classes)).middles(k)
        c0, c1 = s.hist[k, 0, held].astype(float), s.hist[k, 1, held].astype(float)
        p0 = np.vstack([cal.apply(k, 0, x[held], d) for d in draws])  # draws x bins
        p1 = np.vstack([cal.apply(k, 1, x[held], d) for d in draws])
        v0, v1 = c0 * p0 * (1 - p0), c1 * p1 * (1 - p1)
        sums[k] = _ClassSums(p1 @ c1, v1.sum(axis=1), p0 @ c0, v0.sum(axis=1), float(c1.sum()))
        auc = _auc(c0 * p0 + c1 * p1, c0 * (1 - p0) + c1 * (1 - p1), v0[0] + v1[0])
        if auc is not None:
            aucs[k] = auc
    if binary:
        (k,) = ks
        pos = sums[k]
        # the other class: its true positives are the positive class's true negatives
        rest = n - pos.predicted
        sums[1 - k] = _ClassSums(rest - pos.fn, pos.var_fn, pos.predicted - pos.tp, pos.var_tp, rest)
    out: dict[str, _Draws] = {}
    tp = np.sum([c.tp for c in sums.values()], axis=0)
    out["accuracy"] = _Draws(tp / n, float(np.sqrt(sum(c.var_tp[0] for c in sums.values()))) / n)
    per: dict[str, list[_Draws]] = {"precision": [], "recall": [], "f1": []}
    for k in range(s.n_classes):
        name, c = cal.classes[k], sums[k]
        for metric, est in _class_estimates(c).items():
            out[f"{metric}.{name}"] = est
            per[metric].append(est)
    for metric, ests in per.items():
        out[f"{metric}.macro"] = _mean(ests)
    if binary:
        for metric in per:
            out[metric] = out[f"{metric}.{positive_class}"]
        if ks[0] in aucs:
            out["roc_auc"] = aucs[ks[0]]
    elif len(aucs) == s.n_classes:
        out["roc_auc"] = _mean(list(aucs.values()))
    return {key: d.estimate() for key, d in out.items()}


def _class_estimates(c: _ClassSums) -> dict[str, _Draws]:
    a, b, m = c.tp, c.fn, c.predicted
    va, vb = float(c.var_tp[0]), float(c.var_fn[0])  # the labels' sampling, under the calibration
    a0, b0 = float(a[0]), float(b[0])
    precision = _Draws(_ratio(a, m), float(np.sqrt(va)) / m if m > 0 else 0.0)
    actual = a0 + b0
    var_r = (b0 * b0 * va + a0 * a0 * vb) / actual**4 if actual > 0 else 0.0
    recall = _Draws(_ratio(a, a + b), float(np.sqrt(var_r)))
    den = m + a0 + b0
    if den > 0:
        d_a, d_b = 2 * (m + b0) / den**2, -2 * a0 / den**2
        f1_std = float(np.sqrt(d_a * d_a * va + d_b * d_b * vb))
    else:
        f1_std = 0.0
    f1 = _Draws(_ratio(2 * a, m + a + b), f1_std)
    return {"precision": precision, "recall": recall, "f1": f1}


def _mean(ests: list[_Draws]) -> _Draws:
    """The mean of the classes' estimates. Its standard error is the mean of theirs, the bound
    for errors that move together: one row's label counts in every class's metric at once (a row
    of class j is a miss for j and a false alarm for the class it went to), and taken as
    independent the classes' errors gave bands that held the realized macro value in 77-88 % of
    windows where 95 % was due."""
    k = len(ests)
    return _Draws(np.mean([e.values for e in ests], axis=0), sum(e.std for e in ests) / k)
