"""A window's quality against labels, label coverage and concept drift, from its merged quality
summary and the reference's quality extras. Pure: the services load the summaries (and the
error-stream detector's findings) and store the points."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, Task
from monitor.metrics.concept import quality_drop, standard_error
from monitor.metrics.drift_decision import decide, rule_for
from monitor.metrics.error_stream import StreamInWindow
from monitor.metrics.points import MetricPoint, segment_labels
from monitor.metrics.profiles import summary_from_json
from monitor.metrics.quality_summary import (
    QUALITY_COLUMN,
    RESIDUALS_COLUMN,
    ClassificationSummary,
    QualitySummary,
    quality_metrics,
)

# Lower is better for these; higher for the rest.
LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss"}


def main_metric(schema: ModelSchema, cfg: MonitoringConfig) -> str:
    if cfg.quality_metric:
        return cfg.quality_metric
    return "mae" if schema.task is Task.regression else "accuracy"


def metric_point_name(key: str) -> tuple[str, dict[str, str]]:
    """'precision.default' -> ('quality.precision', {'class': 'default'}); 'f1.macro' ->
    ('quality.f1', {'average': 'macro'}); 'accuracy' -> ('quality.accuracy', {})."""
    name, _, rest = key.partition(".")
    if not rest:
        return f"quality.{name}", {}
    if rest == "macro":
        return f"quality.{name}", {"average": "macro"}
    return f"quality.{name}", {"class": rest}


def window_quality_points(
    schema: ModelSchema,
    extras: dict[str, dict[str, Any]],
    cfg: MonitoringConfig,
    s: QualitySummary,
    stream: StreamInWindow | None,
    start: datetime,
    end: datetime,
    segment: tuple[str, str] | None = None,
) -> list[MetricPoint]:
    """Quality, label coverage and concept drift of a window (of one segment) from its merged
    quality summary, the reference's quality extras and what the error-stream detector found in
    the window (``stream``; classification)."""
    seg_labels = segment_labels(segment)
    q = quality_metrics(s, schema.positive_class)
    common = {"label_coverage": q.label_coverage, "n_predictions": q.n_predictions}
    points = [
        MetricPoint(
            "quality.label_coverage",
            start,
            end,
            q.label_coverage,
            sample_size=q.n_predictions,
            labels=seg_labels,
            details={"n_labelled": q.n_labelled},
        )
    ]
    for key, value in q.values.items():
        metric, labels = metric_point_name(key)
        details: dict[str, Any] = dict(common)
        if q.notes:
            details["notes"] = q.notes
        if key in ("precision", "recall", "f1"):
            details["positive_class"] = schema.positive_class
        points.append(
            MetricPoint(
                metric, start, end, value, sample_size=q.n_labelled, labels={**labels, **seg_labels}, details=details
            )
        )
    if not q.n_labelled:
        return points
    points += concept_points(schema, extras, cfg, s, q.values, stream, start, end, seg_labels)
    return points


# Detections listed on one point; a window holding more says how many in its value.
DETECTIONS_SHOWN = 20


def error_stream_point(
    stream: StreamInWindow,
    s: ClassificationSummary,
    values: dict[str, float],
    cfg: MonitoringConfig,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> MetricPoint:
    """What the error-stream detector found inside the window: its value is the number of changes,
    ``drifted`` whether there was one, and each change says when and from what error rate to what.
    Its sample size and error rate are the window's labelled rows (the evidence a page or a
    retraining request carries is the window that decided); what the detector holds at the
    window's end is said beside them (``detector_rows``, ``detector_error_rate``): after a change
    it starts again from nothing, which read as 0 rows at an error rate of 0 next to the change."""

    def at(minute: int) -> str:
        return datetime.fromtimestamp(minute * 60, UTC).isoformat()

    found = stream.detections
    return MetricPoint(
        "concept_drift.error_stream",
        start,
        end,
        float(len(found)),
        sample_size=s.n_labelled,
        labels={"method": cfg.concept_drift_detector, **seg_labels},
        threshold=1.0,
        drifted=bool(found),
        details={
            "value_is": "changes the detector found in the window's error stream",
            "detected_at": at(found[0].minute) if found else None,
            "detections": [
                {"at": at(d.minute), "error_rate_before": d.error_rate_before, "error_rate_after": d.error_rate_after}
                for d in found[:DETECTIONS_SHOWN]
            ],
            # the window's labelled rows' error rate (its accuracy's complement; none without labels)
            "error_rate": 1 - values["accuracy"] if "accuracy" in values else None,
            "detector_rows": stream.rows,
            "detector_error_rate": stream.error_rate,
            "step": "minute",
        },
    )


def concept_points(
    schema: ModelSchema,
    extras: dict[str, dict[str, Any]],
    cfg: MonitoringConfig,
    s: QualitySummary,
    values: dict[str, float],
    stream: StreamInWindow | None,
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> list[MetricPoint]:
    """The quality drop against the reference (a test on the main metric, with a tolerance), and
    the concept-drift signal: the error stream's changes (classification) or the residuals'
    drift (regression)."""
    points = []
    drop = quality_drop_point(schema, extras.get(QUALITY_COLUMN), cfg, s, values, start, end, seg_labels)
    if drop is not None:
        points.append(drop)
    if isinstance(s, ClassificationSummary):
        if stream is not None:
            points.append(error_stream_point(stream, s, values, cfg, start, end, seg_labels))
    elif s.residuals is not None and s.residuals.n and RESIDUALS_COLUMN in extras:
        ref_json = extras[RESIDUALS_COLUMN]
        # the model's drift rule, the residuals tested alone (not in the features' family)
        columns = {"residuals": (summary_from_json(ref_json), s.residuals, ref_json.get("distinct"))}
        res = decide(columns, set(), rule_for(cfg))["residuals"]
        points.append(
            MetricPoint(
                "concept_drift.residual_shift",
                start,
                end,
                res.value,
                sample_size=res.n_current,
                labels={"method": res.method, **seg_labels},
                reference_size=res.n_reference,
                threshold=res.threshold,
                drifted=res.drifted,
                details={**res.details, "detected_at": end.isoformat() if res.drifted else None},
            )
        )
    return points


def quality_drop_point(
    schema: ModelSchema,
    ref_quality: dict[str, Any] | None,
    cfg: MonitoringConfig,
    s: QualitySummary,
    values: dict[str, float],
    start: datetime,
    end: datetime,
    seg_labels: dict[str, str],
) -> MetricPoint | None:
    """The main metric's worsening against the reference's; None when either lacks it."""
    n = s.n_labelled if isinstance(s, ClassificationSummary) else s.n
    metric = main_metric(schema, cfg)
    if not ref_quality or metric not in ref_quality["values"] or metric not in values:
        return None
    ref_n = int(ref_quality["n_labelled"])
    drop = quality_drop(
        ref_quality["values"][metric],
        values[metric],
        cfg.quality_tolerance,
        metric not in LOWER_IS_BETTER,
        se_reference=standard_error(metric, ref_quality["values"], ref_n, schema.positive_class),
        se_current=standard_error(metric, values, n, schema.positive_class),
        alpha=cfg.fdr_alpha,
    )
    worse = -drop.relative_change if metric not in LOWER_IS_BETTER else drop.relative_change
    decided = n >= cfg.min_sample_size  # fewer labelled rows: the value, but no decision
    return MetricPoint(
        "concept_drift.quality_drop",
        start,
        end,
        worse,
        sample_size=n,
        labels={"metric": metric, **seg_labels},
        reference_size=ref_n,
        threshold=cfg.quality_tolerance,
        drifted=bool(drop.drift) if decided else None,
        details={
            "reference": drop.reference,
            "current": drop.current,
            "relative_change": drop.relative_change,
            "value_is": "relative worsening of the metric against the reference",
            "material": drop.material,
            "p_value": drop.p_value,  # None: no standard error for this metric, the tolerance decides
            "significant": drop.significant,
            "alpha": cfg.fdr_alpha,
            "min_sample_size": cfg.min_sample_size,
        },
    )
