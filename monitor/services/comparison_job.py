"""A challenger (canary, A/B arm, shadow) against the champion over one window: read what both
versions' summaries and stored points hold, pair a shadow's predictions with the champion's by
request id, and make the comparison points (``monitor.metrics.comparison``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.db import record_repo, reference_repo, registry_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.metrics.comparison import Side, comparison_points
from monitor.metrics.fairness import confusion_counts
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality_summary import ClassificationSummary, QualitySummary, confusion_cells
from monitor.services import quality_job
from monitor.services.context import ServiceContext
from monitor.services.windows import merged_window

STORED = ["latency.p95", "latency.mean", "estimated.accuracy"]
UNSHOWN = {"segment", "class", "average"}  # the points of all predictions only


def champion_of(ctx: ServiceContext, vrow: VersionRow) -> VersionRow | None:
    """The champion a version is compared with: None unless the version is a challenger and
    the model has a champion."""
    if not Deployment(vrow.deployment).is_challenger:
        return None
    with ctx.uow() as uow:
        versions = registry_repo.list_versions(uow.conn, vrow.model_name)
    return next((v for v in reversed(versions) if v.deployment == Deployment.champion.value), None)


Stored = dict[str, tuple[float | None, dict[str, Any]]]  # metric -> (value, details), all predictions


def _quality(ctx: ServiceContext, vrow: VersionRow, start: datetime, end: datetime) -> QualitySummary | None:
    """A version's quality summary of the window (all predictions), None without a reference."""
    schema = schema_from_json(vrow.schema)
    with ctx.uow() as uow:
        ref_id = reference_repo.active_reference_id(uow.conn, vrow.version_id)
    if ref_id is None:
        return None
    acc = merged_window(
        ctx, vrow, ref_id, start, end, lambda: quality_job.QualityAccumulator(schema, None), quality=True
    )
    return acc.summary


def _side(vrow: VersionRow, points: Stored, s: QualitySummary | None) -> Side:
    schema = schema_from_json(vrow.schema)
    predictions = labelled = correct = positives = true_positives = 0
    if s is not None:
        predictions = s.n_predictions
        if isinstance(s, ClassificationSummary):
            labelled = s.n_labelled
            correct = sum(n for y, yhat, n in confusion_cells(s.confusion) if y == yhat)
            if schema.positive_class is not None:
                positives, true_positives, _, _ = confusion_counts(schema.positive_class, s.confusion)
    latency = {stat: points.get(f"latency.{stat}", (None, {}))[0] for stat in ("p95", "mean")}
    value, details = points.get("estimated.accuracy", (None, {}))
    estimated = (value, float(details["std"])) if value is not None and details.get("std") is not None else None
    return Side(vrow.version, predictions, labelled, correct, positives, true_positives, latency, estimated)


def window_comparison(
    ctx: ServiceContext,
    vrow: VersionRow,
    schema: ModelSchema,
    cfg: MonitoringConfig,
    own: list[MetricPoint],
    own_quality: QualitySummary | None,
    start: datetime,
    end: datetime,
) -> list[MetricPoint]:
    """The window's comparison points when ``vrow`` is a challenger; none otherwise. ``own`` and
    ``own_quality``: the challenger's points of this window and its quality summary, just
    computed; the champion's are read as stored (the scheduler computes its windows first)."""
    champion = champion_of(ctx, vrow)
    if champion is None or champion.version_id == vrow.version_id or not schema.task.is_classification:
        return []
    with ctx.uow() as uow:
        stored = record_repo.window_values(uow.conn, vrow.model_id, [champion.version_id], STORED, start, end)
        pairs = None
        if vrow.deployment == Deployment.shadow.value:
            pairs = record_repo.paired_outcomes(
                uow.conn, vrow.model_id, champion.version_id, vrow.version_id, start, end, schema.positive_class
            )
    theirs: Stored = {m: v for (_, m), v in stored.items()}
    ours: Stored = {p.metric: (p.value, p.details) for p in own if p.metric in STORED and not set(p.labels) & UNSHOWN}
    return comparison_points(
        _side(champion, theirs, _quality(ctx, champion, start, end)),
        _side(vrow, ours, own_quality),
        pairs,
        cfg.comparison_confidence,
        start,
        end,
    )
