"""Window metrics of a model version from hourly summaries: data and prediction drift, latency,
throughput, data quality, and (through ``quality_job``) quality and concept drift — for all
predictions and per tracked segment.

``rollup`` summarises the prediction log hour by hour (each hour's rows read once, see
``summary_repo.summarise_columns``); ``compute_window`` merges
a window's hourly summaries (a month costs what an hour costs: the summaries are of fixed size)
and runs each column's test against its reference summary, writing metric points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from monitor.db import delta_repo, log_repo, reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Segment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, Task, schema_from_json
from monitor.metrics.comparison import drift_against_one_reference
from monitor.metrics.fairness import GroupCounts, fairness_points, group_counts
from monitor.metrics.label_free_points import label_free_points
from monitor.metrics.log_summary import (
    Parts,
)
from monitor.metrics.points import MetricPoint, segment_labels
from monitor.metrics.profiles import (
    CategoricalSummary,
)
from monitor.metrics.quality_summary import ClassificationSummary
from monitor.metrics.window_points import drift_points, segment_points
from monitor.services import comparison_job, job_log, quality_job, registry
from monitor.services.context import ServiceContext
from monitor.services.metric_store import record_points
from monitor.services.registry import resolve_version
from monitor.services.summary_plan import (
    ReferenceView,
    SummaryPlan,
    column_specs,
    load_reference,
    parse_segment,
    reference_view,
    summary_plan,
)
from monitor.services.windows import HOUR, ColumnAccumulator, hours, merged_window

# The key of a challenger's summaries against its champion's reference (a segment's key has an '=')
SHARED = "@champion-reference"


@dataclass(frozen=True)
class SharedReference:
    """A challenger's champion and the champion's reference, its drift columns that the
    challenger has too: the one reference both versions' drift is measured against."""

    champion: VersionRow
    reference_id: int
    columns: dict[str, dict[str, Any]]


def shared_reference(ctx: ServiceContext, vrow: VersionRow, own: ReferenceView) -> SharedReference | None:
    """None unless ``vrow`` is a challenger and its champion has a reference of its own."""
    champion = registry.champion_of(ctx, vrow)
    if champion is None or champion.version_id == vrow.version_id:
        return None
    with ctx.uow() as uow:
        ref_id = reference_repo.active_reference_id(uow.conn, champion.version_id)
    if ref_id is None or ref_id == own.reference_id:
        return None
    theirs = reference_view(ctx, ref_id).columns[""]
    ours = own.columns[""]
    columns = {c: s for c, s in theirs.items() if c in ours and ours[c]["type"] == s["type"]}
    return SharedReference(champion, ref_id, columns) if columns else None


def _store_shared(
    conn: Connection, vrow: VersionRow, shared: SharedReference, bucket: datetime, n: int, parts: dict[str, Parts]
) -> None:
    summary_repo.replace_bucket(conn, vrow.model_id, vrow.version_id, shared.reference_id, bucket, 1, n, parts)
    summary_repo.drop_merged(conn, vrow.model_id, vrow.version_id, shared.reference_id, bucket)


