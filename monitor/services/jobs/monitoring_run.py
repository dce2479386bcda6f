"""One scheduled run for a model: fold what ingestion summarised (and summarise from the log
what it could not), then compute every configured window that ends at an hour boundary since the
last run — catching up after downtime — and the window that ends now: at the next minute for
windows up to a day long (``monitor.services.jobs.windows.run_window_ends``), which slide by the minute,
at the next hour boundary for longer ones. The window ending now is computed again by the next
run; a sliding one is then replaced.

Everything it writes is keyed by its window, so a run that dies half-way and runs again, or a
second scheduler doing the same work, overwrites rather than duplicates.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.db import log_repo, metrics_repo, reference_repo, watermark_repo
from monitor.db.log_repo import StaleHour
from monitor.db.registry_repo import VersionRow
from monitor.domain.monitoring import MonitoringConfig
from monitor.metrics.points import MetricPoint
from monitor.metrics.window_metrics import Window
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import error_stream_job, job_log, summary_deltas
from monitor.services.jobs.metric_store import record_points
from monitor.services.jobs.rollup import rollup, shared_reference
from monitor.services.jobs.summary_plan import ReferenceView, load_reference, reference_view
from monitor.services.jobs.window_job import compute_version_window
from monitor.services.jobs.windows import (
    HOUR,
    hour_floor,
    hours,
    live_end,
    minute_horizon,
    run_window_ends,
)

log = logging.getLogger(__name__)

# Hours summarised again by the first run after an hour turns: the hour that just closed (its
# last rows may have committed after the run before read it) and, for what an ingestion
# transaction still open then commits later, the one before it. Later predictions for a past hour
# mark it stale (monitor.services.ingest.ingestion.LATE_MARGIN), which is how it is summarised again
# after that.
LATE_HOURS = 2
# A scheduler that was down longer catches up this far back; `monitor backfill` goes further.
MAX_CATCH_UP = timedelta(days=7)
# Stale hours redone per run, newest first; the rest stay marked for the next runs. A client
# importing months of history should not hold every other model's run for hours.
MAX_STALE_HOURS_PER_RUN = 48
# The metric point that says how many hours and windows a run skipped (alertable like any other).
JOB_FAILURES = "job_failures"


@dataclass
class RunReport:
    model: str
    version: str | None = None
    skipped: str | None = None
    rows_summarised: int = 0
    windows: dict[str, int] = field(default_factory=dict)  # window -> how many computed
    stale_hours: int = 0  # hours marked because labels or predictions landed after they were summarised
    resummarised_hours: int = 0  # of those, the ones outside this run's rollup, summarised again
    recomputed_windows: int = 0  # windows computed before this run that hold a stale hour, computed again
    failures: list[str] = field(default_factory=list)  # hours and windows skipped: what, and why
    versions: list[str] = field(default_factory=list)  # every version run (the newest and those deployed live)


def run_model(
    ctx: ServiceContext, model: str, now: datetime | None = None, cfg: MonitoringConfig | None = None
) -> RunReport:
    """The scheduled run of one model: its newest version, and every other version deployed live
    beside it (the champion first, then the challengers: a challenger's windows compare with the
    champion's). Returns the newest version's report, with every version's failures. ``cfg``: the
    model's settings where the caller has them (the scheduler reads them with its due work)."""
    now = now or datetime.now(UTC)
    cfg = cfg or registry.get_monitoring(ctx, model)
    versions = registry.live_versions(ctx, model)  # the champion first: its challengers read its points
    with ctx.reads() as uow:
        # taken before the rollups: data landing after this is marked again and done next run
        stale = log_repo.stale_hours(uow.conn, versions[0].model_id, MAX_STALE_HOURS_PER_RUN)
    # With challengers live, every version's window ending at the next hour boundary is computed
    # too: their comparison is made over those windows (monitor.services.jobs.window_job.compute_window)
    hourly = len(versions) > 1
    reports = [_run_version(ctx, model, vrow, cfg, stale, now, hourly) for vrow in versions]
    if stale and not all(r.skipped for r in reports):
        with ctx.uow() as uow:
            log_repo.clear_stale_hours(uow.conn, versions[0].model_id, stale)
            uow.commit()
    newest = max(versions, key=lambda v: v.version_id)
    report = reports[versions.index(newest)]
    report.failures = [f for r in reports for f in r.failures]
    report.versions = [r.version or "" for r in reports]
    return report


def _run_version(
    ctx: ServiceContext,
    model: str,
    vrow: VersionRow,
    cfg: MonitoringConfig,
    stale: list[StaleHour],
    now: datetime,
    hourly: bool,
) -> RunReport:
    """Summarise one version's new hours, compute its windows, recompute what stale hours hold."""
    report = RunReport(model, vrow.version)
    with ctx.reads() as uow:
        ref_id = reference_repo.measured_reference_id(uow.conn, vrow.version_id)  # a challenger's: maybe its champion's
        if ref_id is None:
            report.skipped = "no reference dataset"
            return report
        marks = watermark_repo.of_version(uow.conn, vrow.version_id)
    rolled_until, from_log_until = marks.get("rollup"), marks.get(f"rollup:{ref_id}")
    computed_until = {spec: marks.get(f"drift:{spec}") for spec in cfg.windows}
    end = hour_floor(now) + HOUR  # the boundary after now: the current hour is summarised as it fills
    start = rollup_start(rolled_until, end)
    # Every prediction stored since the last run was summarised at ingestion: its deltas are
    # folded into their hours, wherever those are (monitor.services.jobs.summary_deltas). The column
    # summaries are made from the log only for what has no deltas: the hours before this
    # reference's first run, and a challenger measured on its champion's reference too.
    ref = reference_view(ctx, ref_id)
    folded = summary_deltas.fold(ctx, vrow, ref, now, minute_horizon(cfg.window_lengths()))
    measured_twice = shared_reference(ctx, vrow, ref) is not None  # no deltas on the champion's reference
    from_log = from_log_until is None or measured_twice
    if from_log:
        start = rollup_start(rolled_until if from_log_until is not None else None, end)
    # An hour or a window that fails on its data (job_log.DATA_ERRORS) is skipped and reported
    # (report.failures, the job's failure count, a job_failures point); the others are computed.
    report.rows_summarised = folded.rows
    if from_log:
        report.rows_summarised = rollup(ctx, model, vrow.version, start, end, failures=report.failures)
    closing = ClosingWrites(vrow, {"rollup": end})
    if from_log_until is None:
        closing.marks[f"rollup:{ref_id}"] = end
    # Nothing arrived since the last run (no delta folded, no hour summarised or marked stale):
    # a window whose end has not moved since then holds what it held, and is not computed again.
    unchanged = not (from_log or stale or folded.rows or folded.labelled or folded.hours or folded.foreign_hours)
    attempts = len(hours(start, end))
    if not unchanged:
        _resummarise_stale(ctx, model, vrow, stale, start if from_log else end, measured_twice, report)
        # the error stream changed from the first hour summarised or folded: the detector reads on from there
        changed = [*(s.hour for s in stale), *folded.hours, *([start] if from_log else [])]
        _advance_error_stream(ctx, vrow, ref, cfg, min(changed, default=end), end, report)
    run = VersionRun(vrow, ref, cfg, now, hourly, unchanged)
    attempts += _compute_windows(ctx, model, run, computed_until, closing, report)
    if stale:
        _recompute_stale_windows(ctx, model, run, stale, computed_until, report)
    closing.write(ctx)
    if not unchanged or report.failures or any(report.windows.values()):
        _report_failures(ctx, model, vrow, end, attempts, report.failures)
    return report


@dataclass(frozen=True)
class VersionRun:
    """What one version's run computes its windows with: the version, its reference and settings
    (read once for all its windows), the run's time, whether a challenger's hourly windows are
    computed too, and whether nothing arrived since the last run."""

    vrow: VersionRow
    ref: ReferenceView
    cfg: MonitoringConfig
    now: datetime
    hourly: bool
    unchanged: bool


@dataclass
class ClosingWrites:
    """The run's last writes, in one transaction: its watermarks, and the sliding windows its new
    ones replace. A run that dies before them is done again (every write before is keyed)."""

    vrow: VersionRow
    marks: dict[str, datetime] = field(default_factory=dict)
    replaced: list[tuple[timedelta, datetime, datetime]] = field(default_factory=list)  # length, since, until

    def write(self, ctx: ServiceContext) -> None:
        with ctx.uow() as uow:
            for length, since, until in self.replaced:
                metrics_repo.delete_sliding_points(
                    uow.conn, self.vrow.model_id, self.vrow.version_id, length, since, until
                )
            watermark_repo.set_many(uow.conn, self.vrow.version_id, self.marks)
            uow.commit()


def _compute_windows(
    ctx: ServiceContext,
    model: str,
    run: VersionRun,
    computed_until: dict[str, datetime | None],
    closing: ClosingWrites,
    report: RunReport,
) -> int:
    """Each configured window's ends this run computes (``run_window_ends``); returns how many.
    A run with nothing new skips a window that ends where the last run's did."""
    earliest = hour_floor(run.now) + HOUR - MAX_CATCH_UP
    attempts = 0
    for spec, length in zip(run.cfg.windows, run.cfg.window_lengths(), strict=True):
        done = computed_until[spec]
        ends = run_window_ends(length, done, run.now, earliest, hourly=run.hourly)
        live = live_end(length, run.now)
        if run.unchanged and ends == [live] == [done]:
            report.windows[spec] = 0
            continue
        for window_end in ends:
            _window(ctx, model, run, window_end - length, window_end, report)
        # the sliding window's point replaces the one the run before left, also when the new one
        # ends at an hour boundary (which stays, as history): else the window that ended a minute
        # before the hour turned stood beside it for good
        closing.replaced.append((length, done or live - HOUR, live))
        closing.marks[f"drift:{spec}"] = live
        report.windows[spec] = len(ends)
        attempts += len(ends)
    return attempts


def rollup_start(rolled_until: datetime | None, end: datetime) -> datetime:
    """The first hour a run ending at ``end`` summarises. A run in the same hour as the one before
    summarises that hour only, as it fills: summarising the closed hours again on every run made
    each run cost up to three hours of the log, whatever had changed."""
    if rolled_until is not None and rolled_until >= end:
        return end - HOUR
    return max(end - MAX_CATCH_UP, (rolled_until or end - HOUR) - LATE_HOURS * HOUR)


def _window(
    ctx: ServiceContext,
    model: str,
    run: VersionRun,
    start: datetime,
    end: datetime,
    report: RunReport,
    quality_only: bool = False,
) -> None:
    what = f"window [{start.isoformat()}, {end.isoformat()})"
    with job_log.isolated(what, report.failures):
        compute_version_window(ctx, run.vrow, Window(start, end), run.cfg, ref=run.ref, quality_only=quality_only)


def _report_failures(
    ctx: ServiceContext, model: str, vrow: VersionRow, end: datetime, attempts: int, failures: list[str]
) -> None:
    """What a run skipped, where on-call sees it: the job's failure count and last error (in
    /metrics/database and on the model), and a ``job_failures`` point over the run's hour that rules can
    alert on; a run without failures after one with them writes 0, so such an alert resolves."""
    if failures:
        job_log.failed(ctx, model, "metrics", f"{len(failures)} skipped; last: {failures[-1]}", count=len(failures))
    with ctx.reads() as uow:
        previous = uow.alerts.latest_points(vrow.model_id, vrow.version_id, [JOB_FAILURES], end - MAX_CATCH_UP)
    if not failures and not any(p["value"] for p in previous):
        return
    point = MetricPoint(
        JOB_FAILURES,
        end - HOUR,
        end,
        float(len(failures)),
        attempts,
        {"job": "metrics"},
        details={"skipped": failures[:20]},
    )
    record_points(ctx, model, vrow.version, [point])


def _resummarise_stale(
    ctx: ServiceContext,
    model: str,
    vrow: VersionRow,
    stale: list[log_repo.StaleHour],
    done_from: datetime,
    measured_twice: bool,
    report: RunReport,
) -> None:
    """Hours whose summaries must be made from the log (``monitor.services.jobs.summary_deltas``):
    every summary of an hour whose deltas were against another reference or could not be made,
    or, for a challenger also summarised on its champion's reference (which has no deltas), of an
    hour that late predictions changed; the quality of an hour whose labels were replaced or
    joined to predictions that came after them. Hours from ``done_from`` on were summarised from
    the log by this run already. New predictions and labels were folded from their deltas: their
    marks only have the windows computed again. Done before the run's windows, so that they, and
    the error-stream detector, see the new data."""
    report.stale_hours = len(stale)
    whole = [s.hour for s in stale if s.hour < done_from and (s.from_log or (measured_twice and s.log_changed))]
    quality = [s.hour for s in stale if s.hour < done_from and s.quality_from_log and s.hour not in whole]
    for redo, quality_only in ((whole, False), (quality, True)):
        if redo:
            rollup(
                ctx,
                model,
                vrow.version,
                redo[0],
                redo[-1] + HOUR,
                quality_only=quality_only,
                only=redo,
                failures=report.failures,
            )
            report.resummarised_hours += len(redo)


def _advance_error_stream(
    ctx: ServiceContext,
    vrow: VersionRow,
    ref: ReferenceView,
    cfg: MonitoringConfig,
    changed_from: datetime,
    end: datetime,
    report: RunReport,
) -> None:
    with job_log.isolated(f"error stream from {changed_from.isoformat()}", report.failures):
        error_stream_job.advance(ctx, vrow, cfg, ref.reference_id, list(ref.columns), changed_from, end)


def _recompute_stale_windows(
    ctx: ServiceContext,
    model: str,
    run: VersionRun,
    stale: list[log_repo.StaleHour],
    computed_until: dict[str, datetime | None],
    report: RunReport,
) -> None:
    """Recompute every window computed before this run that holds a stale hour (not windows
    never computed, such as those before a model's first run). Windows this run computes already
    saw the data, since the marks were taken before the rollup.

    The windows are redone whether or not the hour was in this run's rollup: the window that
    ended at the last boundary is final once a run after that boundary has computed it, so a
    label or prediction for that hour landing a minute later must still reach it."""
    vrow = run.vrow
    log_changed_hours = {s.hour for s in stale if s.log_changed}
    for spec, length in zip(run.cfg.windows, run.cfg.window_lengths(), strict=True):
        until = computed_until.get(spec)
        if until is None:
            continue
        steps = math.ceil(length / HOUR)  # the hour boundaries whose window holds a part of the hour
        candidates = sorted({e for s in stale for k in range(1, steps + 1) if (e := s.hour + HOUR * k) < until})
        with ctx.reads() as uow:  # only windows that were computed: no lone window before the first run
            computed = metrics_repo.computed_window_ends(
                uow.conn, vrow.model_id, vrow.version_id, int(length.total_seconds()), candidates
            )
        for window_end in (e for e in candidates if e in computed):
            whole = any(window_end - length < h + HOUR and h < window_end for h in log_changed_hours)
            _window(ctx, model, run, window_end - length, window_end, report, quality_only=not whole)
            report.recomputed_windows += 1


def backfill(
    ctx: ServiceContext,
    model: str,
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] | None = None,
    step: timedelta | None = HOUR,
    version: str | None = None,
) -> RunReport:
    """Summarise [start, end) and compute every configured window ending every ``step`` in
    (start, end], the last at ``end`` (``step`` None: each window's own length, so that
    consecutive windows tile the period: ten 30-day windows over ten months, not 7,200 hourly
    ones), of ``version`` (default: the champion, or the newest where none is declared). Safe to
    repeat; ``progress(done, total)`` is called as windows complete. A challenger's windows
    compare it with the champion's as stored: backfill the champion first."""
    cfg: MonitoringConfig = registry.get_monitoring(ctx, model)
    vrow = registry.resolve_version(ctx, model, version)
    report = RunReport(model, vrow.version)
    start, end = hour_floor(start), hour_floor(end)
    report.rows_summarised = rollup(ctx, model, vrow.version, start, end, failures=report.failures)
    run = VersionRun(vrow, load_reference(ctx, vrow), cfg, end, hourly=False, unchanged=False)
    _advance_error_stream(ctx, vrow, run.ref, cfg, start, end, report)
    plan = [
        (spec, length, window_ends(start, end, step or length))
        for spec, length in zip(cfg.windows, cfg.window_lengths(), strict=True)
    ]
    total, done = sum(len(ends) for _, _, ends in plan), 0
    for spec, length, ends in plan:
        for window_end in ends:
            _window(ctx, model, run, window_end - length, window_end, report)
            done += 1
            if progress:
                progress(done, total)
        report.windows[spec] = len(ends)
    return report


def window_ends(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Hour boundaries in (start, end], every ``step`` back from ``end`` (at least an hour)."""
    step = max(step, HOUR)
    ends, t = [], end
    while t > start:
        ends.append(t)
        t -= step
    return ends[::-1]
