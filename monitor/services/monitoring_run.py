"""One scheduled run for a model: summarise new hours of its log, then compute every configured
window that ends at an hour boundary since the last run — catching up after downtime, and
recomputing the window that ends at the next boundary, which fills as the hour goes on.

Everything it writes is keyed by its window, so a run that dies half-way and runs again, or a
second scheduler doing the same work, overwrites rather than duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.db import log_repo, reference_repo, watermark_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.monitoring import MonitoringConfig
from monitor.services import registry
from monitor.services.context import ServiceContext
from monitor.services.drift_job import compute_window, rollup
from monitor.services.windows import HOUR, hour_floor, hours

log = logging.getLogger(__name__)

# Hours summarised again on every run, for predictions that arrive late (by their timestamp).
LATE_HOURS = 2
# A scheduler that was down longer catches up this far back; `monitor backfill` goes further.
MAX_CATCH_UP = timedelta(days=7)


@dataclass
class RunReport:
    model: str
    version: str | None = None
    skipped: str | None = None
    rows_summarised: int = 0
    windows: dict[str, int] = field(default_factory=dict)  # window -> how many computed
    relabelled_hours: int = 0  # past hours whose labels changed, summarised again
    relabelled_windows: int = 0  # past windows whose quality was recomputed for them


def run_model(ctx: ServiceContext, model: str, now: datetime | None = None) -> RunReport:
    """The scheduled run of one model (its newest version)."""
    now = now or datetime.now(UTC)
    cfg = registry.get_monitoring(ctx, model)
    vrow = registry.resolve_version(ctx, model, None)
    report = RunReport(model, vrow.version)
    with ctx.uow() as uow:
        if reference_repo.active_reference_summaries(uow.conn, vrow.version_id) is None:
            report.skipped = "no reference dataset"
            return report
        rolled_until = watermark_repo.get(uow.conn, vrow.version_id, "rollup")
        # taken before the rollup: a label landing after this is marked again and done next run
        relabelled = log_repo.relabelled_hours(uow.conn, vrow.model_id)
        computed_until = {spec: watermark_repo.get(uow.conn, vrow.version_id, f"drift:{spec}") for spec in cfg.windows}
    end = hour_floor(now) + HOUR  # the boundary after now: the current hour is summarised as it fills
    earliest = end - MAX_CATCH_UP
    start = max(earliest, (rolled_until or end - HOUR) - LATE_HOURS * HOUR)
    report.rows_summarised = rollup(ctx, model, vrow.version, start, end)
    _set_watermark(ctx, vrow.version_id, "rollup", end)
    for spec, length in zip(cfg.windows, cfg.window_lengths(), strict=True):
        job = f"drift:{spec}"
        with ctx.uow() as uow:
            done = watermark_repo.get(uow.conn, vrow.version_id, job)
        # from the last boundary computed (it may have been partial) to the next one
        first = max(earliest + HOUR, done if done is not None else end)
        ends = [b + HOUR for b in hours(first - HOUR, end)]
        for window_end in ends:
            compute_window(ctx, model, vrow.version, window_end - length, window_end, cfg)
        _set_watermark(ctx, vrow.version_id, job, end)
        report.windows[spec] = len(ends)
    _recompute_relabelled(ctx, model, vrow, cfg, [h for h, _ in relabelled], start, computed_until, report)
    with ctx.uow() as uow:
        log_repo.clear_relabelled_hours(uow.conn, vrow.model_id, relabelled)
        uow.commit()
    return report


def _recompute_relabelled(
    ctx: ServiceContext,
    model: str,
    vrow: VersionRow,
    cfg: MonitoringConfig,
    changed_hours: list[datetime],
    rolled_from: datetime,
    computed_until: dict[str, datetime | None],
    report: RunReport,
) -> None:
    """Labels that landed since the last run for predictions older than this run's rollup:
    summarise their hours' quality again, and recompute the quality of every window computed
    before that holds one of them (windows computed in this run already saw them)."""
    changed = [h for h in changed_hours if h < rolled_from]
    if not changed:
        return
    rollup(ctx, model, vrow.version, changed[0], changed[-1] + HOUR, quality_only=True, only=changed)
    report.relabelled_hours = len(changed)
    for spec, length in zip(cfg.windows, cfg.window_lengths(), strict=True):
        until = computed_until.get(spec)
        if until is None:
            continue
        steps = int(length / HOUR)
        ends = sorted({h + HOUR * k for h in changed for k in range(1, steps + 1)})
        for window_end in (e for e in ends if e <= until):
            compute_window(ctx, model, vrow.version, window_end - length, window_end, cfg, quality_only=True)
            report.relabelled_windows += 1


def backfill(
    ctx: ServiceContext,
    model: str,
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> RunReport:
    """Summarise [start, end) and compute every configured window ending at each hour boundary in
    (start, end]. Safe to repeat; ``progress(done, total)`` is called as windows complete."""
    cfg: MonitoringConfig = registry.get_monitoring(ctx, model)
    vrow = registry.resolve_version(ctx, model, None)
    report = RunReport(model, vrow.version)
    start, end = hour_floor(start), hour_floor(end)
    report.rows_summarised = rollup(ctx, model, vrow.version, start, end)
    ends = [b + HOUR for b in hours(start, end)]
    total, done = len(ends) * len(cfg.windows), 0
    for spec, length in zip(cfg.windows, cfg.window_lengths(), strict=True):
        for window_end in ends:
            compute_window(ctx, model, vrow.version, window_end - length, window_end, cfg)
            done += 1
            if progress:
                progress(done, total)
        report.windows[spec] = len(ends)
    return report


def _set_watermark(ctx: ServiceContext, version_id: int, job: str, until: datetime) -> None:
    with ctx.uow() as uow:
        watermark_repo.set_(uow.conn, version_id, job, until)
        uow.commit()
