"""Where a classifier's scores are binned, so that ROC AUC from binned scores is as exact whatever
range the scores live in.

ROC AUC depends on the order of the scores only; from a histogram, two scores in one bin count as
tied, which moves it by at most half the share of positive-negative pairs in the same bin. Fixed
bins resolve scores only where the bins are fine: equal bins of a logit clipped at 1e-8 put every
score of a model whose scores all lie under 1e-8 in one bin (AUC 0.5 where scikit-learn gives
0.857), and no fixed layout resolves both scores of 1e-250 x and scores within [0.300, 0.301].

So each class's bins are placed by the reference: ``SCORE_BINS`` equal bins of
asinh((logit(p) - centre) / scale), where ``centre`` is the median of the reference's logits of
the class's normalised score and ``scale`` their spread (the interquartile range / 1.349, a
normal's standard deviation). Around the reference's scores a bin is 0.0013 to 0.003 x scale wide
on the logit (the narrower the scale, the wider the range asinh must cover): at least 400 bins
across the middle half of the reference's scores. Further away a bin is the same share (0.13 to
0.3 %) of the distance to the centre; and every double from 1e-300 to the largest below 1 has a
bin (0 counts as 1e-300, 1 as that largest one), so scores that move far from the reference's are
still ordered. A reference without scores, or one stored before references had a layout, has
centre 0 and scale 1 (0.0014 wide on the logit around 0.5, 0.14 % of the logit beyond ±1).

The layout is stored with every summary that holds binned scores, so summaries on different
layouts (another reference's, or stored before this one) still merge: each bin's count moves to
the bin of its middle score in the layout merged into.

Pure: no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

SCORE_BINS = 8192
SCORE_FLOOR = 1e-300
SCORE_CEILING = float(np.nextafter(1.0, 0.0))
SCORE_LAYOUT_COLUMN = "_score_layout"  # the reference's layout, among its extras
IQR_TO_SD = 1.349  # a normal's interquartile range in standard deviations
# Finer than this relative to the centre, a scale only splits rounding error
MIN_RELATIVE_SCALE = 1e-12


def logits(p: np.ndarray) -> np.ndarray:
    """The logit of each score, clipped to [1e-300, the largest double below 1]."""
    c = np.clip(np.asarray(p, dtype=float), SCORE_FLOOR, SCORE_CEILING)
    out: np.ndarray = np.log(c / (1 - c))
    return out


LOGIT_FLOOR = float(logits(np.array(SCORE_FLOOR)))
LOGIT_CEILING = float(logits(np.array(SCORE_CEILING)))


def _scale_of(u: np.ndarray) -> float:
    """The spread of a class's reference logits: the IQR as a standard deviation, or a wider
    quantile range where over half the scores are one value, or 1 for a constant score."""
    for low, high, sds in ((25, 75, IQR_TO_SD), (1, 99, 4.653), (0, 100, 1.0)):
        q = np.percentile(u, [low, high])
        spread = float(q[1] - q[0]) / sds
        if spread > 0:
            return max(spread, MIN_RELATIVE_SCALE * max(1.0, abs(float(np.median(u)))))
    return 1.0


@dataclass(frozen=True)
class ScoreLayout:
    """Each class's bins: equal bins of asinh((logit - centre) / scale) over every score."""

    centres: tuple[float, ...]
    scales: tuple[float, ...]

    @classmethod
    def standard(cls, classes: int) -> ScoreLayout:
        return cls((0.0,) * classes, (1.0,) * classes)

    @classmethod
    def of_scores(cls, p: np.ndarray) -> ScoreLayout:
        """The layout of normalised scores ``p`` (rows x classes; rows with a NaN left out):
        each class's bins centred on its scores and as fine as their spread."""
        p = np.asarray(p, dtype=float)
        ok = p[~np.isnan(p).any(axis=1)]
        if not len(ok):
            return cls.standard(p.shape[1])
        u = logits(ok)
        return cls(
            tuple(float(np.median(u[:, k])) for k in range(u.shape[1])),
            tuple(_scale_of(u[:, k]) for k in range(u.shape[1])),
        )

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ScoreLayout:
        return cls(tuple(float(c) for c in doc["centres"]), tuple(float(s) for s in doc["scales"]))

    def to_json(self) -> dict[str, Any]:
        return {"type": "score_layout", "centres": list(self.centres), "scales": list(self.scales)}

    def only(self, k: int) -> ScoreLayout:
        """The layout of class ``k`` alone (one side of a pair histogram)."""
        return ScoreLayout((self.centres[k],), (self.scales[k],))

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Each class's asinh coordinate of the lowest and the highest score."""
        c, s = np.asarray(self.centres), np.asarray(self.scales)
        return np.arcsinh((LOGIT_FLOOR - c) / s), np.arcsinh((LOGIT_CEILING - c) / s)

    def bins(self, p: np.ndarray, k: int | None = None) -> np.ndarray:
        """The bin of each score, as the rollup's SQL computes it: ``p`` rows x classes, or one
        class's scores (``k``)."""
        low, high = self.ends()
        c, s = np.asarray(self.centres), np.asarray(self.scales)
        if k is not None:
            low, high, c, s = low[k], high[k], c[k], s[k]
        z = np.arcsinh((logits(p) - c) / s)
        b = np.floor((z - low) * SCORE_BINS / (high - low)).astype(np.int64)
        out: np.ndarray = np.clip(b, 0, SCORE_BINS - 1)
        return out

    def middles(self, k: int, bins: int = SCORE_BINS) -> np.ndarray:
        """The score at the middle of each of ``bins`` equal parts of class ``k``'s range (its
        bins, or groups of them)."""
        low, high = (float(e[k]) for e in self.ends())
        z = low + (np.arange(bins) + 0.5) * (high - low) / bins
        out: np.ndarray = expit(self.centres[k] + self.scales[k] * np.sinh(z))
        return out


