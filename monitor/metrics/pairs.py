"""A shadow's predictions paired with the champion's by the request id both were made for, and
what the comparison needs of the pairs, summarised by the hour of the champion's predictions so
that a window of any length merges its hours instead of joining its rows again.

What an hour keeps (``PairSummary``): the counts of ``comparison.PAIR_COUNTS`` (pairs, pairs that
agree, over labelled pairs who was right, the positive-class cells), and for ROC AUC the labelled
pairs both versions scored as a joint histogram of (truth, the champion's score bin, the
shadow's score bin). The bins are the quality summaries' bins of the positive class's score
(``monitor.metrics.score_layout``: the shadow's reference's, else its champion's) taken eight at a
time: 1,024 a side, so an hour holds at most 2 x 1,024 x 1,024 cells however many pairs it had
(in practice a few thousand), and DeLong's paired test on the cells differs from the test on the
raw scores only by ties within a bin.

Pairing is done here, not by a join in Postgres: the request id has no index (a shadow is one
use among many), and on a freshly filled partition without statistics the planner chose a nested
loop that took 27 s for 12,000 pairs where a hash join takes 66 ms. Reading both versions' rows
in time order and pairing them in a dict is linear whatever the planner believes.

Pure: rows in, summaries out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from scipy.special import expit

from monitor.metrics.comparison import PAIR_COUNTS, Pairs
from monitor.metrics.profiles import pack_counts, unpack_counts
from monitor.metrics.score_layout import OLD_LOGIT_LIMIT, SCORE_BINS, ScoreLayout

# One version's prediction as pairing reads it: (time, request id, predicted class, label or
# None, its score of the positive class normalised as the quality summaries normalise it or None).
PairingRow = tuple[datetime, str, str | None, str | None, float | None]

PAIR_BIN_SHIFT = 3  # quality-summary bins merged per pair-histogram bin (8,192 -> 1,024)
SIDE_BITS = 10  # bits of one side's bin in a packed cell key
TRUTH_BIT = 2 * SIDE_BITS
SIDE_BINS = SCORE_BINS >> PAIR_BIN_SHIFT
# Summaries stored without their layout were on 4,096 equal bins of the logit clipped at 1e-8,
# taken four at a time: a side bin's middle score.
_OLD_SIDE_MIDDLES = expit((np.arange(SIDE_BINS) + 0.5) * (2 * OLD_LOGIT_LIMIT / SIDE_BINS) - OLD_LOGIT_LIMIT)

# (champion right, shadow right) -> the count it adds to
_OUTCOMES = {
    (True, True): "both_right",
    (True, False): "champion_only",
    (False, True): "challenger_only",
    (False, False): "both_wrong",
}
_EMPTY = np.zeros(0, dtype=np.int64)


def _nearest(found: list[PairingRow], ts: datetime) -> PairingRow:
    """The shadow's prediction nearest in time where a request id came more than once (a retry)."""
    return found[0] if len(found) == 1 else min(found, key=lambda r: abs(r[0] - ts))


