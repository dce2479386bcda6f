"""KServe halves waiting for their pair. Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, text


class StoredHalf(NamedTuple):
    """The half of an event that came first: its body as received, and its CloudEvent time."""

    body: bytes
    event_time: str | None


def lock_pair(conn: Connection, model: str, event_id: str) -> None:
    """Serialise the two halves of one event: the second to arrive sees the first."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('kserve:' || :m || ':' || :i))"), {"m": model, "i": event_id}
    )


def find(conn: Connection, model: str, event_id: str, kind: str) -> StoredHalf | None:
    row = (
        conn.execute(
            text("SELECT body, event_time FROM kserve_events WHERE model = :m AND event_id = :i AND kind = :k"),
            {"m": model, "i": event_id, "k": kind},
        )
        .mappings()
        .first()
    )
    return None if row is None else StoredHalf(bytes(row["body"]), row["event_time"])


def store(conn: Connection, model: str, event_id: str, kind: str, body: bytes, event_time: str | None) -> None:
    conn.execute(
        text(
            "INSERT INTO kserve_events (model, event_id, kind, body, event_time) VALUES (:m, :i, :k, :b, :t) "
            "ON CONFLICT DO NOTHING"  # the logger retrying the same half
        ),
        {"m": model, "i": event_id, "k": kind, "b": body, "t": event_time},
    )


def forget(conn: Connection, model: str, event_id: str, *, durable: bool = True) -> None:
    """Drop the event's halves; ``durable=False`` lets this transaction's commit return before it
    reaches the disk (``synchronous_commit = off``, for this transaction only)."""
    if not durable:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
    conn.execute(text("DELETE FROM kserve_events WHERE model = :m AND event_id = :i"), {"m": model, "i": event_id})


def delete_older(conn: Connection, before: datetime) -> int:
    return conn.execute(text("DELETE FROM kserve_events WHERE received_at < :b"), {"b": before}).rowcount
