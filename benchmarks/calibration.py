"""Do the drift decisions mean what they say? A power table: false alarms on windows without a
change and detection of changes an analyst would call material, for the ``calibrated`` default,
the ``evidently`` profile (Evidently's rule on this service's summaries) and Evidently itself (its
``DataDriftPreset`` on the same raw rows), on data this script generates with fixed seeds,
through the code the window job runs (summaries on the reference's edges, then
``monitor.metrics.drift_decision.decide``).

    python benchmarks/calibration.py [--windows 200] [--evidently-windows 40] [--no-concept]

The data: 20 features like a real model's, 10 numerical (normal, lognormal, a heavy-tailed
lognormal with sigma 2, Pareto with alpha 1.5, t(3), Poisson counts with mean 0.3, a binomial
count 0-9, a rounded gamma, a mostly-zero one, a bimodal one) and 10 categorical (binary, 5 and
50 equal levels, a 200-level Zipf, and 2 to 30 levels with rare ones); 100 features are five
independent copies. No drift: the share of windows in which any feature is flagged, per regime
(reference rows / current rows / features). Power: the share of windows in which the one
changed feature (of the 20) is flagged.

Targets for the default: no-drift at most 5 % in every regime; power at least 90 % for the
lognormal x1.5 and Pareto x1.3 at 5k/5k, Poisson +50 % at 5k/5k, a 5-point share move at 10k
rows, +0.2 sd at 800/800; at least Evidently's power wherever Evidently's no-drift rate is at
most 5 %.

Last, the concept-drift detectors against River's (``benchmarks/concept_drift.py``; needs
River, ``pip install river``; ``--no-concept`` leaves it out).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from monitor.metrics.drift_decision import Rule, decide
from monitor.metrics.profiles import CategoricalSummary, NumericSummary, reference_summary, summary_from_json

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _shares(k: int, shape: str) -> np.ndarray:
    p = {"equal": np.ones(k), "rare": 0.7 ** np.arange(k), "zipf": 1.0 / np.arange(1, k + 1)}[shape]
    return p / p.sum()


def _pareto(scale: float) -> Sampler:
    return lambda r, n: scale * (r.pareto(1.5, n) + 1)


NUMERICAL: dict[str, Sampler] = {
    "normal": lambda r, n: r.normal(50, 10, n),
    "lognormal": lambda r, n: r.lognormal(2, 0.6, n),
    "lognormal_s2": lambda r, n: r.lognormal(0, 2, n),
    "pareto": _pareto(1.0),
    "t3": lambda r, n: r.standard_t(3, n),
    "poisson": lambda r, n: r.poisson(0.3, n).astype(float),
    "binomial0-9": lambda r, n: r.binomial(9, 0.3, n).astype(float),
    "rounded": lambda r, n: np.round(r.gamma(3, 2, n), 1),
    "mostly_zero": lambda r, n: np.where(r.random(n) < 0.8, 0.0, r.exponential(5, n)),
    "bimodal": lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(3, 1, n)),
}
CATEGORICAL: dict[str, np.ndarray] = {
    "binary": _shares(2, "equal"),
    "cat5": _shares(5, "equal"),
    "cat50": _shares(50, "equal"),
    "zipf200": _shares(200, "zipf"),
    "cat2_rare": np.array([0.9, 0.1]),
    "cat3": _shares(3, "equal"),
    "cat4_rare": _shares(4, "rare"),
    "cat8_rare": _shares(8, "rare"),
    "cat12": _shares(12, "equal"),
    "cat30_rare": _shares(30, "rare"),
}
LEVELS = {k: np.array([f"v{i}" for i in range(len(p))], dtype=object) for k, p in CATEGORICAL.items()}


def _moved(p: np.ndarray, points: float) -> np.ndarray:
    """``points`` of share onto the first category, the others shrunk in proportion."""
    q = p.copy()
    q[0] += points
    q[1:] *= (p[1:].sum() - points) / p[1:].sum()
    return q


@dataclass(frozen=True)
class Change:
    label: str
    feature: str
    n_ref: int
    n_cur: int
    numerical: Sampler | None = None  # the changed feature's sampler in the current window
    shares: np.ndarray | None = None  # or its categories' shares
    features: int = 20


def _shift(sd: float) -> Sampler:
    return lambda r, n: r.normal(50 + 10 * sd, 10, n)


CHANGES = [
    Change("lognormal sigma 2, scale x1.5", "lognormal_s2", 5_000, 5_000, lambda r, n: 1.5 * r.lognormal(0, 2, n)),
    Change("Pareto alpha 1.5, scale x1.3", "pareto", 5_000, 5_000, _pareto(1.3)),
    Change("Poisson mean 0.3 -> 0.45", "poisson", 5_000, 5_000, lambda r, n: r.poisson(0.45, n).astype(float)),
    Change("binary, one share +5 points", "binary", 10_000, 10_000, shares=_moved(CATEGORICAL["binary"], 0.05)),
    Change("5 levels, one share +5 points", "cat5", 10_000, 10_000, shares=_moved(CATEGORICAL["cat5"], 0.05)),
    Change("50 levels, one share +5 points", "cat50", 10_000, 10_000, shares=_moved(CATEGORICAL["cat50"], 0.05)),
    Change("200-level Zipf, top +5 points", "zipf200", 10_000, 10_000, shares=_moved(CATEGORICAL["zipf200"], 0.05)),
    Change("5 levels, one share +5 points", "cat5", 5_000, 10_000, shares=_moved(CATEGORICAL["cat5"], 0.05)),
    Change("normal, mean +0.1 sd", "normal", 5_000, 10_000, _shift(0.1)),
    Change("normal, mean +0.2 sd", "normal", 5_000, 10_000, _shift(0.2)),
    Change("normal, mean +0.2 sd", "normal", 800, 800, _shift(0.2)),
    Change("normal, mean +0.2 sd (one of 100)", "normal", 800, 800, _shift(0.2), features=100),
    Change("normal, mean +0.5 sd", "normal", 800, 800, _shift(0.5)),
    Change("normal, sd x1.5", "normal", 5_000, 10_000, lambda r, n: r.normal(50, 15, n)),
    Change("Poisson mean 0.3 -> 0.45", "poisson", 800, 800, lambda r, n: r.poisson(0.45, n).astype(float)),
    Change("5 levels, one share +10 points", "cat5", 800, 800, shares=_moved(CATEGORICAL["cat5"], 0.10)),
]
NO_DRIFT = [
    (800, 800, 20),
    (5_000, 10_000, 20),
    (10_000, 10_000, 20),
    (800, 10_000, 20),
    (5_000, 50, 20),
    (200, 50, 20),
    (50_000, 100, 20),
    (800, 800, 100),
    (5_000, 10_000, 100),
]
PROFILES = {"calibrated": Rule("calibrated"), "evidently profile": Rule("evidently")}


def draw(rng: np.random.Generator, n: int, features: int, change: Change | None = None) -> dict[str, np.ndarray]:
    """One sample of every feature (``features`` is 20 or a multiple: independent copies)."""
    out: dict[str, np.ndarray] = {}
    for copy in range(features // 20):
        suffix = f"_{copy}" if copy else ""
        for name, sampler in NUMERICAL.items():
            if change and not suffix and name == change.feature and change.numerical is not None:
                sampler = change.numerical
            out[name + suffix] = sampler(rng, n)
        for name, p in CATEGORICAL.items():
            if change and not suffix and name == change.feature and change.shares is not None:
                p = change.shares
            out[name + suffix] = rng.choice(LEVELS[name], n, p=p)
    return out


def is_numerical(column: str) -> bool:
    return column.rsplit("_", 1)[0] in NUMERICAL or column in NUMERICAL


def summaries(ref: dict[str, np.ndarray], cur: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each feature's (reference summary, current summary, distinct reference values), as the
    window job has them."""
    columns: dict[str, Any] = {}
    for name, values in ref.items():
        if is_numerical(name):
            stored = reference_summary(values.tolist(), numerical=True)
            r = summary_from_json(stored)
            assert isinstance(r, NumericSummary)
            columns[name] = (r, NumericSummary.of(cur[name], r.edges), stored["distinct"])
        else:
            columns[name] = (_categories(values), _categories(cur[name]), None)
    return columns