def _cell_keys(truth: np.ndarray, champion: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Each pair's joint-histogram cell, packed in one integer, from its side bins."""
    return np.asarray((truth.astype(np.int64) << TRUTH_BIT) | (champion << SIDE_BITS) | shadow, dtype=np.int64)


def _side_bins(layout: ScoreLayout, scores: list[float]) -> np.ndarray:
    return layout.bins(np.asarray(scores, dtype=float), 0) >> PAIR_BIN_SHIFT


def _moved(keys: np.ndarray, middles: np.ndarray, to: ScoreLayout) -> np.ndarray:
    """Cells whose side bins have the scores ``middles``, on ``to``'s side bins."""
    side = (1 << SIDE_BITS) - 1
    champion, shadow = _side_bins(to, middles[(keys >> SIDE_BITS) & side]), _side_bins(to, middles[keys & side])
    return _cell_keys((keys >> TRUTH_BIT) & 1, champion, shadow)


def _grouped(keys: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal cells added up: (sorted distinct keys, their pairs)."""
    if not len(keys):
        return _EMPTY, _EMPTY
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=weights, minlength=len(unique)).astype(np.int64)


@dataclass(frozen=True)
class PairSummary:
    counts: dict[str, int]
    keys: np.ndarray = field(default_factory=lambda: _EMPTY)  # packed cells, sorted and distinct
    weights: np.ndarray = field(default_factory=lambda: _EMPTY)  # pairs per cell
    layout: ScoreLayout = field(default_factory=lambda: ScoreLayout.standard(1))  # the positive class's bins

    @classmethod
    def of(
        cls,
        champion: Sequence[PairingRow],
        shadow: Sequence[PairingRow],
        positive: str | None,
        layout: ScoreLayout | None = None,
    ) -> PairSummary:
        """Each of the champion's predictions paired with the shadow's of the same request id
        (the nearest in time if it came more than once), judged on the label either one has;
        ``layout``: the positive class's score bins (the standard ones if None)."""
        layout = layout or ScoreLayout.standard(1)
        by_request: dict[str, list[PairingRow]] = {}
        for row in shadow:
            by_request.setdefault(row[1], []).append(row)
        counts = dict.fromkeys(PAIR_COUNTS, 0)
        truth: list[bool] = []
        scores: tuple[list[float], list[float]] = ([], [])
        for c in champion:
            found = by_request.get(c[1])
            if not found:
                continue
            s = _nearest(found, c[0])
            counts["pairs"] += 1
            counts["agree"] += c[2] == s[2]
            y = c[3] if c[3] is not None else s[3]
            if y is None:
                continue
            counts[_OUTCOMES[(c[2] == y, s[2] == y)]] += 1
            if positive is None:
                continue
            counts[f"cell_{int(y == positive)}{int(c[2] == positive)}{int(s[2] == positive)}"] += 1
            if c[4] is not None and s[4] is not None:
                truth.append(y == positive)
                scores[0].append(c[4])
                scores[1].append(s[4])
        if not truth:
            return cls(counts, layout=layout)
        cells = _cell_keys(np.asarray(truth), _side_bins(layout, scores[0]), _side_bins(layout, scores[1]))
        return cls(counts, *_grouped(cells, np.ones(len(truth))), layout)

    @classmethod
    def merged(cls, parts: Sequence[PairSummary]) -> PairSummary:
        """All added up, on the first one's bins (others' cells moved to them)."""
        counts = dict.fromkeys(PAIR_COUNTS, 0)
        for p in parts:
            for k in PAIR_COUNTS:
                counts[k] += p.counts.get(k, 0)
        layout = parts[0].layout if parts else ScoreLayout.standard(1)
        moved = [
            p.keys if p.layout == layout else _moved(p.keys, p.layout.middles(0, SIDE_BINS), layout) for p in parts
        ]
        keys = np.concatenate([_EMPTY, *moved])
        weights = np.concatenate([_EMPTY, *(p.weights for p in parts)])
        return cls(counts, *_grouped(keys, weights), layout)

    def to_parts(self) -> tuple[dict[str, Any], bytes | None]:
        """As stored: the counts and the bins' layout, and the cells' keys then their pairs packed
        in one array."""
        blob = pack_counts(np.concatenate([self.keys, self.weights])) if len(self.keys) else None
        return {**self.counts, "score_layout": self.layout.to_json()}, blob

    @classmethod
    def from_parts(cls, stats: dict[str, Any], blob: bytes | None) -> PairSummary:
        """As stored; one stored without its layout moved to the standard bins."""
        counts = {k: int(stats.get(k, 0)) for k in PAIR_COUNTS}
        stored = stats.get("score_layout")
        layout = ScoreLayout.standard(1) if stored is None else ScoreLayout.from_json(stored)
        if blob is None:
            return cls(counts, layout=layout)
        flat = unpack_counts(blob)
        half = len(flat) // 2
        keys, weights = flat[:half].copy(), flat[half:].copy()
        if stored is None:
            keys, weights = _grouped(_moved(keys, _OLD_SIDE_MIDDLES, layout), weights)
        return cls(counts, keys, weights, layout)

    def pairs(self) -> Pairs:
        """What the comparison reads: the counts, and the scored cells as rows with weights (a
        cell's bins stand for its scores: ROC AUC depends on their order only)."""
        if not len(self.keys):
            return Pairs(dict(self.counts))
        side = (1 << SIDE_BITS) - 1
        truth = ((self.keys >> TRUTH_BIT) & 1).astype(bool)
        champion = ((self.keys >> SIDE_BITS) & side).astype(float)
        shadow = (self.keys & side).astype(float)
        return Pairs(dict(self.counts), truth, champion, shadow, self.weights.astype(float))
