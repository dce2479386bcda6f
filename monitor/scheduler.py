"""The scheduler process: runs its share of the models' metrics on their schedules (APScheduler),
evaluates each model's alert rules after its run, and sends notification groups that come due.

Any number of scheduler processes share the fleet (``monitor.services.jobs.leases``): each
holds a lease on its fair share of the models, renewed at every tick; a process that dies stops
renewing, and the others take its models over within a lease. A model runs under its lease and
under an advisory lock on the process's own session (``SchedulerSession``), so two processes never
run it at once, even one that stalled past its lease. The fleet-wide chores (partitions and
retention, statistics, the log's compaction, the rules file, flushing notification groups) have one
owner, the leader: whoever holds a session-level advisory lock; they are cheap, and several
processes compacting one hour or flushing one group would only wait on each other's row locks.
Deliveries are shared by every process, a message claimed by one deliverer at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Connection, Engine, text

from monitor.db.schedule_repo import DueModel
from monitor.domain.monitoring import MonitoringConfig
from monitor.services.alerting.alert_config import RulesFile
from monitor.services.alerting.delivery import DeliveryWorker
from monitor.services.alerting.evaluation import evaluate_model, flush_groups
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import job_log, leases
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.leases import Holding, SchedulerProcess
from monitor.services.jobs.maintenance import analyse_new_tables, run_maintenance
from monitor.services.jobs.monitoring_run import run_model

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x7363686564  # "sched"
# Advisory locks (RUN_LOCK_CLASS, model id) are held while a model runs: a key space of its own,
# apart from the one-key locks (the leader's, migrations')
RUN_LOCK_CLASS = 0x72756E  # "run"
MAINTENANCE_INTERVAL_SECONDS = 3600
STATISTICS_INTERVAL_SECONDS = 60  # how often the log's tables are looked at for missing statistics
# How often the log's due hours are compacted, and for how long at most each time (a backlog,
# after an upgrade or an outage, is worked off over several ticks without holding up the runs).
COMPACTION_INTERVAL_SECONDS = 300
COMPACTION_BUDGET_SECONDS = 30.0
FOREVER = datetime.max.replace(tzinfo=UTC)


def next_due_time(due_at: datetime, start: datetime, schedule: timedelta) -> datetime:
    """When a model whose run was due at ``due_at`` and starts at ``start`` is due next: on the
    schedule's beat, a schedule after it was due. Counted from the run's start instead, every
    moment a run waited for its turn pushed all later runs back: a process keeping up on average
    still did four runs where five were due. A run a whole schedule late or more starts the beat
    again from its start rather than running again at once to catch up."""
    beat = due_at + schedule
    return beat if beat > start else start + schedule


class SchedulerSession:
    """The process's own database session, for its advisory locks: the leader lock, and one per
    model while it runs. A session's locks end with it, so a process that dies (kill -9, a lost
    connection) holds none, and the work it held is free at once for whoever holds the lease."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self.leading = False

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _try(self, sql: str, params: dict[str, int]) -> bool:
        try:
            conn = self._connection()
            got = bool(conn.execute(text(sql), params).scalar())
            conn.commit()
            return got
        except Exception:
            log.warning("lost the scheduler's session: its locks are gone; a new one is opened")
            self.close()
            return False

    def try_lead(self) -> bool:
        """Hold (or try to take) the leader lock; False while another process holds it. Also
        checks the session is alive, at every tick: a lost session lost the lead with it."""
        if self.leading and self._try("SELECT 1", {}):
            return True
        self.leading = self._try("SELECT pg_try_advisory_lock(:k)", {"k": LEADER_LOCK_KEY})
        if self.leading:
            log.info("this scheduler is the leader")
        return self.leading

    def try_lock_model(self, model_id: int) -> bool:
        """False while another process runs the model."""
        return self._try("SELECT pg_try_advisory_lock(:c, :m)", {"c": RUN_LOCK_CLASS, "m": model_id})

    def unlock_model(self, model_id: int) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:c, :m)"), {"c": RUN_LOCK_CLASS, "m": model_id})
            self._conn.commit()
        except Exception:  # the session is gone, and its locks with it
            log.warning("could not release the run lock of model %d; closing the session", model_id)
            self.close()

    def close(self, *, hand_over: bool = False) -> None:
        conn, self._conn, leading, self.leading = self._conn, None, self.leading, False
        if conn is None:
            return
        if hand_over and leading:
            # at once: a closed session's locks are released only when its backend exits
            try:
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
                conn.commit()
            except Exception:
                log.warning("could not release the scheduler's locks cleanly; closing its session")
        conn.invalidate()


