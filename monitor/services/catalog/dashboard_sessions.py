"""Dashboard login sessions, kept in the database so that logging out ends them everywhere.

The browser holds a random session id (in Flask's signed cookie); the database holds its SHA-256
hash, the hash of the key that logged in, and an expiry. Every request looks the id up: a cookie
replayed after logout, or after the session expired, finds nothing. Several dashboard replicas
share the sessions.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from monitor.db import session_repo
from monitor.services.catalog.keys import hash_key
from monitor.services.infra.context import ServiceContext


def start(ctx: ServiceContext, key_hash: str) -> str:
    """A new session for the key with ``key_hash``; returns its id, for the cookie only."""
    session_id = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(hours=ctx.settings.dashboard_session_hours)
    with ctx.uow() as uow:
        session_repo.insert_session(uow.conn, hash_key(session_id), key_hash, expires)
        uow.commit()
    return session_id


def key_hash_of(ctx: ServiceContext, session_id: str) -> str | None:
    """The hash of the key a live session logged in with; None when it ended or never was."""
    with ctx.uow() as uow:
        return session_repo.find_key_hash(uow.conn, hash_key(session_id), datetime.now(UTC))


def end(ctx: ServiceContext, session_id: str) -> None:
    with ctx.uow() as uow:
        session_repo.delete_session(uow.conn, hash_key(session_id))
        uow.commit()
