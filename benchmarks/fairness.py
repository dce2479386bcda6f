"""How often the four-fifths rule is decided violated, at known true ratios: this service's
decision (the ratio's interval wholly under 0.8: per-pair intervals, each bound one-sided at 5 %)
against the decision before it (a 95 % parametric bootstrap of the smallest rate over the
largest, in the same run) and against the value alone (what a threshold on Fairlearn's
``demographic_parity_ratio`` does); and how often each interval holds the truth.

    python benchmarks/fairness.py [--windows 1000]

Each window draws two groups, a large one of 1,000 predictions selected at 0.5 and one of ``n``
selected at 0.5 x the true ratio. At a true ratio of 0.8 (the boundary) a good rule pages in at
most 5 % of windows; below it, more often the larger the group; for a fair model (ratio 1) the
interval should hold 1.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.metrics.fairness import GroupCounts, Thresholds, fairness_points

START = datetime(2026, 1, 1, tzinfo=UTC)
LARGE = 1_000


def bootstrap_before(k: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The interval before: 2.5th and 97.5th percentiles of min / max over 2,000 draws of every
    group's rate from its Jeffreys posterior."""
    draws = rng.beta(k + 0.5, n - k + 0.5, size=(2_000, len(k)))
    ratios = draws.min(axis=1) / draws.max(axis=1)
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return float(lo), float(hi)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=1000)
    args = p.parse_args()
    columns = ["small group", "true ratio", "decided violated: now", "before", "value alone"]
    print("| " + " | ".join([*columns, "interval holds the truth: now", "before"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for n in (60, 150, 1000, 5000):
        for ratio in (1.0, 0.9, 0.8, 0.69, 0.6):
            rng = np.random.default_rng(n)
            ours = before = value_alone = held = held_before = 0
            for i in range(args.windows):
                k_large, k_small = int(rng.binomial(LARGE, 0.5)), int(rng.binomial(n, 0.5 * ratio))
                groups = {"a": GroupCounts(LARGE, k_large, 0, 0, 0, 0), "b": GroupCounts(n, k_small, 0, 0, 0, 0)}
                start = START + timedelta(hours=i)
                (point,) = [
                    q
                    for q in fairness_points(
                        "x", groups, Thresholds(min_group_size=1), start, start + timedelta(hours=1)
                    )
                    if q.metric == "fairness.demographic_parity_ratio"
                ]
                ours += bool(point.drifted)
                value_alone += (point.value or 0.0) < 0.8
                held += point.details["lower"] <= ratio <= point.details["upper"]
                lo, hi = bootstrap_before(np.array([k_large, k_small], float), np.array([LARGE, n], float), rng)
                before += hi < 0.8
                held_before += lo <= ratio <= hi
            w = args.windows
            print(
                f"| {n:,} | {ratio:.2f} | {ours / w:.1%} | {before / w:.1%} | {value_alone / w:.1%} "
                f"| {held / w:.1%} | {held_before / w:.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
