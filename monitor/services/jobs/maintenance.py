"""Keeping the database in shape: partitions ahead, retention of the log, of minute summaries and
of the history, labels that missed their prediction, exports whose process died mid-stream."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from monitor.db import (
    audit_repo,
    history_repo,
    kserve_repo,
    log_repo,
    partitions,
    record_repo,
    report_repo,
    session_repo,
    summary_repo,
    table_stats,
)
from monitor.domain.audit import Actor
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import MINUTE_HORIZON

log = logging.getLogger(__name__)

KSERVE_ORPHAN_AGE = timedelta(hours=1)


@contextmanager
def _deferred_on_lock_timeout(deferred: list[str], step: str) -> Iterator[None]:
    """The step's DDL gave up waiting for the log's lock: ``step`` noted in ``deferred``, for a
    later run; any other error is raised."""
    try:
        yield
    except Exception as exc:
        if not partitions.is_lock_timeout(exc):
            raise
        deferred.append(step)


def _partition_upkeep(
    ctx: ServiceContext, days: list[date], cutoff: datetime
) -> tuple[list[str], list[str], dict[str, int], list[str]]:
    """The log's partitions made for ``days`` and dropped before ``cutoff`` (the rows of other
    tables of the dropped days deleted with them): created, dropped, deleted per table, and which
    of the two steps was deferred. Partition DDL gives up after a bounded wait for the log's lock
    (``partitions.DDL_LOCK_TIMEOUT``) rather than stall ingestion behind a long reader; partitions
    are made days ahead and expired ones can wait, so a deferred step is done by a later run."""
    deferred: list[str] = []
    created: list[str] = []
    dropped: list[str] = []
    deleted: dict[str, int] = {}
    with _deferred_on_lock_timeout(deferred, "create"), ctx.uow() as uow:
        created = partitions.create_partitions(uow.conn, days)
        uow.commit()
        ctx.partitions.add(days)
    with _deferred_on_lock_timeout(deferred, "drop"), ctx.uow() as uow:
        dropped = partitions.drop_expired_partitions(uow.conn, cutoff)
        # The other tables follow when a day leaves the log: once a day, so the sequential scan of
        # prediction_keys (deliberately without a ts index, which would tax every insert) is rare.
        deleted = log_repo.delete_expired(uow.conn, cutoff) if dropped else {}
        uow.commit()
    if deferred:
        log.warning("maintenance: partitions to %s deferred: a long read holds the log", " and ".join(deferred))
    return created, dropped, deleted, deferred


def run_maintenance(ctx: ServiceContext, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    s = ctx.settings
    cutoff = now - timedelta(days=s.retention_days)
    today = now.date()
    # Yesterday (late arrivals around midnight) to some days ahead; older days are created on demand
    # by ingestion when history is back-filled.
    days = [today + timedelta(days=d) for d in range(-1, s.partitions_ahead_days + 1)]
    created, dropped, deleted, deferred = _partition_upkeep(ctx, days, cutoff)
    with ctx.uow() as uow:
        attached = log_repo.attach_all_waiting_labels(uow.conn)
        # A KServe half whose pair never came (a logger in request-only mode, a lost event).
        kserve_orphans = kserve_repo.delete_older(uow.conn, now - KSERVE_ORPHAN_AGE)
        uow.commit()
    with ctx.uow() as uow:
        # Minutes past the horizon: no sliding window reads them, their hours hold them.
        minutes = summary_repo.delete_minutes_before(uow.conn, now - MINUTE_HORIZON)
        history = history_repo.delete_older(uow.conn, now - timedelta(days=s.history_retention_days))
        # Reports are samples rebuilt on demand, megabytes each: kept a shorter time of their own.
        reports = report_repo.delete_older(uow.conn, now - timedelta(days=s.report_retention_days))
        if reports:
            history["reports"] = reports
        sessions = session_repo.delete_expired(uow.conn, now)
        if sessions:
            history["dashboard_sessions"] = sessions
        uow.commit()
    ctx.partitions.forget_before(partitions.day_of(cutoff))
    interrupted = close_interrupted(ctx)
    report = {
        "partitions_created": len(created),
        "partitions_dropped": dropped,
        "deleted": deleted,
        "labels_attached": attached,
        "kserve_orphans_deleted": kserve_orphans,
        "history_deleted": history,
        "minute_summaries_deleted": minutes,
        "exports_interrupted": interrupted,
        "partitions_deferred": deferred,
    }
    if created or dropped or attached or kserve_orphans or history or interrupted:
        log.info("maintenance: %s", report)
    return report


def analyse_new_tables(ctx: ServiceContext, now: datetime | None = None) -> list[str]:
    """The log's tables that began to fill with no planner statistics, analysed
    (``monitor.db.table_stats``): a new day's partition from its first rows on, not when
    autovacuum gets to it."""
    with ctx.uow() as uow:
        tables = table_stats.unanalysed(uow.conn, (now or datetime.now(UTC)).date())
        table_stats.analyse(uow.conn, tables)
        uow.commit()  # statistics are kept only with the transaction that gathered them
    if tables:
        log.info("analysed %s: they held rows and had no statistics", ", ".join(tables))
    return tables


INTERRUPTED = "the process serving it stopped (a crash, a kill, a lost host) before it ended"


def close_interrupted(ctx: ServiceContext) -> int:
    """Exports whose process died mid-stream wrote their start and never their end: each gets an
    ``export.interrupted`` entry, naming its start, once it is known not to be running. A running
    export holds its key's lock on its own connection for as long as it streams, and Postgres
    releases it when that connection dies: with the lock free, every open start of the key is
    over; held, all but the newest are (a key exports one at a time). The starts are read again
    after the lock is taken, so an export that ended meanwhile is not told interrupted."""
    with ctx.uow() as uow:
        keys = sorted({e["key_id"] or 0 for e in audit_repo.open_exports(uow.conn)})
    closed = 0
    for key in keys:
        with ctx.uow() as uow:
            free = record_repo.try_lock_export(uow.conn, key)
            starts = audit_repo.open_exports(uow.conn, key)
            for s in starts if free else starts[:-1]:
                whose = Actor("system", key_id=s["key_id"], key_name=s["key_name"], key_prefix=s["key_prefix"])
                details = {**s["details"], "started_id": s["id"], "reason": INTERRUPTED}
                audit_repo.append(uow.conn, whose, "export.interrupted", s["target"], model=s["model"], details=details)
                closed += 1
            uow.commit()
    if closed:
        log.warning("%d export(s) were interrupted by the end of their process; written to the audit log", closed)
    return closed
