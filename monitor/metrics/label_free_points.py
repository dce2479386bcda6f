"""A window's label-free points: estimated quality (``estimated.*``, from every prediction's
scores and the reference's calibration) and multivariate drift (``multivariate_drift``, the
reconstruction error). Pure: the services load the merged summaries and store the points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema
from monitor.metrics.concept import quality_drop, standard_error
from monitor.metrics.estimation import (
    CALIBRATION_COLUMN,
    SCORES_COLUMN,
    Z_BAND,
    Calibration,
    Estimate,
    ScoreSummary,
    estimate_classification,
)
from monitor.metrics.log_summary import RowSummary
from monitor.metrics.multivariate import (
    BASELINE_COLUMN,
    EXPLAINED_VARIANCE,
    RECONSTRUCTION_COLUMN,
    Baseline,
    ReconstructionSummary,
    Z,
    reconstruction_test,
)
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality_points import LOWER_IS_BETTER, main_metric, metric_point_name
from monitor.metrics.quality_summary import QUALITY_COLUMN

MULTIVARIATE_DRIFT = "multivariate_drift"
ESTIMATED_QUALITY_DROP = "estimated.quality_drop"


def estimated_name(key: str) -> tuple[str, dict[str, str]]:
    """'accuracy' -> ('estimated.accuracy', {}); 'f1.macro' -> ('estimated.f1', {'average': 'macro'})."""
    name, labels = metric_point_name(key)
    return "estimated." + name.removeprefix("quality."), labels


def label_free_points(
    schema: ModelSchema,
    extras: dict[str, dict[str, Any]],
    segment_extras: dict[str, dict[str, Any]],
    current: dict[str, RowSummary],
    cfg: MonitoringConfig,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> list[MetricPoint]:
    """The estimated quality and the multivariate drift of a window (of one segment): ``extras``
    are the reference's (its calibration and reconstruction model), ``segment_extras`` the
    segment's (its reconstruction baseline), ``current`` the window's merged per-row summaries."""
    points = []
    scores, cal = current.get(SCORES_COLUMN), extras.get(CALIBRATION_COLUMN)
    if isinstance(scores, ScoreSummary) and cal is not None and scores.n:
        estimates = estimate_classification(scores, Calibration.from_json(cal), schema.positive_class)
        points += estimated_points(schema, cal, estimates, scores, start, end, seg_labels)
        drop = estimated_drop_point(
            schema, segment_extras.get(QUALITY_COLUMN), cfg, estimates, scores.n, start, end, seg_labels
        )
        if drop is not None:
            points.append(drop)
    recon, baseline = current.get(RECONSTRUCTION_COLUMN), segment_extras.get(BASELINE_COLUMN)
    if isinstance(recon, ReconstructionSummary) and baseline is not None and recon.n:
        points.append(multivariate_point(Baseline.from_json(baseline), recon, cfg, start, end, seg_labels))
    return points


def estimated_points(
    schema: ModelSchema,
    cal: dict[str, Any],
    estimates: dict[str, Estimate],
    s: ScoreSummary,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> list[MetricPoint]:
    points = []
    for key, est in estimates.items():
        metric, labels = estimated_name(key)
        lower, upper = est.band
        details: dict[str, Any] = {
            "lower": lower,
            "upper": upper,
            "std": est.std,
            "band": f"±{Z_BAND:.2f} standard errors (95 %) from the labels' sampling given the scores",
            "calibration": cal.get("methods"),
            "unscored": s.unscored,
        }
        if key in ("precision", "recall", "f1"):
            details["positive_class"] = schema.positive_class
        labels |= seg_labels
        points.append(MetricPoint(metric, start, end, est.value, sample_size=s.n, labels=labels, details=details))
    return points


def estimated_drop_point(
    schema: ModelSchema,
    ref_quality: dict[str, Any] | None,
    cfg: MonitoringConfig,
    estimates: dict[str, Estimate],
    n: int,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> MetricPoint | None:
    """The main metric's estimated worsening against the reference's realized value: drifted when
    it is worse by more than ``quality_tolerance`` and by more than the estimate's and the
    reference's errors explain (one-sided, at ``fdr_alpha``), as ``concept_drift.quality_drop``
    decides on labels. What a rule pages on before a single label has arrived."""
    metric = main_metric(schema, cfg)
    if not ref_quality or metric not in ref_quality["values"] or metric not in estimates:
        return None
    est, ref_n = estimates[metric], int(ref_quality["n_labelled"])
    drop = quality_drop(
        ref_quality["values"][metric],
        est.value,
        cfg.quality_tolerance,
        metric not in LOWER_IS_BETTER,
        se_reference=standard_error(metric, ref_quality["values"], ref_n, schema.positive_class),
        se_current=est.std,
        alpha=cfg.fdr_alpha,
    )
    return MetricPoint(
        ESTIMATED_QUALITY_DROP,
        start,
        end,
        -drop.relative_change,
        sample_size=n,
        labels={"metric": metric, **seg_labels},
        reference_size=ref_n,
        threshold=cfg.quality_tolerance,
        drifted=bool(drop.drift) if n >= cfg.min_sample_size else None,
        details={
            "reference": drop.reference,
            "estimated": drop.current,
            "value_is": "relative worsening of the estimated metric against the reference's realized one",
            "material": drop.material,
            "p_value": drop.p_value,
            "significant": drop.significant,
            "alpha": cfg.fdr_alpha,
            "min_sample_size": cfg.min_sample_size,
        },
    )


def multivariate_point(
    baseline: Baseline,
    s: ReconstructionSummary,
    cfg: MonitoringConfig,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> MetricPoint:
    test = reconstruction_test(s, baseline)
    decided = s.n >= cfg.min_sample_size  # fewer rows: the value, but no decision
    return MetricPoint(
        MULTIVARIATE_DRIFT,
        start,
        end,
        test.value,
        sample_size=s.n,
        labels={"method": "reconstruction_error", **seg_labels},
        reference_size=baseline.n,
        threshold=test.upper,
        drifted=test.drifted if decided else None,
        details={
            "value_is": "mean distance of the window's standardised rows from their reconstruction",
            "reference_mean": baseline.mean,
            "lower": test.lower,
            "upper": test.upper,
            "z": Z,
            "explained_variance": EXPLAINED_VARIANCE,
            "min_sample_size": cfg.min_sample_size,
        },
    )
