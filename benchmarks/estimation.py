"""Label-free estimation and multivariate drift against what the labels say, and against NannyML
on the same windows.

    python benchmarks/estimation.py [--references 5] [--windows 10] [--rows 1000] [--summary]
                                    [--nannyml-python PATH | --no-nannyml] [--no-domain-classifier]

The data (fixed seeds): features x1, x2, x3 (standard normal), x4 and x5 (standard normal,
correlated 0.8) and a category c. Three models whose calibration is known: a binary one whose
scores are the true probabilities, a binary one that is overconfident (its logit doubled), and a
three-class one whose softmax scores are the true probabilities. The models use x1, x2 and c;
x3, x4 and x5 carry nothing about the outcome. Each model has ``--references`` references of
5,000 labelled rows (one calibration is one draw of its error: comparing two methods on one
reference compares two draws), and against each sees windows of ``--rows`` rows in five
scenarios, ``--windows`` each:

- stable: the reference's distribution;
- performance down: x1 and x2 shrunk to half their spread (rows nearer the decision boundary);
- performance up: x1 and x2 1.6 times their spread;
- covariate shift: x3's mean moved by one standard deviation (drift, the same performance);
- correlation only: the correlation of x4 and x5 flipped to -0.8, every marginal unchanged.

Per window it prints the realized metric (scikit-learn on the window's rows and labels), this
service's estimate and 95 % band (``monitor.metrics.estimation``, from the binned summary, as
the window job computes it), NannyML's CBPE estimate, this service's multivariate drift
(``monitor.metrics.multivariate``) next to NannyML's data-reconstruction error and the
univariate decisions (the window job's calibrated rule over every feature). Then the summary:
mean absolute error of the estimates of ROC AUC and accuracy, ours and NannyML's; the share of
windows whose realized value lies in our band; detection and false alarms of the multivariate
drift; and, on the first reference's windows, the alternative to the reconstruction error: a
domain classifier (gradient-boosted trees telling the window's rows from the reference's).

NannyML runs in its own environment (its pins are not this project's): ``--nannyml-python`` is
that environment's Python (default: ``$NANNYML_PYTHON``, else .nannyml-venv/bin/python, from
where the script is run, when it exists). Make one with

    python3 -m venv .nannyml-venv
    .nannyml-venv/bin/pip install nannyml statsmodels pyarrow

Targets: MAE of estimated ROC AUC and accuracy no worse than NannyML's on the same windows;
realized inside the band in at least 90 % of windows; the correlation-only shift found in at
least 95 % of its windows with at most 5 % false alarms on stable ones, while no univariate test
flags.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ["binary", "binary-overconfident", "multiclass"]
# A run's datasets: (model, reference number)
Dataset = tuple[str, int]
SCENARIOS = ["stable", "performance down", "performance up", "covariate shift", "correlation only"]
CLASSES = {"binary": ["0", "1"], "binary-overconfident": ["0", "1"], "multiclass": ["a", "b", "c"]}
NUMERICAL = ["x1", "x2", "x3", "x4", "x5"]
REFERENCE_ROWS = 5_000


def features(rng: np.random.Generator, n: int, scenario: str) -> dict[str, np.ndarray]:
    spread = {"performance down": 0.5, "performance up": 1.6}.get(scenario, 1.0)
    rho = -0.8 if scenario == "correlation only" else 0.8
    x45 = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
    return {
        "x1": rng.normal(0, spread, n),
        "x2": rng.normal(0, spread, n),
        "x3": rng.normal(1.0 if scenario == "covariate shift" else 0.0, 1, n),
        "x4": x45[:, 0],
        "x5": x45[:, 1],
        "c": rng.choice(np.array(["u", "v", "w"], dtype=object), n, p=[0.5, 0.3, 0.2]),
    }


def outcome(model: str, f: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(scores: rows x classes, true class index) of a model on the features."""
    u = (f["c"] == "u").astype(float)
    if model == "multiclass":
        z = np.column_stack([1.3 * f["x1"] + 0.4 * u, -0.8 * f["x1"] + 1.2 * f["x2"], -1.1 * f["x2"] - 0.3 * u])
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        truth = (rng.random((len(p), 1)) > np.cumsum(p, axis=1)).sum(axis=1)
        return p, truth
    z = 1.4 * f["x1"] - 1.0 * f["x2"] + 0.5 * u - 0.6
    truth = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(int)
    s = 1 / (1 + np.exp(-(2.0 if model == "binary-overconfident" else 1.0) * z))
    return np.column_stack([1 - s, s]), truth


