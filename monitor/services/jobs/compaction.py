"""Compaction of the prediction log: the rows of hours that ended ``log_compact_after_hours``
ago move from ``predictions`` into blocks (``monitor.db.log_blocks``), a block per transaction.

Every read of the log reads both tables (``monitor.db.log_rows``), and each move is one
statement taking exactly the rows it writes into blocks, committed together: a reader sees a
row in one table or the other, never in both or neither. A row arriving late for a compacted
hour is stored one a row and compacted at the next pass. Nothing a row's summaries, keys or
labels hold changes: its time and id are kept.

A model version that keeps summaries only (``personal_data.rows: summaries_only``) has its hours
compacted once its label wait is over too, and only its sample moves into blocks: the other rows
are deleted in the same transaction, with their keys, labels and replaced labels. Its summaries
already hold them; from then on they are final (``monitor.services.jobs.rollup``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from monitor.db import log_blocks, log_repo, partitions, registry_repo
from monitor.domain.row_sample import sample_threshold
from monitor.domain.schema import schema_from_json
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import hour_floor

log = logging.getLogger(__name__)


@dataclass
class Compaction:
    rows: int = 0  # taken out of ``predictions``: into blocks, or dropped
    dropped: int = 0  # predictions of models keeping summaries only, deleted after their label wait
    blocks: int = 0
    hours: int = 0
    done: bool = True  # False when the time budget ended it with hours left
    by_model: dict[int, int] = field(default_factory=dict)
    # days whose rows it moved, or an earlier call moved, and when the last of them was moved:
    # their partitions' space is to be given back (``partitions.truncate_if_empty``)
    pending: dict[date, datetime] = field(default_factory=dict)
    emptied: list[date] = field(default_factory=list)  # days whose partitions it gave back


def compact_log(
    ctx: ServiceContext,
    now: datetime | None = None,
    budget_seconds: float = 30.0,
    models: Sequence[int] | None = None,
    pending: Mapping[date, datetime] | None = None,
) -> Compaction:
    """Compact every model's hours that are due (``models``: these models'), oldest first, for
    at most ``budget_seconds`` (what is left is done at the next call). ``pending``: the days an
    earlier call left to give back (its result's ``pending``)."""
    now = now or datetime.now(UTC)
    before = hour_floor(now - timedelta(hours=ctx.settings.log_compact_after_hours))
    deadline = time.monotonic() + budget_seconds
    result = Compaction(pending=dict(pending or {}))
    with ctx.uow() as uow:
        policies = _row_policies(registry_repo.list_versions(uow.conn))
        if models is None:
            models = registry_repo.list_model_ids(uow.conn)
    for model_id in models:
        samples, wait_hours = policies.get(model_id, ({}, 0))
        due = min(before, hour_floor(now - timedelta(hours=wait_hours)))
        while True:
            if time.monotonic() > deadline:
                result.done = False
                _give_back_days(ctx, before, result)
                return result
            with ctx.uow() as uow:
                oldest = log_blocks.oldest_uncompacted(uow.conn, model_id, due)
            if oldest is None:
                break
            _compact_hour(ctx, model_id, hour_floor(oldest), samples, result)
    _give_back_days(ctx, before, result)
    if result.rows:
        log.info("compacted %d rows of %d hours into %d blocks", result.rows, result.hours, result.blocks)
    return result


def _give_back_days(ctx: ServiceContext, before: datetime, result: Compaction) -> None:
    """The partitions of days that are over and whose rows all moved, truncated; a day whose
    partition is being read, or that a transaction older than its move may still read, stays
    pending for a later call."""
    for day, moved_at in sorted(result.pending.items()):
        if datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC) > before:
            continue  # hours of it are not due yet
        try:
            with ctx.uow() as uow:
                emptied = partitions.truncate_if_empty(uow.conn, day, moved_at)
                uow.commit()
        except Exception as exc:
            if not partitions.is_lock_timeout(exc):
                raise
            continue
        if emptied or not _day_exists(ctx, day):
            del result.pending[day]
            if emptied:
                result.emptied.append(day)


def _day_exists(ctx: ServiceContext, day: date) -> bool:
    with ctx.uow() as uow:
        return partitions.partition_name(day) in partitions.existing_partitions(uow.conn)


def _row_policies(versions: Sequence[registry_repo.VersionRow]) -> dict[int, tuple[dict[int, bytes | None], int]]:
    """By model, its versions that keep summaries only, with their samples' thresholds, and the
    longest of their label waits (in hours): the model's hours are compacted after it."""
    out: dict[int, tuple[dict[int, bytes | None], int]] = {}
    for v in versions:
        schema = schema_from_json(v.schema)
        if not schema.summaries_only:
            continue
        policies = schema.personal_data
        samples, wait = out.get(v.model_id, ({}, 0))
        samples[v.version_id] = sample_threshold(policies.sample_rate)
        out[v.model_id] = (samples, max(wait, policies.label_wait_hours))
    return out


def _compact_hour(
    ctx: ServiceContext, model_id: int, hour: datetime, samples: dict[int, bytes | None], result: Compaction
) -> None:
    result.hours += 1
    after = None
    while True:
        with ctx.uow() as uow:
            moved = log_blocks.compact_rows(uow.conn, model_id, hour, after=after, samples=samples)
            log_repo.forget_predictions(uow.conn, model_id, moved.dropped)
            uow.commit()
        after = moved.last
        result.rows += moved.rows
        result.dropped += len(moved.dropped)
        result.blocks += moved.blocks
        result.by_model[model_id] = result.by_model.get(model_id, 0) + moved.rows
        if moved.rows < log_blocks.BLOCK_ROWS:
            break
    with ctx.uow() as uow:  # the database's clock, after the commits: what its sessions' starts compare to
        result.pending[hour.date()] = log_blocks.database_time(uow.conn)
