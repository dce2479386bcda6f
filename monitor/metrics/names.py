"""The names of the metric points the service writes, and the details a condition can read of
them: a rule is checked against them when it is made, since one naming a metric no point
carries (``accuracy`` for ``quality.accuracy``) or a bound its points do not have can never
fire. ``tests/integration/test_metric_names.py`` checks every name a run writes is here."""

from __future__ import annotations

from difflib import get_close_matches
from fnmatch import fnmatchcase

DRIFT = ("feature_drift", "prediction_drift", "dataset_drift")
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "support")
REGRESSION = ("mae", "rmse", "mape", "r2", "mean_error")
LATENCY = ("p50", "p90", "p95", "p99", "mean", "max")
DATA_QUALITY = (
    "missing_share",
    "non_finite_share",
    "out_of_range_share",
    "new_category_share",
    "rejected_records",
    "schema_violations",
)
FAIRNESS_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")
FAIRNESS_GAPS = tuple(
    f"{measure}_{kind}"
    for measure in ("demographic_parity", "equal_opportunity", "equalized_odds")
    for kind in ("difference", "ratio")
)
COMPARISON = (
    "traffic_share",
    "agreement",
    "estimated_accuracy",
    "accuracy",
    "recall",
    "precision",
    "f1",
    "roc_auc",
    "latency_p95_ms",
    "latency_mean_ms",
    *DRIFT,
)

COMPARISON_WITH_INTERVALS = ("agreement", "estimated_accuracy", "accuracy", "recall", "precision", "f1", "roc_auc")

# metric -> whether its points carry an interval (``lower`` and ``upper`` in their details), which
# a condition's ``on: lower`` / ``on: upper`` reads
METRICS: dict[str, bool] = {
    **{name: False for name in DRIFT},
    "dataset_drift.importance_weighted": False,
    "attribution.importance": False,
    "attribution_drift.ndcg": False,
    "attribution_drift.change": True,
    "multivariate_drift": True,
    **{f"quality.{m}": False for m in (*CLASSIFICATION, *REGRESSION, "label_coverage")},
    **{f"estimated.{m}": True for m in ("accuracy", "precision", "recall", "f1", "roc_auc")},
    "estimated.quality_drop": False,
    **{f"fairness.{m}": True for m in (*FAIRNESS_RATES, *FAIRNESS_GAPS)},
    "concept_drift.quality_drop": False,
    "concept_drift.error_stream": False,
    "concept_drift.residual_shift": False,
    **{f"latency.{m}": False for m in LATENCY},
    "throughput.per_minute": False,
    **{f"data_quality.{m}": False for m in DATA_QUALITY},
    "job_failures": False,  # a scheduler run that skipped something (monitor.services.jobs.monitoring_run)
    **{f"comparison.{m}": m in COMPARISON_WITH_INTERVALS for m in COMPARISON},
}


def metric_problem(pattern: str, bound: str | None = None) -> str | None:
    """Why a rule's ``metric`` (wildcards allowed) can never match a point, or never have the
    ``bound`` its condition reads; None when it can."""
    matched = [name for name in METRICS if fnmatchcase(name, pattern)]
    if not matched:
        close = get_close_matches(pattern, list(METRICS), n=3, cutoff=0.5)
        close += [name for name in METRICS if name.endswith("." + pattern) and name not in close]
        hint = f"; did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""
        return f"no metric is named {pattern!r}{hint} (the metric names: see the README's metrics table)"
    if bound is not None and not any(METRICS[name] for name in matched):
        return f"{pattern!r} has no interval: no {bound} bound to compare (only the value or its decision)"
    return None
