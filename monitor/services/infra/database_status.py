"""What the API may say about the database itself: whether an error means it is away (503, retry
later), and whether it answers at the newest migration (readiness). The API reaches the database
only through the services; these are the services' answers about the database."""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from monitor.db import citus
from monitor.db.migrate import current_revision, head_revision
from monitor.services.infra.context import ServiceContext


def is_outage(orig: BaseException | None) -> bool:
    """The database is down, or a Citus worker it needs: the same outage (503, retry later)."""
    return isinstance(orig, psycopg.OperationalError) or citus.is_node_unavailable(orig)


def readiness(ctx: ServiceContext) -> tuple[bool, str | None]:
    """Whether the database answers at the newest migration, and the revision it is at; raises
    when it does not answer."""
    with ctx.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    revision = current_revision(ctx.engine)
    return revision == head_revision(), revision
