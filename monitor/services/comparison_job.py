"""A challenger (canary, A/B arm, shadow) against the champion over one window: read what both
versions' summaries and stored points hold, merge a shadow's hourly pair summaries (its
predictions paired with the champion's by request id, ``monitor.metrics.pairs``), and make the
comparison points (``monitor.metrics.comparison``)."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.db import record_repo, reference_repo, summary_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.deployment import Deployment
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.metrics.comparison import Pairs, Placements, Side, comparison_points
from monitor.metrics.fairness import confusion_counts
from monitor.metrics.pairs import PairingRow, PairSummary
from monitor.metrics.points import MetricPoint
from monitor.metrics.quality_summary import ClassificationSummary, QualitySummary, confusion_cells
from monitor.services import quality_job, registry
from monitor.services.context import ServiceContext
from monitor.services.windows import HOUR, merged_window

STORED = ["latency.p95", "latency.mean", "estimated.accuracy"]
UNSHOWN = {"segment", "class", "average"}  # the points of all predictions only
RUN_HOURS = 24  # stale pair hours read at once: a day's rows in two queries, not two per hour


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


def _runs(hours: list[datetime]) -> list[list[datetime]]:
    """Consecutive hours, at most ``RUN_HOURS`` to a run."""
    runs: list[list[datetime]] = []
    for hour in hours:
        if runs and hour - runs[-1][-1] == HOUR and len(runs[-1]) < RUN_HOURS:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


def _pair_classes(schema: ModelSchema) -> tuple[str, str] | None:
    """(the other class, the positive one) of a binary model with a positive class: scores kept."""
    classes, positive = schema.classes or [], schema.positive_class
    if positive is None or len(classes) != 2:
        return None
    return next(c for c in classes if c != positive), positive


def _read_pairs(
    ctx: ServiceContext, model_id: int, ids: tuple[int, int], start: datetime, end: datetime, schema: ModelSchema
) -> tuple[datetime, list[PairingRow], list[PairingRow]]:
    """When it read, the champion's rows in [start, end) and the shadow's an hour either side.
    ``ids``: the champion's version id, the shadow's."""
    classes = _pair_classes(schema)
    with ctx.uow() as uow:
        read_at = summary_repo.read_time(uow.conn)
        theirs = record_repo.pairing_rows(uow.conn, model_id, ids[0], start, end, classes)
        mine = record_repo.pairing_rows(uow.conn, model_id, ids[1], start - HOUR, end + HOUR, classes)
    return read_at, theirs, mine


def _pair_run(ctx: ServiceContext, key: summary_repo.PairKey, run: list[datetime], schema: ModelSchema) -> None:
    """Make and store the pair summaries of a run of hours, from one read of its rows."""
    ids = (key.champion_id, key.shadow_id)
    read_at, theirs, mine = _read_pairs(ctx, key.model_id, ids, run[0], run[-1] + HOUR, schema)
    at_c, at_s = [r[0] for r in theirs], [r[0] for r in mine]
    made = []
    for hour in run:
        c = theirs[bisect_left(at_c, hour) : bisect_left(at_c, hour + HOUR)]
        s = mine[bisect_left(at_s, hour - HOUR) : bisect_left(at_s, hour + 2 * HOUR)]
        made.append((hour, PairSummary.of(c, s, schema.positive_class)))
    with ctx.uow() as uow:
        for hour, summary in made:
            summary_repo.replace_pair_hour(uow.conn, key, hour, summary.counts["pairs"], summary.to_parts(), read_at)
        uow.commit()


def shadow_pairs(
    ctx: ServiceContext, vrow: VersionRow, champion: VersionRow, schema: ModelSchema, start: datetime, end: datetime
) -> Pairs:
    """A shadow's predictions of [start, end) paired with the champion's: the window's pair
    summaries merged, after making those of hours never summarised or stale. A shadow without a
    reference has nowhere to keep them: its window is paired whole."""
    with ctx.uow() as uow:
        ref_id = reference_repo.active_reference_id(uow.conn, vrow.version_id)
    if ref_id is None:
        _, theirs, mine = _read_pairs(ctx, vrow.model_id, (champion.version_id, vrow.version_id), start, end, schema)
        return PairSummary.of(theirs, mine, schema.positive_class).pairs()
    key = summary_repo.PairKey(vrow.model_id, vrow.version_id, ref_id, champion.version_id)
    with ctx.uow() as uow:
        stale = summary_repo.stale_pair_hours(uow.conn, key, start, end)
    for run in _runs(stale):
        _pair_run(ctx, key, run, schema)
    with ctx.uow() as uow:
        parts = summary_repo.pair_hours(uow.conn, key, start, end)
    return PairSummary.merged([PairSummary.from_parts(*p) for p in parts]).pairs()


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
    shadow = vrow.deployment == Deployment.shadow.value
    pairs = shadow_pairs(ctx, vrow, champion, schema, start, end) if shadow else None
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
