"""Start-up: connect (starting the embedded Postgres if needed), migrate, prepare partitions."""

from __future__ import annotations

from monitor.config import Settings
from monitor.db.migrate import upgrade_to_head
from monitor.services.context import ServiceContext
from monitor.services.maintenance import run_maintenance


def open_context(settings: Settings, *, migrate: bool = True) -> ServiceContext:
    ctx = ServiceContext.from_settings(settings)
    if migrate:
        upgrade_to_head(ctx.engine)
        run_maintenance(ctx)
    return ctx
