"""Every prediction summarised once: at ingestion into deltas, folded by the scheduler.

The API process has each accepted batch decoded in memory; summarising it there, in the
transaction that stores it, costs a few microseconds a row, where reading the rows back from the
log cost ~35 µs each, and did so for every row already in the hour at every scheduler run (the
hour's summary was made again from its first row). A delta holds the batch's summaries per minute
of prediction time and group against the version's active reference as the storing transaction
sees it; the scheduler folds deltas into the hour's stored summary (``fold``), so a run costs
what arrived since the last run, late and back-dated rows included (they fold into their own hour).

Exactness: a delta and the rows it summarises commit together, and a fold deletes the deltas it
adds in the transaction that stores the sum. Where an hour is summarised from the log instead (a
new reference, history from before one, a batch whose summary failed), that transaction runs in
one repeatable-read snapshot and discards the deltas it sees: their rows are in the snapshot.
A delta against another reference than the active one (a batch committed across a reference
switch) is discarded and its hour summarised from the log again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, TypeVar

import msgspec
import numpy as np
import orjson
from sqlalchemy import Connection, text

from monitor.db import delta_repo, log_repo, reference_repo, summary_repo
from monitor.db.delta_repo import Delta
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Series
from monitor.domain.records import PredictionRow
from monitor.domain.schema import ModelSchema, Task, category_key, schema_from_json
from monitor.metrics.estimation import score_matrix
from monitor.metrics.log_summary import Chunk, GroupSummaries, add_chunk
from monitor.metrics.quality_summary import QUALITY_COLUMN, ClassificationSummary, QualitySummary, RegressionSummary
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.quality_job import new_summary, residual_edges
from monitor.services.jobs.summary_plan import ReferenceView, SummaryPlan, reference_view, score_layout, summary_plan
from monitor.services.jobs.windows import MINUTE_HORIZON, ColumnAccumulator, has_minutes, hour_floor

log = logging.getLogger(__name__)

# Deltas taken per fold transaction: at 1,000-row batches, 2M predictions.
FOLD_BATCH = 2_000


def _plan(ctx: ServiceContext, conn: Connection, version_id: int, reference_id: int) -> SummaryPlan:
    def load() -> SummaryPlan:
        schema = conn.execute(text("SELECT schema FROM model_versions WHERE id = :v"), {"v": version_id}).scalar_one()
        return summary_plan(schema_from_json(schema), reference_view(ctx, reference_id))

    return ctx.cached_plan((version_id, reference_id), load)


def summarise_batch(ctx: ServiceContext, conn: Connection, rows: Sequence[tuple[int, PredictionRow]]) -> list[Delta]:
    """The deltas of a batch's new rows, (version id, row), against each version's active
    reference as this transaction sees it; none for a version without a reference (its rows are
    summarised from the log when one is uploaded)."""
    deltas: list[Delta] = []
    for plan, vid, minute, minute_rows in _by_plan_and_minute(ctx, conn, rows, attrgetter("ts")):
        deltas += _deltas_of(plan, vid, minute, minute_rows)
    return deltas


T = TypeVar("T")


def _by_plan_and_minute(
    ctx: ServiceContext, conn: Connection, items: Sequence[tuple[int, T]], ts_of: Callable[[T], datetime]
) -> Iterator[tuple[SummaryPlan, int, datetime, list[T]]]:
    """``items`` given as (version id, item), grouped by version and minute, each version's with
    its plan; a version without an active reference is left out."""
    by_version: dict[int, list[T]] = defaultdict(list)
    for vid, item in items:
        by_version[vid].append(item)
    for vid, version_items in by_version.items():
        ref_id = ctx.active_reference(vid, partial(reference_repo.measured_reference_id, conn, vid))
        if ref_id is None:
            continue
        plan = _plan(ctx, conn, vid, ref_id)
        # keyed by the minute's number since the epoch: a datetime made per row cost more than
        # the rest of grouping (times are aware, in UTC from the validator or the database)
        by_minute: dict[float, list[T]] = defaultdict(list)
        for item in version_items:
            by_minute[ts_of(item).timestamp() // 60].append(item)
        for minute, minute_items in by_minute.items():
            yield plan, vid, datetime.fromtimestamp(minute * 60, UTC), minute_items


def _deltas_of(plan: SummaryPlan, version_id: int, minute: datetime, rows: list[PredictionRow]) -> list[Delta]:
    # the one-pass decoder's rows hold their features as structs: turned into dicts in C, the
    # fields a record left out omitted as in the validator's dicts
    features = [r.features for r in rows]
    chunk = Chunk(
        features=features if type(features[0]) is dict else msgspec.to_builtins(features),
        scores=[r.scores for r in rows],
        predictions=[r.prediction for r in rows],
        latency_ms=[r.latency_ms for r in rows],
        segments=[r.segments for r in rows],
        attributions=[r.attributions for r in rows],
    )
    sizes = {
        key: len(rows) if seg is None else int(chunk.in_segment(*seg).sum())
        for key, seg in plan.groups.segments.items()
    }
    accumulators = {key: GroupSummaries(cols, plan.derived) for key, cols in plan.columns.items() if sizes.get(key)}
    add_chunk(chunk, accumulators, plan.groups.segments, plan.derived)
    return [
        Delta(version_id, plan.reference_id, minute, key, sizes[key], acc.parts()) for key, acc in accumulators.items()
    ]


def summarise_labels(
    ctx: ServiceContext, conn: Connection, model_id: int, labelled: Sequence[tuple[str, Any, datetime]]
) -> list[Delta]:
    """The quality deltas of new labels joined to their stored predictions, given as (prediction
    id, label, the prediction's time): per version with a reference, minute and group, as the
    rollup's SQL summarises labelled rows (``monitor.db.quality_repo``)."""
    found = log_repo.predictions_for_labels(conn, model_id, [(pid, ts) for pid, _, ts in labelled])
    label_of = {pid: label for pid, label, _ in labelled}
    deltas: list[Delta] = []
    for plan, vid, minute, minute_rows in _by_plan_and_minute(ctx, conn, [(r[1], r) for r in found], itemgetter(2)):
        deltas += _quality_deltas(plan, vid, minute, minute_rows, label_of)
    return deltas


def _quality_deltas(
    plan: SummaryPlan,
    version_id: int,
    minute: datetime,
    rows: list[tuple[Any, ...]],
    label_of: dict[str, Any],
) -> list[Delta]:
    loads = orjson.loads
    labels = [label_of[r[0]] for r in rows]
    predictions = [loads(r[3]) for r in rows]
    segments = [None if r[5] is None else loads(r[5]) for r in rows]
    epoch_minute = int(minute.timestamp()) // 60
    out = []
    for key, seg in plan.groups.segments.items():
        chosen = [i for i, s in enumerate(segments) if seg is None or category_key((s or {}).get(seg[0])) == seg[1]]
        if not chosen:
            continue
        summary: QualitySummary
        if plan.schema.task is Task.regression:
            summary = RegressionSummary(residuals=None)
            summary.add_rows(
                np.array([float(labels[i]) for i in chosen]),
                np.array([float(predictions[i]) for i in chosen]),
                plan.residual_edges.get(key),
            )
            summary.n_predictions = 0  # the column deltas count the predictions
        else:
            classes = list(plan.schema.classes or [])
            scores = [None if rows[i][4] is None else loads(rows[i][4]) for i in chosen]
            summary = ClassificationSummary.of(
                classes,
                np.array([category_key(labels[i]) for i in chosen], dtype=object),
                np.array([category_key(predictions[i]) for i in chosen], dtype=object),
                np.full(len(chosen), epoch_minute),
                score_matrix(scores, classes) if any(sc is not None for sc in scores) else None,
                n_predictions=0,
                layout=plan.score_layout,
            )
        parts = {QUALITY_COLUMN: summary.to_parts()}
        out.append(Delta(version_id, plan.reference_id, minute, key, len(chosen), parts, delta_repo.QUALITY))
    return out


def write_label_deltas(
    ctx: ServiceContext, conn: Connection, raw: object, model_id: int, labelled: Sequence[tuple[str, Any, datetime]]
) -> None:
    """Summarise new labels into quality deltas, in the transaction that stores them. Labels that
    cannot be summarised (a label outside the version's classes) mark their hours, whose quality
    the scheduler then summarises from the log."""
    if not labelled:
        return
    try:  # a failed query aborts the request (and is retried); a failed summary does not
        deltas = summarise_labels(ctx, conn, model_id, labelled)
    except (ValueError, TypeError, KeyError) as exc:  # a label outside the version's classes
        log.warning("labels summarised from the log instead of at ingestion: %s", exc)
        hours = sorted({hour_floor(ts) for _, _, ts in labelled})
        log_repo.mark_stale_hours(raw, model_id, hours, "quality")
        return
    delta_repo.write(raw, model_id, deltas)


@dataclass
class Folded:
    """What a fold did: predictions added to hour summaries, the hours they were in, and the hours
    whose deltas were against another reference (to be summarised from the log)."""

    rows: int = 0
    labelled: int = 0
    hours: set[datetime] = field(default_factory=set)
    foreign_hours: set[datetime] = field(default_factory=set)


def fold(
    ctx: ServiceContext,
    vrow: VersionRow,
    ref: ReferenceView,
    now: datetime | None = None,
    horizon: timedelta = MINUTE_HORIZON,
) -> Folded:
    """Fold every delta of the version committed so far into its hours' summaries (column
    summaries, and quality summaries: their predictions from the column deltas, their labelled
    rows from the quality deltas; all rows and each tracked segment), and into its minutes'
    ``horizon`` back (``monitor.services.jobs.windows``), a transaction per ``FOLD_BATCH`` deltas."""
    schema = schema_from_json(vrow.schema)
    now = now or datetime.now(UTC)
    out = Folded()
    while True:
        with ctx.uow() as uow:
            taken = delta_repo.take(uow.conn, vrow.model_id, vrow.version_id, FOLD_BATCH)
            ours: dict[tuple[datetime, str], list[Delta]] = defaultdict(list)
            for d in taken:
                hour = hour_floor(d.minute)
                if d.reference_id == ref.reference_id and d.segment in ref.columns:
                    ours[(hour, d.segment)].append(d)
                else:
                    out.foreign_hours.add(hour)
            recent: list[Delta] = []
            for (hour, seg), deltas in sorted(ours.items()):
                columns = [d for d in deltas if d.kind == delta_repo.COLUMNS]
                if columns:
                    _fold_columns(uow.conn, vrow, ref, hour, seg, columns)
                _fold_quality(uow.conn, vrow, schema, ref, hour, seg, deltas)
                if has_minutes(hour, now, horizon):
                    recent += deltas
                if not seg:
                    out.rows += sum(d.n_rows for d in columns)
                    out.labelled += sum(d.n_rows for d in deltas if d.kind == delta_repo.QUALITY)
                    out.hours.add(hour)
            _fold_minutes(uow.conn, vrow, schema, ref, recent)
            if out.foreign_hours:
                log_repo.mark_stale_hours(uow.raw, vrow.model_id, sorted(out.foreign_hours), "summaries")
            uow.commit()
        if len(taken) < FOLD_BATCH:
            return out


def _fold_minutes(
    conn: Connection, vrow: VersionRow, schema: ModelSchema, ref: ReferenceView, deltas: list[Delta]
) -> None:
    """Add deltas to their minutes' stored summaries (column and quality summaries, per group) in
    three statements however many minutes they hold: read those minutes, drop them, insert the sums."""
    if not deltas:
        return
    series = Series.of(vrow, ref.reference_id)
    by_minute: dict[tuple[datetime, str], list[Delta]] = defaultdict(list)
    for d in deltas:
        by_minute[(d.minute, d.segment)].append(d)
    columns = {k: ColumnAccumulator(ref.columns[k[1]]) for k in by_minute}
    layout = score_layout(schema, ref)
    quality = {k: new_summary(schema, residual_edges(ref.extras[k[1]]), layout) for k in by_minute}
    for minute, seg, col, n, st, ct in summary_repo.load_minutes(conn, series, sorted({m for m, _ in by_minute})):
        if (minute, seg) not in by_minute:
            continue  # another group's, not changed
        if col == QUALITY_COLUMN:
            quality[(minute, seg)].add_parts(st, ct)
        else:
            columns[(minute, seg)].add(minute, summary_repo.MINUTE_BUCKET, col, n, st, ct)
    for k, minute_deltas in by_minute.items():
        _add_deltas(minute_deltas, columns[k], quality[k])
    summary_repo.delete_minute_buckets(conn, series, list(by_minute))
    made: list[summary_repo.NewBucket] = []
    for (minute, seg), acc in columns.items():
        q = quality[(minute, seg)]
        made += [(minute, seg, acc.n_rows, acc.parts()), (minute, seg, q.n_predictions, {QUALITY_COLUMN: q.to_parts()})]
    summary_repo.insert_minutes(conn, series, made)


def _add_deltas(deltas: list[Delta], columns: ColumnAccumulator | None, quality: QualitySummary | None) -> None:
    """Add one bucket's deltas to its column summaries and its quality summary (either may be
    left out): a column delta's summaries to the first and its predictions to the second's
    count, a quality delta's labelled rows to the second."""
    for i, d in enumerate(deltas):
        if d.kind == delta_repo.COLUMNS:
            if columns is not None:
                for col, (st, ct) in d.parts.items():
                    columns.add_delta(i, col, d.n_rows, st, ct)
            if quality is not None:
                quality.n_predictions += d.n_rows
        elif quality is not None:
            quality.add_parts(*d.parts[QUALITY_COLUMN])


def _fold_columns(
    conn: Connection, vrow: VersionRow, ref: ReferenceView, hour: datetime, seg: str, deltas: list[Delta]
) -> None:
    acc = ColumnAccumulator(ref.columns[seg])
    series = Series.of(vrow, ref.reference_id)
    for b, col, n, st, ct in summary_repo.load_buckets(conn, series, 1, [hour], seg):
        acc.add(b, 1, col, n, st, ct)
    _add_deltas(deltas, acc, None)
    summary_repo.replace_bucket(conn, series, hour, 1, acc.n_rows, acc.parts(), seg)
    summary_repo.drop_merged(conn, series, hour, seg, unless_filling=True)


def _fold_quality(
    conn: Connection,
    vrow: VersionRow,
    schema: ModelSchema,
    ref: ReferenceView,
    hour: datetime,
    seg: str,
    deltas: list[Delta],
) -> None:
    summary = new_summary(schema, residual_edges(ref.extras[seg]), score_layout(schema, ref))
    series = Series.of(vrow, ref.reference_id)
    for _, _, _, st, ct in summary_repo.load_buckets(conn, series, 1, [hour], seg, quality=True):
        summary.add_parts(st, ct)
    _add_deltas(deltas, None, summary)
    parts = {QUALITY_COLUMN: summary.to_parts()}
    summary_repo.replace_bucket(conn, series, hour, 1, summary.n_predictions, parts, seg, quality=True)
    summary_repo.drop_merged(conn, series, hour, seg, quality=True, unless_filling=True)


def write_batch_deltas(
    ctx: ServiceContext, conn: Connection, raw: object, model_id: int, rows: Sequence[tuple[int, PredictionRow]]
) -> None:
    """Summarise a batch's new rows into deltas, in the transaction that stores them. A batch that
    cannot be summarised (a bug, never the data: it is validated) is still stored, and its hours
    are marked for the scheduler to summarise from the log."""
    try:  # the database is not written until the summaries are made: nothing to roll back
        deltas = summarise_batch(ctx, conn, rows)
    except Exception:
        log.exception("could not summarise a batch at ingestion; its hours will be summarised from the log")
        hours = sorted({hour_floor(r.ts) for _, r in rows})
        log_repo.mark_stale_hours(raw, model_id, hours, "summaries")
        return
    delta_repo.write(raw, model_id, deltas)
