"""Do the drift decisions mean what they say? False alarms and detection of both stat-test
profiles, on data this script generates (fixed seeds), through the code the window job runs
(summaries on the reference's edges, then ``monitor.metrics.drift_decision.decide``).

    python benchmarks/calibration.py [--windows 200]

The data: 20 features like a real model's. 8 numerical of several shapes (normal, lognormal,
bimodal, heavy-tailed t(3), few-valued integers 0-3 and 0-9, a rounded one, a mostly-zero one)
and 12 categorical with 2 to 30 categories, some rare (geometric shares). For each regime
(reference rows / current rows) it draws ``--windows`` reference-current pairs with no drift at
all and prints the share of windows where any feature was called drifted, and the per-feature
false-alarm rate. Then, with 10,000 current rows against a reference of 5,000, the share of
windows in which a mean shift of 0.1, 0.2 and 0.5 standard deviations in one numerical feature
(of the 20) and a 5- or 15-point move of one category's share are found.

Last, the concept-drift detectors against River's (``benchmarks/concept_drift.py``; needs
River, ``pip install river``; ``--no-concept`` leaves it out).

Targets for the default (calibrated) profile: at most 5 % of no-drift windows with any feature
flagged in every regime; at least 90 % detection of a 0.2 sigma shift with 10,000 current rows.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from monitor.metrics.drift_decision import Rule, decide
from monitor.metrics.profiles import NumericSummary, reference_summary, summary_from_json

Sampler = Callable[[np.random.Generator, int], np.ndarray]

NUMERICAL: dict[str, Sampler] = {
    "normal": lambda r, n: r.normal(50, 10, n),
    "lognormal": lambda r, n: r.lognormal(2, 0.6, n),
    "bimodal": lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(3, 1, n)),
    "t3": lambda r, n: r.standard_t(3, n),
    "int0-3": lambda r, n: r.integers(0, 4, n).astype(float),
    "int0-9": lambda r, n: r.binomial(9, 0.3, n).astype(float),
    "rounded": lambda r, n: np.round(r.gamma(3, 2, n), 1),
    "mostly_zero": lambda r, n: np.where(r.random(n) < 0.8, 0.0, r.exponential(5, n)),
}
CATEGORY_COUNTS = [2, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30]


def _shares(k: int, rare: bool) -> np.ndarray:
    p = 0.7 ** np.arange(k) if rare else np.ones(k)
    return p / p.sum()


CATEGORICAL = {f"cat{k}_{i}": _shares(k, rare=i % 2 == 1) for i, k in enumerate(CATEGORY_COUNTS)}
REGIMES = [(800, 800), (5_000, 10_000), (800, 10_000), (5_000, 50), (200, 50)]
PROFILES = {"calibrated (default)": Rule("calibrated"), "evidently": Rule("evidently")}


def draw(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """One sample of every feature; ``shift``: a feature's mean moved by that many of its
    standard deviations (numerical) or that many points of share onto its first category."""
    shift = shift or {}
    out: dict[str, np.ndarray] = {}
    for name, sampler in NUMERICAL.items():
        x = sampler(rng, n)
        if name in shift:
            x = x + shift[name] * float(np.std(sampler(np.random.default_rng(0), 100_000)))
        out[name] = x
    for name, p in CATEGORICAL.items():
        if name in shift:
            p = p.copy()
            moved = min(shift[name], p[1:].sum())
            p[0] += moved
            p[1:] *= (p[1:].sum() - moved) / p[1:].sum()
        out[name] = rng.choice(np.array([f"v{i}" for i in range(len(p))], dtype=object), n, p=p)
    return out


def window(rng: np.random.Generator, n_ref: int, n_cur: int, shift: dict[str, float] | None = None) -> dict[str, Any]:
    """Each feature's (reference summary, current summary, distinct reference values), as the
    window job has them."""
    ref, cur = draw(rng, n_ref), draw(rng, n_cur, shift)
    columns = {}
    for name in NUMERICAL:
        stored = reference_summary(ref[name].tolist(), numerical=True)
        r = summary_from_json(stored)
        assert isinstance(r, NumericSummary)
        columns[name] = (r, NumericSummary.of(cur[name], r.edges), stored["distinct"])
    for name in CATEGORICAL:
        columns[name] = (
            summary_from_json(reference_summary(ref[name].tolist(), numerical=False)),
            summary_from_json(reference_summary(cur[name].tolist(), numerical=False)),
            None,
        )
    return columns


def flagged(columns: dict[str, Any], rule: Rule) -> set[str]:
    # the minimum sample size is the decision's, not the test's: small windows are measured too
    decisions = decide(columns, set(columns), Rule(rule.profile, rule.alpha, 1, rule.fdr))
    return {c for c, d in decisions.items() if d.drifted}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=200)
    p.add_argument("--seeds", type=int, default=30, help="streams per concept-drift case")
    p.add_argument("--no-concept", action="store_true", help="leave out concept drift (which needs River)")
    args = p.parse_args()
    n_features = len(NUMERICAL) + len(CATEGORICAL)
    started = time.perf_counter()

    print(f"No drift: share of windows with any of {n_features} features flagged ({args.windows} windows each)")
    print(f"{'reference / current':>22} | " + " | ".join(f"{name:>28}" for name in PROFILES))
    for n_ref, n_cur in REGIMES:
        any_flag = {name: 0 for name in PROFILES}
        per_feature = {name: 0 for name in PROFILES}
        for seed in range(args.windows):
            cols = window(np.random.default_rng(seed), n_ref, n_cur)
            for name, rule in PROFILES.items():
                hits = flagged(cols, rule)
                any_flag[name] += bool(hits)
                per_feature[name] += len(hits)
        cells = [
            f"{any_flag[n] / args.windows:>6.1%} (per feature {per_feature[n] / args.windows / n_features:5.1%})"
            for n in PROFILES
        ]
        print(f"{n_ref:>10,} / {n_cur:<9,} | " + " | ".join(f"{c:>28}" for c in cells))

    print("\nDetection, reference 5,000 / current 10,000: share of windows where the changed feature is flagged")
    print(f"{'change':>34} | " + " | ".join(f"{name:>20}" for name in PROFILES))
    changes = [
        ("normal: mean +0.1 sd", {"normal": 0.1}, "normal"),
        ("normal: mean +0.2 sd", {"normal": 0.2}, "normal"),
        ("normal: mean +0.5 sd", {"normal": 0.5}, "normal"),
        ("lognormal: mean +0.2 sd", {"lognormal": 0.2}, "lognormal"),
        ("cat4_3: first category +5 points", {"cat4_3": 0.05}, "cat4_3"),
        ("cat4_3: first category +15 points", {"cat4_3": 0.15}, "cat4_3"),
    ]
    for label, shift, feature in changes:
        found = {name: 0 for name in PROFILES}
        for seed in range(args.windows):
            cols = window(np.random.default_rng(10_000 + seed), 5_000, 10_000, shift)
            for name, rule in PROFILES.items():
                found[name] += feature in flagged(cols, rule)
        print(f"{label:>34} | " + " | ".join(f"{found[n] / args.windows:>20.1%}" for n in PROFILES))
    print(f"\n{time.perf_counter() - started:.0f} s")
    if not args.no_concept:
        print("\nConcept drift on the error stream, against River (benchmarks/concept_drift.py)")
        sys.stdout.flush()
        script = Path(__file__).with_name("concept_drift.py")
        subprocess.run([sys.executable, str(script), "--seeds", str(args.seeds)], check=True)


if __name__ == "__main__":
    main()
