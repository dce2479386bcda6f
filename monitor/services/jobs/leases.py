"""The fleet shared by scheduler processes: each model is leased to one process at a time.

At every tick a process beats its heart, renews its leases and takes its fair share
(``monitor.domain.fleet.rebalance``): free leases and lapsed ones, which is how the models of a
process that died move to the others within a lease; a process above its share (another one
joined) gives the excess back. Each model's next due time lives with its lease, so whoever holds
it next runs it on the same schedule. A model is run under its lease *and* under an advisory
lock (``monitor.scheduler.SchedulerSession``): a lease decides who should run a model, the lock
makes sure no two processes ever run it at once, even one that stalled past its lease.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from monitor.db import ops_repo, schedule_repo
from monitor.db.schedule_repo import DueModel, ProcessBeat
from monitor.domain.fleet import rebalance
from monitor.services.infra.context import ServiceContext

# A dead process stays listed (as dead) this many of its leases, then is forgotten.
FORGET_AFTER_LEASES = 20


@dataclass
class SchedulerProcess:
    """This process as the others see it."""

    lease_seconds: float
    process_id: str = field(default_factory=lambda: f"{socket.gethostname()[:64]}/{os.getpid()}/{secrets.token_hex(3)}")
    host: str = field(default_factory=lambda: socket.gethostname()[:64])
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    leader: bool = False
    runs: int = 0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    def beat(self, held: int, lag_seconds: float) -> ProcessBeat:
        return ProcessBeat(
            self.process_id,
            self.host,
            self.pid,
            self.started_at,
            self.lease_seconds,
            self.leader,
            held,
            lag_seconds,
            self.runs,
        )


@dataclass(frozen=True)
class Holding:
    """The models a process holds after a tick's renewal, and when it renewed them."""

    held: frozenset[int]
    models: int
    live_processes: int
    renewed_at: datetime
    lag_seconds: float = 0.0


def hold_share(ctx: ServiceContext, me: SchedulerProcess, now: datetime) -> Holding:
    """One transaction: renew this process's leases, take or give back to reach its fair share,
    and report itself (models held, lag: how long its most overdue model has been due)."""
    with ctx.uow() as uow:
        conn = uow.conn
        models = schedule_repo.sync_models(conn, now)
        # this process counts itself: its own heartbeat may not be written yet
        others = schedule_repo.live_processes(conn, now, besides=me.process_id)
        until = now + me.lease
        held = set(schedule_repo.renew(conn, me.process_id, until))
        plan = rebalance(len(held), models, others + 1)
        if plan.release:
            held -= set(schedule_repo.release(conn, me.process_id, plan.release))
        held |= set(schedule_repo.claim(conn, me.process_id, now, until, plan.claim))
        oldest = schedule_repo.oldest_due(conn, me.process_id)
        lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        schedule_repo.heartbeat(conn, me.beat(len(held), lag), now)
        schedule_repo.forget_dead_processes(conn, now, FORGET_AFTER_LEASES)
        uow.commit()
    return Holding(frozenset(held), models, others + 1, now, lag)


def renew(ctx: ServiceContext, me: SchedulerProcess, holding: Holding, now: datetime) -> Holding:
    """Renew the leases in the middle of a long tick (no rebalancing): a process busy with its
    share must not lose it for being busy."""
    with ctx.uow() as uow:
        held = frozenset(schedule_repo.renew(uow.conn, me.process_id, now + me.lease))
        schedule_repo.heartbeat(uow.conn, me.beat(len(held), holding.lag_seconds), now)
        uow.commit()
    return Holding(held, holding.models, holding.live_processes, now, holding.lag_seconds)


def due_models(ctx: ServiceContext, me: SchedulerProcess, by: datetime) -> list[DueModel]:
    with ctx.reads() as uow:
        return schedule_repo.due(uow.conn, me.process_id, by)


def begin_run(
    ctx: ServiceContext, me: SchedulerProcess, model_id: int, now: datetime, by: datetime, next_due: datetime
) -> bool:
    """Move the model's next due time on as its run starts (and say a run is in progress); False
    if this process no longer holds it or it is no longer due (another process ran it since the
    tick looked)."""
    with ctx.uow() as uow:
        started = schedule_repo.start_run(uow.conn, me.process_id, model_id, now, by, next_due)
        uow.commit()
    return started


def end_run(ctx: ServiceContext, me: SchedulerProcess, due: DueModel, at: datetime, seconds: float) -> None:
    """The run's bookkeeping in one transaction: the lease's last run and the job's success."""
    me.runs += 1
    with ctx.uow() as uow:
        schedule_repo.finish_run(uow.conn, me.process_id, due.model_id, at, seconds)
        schedule_repo.count_run(uow.conn, me.process_id)
        ops_repo.record_job_success(uow.conn, due.name, "metrics", at, seconds)
        uow.commit()


def run_failed(ctx: ServiceContext, due: DueModel, at: datetime) -> None:
    """Due again at the next tick, not a schedule later."""
    with ctx.uow() as uow:
        schedule_repo.due_again(uow.conn, due.model_id, at)
        uow.commit()


def let_go(ctx: ServiceContext, me: SchedulerProcess) -> None:
    """A process stopping cleanly gives its models back at once and leaves the list: the others
    take them at their next tick instead of a lease later."""
    with ctx.uow() as uow:
        schedule_repo.release(uow.conn, me.process_id)
        schedule_repo.forget_process(uow.conn, me.process_id)
        uow.commit()


@dataclass(frozen=True)
class FleetStatus:
    """The scheduler processes (live or dead) and every model's lease, as of ``at``."""

    at: datetime
    processes: list[dict[str, Any]]
    leases: list[dict[str, Any]]

    def live(self, process: dict[str, Any]) -> bool:
        return bool(process["heartbeat_at"] + timedelta(seconds=process["lease_seconds"]) > self.at)

    @classmethod
    def read(cls, conn: Connection, at: datetime) -> FleetStatus:
        """In the caller's unit of work (``/metrics`` reads it beside the rest of a scrape)."""
        return cls(at, schedule_repo.processes(conn), schedule_repo.leases(conn))


def fleet_status(ctx: ServiceContext, now: datetime | None = None) -> FleetStatus:
    with ctx.reads() as uow:
        return FleetStatus.read(uow.conn, now or datetime.now(UTC))