# Histograms stored before layouts were stored, by their bins per class and side: 1,000 equal
# bins of [0, 1], then 4,096 equal bins of the logit clipped at 1e-8.
OLD_LOGIT_LIMIT = float(np.log((1 - 1e-8) / 1e-8))
OLD_MIDDLES = {
    1000: (np.arange(1000) + 0.5) / 1000,
    4096: expit((np.arange(4096) + 0.5) * (2 * OLD_LOGIT_LIMIT / 4096) - OLD_LOGIT_LIMIT),
}


def moved(hist: np.ndarray, middles: Sequence[np.ndarray], to: ScoreLayout) -> np.ndarray:
    """A histogram ([class, side, bin]) whose bins have the scores ``middles`` (per class), on
    ``to``'s bins: each bin's count goes to the bin of its middle."""
    k = hist.shape[0]
    out = np.zeros((k, 2, SCORE_BINS), dtype=np.int64)
    for i in range(k):
        held = np.flatnonzero(hist[i].any(axis=0))
        target = to.bins(middles[i][held], i)
        for side in (0, 1):
            np.add.at(out[i, side], target, hist[i, side, held])
    return out


def stored_histogram(flat: np.ndarray, classes: int, layout: dict[str, Any] | None, to: ScoreLayout) -> np.ndarray:
    """A stored histogram ([class, side, bin] flattened, on the stored ``layout``, or on earlier
    bins where none was stored) on ``to``'s bins."""
    if layout is not None:
        stored = ScoreLayout.from_json(layout)
        hist = flat.reshape(classes, 2, SCORE_BINS)
        if stored == to:
            return hist.copy()
        return moved(hist, [stored.middles(i) for i in range(classes)], to)
    per = len(flat) // (2 * classes) if classes else 0
    if per in OLD_MIDDLES:
        return moved(flat.reshape(classes, 2, per), [OLD_MIDDLES[per]] * classes, to)
    return moved(flat.reshape(classes, 2, SCORE_BINS), [ScoreLayout.standard(classes).middles(0)] * classes, to)


def reference_layout(extras: dict[str, dict[str, Any]], classes: int) -> ScoreLayout:
    """The layout a reference's extras hold, or the standard one."""
    doc = extras.get(SCORE_LAYOUT_COLUMN)
    if doc is None or len(doc.get("centres", ())) != classes:
        return ScoreLayout.standard(classes)
    return ScoreLayout.from_json(doc)
