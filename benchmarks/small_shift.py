"""How often a small mean shift is found, by test, at the level one feature gets in a window of
20 (0.05 / 20, Benjamini-Hochberg's threshold for the only changed feature) and alone (0.05):
the calibrated profile's Anderson-Darling and KS on the window job's summaries (the reference's
edges), against the t-test on the raw rows (the most powerful test for a normal mean: the bound
no test of a 20-feature window can pass by much).

    python benchmarks/small_shift.py [--windows 1000] [--shift 0.2] [--rows 800]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from monitor.metrics.profiles import NumericSummary, reference_summary, summary_from_json
from monitor.metrics.stattests import drift_from_summaries


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=1000)
    p.add_argument("--shift", type=float, default=0.2, help="in standard deviations")
    p.add_argument("--rows", type=int, default=800, help="a side")
    args = p.parse_args()
    levels = {"one of 20 (p < 0.0025)": 0.05 / 20, "alone (p < 0.05)": 0.05}
    found = {(test, level): 0 for test in ("anderson", "ks", "t-test") for level in levels}
    for seed in range(args.windows):
        rng = np.random.default_rng(seed)
        ref, cur = rng.normal(0, 1, args.rows), rng.normal(args.shift, 1, args.rows)
        r = summary_from_json(reference_summary(ref.tolist(), numerical=True))
        assert isinstance(r, NumericSummary)
        c = NumericSummary.of(cur, r.edges)
        p_values = {
            "anderson": drift_from_summaries(r, c, test="anderson").score,
            "ks": drift_from_summaries(r, c, test="ks").score,
            "t-test": float(stats.ttest_ind(ref, cur).pvalue),
        }
        for (test, level), _ in found.items():
            found[(test, level)] += p_values[test] < levels[level]
    print(f"+{args.shift} sd, {args.rows:,} rows a side, {args.windows:,} windows: share found")
    print("| test | " + " | ".join(levels) + " |\n|---|---|---|")
    for test in ("anderson", "ks", "t-test"):
        print(f"| {test} | " + " | ".join(f"{found[(test, level)] / args.windows:.1%}" for level in levels) + " |")


if __name__ == "__main__":
    main()