def rollup(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    start: datetime,
    end: datetime,
    *,
    quality_only: bool = False,
    only: list[datetime] | None = None,
    failures: list[str] | None = None,
) -> int:
    """Summarise each hour in [start, end) — its columns and its labelled predictions, for all
    rows and for each tracked segment. Re-running an hour replaces it and drops its day's merged
    summary, merged again when next needed. ``quality_only``: the labels changed, the log did
    not. ``only``: these hours of the range, not all. ``failures``: an hour that fails on its data
    is skipped and recorded there (``job_log.isolated``) instead of failing the rollup. Returns
    predictions summarised."""
    vrow = resolve_version(ctx, model, version)
    ref = load_reference(ctx, vrow)
    plan = summary_plan(schema_from_json(vrow.schema), ref)
    # a challenger's hours are summarised against its champion's reference too, from the same rows
    shared = None if quality_only else shared_reference(ctx, vrow, ref)
    total = [0]

    def summarise(bucket: datetime) -> None:
        # From the log, what is summarised and the deltas that summarised it at ingestion are
        # read in one snapshot, and the deltas it sees discarded (monitor.services.summary_deltas);
        # the merge lock is held from before that snapshot, so no day or week merged from the old
        # hour outlives it.
        lock = summary_repo.merge_lock_key(vrow.version_id, summary_repo.week_of_hour(bucket))
        with ctx.uow(snapshot=True, session_locks=(lock,)) as uow:
            window = (uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
            kinds = (delta_repo.QUALITY,) if quality_only else (delta_repo.COLUMNS, delta_repo.QUALITY)
            delta_repo.discard(*window, kinds)
            if quality_only:
                # the predictions as the stored column summaries count them: the column deltas
                # not yet folded add theirs to the quality summary when they are
                counts = summary_repo.stored_counts(*window[:4], ref.reference_id, plan.groups)
            else:
                counts = summary_repo.count_rows(*window, plan.groups)
                _summarise_columns(uow.conn, vrow, plan, shared, bucket, counts)
            quality_job.summarise_hour(
                uow.conn, vrow, plan.schema, ref.reference_id, plan.residual_edges, bucket, plan.groups, counts
            )
            uow.commit()
            if not quality_only:
                total[0] += counts[""]

    for bucket in only if only is not None else hours(start, end):
        job_log.isolated(f"summary of the hour {bucket.isoformat()}", failures, summarise, bucket)
    return total[0]


def _summarise_columns(
    conn: Connection,
    vrow: VersionRow,
    plan: SummaryPlan,
    shared: SharedReference | None,
    bucket: datetime,
    counts: dict[str, int],
) -> None:
    """An hour's column summaries read from the log, stored in place of what was (and, for a
    challenger, its summaries on its champion's reference)."""
    also = {SHARED: column_specs(shared.columns)} if shared is not None else None
    window = (conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
    parts = summary_repo.summarise_columns(*window, plan.columns, plan.groups, counts, plan.derived, also)
    if shared is not None:
        _store_shared(conn, vrow, shared, bucket, counts[""], parts[SHARED])
    for seg in plan.groups.keys:
        summary_repo.replace_bucket(
            conn, vrow.model_id, vrow.version_id, plan.reference_id, bucket, 1, counts[seg], parts[seg], seg
        )
        summary_repo.drop_merged(conn, vrow.model_id, vrow.version_id, plan.reference_id, bucket, seg)


def compute_window(
    ctx: ServiceContext,
    model: str,
    version: str | None,
    window_start: datetime,
    window_end: datetime,
    config: MonitoringConfig | None = None,
    *,
    quality_only: bool = False,
) -> list[MetricPoint]:
    """The window's metric points — feature, prediction and dataset drift; latency, throughput;
    data quality; quality against labels and concept drift — for all predictions and for each
    tracked segment, stored (replacing an earlier run's) and returned. ``quality_only``: just
    the quality and concept-drift points, what late labels change."""
    cfg = config or MonitoringConfig()
    now = datetime.now(UTC)  # the one reading of the clock: how much of the window has passed
    vrow = resolve_version(ctx, model, version)
    schema = schema_from_json(vrow.schema)
    ref = load_reference(ctx, vrow)
    points: list[MetricPoint] = []
    # protected attribute -> its value -> the group's counts (binary classifiers: Fairlearn's measures)
    protected = set(cfg.protected_attributes) if schema.task is Task.binary_classification else set()
    groups: dict[str, dict[str, GroupCounts]] = {}
    overall = None  # the quality summary of all predictions: a challenger's comparison reads it
    for seg in ref.columns:
        segment = parse_segment(seg, schema)
        selected: tuple[int, int] | None = None
        if not quality_only:
            seg_points, acc = _window_points(ctx, vrow, schema, ref, seg, segment, cfg, window_start, window_end, now)
            points += seg_points
            selected = _selected(acc, schema)
            if segment is None:
                points += _shared_drift(ctx, vrow, ref, cfg, acc.n_rows, window_start, window_end)
        quality, summary = quality_job.quality_points(
            ctx, vrow, schema, ref.reference_id, ref.extras[seg], cfg, window_start, window_end, segment
        )
        points += quality
        overall = summary if segment is None else overall
        if segment is not None and segment[0] in protected and isinstance(summary, ClassificationSummary):
            assert schema.positive_class is not None
            groups.setdefault(segment[0], {})[segment[1]] = group_counts(
                schema.positive_class, selected, summary.confusion
            )
    for attribute, values in groups.items():
        points += fairness_points(attribute, values, cfg.fairness_thresholds(), window_start, window_end)
    points += comparison_job.window_comparison(ctx, vrow, schema, cfg, points, overall, window_start, window_end)
    if not quality_only:
        points.extend(_violation_points(ctx, vrow.model_id, window_start, window_end))
    record_points(ctx, model, vrow.version, points)
    return points


def _shared_drift(
    ctx: ServiceContext,
    vrow: VersionRow,
    own: ReferenceView,
    cfg: MonitoringConfig,
    rows: int,
    window_start: datetime,
    window_end: datetime,
) -> list[MetricPoint]:
    """A challenger's drift and its champion's against the champion's reference
    (``comparison.feature_drift``, ``.prediction_drift``, ``.dataset_drift``); none for a
    version that is not a challenger. ``rows``: the challenger's predictions in the window."""
    shared = shared_reference(ctx, vrow, own)
    if shared is None:
        return []
    _summarise_shared(ctx, vrow, own, shared, window_start, window_end)

    def new() -> ColumnAccumulator:
        return ColumnAccumulator(shared.columns)

    def drift(v: VersionRow) -> tuple[list[MetricPoint], int]:
        acc = merged_window(ctx, v, shared.reference_id, window_start, window_end, new)
        return drift_points(shared.columns, acc.columns, acc.n_rows, cfg, window_start, window_end), acc.n_rows

    theirs, _ = drift(shared.champion)
    mine, summarised = drift(vrow)
    coverage = summarised / rows if rows else 1.0
    return drift_against_one_reference(theirs, mine, shared.champion.version, shared.reference_id, coverage)


def _summarise_shared(
    ctx: ServiceContext, vrow: VersionRow, own: ReferenceView, shared: SharedReference, start: datetime, end: datetime
) -> None:
    """Summarise against the champion's reference the hours of [start, end) summarised against
    the version's own reference only: those from before it was a challenger of this champion
    (the rollup summarises the hours after against both)."""
    with ctx.uow() as uow:
        args = (uow.conn, vrow.model_id, vrow.version_id)
        done = summary_repo.summarised_hours(*args, shared.reference_id, start, end)
        missing = sorted(summary_repo.summarised_hours(*args, own.reference_id, start, end) - done)
    also = {SHARED: column_specs(shared.columns)}
    everything = summary_repo.Groups({"": None})
    for bucket in missing:
        with ctx.uow() as uow:
            window = (uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
            counts = summary_repo.count_rows(*window, everything)
            parts = summary_repo.summarise_columns(*window, {}, everything, counts, (), also)
            _store_shared(uow.conn, vrow, shared, bucket, counts[""], parts[SHARED])
            uow.commit()


def _window_points(
    ctx: ServiceContext,
    vrow: VersionRow,
    schema: ModelSchema,
    view: ReferenceView,
    seg: str,
    segment: Segment,
    cfg: MonitoringConfig,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> tuple[list[MetricPoint], ColumnAccumulator]:
    """Drift, latency, throughput, data quality, estimated quality and multivariate drift of one
    segment ('' for all predictions), and the summaries they come from."""
    ref = view.columns[seg]
    acc = merged_window(
        ctx, vrow, view.reference_id, window_start, window_end, lambda: ColumnAccumulator(ref), segment=seg
    )
    points = segment_points(ref, acc.columns, acc.n_rows, segment, cfg, window_start, window_end, now)
    return points + label_free_points(
        schema,
        view.extras[""],
        view.extras[seg],
        acc.row_summaries,
        cfg,
        window_start,
        window_end,
        segment_labels(segment),
    ), acc


def _selected(acc: ColumnAccumulator, schema: ModelSchema) -> tuple[int, int] | None:
    """(predictions of the positive class, predictions) of a window's segment, from the
    prediction column's counts; None when the prediction column is not summarised (a reference
    without predictions)."""
    counts = acc.columns.get("prediction")
    if not isinstance(counts, CategoricalSummary) or schema.positive_class is None:
        return None
    return counts.counts.get(schema.positive_class, 0), acc.n_rows


def _violation_points(
    ctx: ServiceContext, model_id: int, window_start: datetime, window_end: datetime
) -> list[MetricPoint]:
    """Records rejected at ingestion in the window (by arrival hour), in total and per field."""
    with ctx.uow() as uow:
        rejected, by_field = log_repo.violations_between(uow.conn, model_id, window_start, window_end)
    points = [
        MetricPoint(
            "data_quality.rejected_records",
            window_start,
            window_end,
            float(rejected),
            sample_size=rejected,
            details={"counted_by": "arrival hour"},
        )
    ]
    points += [
        MetricPoint(
            "data_quality.schema_violations", window_start, window_end, float(n), sample_size=n, labels={"field": field}
        )
        for field, n in by_field.items()
    ]
    return points
