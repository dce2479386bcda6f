"""The scheduler process: runs each model's metrics on its schedule (APScheduler), evaluates
its alert rules after each run, and sends notification groups that come due.

Only one scheduler acts at a time: each holds a Postgres session-level advisory lock while it
is the leader; the others tick idle until the leader's connection goes away (a crash, a network
partition) and one of them takes the lock over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Connection, text

from monitor.db import registry_repo
from monitor.services.alerting.alert_config import RulesFile
from monitor.services.alerting.delivery import DeliveryWorker
from monitor.services.alerting.evaluation import evaluate_model, flush_groups
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import job_log
from monitor.services.jobs.compaction import compact_log
from monitor.services.jobs.maintenance import analyse_new_tables, run_maintenance
from monitor.services.jobs.monitoring_run import run_model

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x7363686564  # "sched"
MAINTENANCE_INTERVAL_SECONDS = 3600
STATISTICS_INTERVAL_SECONDS = 60  # how often the log's tables are looked at for missing statistics
# How often the log's due hours are compacted, and for how long at most each time (a backlog,
# after an upgrade or an outage, is worked off over several ticks without holding up the runs).
COMPACTION_INTERVAL_SECONDS = 300
COMPACTION_BUDGET_SECONDS = 30.0


class MetricScheduler:
    def __init__(
        self, ctx: ServiceContext, tick_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ctx = ctx
        self.tick_seconds = tick_seconds
        self._clock = clock
        self._lock_conn: Connection | None = None
        self._last_run: dict[str, float] = {}
        self._last_maintenance = float("-inf")
        self._last_statistics = float("-inf")
        self._last_compaction = float("-inf")
        self._compaction_days: dict[date, datetime] = {}  # days whose partitions are to be given back
        self._guard = threading.Lock()
        self._scheduler: BackgroundScheduler | BlockingScheduler | None = None
        path = ctx.settings.rules_file
        self._rules_file = RulesFile(path) if path is not None else None

    # -- leadership ------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Hold (or try to take) the leader lock; False while another scheduler holds it."""
        conn = self._lock_conn
        if conn is not None:
            try:
                conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("lost the leader connection; trying to take the lock again")
                self._release()
        conn = self.ctx.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}).scalar()
        conn.commit()
        if got:
            self._lock_conn = conn
            log.info("this scheduler is the leader")
            return True
        conn.close()
        return False

    def _release(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.invalidate()  # closing the session releases the advisory lock
            finally:
                self._lock_conn = None

    # -- work ---------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, force: bool = False) -> list[str]:
        """Run every model that is due (every model with ``force``); returns the models run.
        Idle unless leader."""
        with self._guard:
            if not self.is_leader():
                return []
            ran = []
            self._maintain()
            self._analyse()
            self._compact()
            if self._rules_file is not None:
                try:
                    self._rules_file.sync(self.ctx)
                except Exception:  # a broken file keeps the rules loaded before
                    log.exception("could not load the rules file %s", self._rules_file.path)
            with self.ctx.uow() as uow:
                names = registry_repo.list_model_names(uow.conn)
            for name in names:
                try:
                    cfg = registry.get_monitoring(self.ctx, name)
                    if not (self._due(name, cfg.schedule_seconds) or force):
                        continue
                    # Scheduled from the run's start: taken after it, a run every 30 s on a 30 s
                    # tick came out every 60 s (the next tick found it not quite due).
                    self._last_run[name] = self._clock()
                    started = time.perf_counter()
                    report = run_model(self.ctx, name, now or datetime.now(UTC))
                    ran.append(name)
                    took = time.perf_counter() - started
                    job_log.succeeded(self.ctx, name, "metrics", took)
                    log.info("metrics for %s in %.2f s: %s", name, took, report)
                except Exception as exc:  # one model's failure must not stop the others
                    self._last_run.pop(name, None)  # due again at the next tick
                    log.exception("metrics run for %s failed; retrying next tick", name)
                    self._record_failure(name, "metrics", exc)
                    continue
                try:
                    started = time.perf_counter()
                    changes = evaluate_model(self.ctx, name)
                    job_log.succeeded(self.ctx, name, "rules", time.perf_counter() - started)
                    if changes:
                        log.info("alerts for %s: %s", name, changes)
                except Exception as exc:
                    log.exception("rule evaluation for %s failed; retrying next tick", name)
                    self._record_failure(name, "rules", exc)
            try:
                flush_groups(self.ctx)  # groups whose wait ended since the last evaluation
            except Exception:
                log.exception("notification grouping failed; retrying next tick")
            return ran

    def _maintain(self) -> None:
        """Partitions ahead and retention, hourly, in the leader only (not in every process)."""
        if self._clock() - self._last_maintenance < MAINTENANCE_INTERVAL_SECONDS:
            return
        self._last_maintenance = self._clock()
        try:
            run_maintenance(self.ctx)
        except Exception:
            log.exception("maintenance failed; retrying in an hour")

    def _analyse(self) -> None:
        """A new day's partition analysed from its first rows on (``analyse_new_tables``), before
        the runs that read it, once a minute at most."""
        if self._clock() - self._last_statistics < STATISTICS_INTERVAL_SECONDS:
            return
        self._last_statistics = self._clock()
        try:
            analyse_new_tables(self.ctx)
        except Exception:  # the runs' window joins need no statistics (quality_repo)
            log.exception("could not analyse the log's new tables; trying again in a minute")

    def _compact(self) -> None:
        """The log's hours that are due moved into blocks (``compact_log``), every few minutes;
        sooner again while a backlog remains."""
        if self._clock() - self._last_compaction < COMPACTION_INTERVAL_SECONDS:
            return
        try:
            result = compact_log(self.ctx, budget_seconds=COMPACTION_BUDGET_SECONDS, pending=self._compaction_days)
            self._compaction_days, done = result.pending, result.done
        except Exception:  # the rows stay where they are, readable, until the next attempt
            log.exception("compaction of the log failed; trying again in %d s", COMPACTION_INTERVAL_SECONDS)
            done = True
        self._last_compaction = self._clock() if done else float("-inf")

    def _due(self, model: str, schedule_seconds: float) -> bool:
        # a tick may fire a little early; a tenth of a tick (at most a second) still counts as on time
        slack = min(1.0, self.tick_seconds / 10)
        return self._clock() - self._last_run.get(model, float("-inf")) >= schedule_seconds - slack

    def _record_failure(self, model: str, job: str, exc: BaseException) -> None:
        try:
            job_log.failed(self.ctx, model, job, exc)
        except Exception:  # the database may be what failed
            log.warning("could not record the failure of %s for %s", job, model)

    def start(self, *, block: bool) -> None:
        cls = BlockingScheduler if block else BackgroundScheduler
        self._scheduler = cls(timezone="UTC")
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        conn = self._lock_conn
        if conn is not None:
            # Hand over at once: a closed session's lock is released only when its backend exits.
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK_KEY})
                conn.commit()
            except Exception:
                log.warning("could not release the leader lock cleanly; closing its session")
        self._release()


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
