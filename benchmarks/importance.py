"""What the service says about which features matter, against what is known.

    python benchmarks/importance.py [--windows 200] [--rows 20000]

(a) Importance on data scikit-learn ships (diabetes: regression; breast cancer and digits >= 5:
    binary) and on a synthetic regression whose importances are known: a gradient-boosted model
    is trained on 70 % of each; the truth is that model's permutation importance on the other
    30 % (scikit-learn, 20 shuffles; for the synthetic set also its known coefficients). Against
    it, Spearman's rank correlation and the NDCG of the ranking (the truth the gains) of
    - the service's estimate made at reference upload (``estimate_importance``: permutation
      importance of a surrogate fitted on the reference's features and the model's outputs);
      the service makes none from fewer than 1,000 rows, and the estimate it would make is
      printed for those sets too;
    - mutual information between each feature and the model's output (scikit-learn's
      ``mutual_info_regression``), the alternative the estimate was chosen over;
    - the mean absolute SHAP value (``shap.TreeExplainer``, exact for trees) a serving system
      would log as attributions.
(b) Drift weighed by importance: windows of 1,000 rows against a 5,000-row reference of the
    synthetic set, a shift of half a standard deviation in its most important feature or in one
    the model ignores; each window's drift decided by the service's drift rule (the calibrated
    profile, ``drift_points``). Target: the importance-weighted share separates the two kinds
    (over 0.2 for the important one, under it for the ignored one) in >= 95 % of windows, where
    the share of columns is the same for both.
(c) NDCG as SageMaker Clarify defines it, written out directly, against ``importance.ndcg`` on
    1,000 random rankings: the largest difference.
(d) The cost of attributions against features': microseconds per value to decode and validate a
    batch (the one-pass decoder), to summarise it at ingestion and to summarise log rows again
    (JSON decoded, as the rollup reads them), with 20 features with and without attributions.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from scipy.stats import spearmanr

from monitor.domain.fast_batch import BatchDecoder, peek_batch
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.records import time_bounds
from monitor.domain.schema import ModelSchema
from monitor.metrics.importance import estimate_importance, ndcg, weighted_drift_share
from monitor.metrics.log_summary import AttributionsOfRows, Chunk, Column, GroupSummaries, add_chunk
from monitor.metrics.profiles import NumericSummary, reference_summary
from monitor.metrics.window_points import drift_points

START = datetime(2026, 12, 1, tzinfo=UTC)
COEFFICIENTS = np.array([3.0, 2.0, 1.0, 0.5, 0.25, 0.0, 0.0, 0.0])  # the synthetic set's


def synthetic(n: int, rng: np.random.Generator, shift: dict[int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, len(COEFFICIENTS)))
    for j, s in (shift or {}).items():
        x[:, j] += s
    return x, x @ COEFFICIENTS + rng.normal(scale=0.5, size=n)


def datasets(rng: np.random.Generator) -> list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(name, task, X, y, the known importances or None)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

    diabetes = load_diabetes()
    cancer = load_breast_cancer()
    digits = load_digits()
    x, y = synthetic(5_000, rng)
    return [
        ("diabetes", "regression", diabetes.data, diabetes.target, None),
        ("breast cancer", "binary", cancer.data, cancer.target, None),
        ("digits >= 5", "binary", digits.data, (digits.target >= 5).astype(int), None),
        ("synthetic", "regression", x, y, COEFFICIENTS**2),
    ]


def rank_agreement(truth: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and the NDCG of ``found``'s ranking with ``truth``'s gains."""
    rho = float(spearmanr(truth, found).statistic)
    names = [str(i) for i in range(len(truth))]
    return rho, ndcg(dict(zip(names, truth, strict=True)), dict(zip(names, found, strict=True)))