@dataclass
class Window:
    model: str
    scenario: str
    f: dict[str, np.ndarray]
    p: np.ndarray
    truth: np.ndarray
    realized: dict[str, float] = field(default_factory=dict)
    ours: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # value, lower, upper
    nannyml: dict[str, float] = field(default_factory=dict)
    multivariate: tuple[float, bool] = (0.0, False)
    nannyml_reconstruction: tuple[float, bool] | None = None
    univariate: list[str] = field(default_factory=list)
    domain: tuple[float, bool] | None = None  # the domain classifier's AUC and decision

    @property
    def predicted(self) -> np.ndarray:
        out: np.ndarray = self.p.argmax(axis=1)
        return out


def realized(model: str, p: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    auc = skm.roc_auc_score(truth, p, multi_class="ovr") if model == "multiclass" else skm.roc_auc_score(truth, p[:, 1])
    return {"roc_auc": float(auc), "accuracy": float(skm.accuracy_score(truth, p.argmax(axis=1)))}


def ours(reference: Window, windows: list[Window]) -> None:
    from monitor.metrics.drift_decision import Rule, decide
    from monitor.metrics.estimation import ScoreSummary, estimate_classification, fit_calibration
    from monitor.metrics.multivariate import Baseline, ReconstructionSummary, fit_reconstruction, reconstruction_test
    from monitor.metrics.profiles import NumericSummary, reference_summary, summary_from_json

    classes = CLASSES[reference.model]
    positive = "1" if len(classes) == 2 else None
    cal = fit_calibration(reference.p, reference.truth, reference.predicted, classes)
    numbers = np.column_stack([reference.f[c] for c in NUMERICAL])
    fitted = fit_reconstruction(NUMERICAL, numbers, ["c"], [list(reference.f["c"])])
    assert fitted is not None
    model, errors = fitted
    baseline = Baseline.of(errors)
    refs = {c: reference_summary(reference.f[c].tolist(), numerical=c != "c") for c in [*NUMERICAL, "c"]}
    for w in windows:
        est = estimate_classification(ScoreSummary.of(w.p, w.predicted), cal, positive)
        w.ours = {m: (est[m].value, *est[m].band) for m in ("roc_auc", "accuracy")}
        e = model.errors(model.encode(np.column_stack([w.f[c] for c in NUMERICAL]), [list(w.f["c"])]))
        test = reconstruction_test(ReconstructionSummary.of(e), baseline)
        w.multivariate = (test.value, test.drifted)
        columns: dict[str, Any] = {}
        for c, stored in refs.items():
            r = summary_from_json(stored)
            if isinstance(r, NumericSummary):
                columns[c] = (r, NumericSummary.of(w.f[c], r.edges), stored["distinct"])
            else:
                columns[c] = (r, summary_from_json(reference_summary(w.f[c].tolist(), numerical=False)), None)
        w.univariate = sorted(c for c, d in decide(columns, set(columns), Rule("calibrated")).items() if d.drifted)


def _design(f: dict[str, np.ndarray]) -> np.ndarray:
    cats = [(f["c"] == v).astype(float) for v in ("u", "v", "w")]
    return np.column_stack([f[c] for c in NUMERICAL] + cats)


def domain_classifier(reference: Window, windows: list[Window], rows: int, seed: int = 0) -> float:
    """The alternative to the reconstruction error: a classifier (gradient-boosted trees, which
    see interactions such as a correlation) trained to tell a window's rows from as many
    reference rows, its 3-fold cross-validated ROC AUC the drift score. The threshold: the
    largest AUC of 10 splits of the reference against itself. Sets each window's ``domain``;
    returns the seconds per window."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    x_ref = _design(reference.f)

    def auc(a: np.ndarray, b: np.ndarray) -> float:
        x = np.vstack([a, b])
        y = np.r_[np.zeros(len(a)), np.ones(len(b))]
        clf = HistGradientBoostingClassifier(max_iter=50, random_state=0)
        return float(cross_val_score(clf, x, y, cv=3, scoring="roc_auc").mean())

    null = []
    for _ in range(10):
        i = rng.permutation(len(x_ref))
        null.append(auc(x_ref[i[:rows]], x_ref[i[rows : 2 * rows]]))
    threshold = max(null)
    started = time.perf_counter()
    for w in windows:
        value = auc(x_ref[rng.choice(len(x_ref), rows, replace=False)], _design(w.f))
        w.domain = (value, value > threshold)
    return (time.perf_counter() - started) / len(windows)


def frame(w: Window) -> dict[str, list[Any]]:
    classes = CLASSES[w.model]
    out: dict[str, list[Any]] = {c: w.f[c].tolist() for c in [*NUMERICAL, "c"]}
    for k, c in enumerate(classes):
        out[f"p_{c}"] = w.p[:, k].tolist()
    out["y_pred"] = [classes[i] for i in w.predicted]
    out["y_true"] = [classes[i] for i in w.truth]
    return out


def nannyml(python: str, reference: dict[Dataset, Window], windows: dict[Dataset, list[Window]], rows: int) -> None:
    """CBPE and the data-reconstruction error of NannyML, run in its own environment on the same
    rows, chunked as our windows."""
    with tempfile.TemporaryDirectory() as tmp:
        job: dict[str, Any] = {"rows": rows, "models": {}}
        for (m, r), ws in windows.items():
            analysis: dict[str, list[Any]] = {}
            for w in ws:
                for k, v in frame(w).items():
                    analysis.setdefault(k, []).extend(v)
            job["models"][f"{m}/{r}"] = {
                "classes": CLASSES[m],
                "reference": frame(reference[(m, r)]),
                "analysis": analysis,
            }
        Path(tmp, "job.json").write_text(json.dumps(job))
        # NannyML reports usage to a web service unless told not to
        env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
        subprocess.run([python, __file__, "--nannyml-worker", tmp], check=True, env=env)
        results = json.loads(Path(tmp, "results.json").read_text())
    for (m, r), ws in windows.items():
        for i, w in enumerate(ws):
            got = results[f"{m}/{r}"]
            w.nannyml = {metric: got[metric][i] for metric in ("roc_auc", "accuracy")}
            w.nannyml_reconstruction = (got["reconstruction"][i], got["reconstruction_alert"][i])


def nannyml_worker(tmp: str) -> None:
    """Runs under NannyML's Python: reads the job, writes each chunk's estimates."""
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore")
    job = json.loads(Path(tmp, "job.json").read_text())
    out = {}
    for m, spec in job["models"].items():
        reference, analysis = pd.DataFrame(spec["reference"]), pd.DataFrame(spec["analysis"])
        classes = spec["classes"]
        if len(classes) == 2:
            kw: dict[str, Any] = {"y_pred_proba": f"p_{classes[1]}", "problem_type": "classification_binary"}
            for df in (reference, analysis):
                for col in ("y_pred", "y_true"):
                    df[col] = (df[col] == classes[1]).astype(int)
        else:
            kw = {"y_pred_proba": {c: f"p_{c}" for c in classes}, "problem_type": "classification_multiclass"}
        cbpe = nml.CBPE(y_pred="y_pred", y_true="y_true", metrics=["roc_auc", "accuracy"], chunk_size=job["rows"], **kw)
        cbpe.fit(reference)
        est = cbpe.estimate(analysis.drop(columns=["y_true"])).to_df()
        est = est[est[("chunk", "period")] == "analysis"]
        columns = [*NUMERICAL, "c"]
        dre = nml.DataReconstructionDriftCalculator(column_names=columns, chunk_size=job["rows"]).fit(reference)
        rec = dre.calculate(analysis).to_df()
        rec = rec[rec[("chunk", "period")] == "analysis"]
        out[m] = {
            "roc_auc": est[("roc_auc", "value")].astype(float).tolist(),
            "accuracy": est[("accuracy", "value")].astype(float).tolist(),
            "reconstruction": rec[("reconstruction_error", "value")].astype(float).tolist(),
            "reconstruction_alert": rec[("reconstruction_error", "alert")].astype(bool).tolist(),
        }
    Path(tmp, "results.json").write_text(json.dumps(out))


# NannyML's own environment, where the docstring makes it (relative to the working directory)
NANNYML_VENV_PYTHON = ".nannyml-venv/bin/python"


def _nannyml_python(given: str | None) -> str | None:
    for candidate in (given, os.environ.get("NANNYML_PYTHON"), NANNYML_VENV_PYTHON):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--references", type=int, default=5, help="references per model")
    ap.add_argument("--windows", type=int, default=10, help="windows per reference and scenario")
    ap.add_argument("--rows", type=int, default=1000, help="rows per window")
    ap.add_argument("--summary", action="store_true", help="print the summary only, not every window")
    ap.add_argument("--nannyml-python", help="the Python of an environment with NannyML")
    ap.add_argument("--no-nannyml", action="store_true")
    ap.add_argument(
        "--no-domain-classifier",
        action="store_true",
        help="leave out the domain classifier (the first reference's windows)",
    )
    ap.add_argument("--nannyml-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.nannyml_worker:
        nannyml_worker(args.nannyml_worker)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    started = time.perf_counter()
    references: dict[Dataset, Window] = {}
    windows: dict[Dataset, list[Window]] = {}
    for i, m in enumerate(MODELS):
        for r in range(args.references):
            rng = np.random.default_rng(100 * (r + 1) + i)
            f = features(rng, REFERENCE_ROWS, "stable")
            references[(m, r)] = Window(m, "reference", f, *outcome(m, f, rng))
            windows[(m, r)] = ws = []
            for scenario in SCENARIOS:
                for _ in range(args.windows):
                    f = features(rng, args.rows, scenario)
                    w = Window(m, scenario, f, *outcome(m, f, rng))
                    w.realized = realized(m, w.p, w.truth)
                    ws.append(w)
            ours(references[(m, r)], ws)
    python = None if args.no_nannyml else _nannyml_python(args.nannyml_python)
    if python:
        nannyml(python, references, windows, args.rows)
    else:
        print(f"NannyML: not run (no --nannyml-python, $NANNYML_PYTHON or {NANNYML_VENV_PYTHON})")
    per_window = None
    if not args.no_domain_classifier:
        timed = [domain_classifier(references[(m, 0)], windows[(m, 0)], args.rows) for m in MODELS]
        per_window = float(np.mean(timed))
    by_model = {m: [w for (mm, _), ws in windows.items() if mm == m for w in ws] for m in MODELS}
    if not args.summary:
        print_windows(by_model)
    summary(by_model, bool(python), args, per_window)
    print(f"\n{time.perf_counter() - started:.0f} s")


def print_windows(windows: dict[str, list[Window]]) -> None:
    print(
        f"{'model':21} {'scenario':17} {'metric':8} {'realized':>8} {'ours':>7} {'band':>15} {'NannyML':>8}"
        f" | {'multivar':>8} {'drift':>5} {'NannyML DRE':>11} {'alert':>5} | univariate flags"
    )
    for m, ws in windows.items():
        for w in ws:
            for metric in ("roc_auc", "accuracy"):
                v, lo, hi = w.ours[metric]
                nn = f"{w.nannyml[metric]:8.4f}" if w.nannyml else f"{'':8}"
                tail = ""
                if metric == "roc_auc":
                    dre = w.nannyml_reconstruction
                    nn_dre = f"{dre[0]:11.4f} {dre[1]!s:>5}" if dre else f"{'':17}"
                    tail = f" | {w.multivariate[0]:8.4f} {w.multivariate[1]!s:>5} {nn_dre} | {','.join(w.univariate)}"
                print(
                    f"{m:21} {w.scenario:17} {metric:8} {w.realized[metric]:8.4f} {v:7.4f}"
                    f" [{lo:.3f}, {hi:.3f}] {nn}{tail}"
                )


def summary(
    windows: dict[str, list[Window]], with_nannyml: bool, args: argparse.Namespace, domain_seconds: float | None
) -> None:
    print(
        f"\nEstimation: {args.references} references x {args.windows} windows of {args.rows:,} rows per model"
        " and scenario"
    )
    print(f"{'model':21} {'metric':8} {'MAE ours':>9} {'MAE NannyML':>12} {'in band':>8}   by scenario (MAE ours)")
    for metric in ("roc_auc", "accuracy"):
        for m, ws in windows.items():
            err = [abs(w.ours[metric][0] - w.realized[metric]) for w in ws]
            inside = [w.ours[metric][1] <= w.realized[metric] <= w.ours[metric][2] for w in ws]
            nn = f"{np.mean([abs(w.nannyml[metric] - w.realized[metric]) for w in ws]):12.5f}" if with_nannyml else ""
            per = "  ".join(
                f"{s.split()[-1]} {np.mean([e for e, w in zip(err, ws, strict=True) if w.scenario == s]):.4f}"
                for s in SCENARIOS
            )
            print(f"{m:21} {metric:8} {np.mean(err):9.5f} {nn:>12} {np.mean(inside):8.1%}   {per}")
    print("\nMean realized / estimated accuracy by scenario")
    for m, ws in windows.items():
        cells = []
        for sc in SCENARIOS:
            of = [w for w in ws if w.scenario == sc]
            real, est = np.mean([w.realized["accuracy"] for w in of]), np.mean([w.ours["accuracy"][0] for w in of])
            cells.append(f"{sc} {real:.3f}/{est:.3f}")
        print(f"{m:21} " + "  ".join(cells))
    print("\nMultivariate drift (all models' windows)")
    print(f"{'scenario':17} {'ours flagged':>12} {'NannyML flagged':>16} {'any univariate':>15}")
    for s in SCENARIOS:
        ws = [w for m in MODELS for w in windows[m] if w.scenario == s]
        nn = f"{np.mean([w.nannyml_reconstruction[1] for w in ws if w.nannyml_reconstruction]):16.1%}"
        print(
            f"{s:17} {np.mean([w.multivariate[1] for w in ws]):12.1%} {nn if with_nannyml else '':>16}"
            f" {np.mean([bool(w.univariate) for w in ws]):15.1%}"
        )
    if domain_seconds is not None:
        print(
            f"\nDomain classifier, the first reference's windows ({domain_seconds:.2f} s a window; the reconstruction"
            " error reads a window's summary in microseconds)"
        )
        print(f"{'scenario':17} {'ours flagged':>12} {'domain classifier flagged':>26} {'its mean AUC':>13}")
        for s in SCENARIOS:
            ws = [w for m in MODELS for w in windows[m] if w.scenario == s and w.domain is not None]
            print(
                f"{s:17} {np.mean([w.multivariate[1] for w in ws]):12.1%}"
                f" {np.mean([w.domain[1] for w in ws if w.domain]):26.1%}"
                f" {np.mean([w.domain[0] for w in ws if w.domain]):13.3f}"
            )


if __name__ == "__main__":
    main()
