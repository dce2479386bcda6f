"""A challenger (canary, A/B arm, shadow) against the champion over one window: read what both
versions' summaries and stored points hold, pair a shadow's predictions with the champion's by
request id, and make the comparison points (``monitor.metrics.comparison``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.db import record_repo, reference_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.metrics.comparison import Pairs, Placements, Side, comparison_points
from monitor.metrics.fairness import confusion_counts
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality_summary import ClassificationSummary, QualitySummary, confusion_cells
from monitor.services import quality_job, registry
from monitor.services.context import ServiceContext
from monitor.services.windows import merged_window

STORED = ["latency.p95", "latency.mean", "estimated.accuracy"]
UNSHOWN = {"segment", "class", "average"}  # the points of all predictions only


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
    latency = {stat: points.get(f"latency.{stat}", (None, {}))[0] for stat in ("p95", "mean")}
    value, details = points.get("estimated.accuracy", (None, {}))
    estimated = (value, float(details["std"])) if value is not None and details.get("std") is not None else None
    side = Side(vrow.version, 0 if s is None else s.n_predictions, latency=latency, estimated=estimated)
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


def _pairs(
    ctx: ServiceContext, vrow: VersionRow, champion: VersionRow, schema: ModelSchema, start: datetime, end: datetime
) -> Pairs:
    """A shadow's predictions paired with the champion's, and for a binary model with a
    positive class the scores of the labelled pairs."""
    positive = schema.positive_class
    with ctx.uow() as uow:
        args = (uow.conn, vrow.model_id, champion.version_id, vrow.version_id, start, end)
        counts = record_repo.paired_outcomes(*args, positive)
        classes = schema.classes or []
        if positive is None or len(classes) != 2:
            return Pairs(counts)
        other = next(c for c in classes if c != positive)
        truth, theirs, mine = record_repo.paired_scores(*args, (other, positive))
    return Pairs(counts, truth, theirs, mine) if len(truth) else Pairs(counts)


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
    champion = registry.champion_of(ctx, vrow)
    if champion is None or champion.version_id == vrow.version_id or not schema.task.is_classification:
        return []
    with ctx.uow() as uow:
        stored = record_repo.window_values(uow.conn, vrow.model_id, [champion.version_id], STORED, start, end)
    pairs = _pairs(ctx, vrow, champion, schema, start, end) if vrow.deployment == Deployment.shadow.value else None
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
