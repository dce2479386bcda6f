"""Quality against delayed labels and concept drift, by prediction time, from hourly quality
summaries (see ``monitor.metrics.quality_summary``).

A label that lands late changes the summary of the hour its prediction was made in; ingestion
marks that hour (``stale_hours``, in the labels' transaction) and the scheduler summarises
it again and recomputes every window that holds it, not only the newest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection

from monitor.db import quality_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Segment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, Task
from monitor.metrics.concept import quality_drop, standard_error
from monitor.metrics.drift_decision import decide
from monitor.metrics.points import MetricPoint
from monitor.metrics.profiles import NumericSummary, summary_from_json
from monitor.metrics.quality_summary import (
    QUALITY_COLUMN,
    RESIDUALS_COLUMN,
    ClassificationSummary,
    QualitySummary,
    RegressionSummary,
    quality_metrics,
)
from monitor.services.context import ServiceContext
from monitor.services.error_stream_job import StreamInWindow, detections_in
from monitor.services.windows import HOUR, merged_window

# Lower is better for these; higher for the rest.
LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss"}


def residual_edges(extras: dict[str, dict[str, Any]]) -> np.ndarray | None:
    r = extras.get(RESIDUALS_COLUMN)
    return None if r is None else np.asarray(r["edges"], dtype=float)


def new_summary(schema: ModelSchema, edges: np.ndarray | None) -> QualitySummary:
    if schema.task is Task.regression:
        return RegressionSummary(residuals=None if edges is None else NumericSummary.empty(edges))
    return ClassificationSummary(list(schema.classes or []))


def summarise_hour(
    conn: Connection,
    vrow: VersionRow,
    schema: ModelSchema,
    ref_id: int,
    residual_edges: dict[str, np.ndarray | None],
    bucket: datetime,
    groups: summary_repo.Groups,
    counts: dict[str, int],
) -> None:
    """Summarise one hour's labelled predictions for all rows and each tracked segment, given
    each one's number of predictions, and store the summaries, replacing earlier ones and
    dropping the day's and week's merged summaries (merged again when next read)."""
    window = (conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
    summaries: dict[str, QualitySummary]
    if schema.task is Task.regression:
        summaries = dict(quality_repo.summarise_regression(*window, residual_edges, groups, counts))
    else:
        summaries = dict(quality_repo.summarise_classification(*window, schema.classes or [], groups, counts))
    for key, s in summaries.items():
        parts = {QUALITY_COLUMN: s.to_parts()} if s.n_predictions else {}
        summary_repo.replace_bucket(
            conn, vrow.model_id, vrow.version_id, ref_id, bucket, 1, s.n_predictions, parts, key, quality=True
        )
        summary_repo.drop_merged(conn, vrow.version_id, ref_id, bucket, key, quality=True)


class QualityAccumulator:
    def __init__(self, schema: ModelSchema, edges: np.ndarray | None) -> None:
        self.summary = new_summary(schema, edges)

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None:
        self.summary.add_parts(stats, counts)

    def parts(self) -> dict[str, summary_repo.Parts]:
        return {QUALITY_COLUMN: self.summary.to_parts()} if self.summary.n_predictions else {}

    @property
    def n_rows(self) -> int:
        return self.summary.n_predictions


def main_metric(schema: ModelSchema, cfg: MonitoringConfig) -> str:
    if cfg.quality_metric:
        return cfg.quality_metric
    return "mae" if schema.task is Task.regression else "accuracy"


def _metric_point_name(key: str) -> tuple[str, dict[str, str]]:
    """'precision.default' -> ('quality.precision', {'class': 'default'}); 'f1.macro' ->
    ('quality.f1', {'average': 'macro'}); 'accuracy' -> ('quality.accuracy', {})."""
    name, _, rest = key.partition(".")
    if not rest:
        return f"quality.{name}", {}
    if rest == "macro":
        return f"quality.{name}", {"average": "macro"}
    return f"quality.{name}", {"class": rest}


def quality_points(
    ctx: ServiceContext,
    vrow: VersionRow,
    schema: ModelSchema,
    ref_id: int,
    extras: dict[str, dict[str, Any]],
    cfg: MonitoringConfig,
    start: datetime,
    end: datetime,
    segment: Segment = None,
) -> list[MetricPoint]:
    """Quality, label coverage and concept drift of a window (of one segment)."""
    edges = residual_edges(extras)
    acc = merged_window(
        ctx,
        vrow,
        ref_id,
        start,
        end,
        lambda: QualityAccumulator(schema, edges),
        segment=summary_repo.segment_key(segment),
        quality=True,
    )
    s = acc.summary
    if not s.n_predictions:
        return []
    seg_labels = {} if segment is None else {"segment": segment[0], "segment_value": segment[1]}
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
        metric, labels = _metric_point_name(key)
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
    stream = None
    if isinstance(s, ClassificationSummary):
        stream = detections_in(ctx, vrow, cfg, summary_repo.segment_key(segment), start, end)
    points += _concept_points(schema, extras, cfg, s, q.values, stream, start, end, seg_labels)
    return points


# Detections listed on one point; a window holding more says how many in its value.
DETECTIONS_SHOWN = 20


def error_stream_point(
    stream: StreamInWindow, cfg: MonitoringConfig, start: datetime, end: datetime, seg_labels: dict[str, str]
) -> MetricPoint:
    """What the error-stream detector found inside the window: its value is the number of changes,
    ``drifted`` whether there was one, and each change says when and from what error rate to what."""

    def at(minute: int) -> str:
        return datetime.fromtimestamp(minute * 60, UTC).isoformat()

    found = stream.detections
    return MetricPoint(
        "concept_drift.error_stream",
        start,
        end,
        float(len(found)),
        sample_size=stream.rows,
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
            "error_rate": stream.error_rate,
            "rows_held": stream.rows,
            "step": "minute",
        },
    )


def _concept_points(
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
    points = []
    n = s.n_labelled if isinstance(s, ClassificationSummary) else s.n
    ref_quality = extras.get(QUALITY_COLUMN)
    metric = main_metric(schema, cfg)
    if ref_quality and metric in ref_quality["values"] and metric in values:
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
        points.append(
            MetricPoint(
                "concept_drift.quality_drop",
                start,
                end,
                worse,
                sample_size=n,
                labels={"metric": metric, **seg_labels},
                reference_size=int(ref_quality["n_labelled"]),
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
        )
    if isinstance(s, ClassificationSummary):
        if stream is not None:
            points.append(error_stream_point(stream, cfg, start, end, seg_labels))
    elif s.residuals is not None and s.residuals.n and RESIDUALS_COLUMN in extras:
        ref_json = extras[RESIDUALS_COLUMN]
        # the model's drift rule, the residuals tested alone (not in the features' family)
        columns = {"residuals": (summary_from_json(ref_json), s.residuals, ref_json.get("distinct"))}
        res = decide(columns, set(), cfg.drift_rule())["residuals"]
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
