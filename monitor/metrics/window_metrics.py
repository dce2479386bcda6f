"""A window's metric points from what was loaded for it: pure, like the alert pipeline's stages.

``monitor.services.jobs.window_inputs`` loads a ``WindowInputs`` (the window's merged summaries per
segment, what the error-stream detector found in it, a challenger's inputs for its comparison
with the champion, records rejected at ingestion); ``window_points`` makes every point from it;
``monitor.services.jobs.window_job.compute_window`` stores them. Nothing here reads the database, so
each kind of point can be tested from summaries alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, Task
from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN, AttributionSummary, stored_attribution_points
from monitor.metrics.comparison import Pairs, Placements, Side, comparison_points, drift_against_one_reference
from monitor.metrics.error_stream import StreamInWindow
from monitor.metrics.fairness import GroupCounts, confusion_counts, fairness_points, group_counts, thresholds_for
from monitor.metrics.importance import IMPORTANCE_COLUMN
from monitor.metrics.label_free_points import label_free_points
from monitor.metrics.log_summary import RowSummary
from monitor.metrics.points import MetricPoint, segment_labels
from monitor.metrics.profiles import CategoricalSummary, Summary
from monitor.metrics.quality_points import window_quality_points
from monitor.metrics.quality_summary import ClassificationSummary, QualitySummary, confusion_cells
from monitor.metrics.window_points import drift_points, segment_points, with_importance

# (column, value) of a segment, or None for all predictions.
Segment = tuple[str, str] | None
# A version's stored values of a window that a comparison reads: metric -> (value, details).
Stored = dict[str, tuple[float | None, dict[str, Any]]]
# What a side of a comparison carries from its own points (all predictions only).
COMPARED = ("latency.p95", "latency.mean", "estimated.accuracy")
UNSHOWN = {"segment", "class", "average"}


@dataclass(frozen=True)
class Window:
    """[start, end): a window's period."""

    start: datetime
    end: datetime

    @property
    def on_hours(self) -> bool:
        """Whether it starts and ends at hour boundaries (not a sliding window's part-hours)."""
        return all(t.minute == t.second == t.microsecond == 0 for t in (self.start, self.end))


@dataclass
class MergedColumns:
    """A window's column summaries of one group, merged from its buckets."""

    columns: dict[str, Summary]
    row_summaries: dict[str, RowSummary]  # label-free estimation, reconstruction
    n_rows: int


@dataclass
class SegmentInputs:
    """One group of a window: all predictions (``segment`` None) or one tracked segment value."""

    segment: Segment
    reference: dict[str, dict[str, Any]]  # the reference's column summaries of the group
    extras: dict[str, dict[str, Any]]  # the reference's extras of the group (quality, baselines)
    columns: MergedColumns | None  # None: quality only (late labels change nothing else)
    quality: QualitySummary
    stream: StreamInWindow | None  # what the error-stream detector found in the window


@dataclass
class SharedInputs:
    """A challenger's and its champion's summaries of the window on the champion's reference."""

    champion: str  # its version
    reference_id: int
    reference: dict[str, dict[str, Any]]
    champions: MergedColumns
    own: MergedColumns


@dataclass
class ComparisonInputs:
    """A challenger's champion over the window as stored (its values and its quality summary),
    and a shadow's pairs."""

    champion: str  # its version
    schema: ModelSchema
    stored: Stored
    quality: QualitySummary | None
    pairs: Pairs | None = None


@dataclass
class WindowInputs:
    window: Window
    version: str
    schema: ModelSchema
    extras: dict[str, dict[str, Any]]  # the reference's extras of all rows (calibration, models)
    segments: list[SegmentInputs]
    shared: SharedInputs | None = None
    comparison: ComparisonInputs | None = None
    rejected: tuple[int, dict[str, int]] | None = None  # records rejected, violations per field


def _attribution_points(
    extras: dict[str, Any],
    segment_extras: dict[str, Any],
    current: dict[str, Any],
    w: Window,
    labels: dict[str, str],
) -> list[MetricPoint]:
    """A group's attribution drift, where its rows carried attributions: against the segment's
    reference attributions, or the reference's importances where it carries none."""
    summary = current.get(ATTRIBUTIONS_COLUMN)
    if not isinstance(summary, AttributionSummary):
        return []
    logged, importance = segment_extras.get(ATTRIBUTIONS_COLUMN), extras.get(IMPORTANCE_COLUMN)
    return stored_attribution_points(summary, logged, importance, w.start, w.end, labels)


