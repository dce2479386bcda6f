"""Quality against delayed labels and concept drift, by prediction time, from hourly quality
summaries (see ``monitor.metrics.quality_summary``).

A label that lands late changes the summary of the hour its prediction was made in; ingestion
marks that hour (``stale_hours``, in the labels' transaction) and the scheduler summarises
it again and recomputes every window that holds it, not only the newest.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection

from monitor.db import quality_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Segment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, Task
from monitor.metrics.log_summary import Parts
from monitor.metrics.points import MetricPoint
from monitor.metrics.profiles import NumericSummary
from monitor.metrics.quality_points import window_quality_points
from monitor.metrics.quality_summary import (
    QUALITY_COLUMN,
    RESIDUALS_COLUMN,
    ClassificationSummary,
    QualitySummary,
    RegressionSummary,
)
from monitor.metrics.score_layout import ScoreLayout
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.error_stream_job import detections_in
from monitor.services.jobs.windows import merged_window


def residual_edges(extras: dict[str, dict[str, Any]]) -> np.ndarray | None:
    r = extras.get(RESIDUALS_COLUMN)
    return None if r is None else np.asarray(r["edges"], dtype=float)


def new_summary(schema: ModelSchema, edges: np.ndarray | None, layout: ScoreLayout | None = None) -> QualitySummary:
    """An empty summary to add to: a regression's residuals on ``edges``, a classifier's scores on
    ``layout`` (None: on the first added summary's, as a window merged from stored ones is)."""
    if schema.task is Task.regression:
        return RegressionSummary(residuals=None if edges is None else NumericSummary.empty(edges))
    return ClassificationSummary(list(schema.classes or []), layout=layout)


def summarise_quality(
    conn: Connection,
    vrow: VersionRow,
    schema: ModelSchema,
    residual_edges: dict[str, np.ndarray | None],
    layout: ScoreLayout,
    start: datetime,
    end: datetime,
    groups: summary_repo.Groups,
    counts: dict[str, int],
) -> dict[str, QualitySummary]:
    """The labelled predictions of [start, end) summarised for all rows and each tracked
    segment, given each one's number of predictions (a classifier's scores on ``layout``)."""
    window = (conn, vrow.model_id, vrow.version_id, start, end)
    if schema.task is Task.regression:
        return dict(quality_repo.summarise_regression(*window, residual_edges, groups, counts))
    return dict(quality_repo.summarise_classification(*window, schema.classes or [], layout, groups, counts))


def summarise_quality_by_minute(
    conn: Connection,
    vrow: VersionRow,
    schema: ModelSchema,
    residual_edges: dict[str, np.ndarray | None],
    layout: ScoreLayout,
    start: datetime,
    end: datetime,
    groups: summary_repo.Groups,
    counts: Mapping[datetime, dict[str, int]],
) -> dict[datetime, dict[str, QualitySummary]]:
    """``summarise_quality`` of each minute of [start, end) in ``counts``, in the queries of one."""
    window = (conn, vrow.model_id, vrow.version_id, start, end)
    found: Mapping[datetime, Mapping[str, QualitySummary]]
    if schema.task is Task.regression:
        found = quality_repo.summarise_regression_by_minute(*window, residual_edges, groups, counts)
    else:
        found = quality_repo.summarise_classification_by_minute(*window, schema.classes or [], layout, groups, counts)
    return {m: dict(summaries) for m, summaries in found.items()}


def store_quality(
    conn: Connection,
    vrow: VersionRow,
    ref_id: int,
    bucket: datetime,
    size: int,
    summaries: dict[str, QualitySummary],
) -> None:
    """Store a bucket's quality summaries (an hour, ``size`` 1, or a minute), replacing earlier
    ones; an hour's drops its day's and week's merged summaries (merged again when next read)."""
    series = summary_repo.Series.of(vrow, ref_id)
    for key, s in summaries.items():
        parts = {QUALITY_COLUMN: s.to_parts()} if s.n_predictions else {}
        summary_repo.replace_bucket(conn, series, bucket, size, s.n_predictions, parts, key, quality=True)
        if size == 1:
            summary_repo.drop_merged(conn, series, bucket, key, quality=True)


class QualityAccumulator:
    def __init__(self, schema: ModelSchema, edges: np.ndarray | None) -> None:
        self.summary = new_summary(schema, edges)

    def add(
        self, bucket: datetime, hours_: int, col: str, n_rows: int, stats: dict[str, Any], counts: bytes | None
    ) -> None:
        self.summary.add_parts(stats, counts)

    def parts(self) -> dict[str, Parts]:
        return {QUALITY_COLUMN: self.summary.to_parts()} if self.summary.n_predictions else {}

    @property
    def n_rows(self) -> int:
        return self.summary.n_predictions


def merged_quality(
    ctx: ServiceContext,
    series: summary_repo.Series,
    schema: ModelSchema,
    edges: np.ndarray | None,
    start: datetime,
    end: datetime,
    segment: str = "",
) -> QualitySummary:
    """A group's quality summary of [start, end), merged from its buckets (``edges``: its
    reference's residual edges, a regression's)."""
    return merged_window(
        ctx, series, start, end, lambda: QualityAccumulator(schema, edges), segment=segment, quality=True
    ).summary


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
) -> tuple[list[MetricPoint], QualitySummary]:
    """Quality, label coverage and concept drift of a window (of one segment), and the summary
    they come from."""
    series = summary_repo.Series.of(vrow, ref_id)
    s = merged_quality(ctx, series, schema, residual_edges(extras), start, end, summary_repo.segment_key(segment))
    if not s.n_predictions:
        return [], s
    stream = None
    if isinstance(s, ClassificationSummary) and s.n_labelled:
        stream = detections_in(ctx, vrow, cfg, summary_repo.segment_key(segment), start, end)
    return window_quality_points(schema, extras, cfg, s, stream, start, end, segment), s