class MetricScheduler:
    def __init__(
        self,
        ctx: ServiceContext,
        tick_seconds: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease_seconds: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.tick_seconds = tick_seconds
        self._clock = clock
        self.process = SchedulerProcess(lease_seconds or ctx.settings.scheduler_lease_seconds)
        self._session = SchedulerSession(ctx.engine)
        self._holding: Holding | None = None
        self._last_maintenance = float("-inf")
        self._last_statistics = float("-inf")
        self._last_compaction = float("-inf")
        self._compaction_days: dict[date, datetime] = {}  # days whose partitions are to be given back
        self._guard = threading.Lock()
        self._scheduler: BackgroundScheduler | BlockingScheduler | None = None
        path = ctx.settings.rules_file
        self._rules_file = RulesFile(path) if path is not None else None

    def is_leader(self) -> bool:
        return self._session.try_lead()

    @property
    def held(self) -> frozenset[int]:
        """The models this process held at its last renewal."""
        return self._holding.held if self._holding is not None else frozenset()

    # -- work ---------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, force: bool = False) -> list[str]:
        """Renew this process's share of the models, run those that are due (all it holds with
        ``force``), and, as the leader, the fleet-wide chores; returns the models run."""
        with self._guard:
            self.process.leader = self._session.try_lead()  # reported with the heartbeat
            self._holding = leases.hold_share(self.ctx, self.process, self._clock())
            if self.process.leader:
                self._maintain()
                self._analyse()
                self._compact()
                self._sync_rules_file()
            ran = [d.name for d in self._due(force) if self._run(d, now, force)]
            if self.process.leader:
                try:
                    flush_groups(self.ctx)  # groups whose wait ended since the last evaluation
                except Exception:
                    log.exception("notification grouping failed; retrying next tick")
            return ran

    def _due(self, force: bool) -> list[DueModel]:
        return leases.due_models(self.ctx, self.process, self._due_by(force))

    def _due_by(self, force: bool) -> datetime:
        """Models due by this time run now (any with ``force``): a tick may fire a little early,
        and a tenth of a tick (at most a second) still counts as on time."""
        return FOREVER if force else self._clock() + timedelta(seconds=min(1.0, self.tick_seconds / 10))

    def _run(self, due: DueModel, now: datetime | None, force: bool) -> bool:
        """One model's run and rule evaluation, if this process still holds it and no other
        process is running it; True if it ran."""
        holding = self._holding
        assert holding is not None
        if (self._clock() - holding.renewed_at).total_seconds() > self.process.lease_seconds / 3:
            holding = self._holding = leases.renew(self.ctx, self.process, holding, self._clock())
        if due.model_id not in holding.held or not self._session.try_lock_model(due.model_id):
            return False
        try:
            return self._run_locked(due, now, force)
        finally:
            self._session.unlock_model(due.model_id)

    def _run_locked(self, due: DueModel, now: datetime | None, force: bool) -> bool:
        name = due.name
        try:
            cfg = MonitoringConfig.model_validate(due.monitoring)
            start = self._clock()
            next_due = next_due_time(due.due_at, start, timedelta(seconds=cfg.schedule_seconds))
            if not leases.begin_run(self.ctx, self.process, due.model_id, start, self._due_by(force), next_due):
                return False
            started = time.perf_counter()
            report = run_model(self.ctx, name, now or datetime.now(UTC), cfg)
            took = time.perf_counter() - started
            leases.end_run(self.ctx, self.process, due, self._clock(), took)
            log.info("metrics for %s in %.2f s: %s", name, took, report)
        except Exception as exc:  # one model's failure must not stop the others
            log.exception("metrics run for %s failed; retrying next tick", name)
            self._record_failure(name, "metrics", exc)
            try:
                leases.run_failed(self.ctx, due, self._clock())
            except Exception:
                log.warning("could not mark %s due again; it runs a schedule later", name)
            return False
        try:
            started = time.perf_counter()
            changes = evaluate_model(self.ctx, name)
            job_log.succeeded(self.ctx, name, "rules", time.perf_counter() - started)
            if changes:
                log.info("alerts for %s: %s", name, changes)
        except Exception as exc:
            log.exception("rule evaluation for %s failed; retrying next tick", name)
            self._record_failure(name, "rules", exc)
        return True

    def _sync_rules_file(self) -> None:
        if self._rules_file is None:
            return
        try:
            self._rules_file.sync(self.ctx)
        except Exception:  # a broken file keeps the rules loaded before
            log.exception("could not load the rules file %s", self._rules_file.path)

    def _seconds(self) -> float:
        return self._clock().timestamp()

    def _maintain(self) -> None:
        """Partitions ahead and retention, hourly, in the leader only (not in every process)."""
        if self._seconds() - self._last_maintenance < MAINTENANCE_INTERVAL_SECONDS:
            return
        self._last_maintenance = self._seconds()
        try:
            run_maintenance(self.ctx)
        except Exception:
            log.exception("maintenance failed; retrying in an hour")

    def _analyse(self) -> None:
        """A new day's partition analysed from its first rows on (``analyse_new_tables``), before
        the runs that read it, once a minute at most."""
        if self._seconds() - self._last_statistics < STATISTICS_INTERVAL_SECONDS:
            return
        self._last_statistics = self._seconds()
        try:
            analyse_new_tables(self.ctx)
        except Exception:  # the runs' window joins need no statistics (quality_repo)
            log.exception("could not analyse the log's new tables; trying again in a minute")

    def _compact(self) -> None:
        """The log's hours that are due moved into blocks (``compact_log``), every few minutes;
        sooner again while a backlog remains."""
        if self._seconds() - self._last_compaction < COMPACTION_INTERVAL_SECONDS:
            return
        try:
            result = compact_log(self.ctx, budget_seconds=COMPACTION_BUDGET_SECONDS, pending=self._compaction_days)
            self._compaction_days, done = result.pending, result.done
        except Exception:  # the rows stay where they are, readable, until the next attempt
            log.exception("compaction of the log failed; trying again in %d s", COMPACTION_INTERVAL_SECONDS)
            done = True
        self._last_compaction = self._seconds() if done else float("-inf")

    def _record_failure(self, model: str, job: str, exc: BaseException) -> None:
        try:
            job_log.failed(self.ctx, model, job, exc)
        except Exception:  # the database may be what failed
            log.warning("could not record the failure of %s for %s", job, model)

    def start(self, *, block: bool) -> None:
        cls = BlockingScheduler if block else BackgroundScheduler
        self._scheduler = cls(timezone="UTC")
        self._scheduler.add_job(
            self._scheduled_tick,
            "interval",
            seconds=self.tick_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def _scheduled_tick(self) -> None:
        try:
            self.tick()
        except Exception:  # the database away: the next tick tries again
            log.exception("scheduler tick failed; trying again in %.0f s", self.tick_seconds)

    def stop(self) -> None:
        """Stop ticking, give this process's models back and hand the lead over, at once."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        with self._guard:
            try:
                leases.let_go(self.ctx, self.process)
            except Exception:  # they lapse within a lease instead
                log.warning("could not give the models back; the others take them over within a lease")
            self._session.close(hand_over=True)
            self._holding = None


class BackgroundWork:
    """The background work of a running service, in one place for ``monitor scheduler`` and the
    demo: the scheduler's runs and the deliverer's sends of what those runs queued, started and
    stopped together. Every scheduler process delivers, leader or not: a message is claimed by one
    deliverer at a time."""

    def __init__(self, ctx: ServiceContext, *, tick_seconds: float) -> None:
        self.scheduler = MetricScheduler(ctx, tick_seconds=tick_seconds)
        self.deliverer = DeliveryWorker(ctx)

    def start(self) -> None:
        """Both in background threads."""
        self.scheduler.start(block=False)
        self.deliverer.start()

    def run(self) -> None:
        """Deliver in the background and run the scheduler in this thread until it is interrupted
        (Ctrl-C, or SIGTERM turned into SystemExit); then stop both cleanly."""
        self.deliverer.start()
        try:
            self.scheduler.start(block=True)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.stop()
            log.info("scheduler stopped cleanly")

    def stop(self, *, final_run: bool = False) -> None:
        """The job and the delivery attempt in flight finish and are recorded, and the leader lock
        is handed over at once. ``final_run``: one last run first, so the latest traffic counts."""
        if final_run:
            self.scheduler.tick(force=True)
        self.scheduler.stop()
        self.deliverer.stop()