def window_points(inputs: WindowInputs, cfg: MonitoringConfig, now: datetime) -> list[MetricPoint]:
    """Every point of a window: per group, drift, latency, throughput, data quality, estimated
    quality, multivariate drift, quality and concept drift; fairness per protected attribute;
    a challenger's comparison with its champion; records rejected at ingestion. ``now``: how
    much of the window has passed (throughput of a window still filling)."""
    w, schema = inputs.window, inputs.schema
    points: list[MetricPoint] = []
    protected = set(cfg.protected_attributes) if schema.task is Task.binary_classification else set()
    groups: dict[str, dict[str, GroupCounts]] = {}  # attribute -> value -> the group's counts
    overall: QualitySummary | None = None
    for s in inputs.segments:
        selected = None
        if s.columns is not None:
            c = s.columns
            group = segment_points(s.reference, c.columns, c.n_rows, s.segment, cfg, w.start, w.end, now)
            points += with_importance(inputs.extras.get(IMPORTANCE_COLUMN), group)
            labels = segment_labels(s.segment)
            points += label_free_points(schema, inputs.extras, s.extras, c.row_summaries, cfg, w.start, w.end, labels)
            points += _attribution_points(inputs.extras, s.extras, c.row_summaries, w, labels)
            selected = _selected(c, schema)
            if s.segment is None and inputs.shared is not None:
                points += shared_drift_points(inputs.shared, c.n_rows, cfg, w)
        if s.quality.n_predictions:
            points += window_quality_points(schema, s.extras, cfg, s.quality, s.stream, w.start, w.end, s.segment)
        if s.segment is None:
            overall = s.quality
        elif s.segment[0] in protected and isinstance(s.quality, ClassificationSummary):
            assert schema.positive_class is not None
            counts = group_counts(schema.positive_class, selected, s.quality.confusion)
            groups.setdefault(s.segment[0], {})[s.segment[1]] = counts
    for attribute, values in groups.items():
        points += fairness_points(attribute, values, thresholds_for(cfg), w.start, w.end)
    if inputs.comparison is not None:
        own: Stored = {
            p.metric: (p.value, p.details) for p in points if p.metric in COMPARED and not set(p.labels) & UNSHOWN
        }
        cmp = inputs.comparison
        theirs = side_of(cmp.champion, cmp.schema, cmp.stored, cmp.quality)
        mine = side_of(inputs.version, schema, own, overall)
        points += comparison_points(theirs, mine, cmp.pairs, cfg.comparison_confidence, w.start, w.end)
    if inputs.rejected is not None:
        points += rejected_points(*inputs.rejected, w)
    return points


def _selected(c: MergedColumns, schema: ModelSchema) -> tuple[int, int] | None:
    """(predictions of the positive class, predictions) of a group, from the prediction column's
    counts; None when the prediction column is not summarised (a reference without predictions)."""
    counts = c.columns.get("prediction")
    if not isinstance(counts, CategoricalSummary) or schema.positive_class is None:
        return None
    return counts.counts.get(schema.positive_class, 0), c.n_rows


def shared_drift_points(shared: SharedInputs, rows: int, cfg: MonitoringConfig, w: Window) -> list[MetricPoint]:
    """A challenger's drift and its champion's against the champion's reference
    (``comparison.feature_drift``, ``.prediction_drift``, ``.dataset_drift``). ``rows``: the
    challenger's predictions in the window, of which ``shared.own`` summarised its share."""

    def drift(c: MergedColumns) -> list[MetricPoint]:
        return drift_points(shared.reference, c.columns, c.n_rows, cfg, w.start, w.end)

    coverage = shared.own.n_rows / rows if rows else 1.0
    return drift_against_one_reference(
        drift(shared.champions), drift(shared.own), shared.champion, shared.reference_id, coverage
    )


def side_of(version: str, schema: ModelSchema, points: Stored, s: QualitySummary | None) -> Side:
    """One version's side of a comparison: its stored latency and estimated accuracy, and from
    its quality summary its labelled rows, confusion counts and score placements."""
    latency = {stat: points.get(f"latency.{stat}", (None, {}))[0] for stat in ("p95", "mean")}
    value, details = points.get("estimated.accuracy", (None, {}))
    estimated = (value, float(details["std"])) if value is not None and details.get("std") is not None else None
    side = Side(version, 0 if s is None else s.n_predictions, latency=latency, estimated=estimated)
    if not isinstance(s, ClassificationSummary):
        return side
    correct = sum(n for y, yhat, n in confusion_cells(s.confusion) if y == yhat)
    side = replace(side, labelled=s.n_labelled, correct=correct)
    positive = schema.positive_class
    if positive is None:
        return side
    pos, tp, neg, fp = confusion_counts(positive, s.confusion)
    i = s.classes.index(positive)
    placements = Placements.of_histogram(s.hist[i, 1], s.hist[i, 0])  # its positives' scores, its negatives'
    return replace(side, positives=pos, true_positives=tp, negatives=neg, false_positives=fp, placements=placements)


def rejected_points(rejected: int, by_field: dict[str, int], w: Window) -> list[MetricPoint]:
    """Records rejected at ingestion in the window (by arrival hour), in total and per field."""
    points = [
        MetricPoint(
            "data_quality.rejected_records",
            w.start,
            w.end,
            float(rejected),
            sample_size=rejected,
            details={"counted_by": "arrival hour"},
        )
    ]
    points += [
        MetricPoint("data_quality.schema_violations", w.start, w.end, float(n), sample_size=n, labels={"field": field})
        for field, n in by_field.items()
    ]
    return points
