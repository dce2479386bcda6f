"""The audit log: appended to by the service functions that act, read by admins. Functions take
a connection and never commit; nothing here updates or deletes an entry (the history retention
deletes old ones, ``history_repo``, and a trigger refuses to delete recent ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import Connection, select, text

from monitor.db.tables import audit_log
from monitor.domain.audit import Actor, bounded_details, bounded_text


def append(
    conn: Connection,
    actor: Actor,
    action: str,
    target: object,
    *,
    model: str | None = None,
    details: dict[str, Any] | None = None,
) -> int:
    """The new entry's id."""
    return int(
        conn.execute(
            audit_log.insert()
            .values(
                via=actor.via,
                key_id=actor.key_id,
                key_name=None if actor.key_name is None else bounded_text(actor.key_name),
                key_prefix=actor.key_prefix,
                client_address=actor.client_address,
                request_id=actor.request_id,
                action=action,
                model=None if model is None else bounded_text(model),
                target=bounded_text(target),
                details=bounded_details(details),
            )
            .returning(audit_log.c.id)
        ).scalar_one()
    )


def entries(
    conn: Connection,
    *,
    action: str | None,
    model: str | None,
    key_prefix: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first; ``before_id`` pages on from the last entry of a previous page."""
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:  # "rule." matches every rule action
        same = audit_log.c.action.startswith(action, autoescape=True) if action.endswith(".") else None
        q = q.where(same if same is not None else audit_log.c.action == action)
    if model is not None:
        q = q.where(audit_log.c.model == model)
    if key_prefix is not None:
        q = q.where(audit_log.c.key_prefix == key_prefix)
    if since is not None:
        q = q.where(audit_log.c.at >= since)
    if until is not None:
        q = q.where(audit_log.c.at < until)
    if before_id is not None:
        q = q.where(audit_log.c.id < before_id)
    return [dict(r) for r in conn.execute(q).mappings()]


# An export's start with no end after it: its end names the start (``started_id``); an end written
# before ends named their start closes every earlier start of its key (a key exports one at a time).
_OPEN_EXPORTS = """
SELECT s.id, s.key_id, s.key_name, s.key_prefix, s.model, s.target, s.details
FROM audit_log s
WHERE s.action = 'export.started' AND (CAST(:key AS integer) IS NULL OR coalesce(s.key_id, 0) = :key)
  AND NOT EXISTS (
      SELECT 1 FROM audit_log e
      WHERE e.action IN ('export.finished', 'export.stopped', 'export.interrupted')
        AND e.key_id IS NOT DISTINCT FROM s.key_id AND e.id > s.id
        AND (NOT e.details ? 'started_id' OR e.details ->> 'started_id' = CAST(s.id AS text)))
ORDER BY s.id
"""


class OpenExport(TypedDict):
    """An export's start with no end: who started it, of which model, and its details."""

    id: int
    key_id: int | None
    key_name: str | None
    key_prefix: str | None
    model: str | None
    target: str
    details: dict[str, Any]


def open_exports(conn: Connection, key: int | None = None) -> list[OpenExport]:
    """Exports started and not (yet) ended, oldest first (``key``: of that key's lock only, 0 for
    exports without a key)."""
    return [cast(OpenExport, dict(r)) for r in conn.execute(text(_OPEN_EXPORTS), {"key": key}).mappings()]
