"""Start-up: connect (starting the embedded Postgres if needed), and migrate where asked.

Migrating and maintenance each happen in one place, not in every process that opens the
database: ``monitor migrate`` (the compose migrate service), the parent of ``monitor serve``
before its workers start, and the commands that write (the scheduler, backfill, key changes,
the demo) migrate, under a lock; the API workers and read-only commands (``keys list``,
``check``) only check that the schema is at the newest migration and say what to run when it is
not. Maintenance (partitions ahead, retention) runs in the scheduler that leads, hourly, and in
``monitor maintain``; ingestion creates any partition it needs itself.
"""

from __future__ import annotations

from monitor.config import Settings
from monitor.db.migrate import current_revision, head_revision, upgrade_to_head
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.maintenance import run_maintenance


class SchemaNotAtHead(RuntimeError):
    pass


def open_context(settings: Settings, *, migrate: bool = False, maintain: bool = False) -> ServiceContext:
    ctx = ServiceContext.from_settings(settings)
    try:
        if migrate:
            upgrade_to_head(ctx.engine)
        else:
            at, head = current_revision(ctx.engine), head_revision()
            if at != head:
                raise SchemaNotAtHead(
                    f"the database schema is at revision {at or 'none'}, not {head}: run `monitor migrate` first"
                )
        if maintain:
            run_maintenance(ctx)
    except BaseException:
        ctx.close()
        raise
    return ctx


def open_for_writing(settings: Settings, *, maintain: bool = False) -> ServiceContext:
    """For a process that writes (serve's parent, migrate, the scheduler, backfill, keys create
    and revoke, secrets rotate, the demo): the schema migrated to the newest revision first,
    under a lock; ``maintain``: partitions ahead and retention too."""
    return open_context(settings, migrate=True, maintain=maintain)


def open_for_reading(settings: Settings) -> ServiceContext:
    """For a process that only reads or checks (API workers, the dashboard, keys list, check,
    maintain's own connection): the schema must be at the newest revision (``SchemaNotAtHead``
    says what to run otherwise); nothing changes on start."""
    return open_context(settings)