def part_a() -> None:
    import shap
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.feature_selection import mutual_info_regression
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    print("(a) importance against the trained model's permutation importance (rank correlation, NDCG)")
    print(
        "dataset | task | rows | features | service estimate: rho, NDCG | estimate if made: rho, NDCG "
        "| mutual information (the alternative): rho, NDCG | mean |SHAP|: rho, NDCG | seconds (estimate)"
    )
    for name, task, x, y, known in datasets(np.random.default_rng(0)):
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
        model: Any
        if task == "regression":
            model = GradientBoostingRegressor(random_state=0).fit(x_train, y_train)
            output = model.predict(x)
            scoring = "r2"
        else:
            model = GradientBoostingClassifier(random_state=0).fit(x_train, y_train)
            output = model.predict_proba(x)[:, 1]
            scoring = "neg_log_loss"
        truth = permutation_importance(model, x_test, y_test, n_repeats=20, random_state=0, scoring=scoring)
        true_mean = np.maximum(truth.importances_mean, 0.0)
        columns = {f"x{j}": x[:, j] for j in range(x.shape[1])}
        t = time.perf_counter()
        service = estimate_importance(columns, {}, output)
        made = estimate_importance(columns, {}, output, min_rows=0)
        seconds = time.perf_counter() - t
        shap_values = shap.TreeExplainer(model).shap_values(x)
        mean_abs = np.abs(np.asarray(shap_values)).reshape(len(x), -1).mean(axis=0)
        est = np.array([made[f"x{j}"].value for j in range(x.shape[1])])
        information = mutual_info_regression(x, output, random_state=0)
        said = "none (fewer than 1,000 rows)"
        if service:
            said = "{:.3f}, {:.3f}".format(*rank_agreement(true_mean, est))
        print(
            f"{name} | {task} | {len(x):,} | {x.shape[1]} | {said} | "
            + "{:.3f}, {:.3f} | ".format(*rank_agreement(true_mean, est))
            + "{:.3f}, {:.3f} | ".format(*rank_agreement(true_mean, information))
            + "{:.3f}, {:.3f} | ".format(*rank_agreement(true_mean, mean_abs))
            + f"{seconds:.2f}"
        )
        if known is not None:
            # ties among the features the model ignores make rho of the truth itself below 1
            print(
                f"{name}, against its known importances (coefficient squared) | estimate: "
                + "{:.3f}, {:.3f}".format(*rank_agreement(known, est))
                + " | mutual information: {:.3f}, {:.3f}".format(*rank_agreement(known, information))
                + " | mean |SHAP|: {:.3f}, {:.3f}".format(*rank_agreement(known, mean_abs))
                + " | the trained model's permutation importance: {:.3f}, {:.3f}".format(
                    *rank_agreement(known, true_mean)
                )
            )


def part_b(windows: int) -> None:
    rng = np.random.default_rng(1)
    x_ref, y_ref = synthetic(5_000, rng)
    names = [f"x{j}" for j in range(len(COEFFICIENTS))]
    found = estimate_importance({n: x_ref[:, j] for j, n in enumerate(names)}, {}, y_ref)
    weights = {f: v.value for f, v in found.items()}
    ref = {f"features.{n}": reference_summary(x_ref[:, j].tolist(), numerical=True) for j, n in enumerate(names)}
    edges = {col: np.asarray(s["edges"], dtype=float) for col, s in ref.items()}
    cfg = MonitoringConfig()
    print(f"\n(b) drift weighed by importance: {windows} windows of 1,000 rows of each kind, shift 0.5 sd")
    print("estimated importances (R² lost): " + ", ".join(f"{f} {s:.3f}" for f, s in sorted(weights.items())))
    shares: dict[str, list[tuple[float, float]]] = {"important (x0)": [], "ignored (x6)": []}
    for kind, column in (("important (x0)", 0), ("ignored (x6)", 6)):
        for _ in range(windows):
            x, _ = synthetic(1_000, rng, {column: 0.5})
            current = {col: NumericSummary.of(x[:, j], edges[col]) for j, col in enumerate(ref)}
            points = drift_points(ref, current, 1_000, cfg, START, START + timedelta(hours=1))
            dataset = next(p for p in points if p.metric == "dataset_drift")
            drifted = dataset.details.get("drifted_features", [])
            shares[kind].append((float(dataset.value or 0.0), weighted_drift_share(weights, drifted)))
    high, low = shares["important (x0)"], shares["ignored (x6)"]
    flagged = np.mean([w > 0.2 for _, w in high])
    quiet = np.mean([w <= 0.2 for _, w in low])
    separated = np.mean([(h[1] > 0.2) and (lo[1] <= 0.2) for h, lo in zip(high, low, strict=True)])
    by_columns = np.mean([h[0] > lo[0] for h, lo in zip(high, low, strict=True)])
    print("kind | column share (mean) | weighted share (mean, min, max)")
    for kind, s in shares.items():
        cols, weighted = np.array([c for c, _ in s]), np.array([w for _, w in s])
        print(f"{kind} | {cols.mean():.3f} | {weighted.mean():.3f}, {weighted.min():.3f}, {weighted.max():.3f}")
    print(
        f"windows with the important feature drifted over 0.2: {flagged:.1%}; with the ignored one at most 0.2: "
        f"{quiet:.1%}; pairs separated: {separated:.1%} (target >= 95 %); pairs the column share puts the "
        f"important one higher: {by_columns:.1%}"
    )


def sagemaker_ndcg(reference: dict[str, float], current: dict[str, float]) -> float:
    """Clarify's definition, as its documentation writes it (no ties)."""
    ideal = sorted(reference, key=lambda f: -reference[f])
    ranked = sorted(reference, key=lambda f: -current[f])
    dcg = sum(reference[f] / math.log2(i + 2) for i, f in enumerate(ranked))
    idcg = sum(reference[f] / math.log2(i + 2) for i, f in enumerate(ideal))
    return dcg / idcg