def _categories(values: np.ndarray) -> CategoricalSummary:
    keys, counts = np.unique(values, return_counts=True)
    return CategoricalSummary(dict(zip(keys.tolist(), counts.tolist(), strict=True)))


def flagged(columns: dict[str, Any], rule: Rule) -> set[str]:
    # the minimum sample size is the decision's, not the test's: small windows are measured too
    decisions = decide(columns, set(columns), Rule(rule.profile, rule.alpha, 1, rule.fdr))
    return {c for c, d in decisions.items() if d.drifted}


def evidently_flagged(ref: dict[str, np.ndarray], cur: dict[str, np.ndarray]) -> set[str]:
    """Evidently's DataDriftPreset on the raw rows, with its defaults."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical = [c for c in ref if is_numerical(c)]
    categorical = [c for c in ref if not is_numerical(c)]
    dd = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    run = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(pd.DataFrame(cur), data_definition=dd),
        Dataset.from_pandas(pd.DataFrame(ref), data_definition=dd),
    )
    out = set()
    for m in run.dict()["metrics"]:
        cfg = m["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            value, threshold = float(m["value"]), float(cfg["threshold"])
            if (value < threshold) if "p_value" in cfg["method"] else (value >= threshold):
                out.add(cfg["column"])
    return out


def rates(
    seeds: range, evidently_seeds: range, n_ref: int, n_cur: int, features: int, change: Change | None
) -> dict[str, float]:
    """Per profile, the share of windows flagged: any feature (no change) or the changed one."""
    hits = {name: 0 for name in PROFILES} | {"Evidently": 0}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        ref, cur = draw(rng, n_ref, features), draw(rng, n_cur, features, change)
        cols = summaries(ref, cur)
        for name, rule in PROFILES.items():
            got = flagged(cols, rule)
            hits[name] += (change.feature in got) if change else bool(got)
        if seed in evidently_seeds:
            got = evidently_flagged(ref, cur)
            hits["Evidently"] += (change.feature in got) if change else bool(got)
    out = {name: hits[name] / len(seeds) for name in PROFILES}
    out["Evidently"] = hits["Evidently"] / len(evidently_seeds) if len(evidently_seeds) else float("nan")
    return out


def _row(label: str, r: dict[str, float]) -> str:
    return f"| {label} | " + " | ".join("—" if v != v else f"{v:.1%}" for v in r.values()) + " |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--windows", type=int, default=200, help="windows per row for the service's profiles")
    p.add_argument("--evidently-windows", type=int, default=40, help="of those, how many Evidently runs (slow)")
    p.add_argument("--seeds", type=int, default=30, help="streams per concept-drift case")
    p.add_argument("--no-concept", action="store_true", help="leave out concept drift (which needs River)")
    args = p.parse_args()
    started = time.perf_counter()
    header = "| " + " | ".join([*PROFILES, "Evidently"]) + " |"
    print(f"No drift: share of windows with any feature flagged ({args.windows} windows a row;")
    print(f"Evidently itself on the first {args.evidently_windows})\n")
    print("| reference / current rows, features " + header + "\n|---|---|---|---|")
    for n_ref, n_cur, features in NO_DRIFT:
        seeds = range(args.windows)
        r = rates(seeds, range(min(args.evidently_windows, args.windows)), n_ref, n_cur, features, None)
        print(_row(f"{n_ref:,} / {n_cur:,}, {features}", r), flush=True)

    print("\nPower: share of windows in which the changed feature is flagged (one feature of 20 changed)\n")
    print("| change | reference / current rows " + header + "\n|---|---|---|---|---|")
    for i, change in enumerate(CHANGES):
        seeds = range(100_000 * (i + 1), 100_000 * (i + 1) + args.windows)
        r = rates(seeds, seeds[: args.evidently_windows], change.n_ref, change.n_cur, change.features, change)
        print(_row(f"{change.label} | {change.n_ref:,} / {change.n_cur:,}", r), flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")
    if not args.no_concept:
        print("\nConcept drift on the error stream, against River (benchmarks/concept_drift.py)")
        sys.stdout.flush()
        script = Path(__file__).with_name("concept_drift.py")
        subprocess.run([sys.executable, str(script), "--seeds", str(args.seeds)], check=True)


if __name__ == "__main__":
    main()
