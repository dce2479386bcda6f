"""API keys (hashes only). Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict, cast

from sqlalchemy import Connection, func, select, update

from monitor.db.tables import api_keys


class ActiveKey(TypedDict):
    """A key that authenticates: who it is and what it may do (never its hash)."""

    id: int
    name: str
    prefix: str
    scopes: list[str]


class KeyRow(ActiveKey):
    created_at: datetime
    revoked_at: datetime | None


def insert_key(conn: Connection, name: str, prefix: str, key_hash: str, scopes: list[str]) -> int:
    return int(
        conn.execute(
            api_keys.insert()
            .values(name=name, prefix=prefix, key_hash=key_hash, scopes=scopes)
            .returning(api_keys.c.id)
        ).scalar_one()
    )


def find_active_key(conn: Connection, key_hash: str) -> ActiveKey | None:
    row = (
        conn.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.scopes).where(
                api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    return cast(ActiveKey, dict(row)) if row else None


def list_keys(conn: Connection) -> list[KeyRow]:
    rows = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.name,
            api_keys.c.prefix,
            api_keys.c.scopes,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        ).order_by(api_keys.c.id)
    ).mappings()
    return [cast(KeyRow, dict(r)) for r in rows]


def revoke_key(conn: Connection, prefix: str) -> bool:
    return bool(
        conn.execute(
            update(api_keys)
            .where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        ).rowcount
    )
