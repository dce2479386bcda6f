"""The audit log: appended to by the service functions that act, read by admins. Functions take
a connection and never commit; nothing here updates or deletes an entry (the history retention
deletes old ones, ``history_repo``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

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
) -> None:
    conn.execute(
        audit_log.insert().values(
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
