"""Summaries made from the prediction log, where ingestion made none (``monitor.services.jobs.summary_deltas``):
the hours before a reference's first run, a backfill, a challenger's summaries on its champion's
reference, an hour whose batch was summarised against a reference replaced meanwhile, the quality
of an hour whose labels were replaced. Each hour's rows are read once, streamed in chunks
(``summary_repo.summarise_columns``); a recent hour minute by minute (a sliding window's ends
read its minutes), its hour summary their sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Connection

from monitor.db import delta_repo, reference_repo, summary_repo
from monitor.db.delta_repo import Delta
from monitor.db.registry_repo import VersionRow
from monitor.db.summary_repo import Series
from monitor.domain.schema import ModelSchema, schema_from_json
from monitor.metrics.attribution import ATTRIBUTIONS_COLUMN
from monitor.metrics.log_summary import Column, Parts
from monitor.metrics.multivariate import RECONSTRUCTION_COLUMN
from monitor.metrics.quality_summary import QUALITY_COLUMN, QualitySummary
from monitor.services.catalog import registry
from monitor.services.catalog.registry import resolve_version
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import job_log, quality_job
from monitor.services.jobs.summary_plan import (
    ReferenceView,
    SummaryPlan,
    column_specs,
    load_reference,
    reference_view,
    summary_plan,
)
from monitor.services.jobs.windows import HOUR, ColumnAccumulator, has_minutes, hour_floor, hours, minute_horizon

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


def borrowed_reference(ctx: ServiceContext, vrow: VersionRow, own: ReferenceView) -> SharedReference | None:
    """A challenger measured against its champion's reference because it has none of its own:
    that reference, all its drift columns (its own summaries are on it already); else None."""
    champion = registry.champion_of(ctx, vrow)
    if champion is None or champion.version_id == vrow.version_id:
        return None
    with ctx.uow() as uow:
        ref_id = reference_repo.active_reference_id(uow.conn, champion.version_id)
    if ref_id != own.reference_id or not own.columns[""]:
        return None
    return SharedReference(champion, ref_id, own.columns[""])


def _store_shared(
    conn: Connection, vrow: VersionRow, shared: SharedReference, bucket: datetime, n: int, parts: dict[str, Parts]
) -> None:
    series = Series.of(vrow, shared.reference_id)
    summary_repo.replace_bucket(conn, series, bucket, 1, n, parts)
    summary_repo.drop_merged(conn, series, bucket)


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
    rows and for each tracked segment; within the minute horizon each of its minutes too
    (``HourSummariser.by_minute``). Re-running an hour replaces it and drops its day's merged
    summary, merged again when next needed. ``quality_only``: the labels changed, the log did
    not. ``only``: these hours of the range, not all. ``failures``: an hour that fails on its data
    is skipped and recorded there (``job_log.isolated``) instead of failing the rollup. Returns
    predictions summarised."""
    vrow = resolve_version(ctx, model, version)
    ref = load_reference(ctx, vrow)
    plan = summary_plan(schema_from_json(vrow.schema), ref)
    horizon = minute_horizon(registry.get_monitoring(ctx, model).window_lengths())
    # a challenger's hours are summarised against its champion's reference too, from the same rows
    shared = None if quality_only else shared_reference(ctx, vrow, ref)
    total = [0]

    def summarise(bucket: datetime) -> None:
        # From the log, what is summarised and the deltas that summarised it at ingestion are
        # read in one snapshot, and the deltas it sees discarded (monitor.services.jobs.summary_deltas);
        # the merge lock is held from before that snapshot, so no day or week merged from the old
        # hour outlives it.
        lock = summary_repo.merge_lock_key(vrow.version_id, summary_repo.week_of_hour(bucket))
        with ctx.uow(snapshot=True, session_locks=(lock,)) as uow:
            window = (uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
            carried: Carried = {}
            if quality_only:
                delta_repo.discard(*window, (delta_repo.QUALITY,))
            else:
                deltas = delta_repo.discard_returning(*window, delta_repo.COLUMNS)
                delta_repo.discard(*window, (delta_repo.QUALITY,))
                carried = carried_parts(uow.conn, plan, ref, Series.of(vrow, ref.reference_id), bucket, deltas)
            summarised = HourSummariser(uow.conn, vrow, ref, plan, shared, quality_only, carried)
            if has_minutes(bucket, now, horizon):
                total[0] += summarised.by_minute(bucket)
            else:
                total[0] += summarised.whole(bucket)
            uow.commit()

    now = datetime.now(UTC)
    final_before = summaries_final_before(plan.schema, now)
    for bucket in only if only is not None else hours(start, end):
        if final_before is not None and bucket < final_before:
            continue  # its rows are gone, bar the sample: its summaries are all there is
        with job_log.isolated(f"summary of the hour {bucket.isoformat()}", failures):
            summarise(bucket)
    return total[0]


def summaries_final_before(schema: ModelSchema, now: datetime) -> datetime | None:
    """Where a version keeping summaries only has its hours' summaries final: before the hour
    that holds the end of its label wait (``monitor.services.jobs.compaction`` deletes the rows of
    the hours before that; the hour's margin keeps a summary made from the log from racing their
    deletion). None for a version that keeps its rows."""
    if not schema.summaries_only:
        return None
    return hour_floor(now - timedelta(hours=schema.personal_data.label_wait_hours)) + HOUR


@dataclass
class HourSummariser:
    """An hour's summaries made from the log, in the caller's transaction: column summaries
    (unless ``quality_only``: the labels changed, the log did not) and quality summaries, for
    all rows and each tracked segment, and a challenger's on its champion's reference
    (``shared``). Each returns the predictions summarised (0 when ``quality_only``)."""

    conn: Connection
    vrow: VersionRow
    ref: ReferenceView
    plan: SummaryPlan
    shared: SharedReference | None
    quality_only: bool
    carried: Carried = field(default_factory=dict)  # what the log does not hold (``carried_parts``)

    @cached_property
    def dropped(self) -> frozenset[str]:
        """The columns the log's rows cannot summarise (``not_in_log``)."""
        return not_in_log(self.plan)

    @property
    def series(self) -> Series:
        return Series.of(self.vrow, self.ref.reference_id)

    def whole(self, hour: datetime) -> int:
        """The hour read at once, its summaries stored in place of what was."""
        window = (self.conn, self.vrow.model_id, self.vrow.version_id, hour, hour + HOUR)
        if self.quality_only:
            # the predictions as the stored column summaries count them: the column deltas not
            # yet folded add theirs to the quality summary when they are
            counts = summary_repo.stored_counts(self.conn, self.series, hour, self.plan.groups)
        else:
            counts = summary_repo.count_rows(*window, self.plan.groups)
            self._columns(hour, counts)
        quality = self._quality(hour, hour + HOUR, counts)
        quality_job.store_quality(self.conn, self.vrow, self.ref.reference_id, hour, 1, quality)
        return 0 if self.quality_only else counts[""]

    def by_minute(self, hour: datetime) -> int:
        """The hour read minute by minute: each minute's summaries stored (a sliding window's
        ends read them), and the hour's as their sum, so the log is read once."""
        conn, series = self.conn, self.series
        groups, plan = self.plan.groups, self.plan
        summary_repo.delete_minutes(conn, series, hour, hour + HOUR, quality=True)
        if self.quality_only:
            by_minute = summary_repo.stored_minute_counts(conn, series, hour, hour + HOUR, groups)
        else:
            summary_repo.delete_minutes(conn, series, hour, hour + HOUR)
            by_minute = summary_repo.count_rows_by_minute(
                conn, series.model_id, series.version_id, hour, hour + HOUR, groups
            )
        columns = {seg: ColumnAccumulator(self.ref.columns[seg]) for seg in groups.keys}
        shared = None if self.shared is None else ColumnAccumulator(self.shared.columns)
        also = None if self.shared is None else {SHARED: column_specs(self.shared.columns)}
        quality = self._empty_quality()
        made: list[summary_repo.NewBucket] = []  # the minutes' summaries, stored at once
        if not self.quality_only:
            made += self._minute_columns(hour, by_minute, columns, shared, also)
        minute_quality = quality_job.summarise_quality_by_minute(
            self.conn,
            self.vrow,
            plan.schema,
            plan.residual_edges,
            plan.score_layout,
            hour,
            hour + HOUR,
            groups,
            by_minute,
        )
        for minute, summaries in sorted(minute_quality.items()):
            for seg, s in summaries.items():
                if s.n_predictions:
                    made.append((minute, seg, s.n_predictions, {QUALITY_COLUMN: s.to_parts()}))
                    quality[seg].add_parts(*s.to_parts())
        summary_repo.insert_minutes(conn, series, made)
        if not self.quality_only:
            for seg in groups.keys:
                summary_repo.replace_bucket(conn, series, hour, 1, columns[seg].n_rows, columns[seg].parts(), seg)
                summary_repo.drop_merged(conn, series, hour, seg)
            if shared is not None and self.shared is not None:
                _store_shared(self.conn, self.vrow, self.shared, hour, columns[""].n_rows, shared.parts())
        else:
            # predictions the stored hour counts that no minute holds (the column deltas of an
            # hour summarised before minutes were kept) are still the hour's
            stored = summary_repo.stored_counts(conn, series, hour, groups)
            for seg, s in quality.items():
                s.n_predictions = max(s.n_predictions, stored[seg])
        quality_job.store_quality(self.conn, self.vrow, self.ref.reference_id, hour, 1, quality)
        return 0 if self.quality_only else columns[""].n_rows

    def _minute_columns(
        self,
        hour: datetime,
        by_minute: dict[datetime, dict[str, int]],
        columns: dict[str, ColumnAccumulator],
        shared: ColumnAccumulator | None,
        also: dict[str, list[Column]] | None,
    ) -> list[summary_repo.NewBucket]:
        """Each minute's column summaries from the log (added to the hour's ``columns`` and
        ``shared`` too), to be stored."""
        plan, series, groups = self.plan, self.series, self.plan.groups
        made: list[summary_repo.NewBucket] = []
        log_window = (self.conn, series.model_id, series.version_id, hour, hour + HOUR)
        for minute, parts in summary_repo.summarise_columns_by_minute(
            *log_window, plan.columns, groups, by_minute, plan.derived, also
        ):
            counts = by_minute[minute]
            for seg in groups.keys:
                parts[seg] = _log_made(parts[seg], self.dropped) | self._carried(
                    minute, summary_repo.MINUTE_BUCKET, seg
                )
            if SHARED in parts:
                parts[SHARED] = _log_made(parts[SHARED], self.dropped)
            made += [(minute, seg, counts[seg], parts[seg]) for seg in groups.keys if counts[seg]]
            for seg in groups.keys:
                for col, (st, ct) in parts[seg].items():
                    columns[seg].add(minute, summary_repo.MINUTE_BUCKET, col, counts[seg], st, ct)
            if shared is not None:
                for col, (st, ct) in parts[SHARED].items():
                    shared.add(minute, summary_repo.MINUTE_BUCKET, col, counts[""], st, ct)
        return made

    def _carried(self, bucket: datetime, bucket_hours: int, seg: str) -> dict[str, Parts]:
        """The summaries of columns the log does not hold, for a bucket and group (``carried_parts``)."""
        return self.carried.get((bucket, bucket_hours, seg), {})

    def _empty_quality(self) -> dict[str, QualitySummary]:
        """Each group's quality summary to add an hour's minutes to, its scores on the plan's bins."""
        plan = self.plan
        return {
            seg: quality_job.new_summary(plan.schema, plan.residual_edges.get(seg), plan.score_layout)
            for seg in plan.groups.keys
        }

    def _columns(self, hour: datetime, counts: dict[str, int]) -> None:
        """An hour's column summaries read from the log, stored in place of what was (and, for a
        challenger, its summaries on its champion's reference)."""
        conn, vrow, plan, shared = self.conn, self.vrow, self.plan, self.shared
        also = {SHARED: column_specs(shared.columns)} if shared is not None else None
        window = (conn, vrow.model_id, vrow.version_id, hour, hour + HOUR)
        parts = summary_repo.summarise_columns(*window, plan.columns, plan.groups, counts, plan.derived, also)
        if shared is not None:
            _store_shared(conn, vrow, shared, hour, counts[""], _log_made(parts[SHARED], self.dropped))
        series = Series.of(vrow, plan.reference_id)
        for seg in plan.groups.keys:
            parts[seg] = _log_made(parts[seg], self.dropped) | self._carried(hour, 1, seg)
            summary_repo.replace_bucket(conn, series, hour, 1, counts[seg], parts[seg], seg)
            summary_repo.drop_merged(conn, series, hour, seg)

    def _quality(self, start: datetime, end: datetime, counts: dict[str, int]) -> dict[str, QualitySummary]:
        plan = self.plan
        return quality_job.summarise_quality(
            self.conn, self.vrow, plan.schema, plan.residual_edges, plan.score_layout, start, end, plan.groups, counts
        )


def summarise_shared(
    ctx: ServiceContext, vrow: VersionRow, own: ReferenceView, shared: SharedReference, start: datetime, end: datetime
) -> None:
    """Summarise against the champion's reference the hours of [start, end) summarised against
    the version's own reference only: those from before it was a challenger of this champion
    (the rollup summarises the hours after against both)."""
    with ctx.uow() as uow:
        done = summary_repo.summarised_hours(uow.conn, Series.of(vrow, shared.reference_id), start, end)
        missing = sorted(summary_repo.summarised_hours(uow.conn, Series.of(vrow, own.reference_id), start, end) - done)
    also = {SHARED: column_specs(shared.columns)}
    everything = summary_repo.Groups({"": None})
    dropped = not_in_log(summary_plan(schema_from_json(vrow.schema), own))
    for bucket in missing:
        with ctx.uow() as uow:
            window = (uow.conn, vrow.model_id, vrow.version_id, bucket, bucket + HOUR)
            counts = summary_repo.count_rows(*window, everything)
            parts = summary_repo.summarise_columns(*window, {}, everything, counts, (), also)
            _store_shared(uow.conn, vrow, shared, bucket, counts[""], _log_made(parts[SHARED], dropped))
            uow.commit()


# (bucket start, bucket hours, group) -> column -> its summary, of the columns the log does not hold
Carried = dict[tuple[datetime, int, str], dict[str, Parts]]


def not_in_log(plan: SummaryPlan) -> frozenset[str]:
    """The columns an hour's rows in the log cannot summarise, as summaries name them: the
    features only summarised (every one, for a model keeping summaries only), and the
    reconstruction error, computed from every feature of a row, and the attributions (those to
    such features are not stored either). Read from the log, their rows
    would count as missing values: what the log gives of them is dropped, and what was summarised
    at ingestion carried instead (``carried_parts``), or nothing where nothing was (an hour on a
    reference uploaded after it)."""
    only = {f"features.{name}" for name in plan.schema.carried_features()}
    if only:
        only |= {d.name for d in plan.derived if d.name in (RECONSTRUCTION_COLUMN, ATTRIBUTIONS_COLUMN)}
    return frozenset(only)


def _log_made(parts: dict[str, Parts], dropped: frozenset[str]) -> dict[str, Parts]:
    return {col: p for col, p in parts.items() if col not in dropped} if dropped else parts


def carried_parts(
    conn: Connection, plan: SummaryPlan, ref: ReferenceView, series: Series, hour: datetime, deltas: list[Delta]
) -> Carried:
    """What an hour's summaries hold of the features only summarised (``personal_data:
    summarise_only``), which its rows in the log do not: for the hour and for each minute stored,
    what was stored (its folded deltas) and the deltas not yet folded (dropped as the hour is made
    from the log). Against the active reference only: a delta against another is discarded, as
    its rows are summarised again from the log, which cannot for these columns."""
    only = not_in_log(plan)
    if not only:
        return {}
    out: dict[tuple[datetime, int, str], ColumnAccumulator] = {}

    def accumulator(bucket: datetime, bucket_hours: int, seg: str) -> ColumnAccumulator:
        key = (bucket, bucket_hours, seg)
        if key not in out:
            out[key] = ColumnAccumulator(ref.columns[seg])
        return out[key]

    minutes = [hour + timedelta(minutes=m) for m in range(60)]
    for seg in plan.groups.keys:
        for bucket_hours, starts in ((1, [hour]), (summary_repo.MINUTE_BUCKET, minutes)):
            for start, col, n, stats, counts in summary_repo.load_buckets(conn, series, bucket_hours, starts, seg):
                if col in only:
                    accumulator(start, bucket_hours, seg).add(start, bucket_hours, col, n, stats, counts)
    for i, d in enumerate(deltas):
        if d.reference_id != series.reference_id or d.segment not in plan.groups.segments:
            continue
        for col, (stats, counts) in d.parts.items():
            if col in only:
                # a delta adds to its minute's summary and to its hour's
                accumulator(d.minute, summary_repo.MINUTE_BUCKET, d.segment).add_delta(i, col, d.n_rows, stats, counts)
                accumulator(hour, 1, d.segment).add_delta(i, col, d.n_rows, stats, counts)
    return {key: acc.parts() for key, acc in out.items()}