def part_c() -> None:
    rng = np.random.default_rng(2)
    worst = 0.0
    for _ in range(1_000):
        k = int(rng.integers(2, 60))
        names = [f"f{i}" for i in range(k)]
        reference = dict(zip(names, rng.exponential(size=k), strict=True))
        current = dict(zip(names, rng.exponential(size=k), strict=True))
        worst = max(worst, abs(ndcg(reference, current) - sagemaker_ndcg(reference, current)))
    print(
        "\n(c) NDCG against SageMaker Clarify's formula written out, 1,000 random rankings: "
        f"largest difference {worst:.2e}"
    )


SCHEMA = ModelSchema.model_validate(
    {"task": "regression", "features": [{"name": f"f{i}", "type": "numerical"} for i in range(20)]}
)


def _best(fn: Any, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def part_d(rows: int) -> None:
    rng = np.random.default_rng(3)
    names = [f.name for f in SCHEMA.features]
    values = rng.normal(size=(rows, len(names))).round(6)
    shap_values = rng.normal(size=(rows, len(names))).round(6)
    now = datetime.now(UTC)
    plain = [{"features": dict(zip(names, v, strict=True)), "prediction": 1.0} for v in values.tolist()]
    attributed = [
        {**r, "attributions": dict(zip(names, a, strict=True))}
        for r, a in zip(plain, shap_values.tolist(), strict=True)
    ]
    decoder = BatchDecoder(SCHEMA)
    bounds = time_bounds(now, 30, 3600)
    n_values = rows * len(names)
    print(f"\n(d) cost, {rows:,} rows of {len(names)} features (microseconds per value, best of 5)")
    print("step | features | attributions, extra")

    def decode(records: list[dict[str, Any]]) -> Any:
        peeked = peek_batch(orjson.dumps({"model": "m", "records": records}))
        assert peeked is not None
        return decoder.decode(peeked[2], "m", None, bounds)

    decoded = {"plain": decode(plain), "attributed": decode(attributed)}
    assert all(r.attributions for r in decoded["attributed"])
    base = _best(lambda: decode(plain))
    extra = _best(lambda: decode(attributed)) - base
    print(f"decode and validate | {1e6 * base / n_values:.3f} | {1e6 * extra / n_values:.3f}")

    ref = {n: reference_summary(values[:2000, j].tolist(), numerical=True) for j, n in enumerate(names)}
    columns = [Column(f"features.{n}", np.asarray(ref[n]["edges"], dtype=float)) for n in names]
    derived = [AttributionsOfRows(tuple(names))]

    def chunk(rows_: list[Any], with_attributions: bool) -> Chunk:
        return Chunk(
            features=[dict(zip(names, v, strict=True)) for v in values.tolist()],
            scores=[None] * len(rows_),
            predictions=[1.0] * len(rows_),
            latency_ms=[None] * len(rows_),
            segments=[None] * len(rows_),
            attributions=[r.attributions for r in rows_] if with_attributions else [None] * len(rows_),
        )

    def summarise(c: Chunk, with_attributions: bool) -> None:
        groups = {"": GroupSummaries(columns, derived if with_attributions else [])}
        add_chunk(c, groups, {"": None}, derived if with_attributions else [])
        groups[""].parts()

    plain_chunk, attributed_chunk = chunk(decoded["plain"], False), chunk(decoded["attributed"], True)
    base = _best(lambda: summarise(plain_chunk, False))
    extra = _best(lambda: summarise(attributed_chunk, True)) - base
    print(f"summarise at ingestion | {1e6 * base / n_values:.3f} | {1e6 * extra / n_values:.3f}")

    texts = [orjson.dumps(dict(zip(names, v, strict=True))).decode() for v in values.tolist()]
    shap_texts = [orjson.dumps(dict(zip(names, a, strict=True))).decode() for a in shap_values.tolist()]

    def from_log(with_attributions: bool) -> None:
        c = Chunk(
            features=[orjson.loads(t) for t in texts],
            scores=[None] * rows,
            predictions=[1.0] * rows,
            latency_ms=[None] * rows,
            segments=[None] * rows,
            attributions=[orjson.loads(t) for t in shap_texts] if with_attributions else [None] * rows,
        )
        summarise(c, with_attributions)

    base = _best(lambda: from_log(False))
    extra = _best(lambda: from_log(True)) - base
    print(f"summarise again from the log | {1e6 * base / n_values:.3f} | {1e6 * extra / n_values:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=200, help="windows of each kind in (b)")
    ap.add_argument("--rows", type=int, default=20_000, help="rows in (d)")
    ap.add_argument("--parts", default="abcd")
    args = ap.parse_args()
    if "a" in args.parts:
        part_a()
    if "b" in args.parts:
        part_b(args.windows)
    if "c" in args.parts:
        part_c()
    if "d" in args.parts:
        part_d(args.rows)


if __name__ == "__main__":
    main()
