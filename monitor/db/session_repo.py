"""Dashboard login sessions. Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text


def insert_session(conn: Connection, id_hash: str, key_hash: str, expires_at: datetime) -> None:
    conn.execute(
        text("INSERT INTO dashboard_sessions (id_hash, key_hash, expires_at) VALUES (:i, :k, :e)"),
        {"i": id_hash, "k": key_hash, "e": expires_at},
    )


def find_key_hash(conn: Connection, id_hash: str, now: datetime) -> str | None:
    return conn.execute(
        text("SELECT key_hash FROM dashboard_sessions WHERE id_hash = :i AND expires_at > :n"),
        {"i": id_hash, "n": now},
    ).scalar()


def delete_session(conn: Connection, id_hash: str) -> None:
    conn.execute(text("DELETE FROM dashboard_sessions WHERE id_hash = :i"), {"i": id_hash})


def delete_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(text("DELETE FROM dashboard_sessions WHERE expires_at <= :n"), {"n": now}).rowcount
