"""The statistics of a challenger compared with the champion, on simulated windows with known
truth: how often each interval holds the true difference, how often two equal versions are said
to differ (false alarms, at 95 % they should be 5 %), and how often a real gain is found, for a
shadow (the same requests, paired) and for a split of the same number of requests (unpaired).

    python benchmarks/comparison.py [--windows 1000] [--requests 2000]

Each request is positive with probability 0.3; each version scores it as truth x separation +
the request's own difficulty (shared by both versions: what pairing removes) + noise, and
predicts the positive class above a threshold. A version's true accuracy, precision, recall, F1
and ROC AUC are read off a million requests. The challenger separates better by ``GAIN``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from monitor.metrics.comparison import (
    PAIR_CELLS,
    Difference,
    Placements,
    auc_paired,
    auc_unpaired,
    paired,
    ratio_differences,
    unpaired,
)

GAIN = 0.15
THRESHOLD = 0.9
POSITIVE = 0.3


@dataclass
class Requests:
    truth: np.ndarray
    scores: tuple[np.ndarray, np.ndarray]  # the champion's, the challenger's

    @property
    def predicted(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores[0] > THRESHOLD, self.scores[1] > THRESHOLD


def draw(rng: np.random.Generator, n: int, gain: float) -> Requests:
    truth = rng.random(n) < POSITIVE
    difficulty = rng.standard_normal(n)
    return Requests(
        truth,
        (
            truth * 1.5 + difficulty + 0.5 * rng.standard_normal(n),
            truth * (1.5 + gain) + difficulty + 0.5 * rng.standard_normal(n),
        ),
    )


def _counts(truth: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn)."""
    return (
        int((truth & predicted).sum()),
        int((~truth & predicted).sum()),
        int((truth & ~predicted).sum()),
        int((~truth & ~predicted).sum()),
    )


def _four(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    return int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum())


def true_values(gain: float) -> dict[str, float]:
    """Each metric's true difference, challenger minus champion, off a million requests."""
    r = draw(np.random.default_rng(0), 1_000_000, gain)
    out = {}
    for name, f in METRICS.items():
        values = [f(r.truth, r.predicted[i], r.scores[i]) for i in (0, 1)]
        out[name] = values[1] - values[0]
    return out


def _auc(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> float:
    p = Placements.of(scores[truth, None], scores[~truth, None], np.ones(truth.sum()), np.ones((~truth).sum()))
    return float(p.auc[0])


def _ratio(name: str) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    def f(truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> float:
        tp, fp, fn, tn = _counts(truth, predicted)
        return {
            "accuracy": (tp + tn) / len(truth),
            "recall": tp / (tp + fn),
            "precision": tp / (tp + fp),
            "f1": 2 * tp / (2 * tp + fp + fn),
        }[name]

    return f


METRICS = {name: _ratio(name) for name in ("accuracy", "recall", "precision", "f1")} | {"roc_auc": _auc}


def shadow(r: Requests, rng: np.random.Generator) -> dict[str, Difference | None]:
    """The same requests scored by both: every comparison paired."""
    right = [p == r.truth for p in r.predicted]
    pos = r.truth
    cells = [int(((r.truth == y) & (r.predicted[0] == c) & (r.predicted[1] == s)).sum()) for y, c, s in PAIR_CELLS]
    out: dict[str, Difference | None] = {
        "accuracy": paired(*_four(*right)),
        "recall": paired(*_four(right[0][pos], right[1][pos])),
        "roc_auc": auc_paired(r.truth, *r.scores),
    }
    return out | dict(ratio_differences(cells, True, 0.95, rng))


def split(r: Requests, rng: np.random.Generator) -> dict[str, Difference | None]:
    """Half the requests to each version: every comparison unpaired."""
    half = rng.random(len(r.truth)) < 0.5
    sides = [(r.truth[m], r.predicted[i][m], r.scores[i][m]) for i, m in ((0, half), (1, ~half))]
    counts = [_counts(t, p) for t, p, _ in sides]
    (tp1, _, fn1, tn1), (tp2, _, fn2, tn2) = counts
    placements = [Placements.of(s[t, None], s[~t, None], np.ones(t.sum()), np.ones((~t).sum())) for t, _, s in sides]
    out: dict[str, Difference | None] = {
        "accuracy": unpaired(tp1 + tn1, sum(counts[0]), tp2 + tn2, sum(counts[1])),
        "recall": unpaired(tp1, tp1 + fn1, tp2, tp2 + fn2),
        "roc_auc": auc_unpaired(*placements),
    }
    return out | dict(ratio_differences([*counts[0], *counts[1]], False, 0.95, rng))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=1000)
    p.add_argument("--requests", type=int, default=2000)
    args = p.parse_args()
    truth = true_values(GAIN)
    print(f"{args.requests:,} labelled requests a window, {args.windows:,} windows a row; true differences: ", end="")
    print(", ".join(f"{m} {v:+.4f}" for m, v in truth.items()))
    print(f"{'metric':>9} {'way':>7} {'holds truth':>12} {'false alarms':>13} {'finds the gain':>15}")
    for way, compare in (("shadow", shadow), ("split", split)):
        rng = np.random.default_rng(1)
        held = dict.fromkeys(METRICS, 0)
        alarms = dict.fromkeys(METRICS, 0)
        found = dict.fromkeys(METRICS, 0)
        for _ in range(args.windows):
            for m, d in compare(draw(rng, args.requests, GAIN), rng).items():
                if d is not None:
                    held[m] += d.lower <= truth[m] <= d.upper
                    found[m] += d.p_value < 0.05 and d.value > 0
            for m, d in compare(draw(rng, args.requests, 0.0), rng).items():
                alarms[m] += d is not None and d.p_value < 0.05
        for m in METRICS:
            print(
                f"{m:>9} {way:>7} {held[m] / args.windows:>12.1%} {alarms[m] / args.windows:>13.1%} "
                f"{found[m] / args.windows:>15.1%}"
            )


if __name__ == "__main__":
    main()
