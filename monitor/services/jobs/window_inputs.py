"""What a window's points are made from, loaded in one place (``monitor.metrics.window_metrics``
makes the points; ``monitor.services.jobs.window_job.compute_window`` stores them).

Per group (all predictions, each tracked segment value): its column summaries and its quality
summary merged from the window's buckets (``monitor.services.jobs.windows.merged_window``), and what
the error-stream detector found in the window. For a challenger, over windows on hour
boundaries (the summaries a comparison reads are hourly): its and its champion's summaries on
the champion's reference, the champion's stored values and quality, a shadow's pairs. And the
records rejected at ingestion in the window.
"""

from __future__ import annotations

from typing import Any

from monitor.db import log_repo, record_repo, reference_repo
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Series
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.metrics.quality_summary import ClassificationSummary, QualitySummary
from monitor.metrics.window_metrics import (
    COMPARED,
    ComparisonInputs,
    MergedColumns,
    SegmentInputs,
    SharedInputs,
    Stored,
    Window,
    WindowInputs,
)
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import comparison_job, quality_job
from monitor.services.jobs.error_stream_job import detections_in
from monitor.services.jobs.rollup import SharedReference, borrowed_reference, shared_reference, summarise_shared
from monitor.services.jobs.summary_plan import ReferenceView, load_reference, parse_segment
from monitor.services.jobs.windows import ColumnAccumulator, merged_window


def load_window_inputs(
    ctx: ServiceContext,
    vrow: VersionRow,
    cfg: MonitoringConfig,
    window: Window,
    *,
    quality_only: bool = False,
    ref: ReferenceView | None = None,
) -> WindowInputs:
    """Everything a window's points are made from. ``quality_only``: the quality summaries and
    what they need, what late labels change. ``ref``: the version's reference, where the caller
    read it already."""
    schema = schema_from_json(vrow.schema)
    ref = ref or load_reference(ctx, vrow)
    segments = [_segment(ctx, vrow, schema, ref, cfg, window, seg, quality_only) for seg in ref.columns]
    inputs = WindowInputs(window, vrow.version, schema, ref.extras[""], segments)
    if not quality_only:
        inputs.rejected = _rejected(ctx, vrow.model_id, window)
    if window.on_hours:
        if not quality_only:
            inputs.shared = _shared(ctx, vrow, ref, window)
        inputs.comparison = _comparison(ctx, vrow, schema, window)
    return inputs


def _segment(
    ctx: ServiceContext,
    vrow: VersionRow,
    schema: ModelSchema,
    ref: ReferenceView,
    cfg: MonitoringConfig,
    window: Window,
    seg: str,
    quality_only: bool,
) -> SegmentInputs:
    columns = None if quality_only else merged_columns(ctx, vrow, ref.reference_id, ref.columns[seg], window, seg)
    extras = ref.extras[seg]
    edges = quality_job.residual_edges(extras)
    series = Series.of(vrow, ref.reference_id)
    quality = quality_job.merged_quality(ctx, series, schema, edges, window.start, window.end, seg)
    stream = None
    if isinstance(quality, ClassificationSummary) and quality.n_predictions and quality.n_labelled:
        stream = detections_in(ctx, vrow, cfg, seg, window.start, window.end)
    return SegmentInputs(parse_segment(seg, schema), ref.columns[seg], extras, columns, quality, stream)


def merged_columns(
    ctx: ServiceContext, vrow: VersionRow, ref_id: int, ref: dict[str, dict[str, Any]], window: Window, seg: str = ""
) -> MergedColumns:
    """A group's column summaries of the window, merged from its buckets, on ``ref``'s edges."""
    series = Series.of(vrow, ref_id)
    acc = merged_window(ctx, series, window.start, window.end, lambda: ColumnAccumulator(ref), segment=seg)
    return MergedColumns(acc.columns, acc.row_summaries, acc.n_rows)


def _rejected(ctx: ServiceContext, model_id: int, window: Window) -> tuple[int, dict[str, int]]:
    with ctx.reads() as uow:
        return log_repo.violations_between(uow.conn, model_id, window.start, window.end)


def _shared(ctx: ServiceContext, vrow: VersionRow, own: ReferenceView, window: Window) -> SharedInputs | None:
    """A challenger's and its champion's summaries on the champion's reference; None for a
    version that is not a challenger (or whose champion has no reference)."""
    shared: SharedReference | None = shared_reference(ctx, vrow, own)
    if shared is not None:
        summarise_shared(ctx, vrow, own, shared, window.start, window.end)
    else:  # a challenger without a reference of its own is measured against its champion's alone
        shared = borrowed_reference(ctx, vrow, own)
        if shared is None:
            return None

    def merged(v: VersionRow) -> MergedColumns:
        return merged_columns(ctx, v, shared.reference_id, shared.columns, window)

    champion, reference_id = shared.champion, shared.reference_id
    return SharedInputs(champion.version, reference_id, shared.columns, merged(champion), merged(vrow))


def _comparison(ctx: ServiceContext, vrow: VersionRow, schema: ModelSchema, window: Window) -> ComparisonInputs | None:
    """A challenger's champion as stored for the window (the scheduler computes the champion's
    windows first), and a shadow's pairs; None unless ``vrow`` is a classifier's challenger."""
    champion = registry.champion_of(ctx, vrow)
    if champion is None or champion.version_id == vrow.version_id or not schema.task.is_classification:
        return None
    with ctx.uow() as uow:
        stored = record_repo.window_values(
            uow.conn, vrow.model_id, [champion.version_id], list(COMPARED), window.start, window.end
        )
    theirs: Stored = {m: v for (_, m), v in stored.items()}
    pairs = None
    if vrow.deployment == Deployment.shadow.value:
        pairs = comparison_job.shadow_pairs(ctx, vrow, champion, schema, window.start, window.end)
    champion_schema = schema_from_json(champion.schema)
    return ComparisonInputs(champion.version, champion_schema, theirs, _quality(ctx, champion, window), pairs)


def _quality(ctx: ServiceContext, vrow: VersionRow, window: Window) -> QualitySummary | None:
    """A version's quality summary of the window (all predictions), None without a reference."""
    schema = schema_from_json(vrow.schema)
    with ctx.uow() as uow:
        ref_id = reference_repo.measured_reference_id(uow.conn, vrow.version_id)
    if ref_id is None:
        return None
    return quality_job.merged_quality(ctx, Series.of(vrow, ref_id), schema, None, window.start, window.end)
