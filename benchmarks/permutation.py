"""The cost of the categories' tests per feature and window: the two-sample chi-square's simulated
p-value, and the calibrated profile's ``categories_2samp``, which needs none.

    python benchmarks/permutation.py [--repeats 5]

Where an expected count is under 5, ``chisquare_2samp`` takes its p-value from tables drawn with
the observed totals (``monitor.metrics.stattests.homogeneity_p_value``). Drawing stops once 50
drawn tables were at least as extreme as the observed one (Besag and Clifford's sequential rule);
the baseline, in the same run, draws all 9,999. For a Zipf-like category of 50, 200 and 2,000
levels, a 50,000-row reference and 10,000 current rows, with no change and with 5 % of the rows
moved to the next level, it prints the p-value and the best time of ``--repeats`` of each; and
the same of ``categories_2samp`` (rare levels pooled by their totals for the chi-square, plus
the exact test of each level's count: no drawn tables).
Target (per feature and window, 50,000-row reference): at most 50 ms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from monitor.metrics import stattests


def best_ms(ref: np.ndarray, cur: np.ndarray, repeats: int, test=stattests.homogeneity_p_value) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        p = test(ref, cur)
        times.append(time.perf_counter() - t)
    return p, min(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sequential = stattests._EXCEEDANCES
    print(
        "levels | window | p (sequential) | ms (sequential) | p (every draw) | ms (every draw) "
        "| p (categories_2samp) | ms (categories_2samp)"
    )
    for k in (50, 200, 2_000):
        p = 1 / np.arange(1, k + 1) ** 1.1
        p /= p.sum()
        ref = rng.multinomial(50_000, p)
        for name, shares in (("no change", p), ("5 % moved", 0.95 * p + 0.05 * np.roll(p, 1))):
            cur = rng.multinomial(10_000, shares)
            stattests._EXCEEDANCES = sequential
            p_seq, t_seq = best_ms(ref, cur, args.repeats)
            stattests._EXCEEDANCES = stattests._DRAWS + 1  # never stops early: the baseline
            p_all, t_all = best_ms(ref, cur, args.repeats)
            p_cat, t_cat = best_ms(ref, cur, args.repeats, stattests.categories_p_value)
            print(
                f"{k:>6} | {name:<9} | {p_seq:>14.4g} | {t_seq:>15.1f} | {p_all:>14.4g} | {t_all:>15.1f} "
                f"| {p_cat:>20.4g} | {t_cat:>20.1f}"
            )
    stattests._EXCEEDANCES = sequential


if __name__ == "__main__":
    main()
