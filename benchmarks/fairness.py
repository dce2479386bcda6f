"""How often the four-fifths rule is decided violated, at known true ratios: the decision on
the 95 % interval (this service's) against the decision on the value alone (what a threshold on
Fairlearn's ``demographic_parity_ratio`` does), and how often the interval holds the truth.

    python benchmarks/fairness.py [--windows 1000]

Each window draws two groups of ``n`` predictions each, selected at 0.5 and at 0.5 x the true
ratio. At a true ratio of 0.8 (the boundary) a good rule pages rarely (the interval's one side,
2.5 %); below it, it should page more often the larger the groups.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.metrics.fairness import GroupCounts, Thresholds, fairness_points

START = datetime(2026, 1, 1, tzinfo=UTC)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=1000)
    args = p.parse_args()
    print(
        f"{'group size':>10} {'true ratio':>10} {'interval decides':>17} {'value alone':>12} "
        f"{'interval holds truth':>21}"
    )
    for n in (200, 1000, 5000):
        for ratio in (1.0, 0.9, 0.8, 0.7, 0.6):
            rng = np.random.default_rng(n)
            ours = value_alone = held = 0
            for i in range(args.windows):
                groups = {
                    "a": GroupCounts(n, int(rng.binomial(n, 0.5)), 0, 0, 0, 0),
                    "b": GroupCounts(n, int(rng.binomial(n, 0.5 * ratio)), 0, 0, 0, 0),
                }
                start = START + timedelta(hours=i)
                (point,) = [
                    q
                    for q in fairness_points("x", groups, Thresholds(), start, start + timedelta(hours=1))
                    if q.metric == "fairness.demographic_parity_ratio"
                ]
                ours += bool(point.drifted)
                value_alone += (point.value or 0.0) < 0.8
                held += point.details["lower"] <= ratio <= point.details["upper"]
            w = args.windows
            print(f"{n:>10,} {ratio:>10.1f} {ours / w:>17.1%} {value_alone / w:>12.1%} {held / w:>21.1%}")


if __name__ == "__main__":
    main()
