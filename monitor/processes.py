"""The background work of a running service, put together in one place for ``monitor scheduler``
and the demo: the scheduler's runs (windows, metrics, alerts, maintenance when it leads) and the
deliverer's sends of what those runs queued, started and stopped together.

Every scheduler process delivers, leader or not: a message is claimed by one deliverer at a time.
"""

from __future__ import annotations

import logging

from monitor.scheduler import MetricScheduler
from monitor.services.alerting.delivery import DeliveryWorker
from monitor.services.infra.context import ServiceContext

log = logging.getLogger("monitor.scheduler")


class BackgroundWork:
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
