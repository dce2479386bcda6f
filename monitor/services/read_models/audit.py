"""Reading the audit log. Entries are written by the service functions that act, each in the
transaction of its action (``monitor.db.audit_repo.append``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor.db import audit_repo
from monitor.errors import MonitorError
from monitor.services.infra.context import ServiceContext


def list_entries(
    ctx: ServiceContext,
    *,
    action: str | None = None,
    model: str | None = None,
    key_prefix: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """A page of entries, newest first, and the ``before_id`` that reads the next page (None at
    the end)."""
    if since is not None and until is not None and until <= since:
        raise MonitorError("until must be after since", [{"field": "until", "reason": "not after since"}])
    with ctx.uow() as uow:
        rows = audit_repo.entries(
            uow.conn,
            action=action,
            model=model,
            key_prefix=key_prefix,
            since=since,
            until=until,
            before_id=before_id,
            limit=limit + 1,
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return {"entries": rows, "next_before_id": rows[-1]["id"] if more else None}
