"""Daily partitions of the prediction log: created ahead of need, dropped after retention.

Functions take a connection and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

PARENT = "predictions"
_PARTITION_LOCK_KEY = 0x70617274  # "part": one DDL writer at a time across processes
# Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on the log's parent table, and
# while that waits for a long reader (an export streaming for minutes, a month's rollup) every
# insert into the log queues behind it: ingestion would stall for as long as the read lasts. The
# DDL waits this long at most, then gives up (``is_lock_timeout``) and is tried again later.
DDL_LOCK_TIMEOUT = "2s"


def is_lock_timeout(exc: BaseException) -> bool:
    """The DDL gave up waiting for the log's lock (SQLSTATE 55P03)."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) == "55P03"


def _bounded_lock_wait(conn: Connection) -> str:
    """Bound lock waits for the DDL to come; returns the setting to put back after it (a timeout
    left for the rest of the transaction would cut short its other statements' waits)."""
    before = str(conn.execute(text("SELECT current_setting('lock_timeout')")).scalar_one())
    conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": DDL_LOCK_TIMEOUT})
    return before


def _restore_lock_wait(conn: Connection, before: str) -> None:
    conn.execute(text("SELECT set_config('lock_timeout', :t, true)"), {"t": before})


def partition_name(day: date) -> str:
    return f"{PARENT}_{day:%Y%m%d}"


def day_of(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def existing_partitions(conn: Connection) -> dict[str, date]:
    rows = conn.execute(
        text(
            """
            SELECT c.relname FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_class p ON p.oid = i.inhparent
            WHERE p.relname = :parent
            """
        ),
        {"parent": PARENT},
    ).scalars()
    out = {}
    for name in rows:
        try:
            out[name] = datetime.strptime(name.rsplit("_", 1)[1], "%Y%m%d").date()
        except ValueError:
            continue  # not one of ours
    return out


def create_partitions(conn: Connection, days: Iterable[date]) -> list[str]:
    """Create the daily partitions that do not exist yet; return the names created."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK_KEY})
    have = existing_partitions(conn)
    created: list[str] = []
    if all(partition_name(day) in have for day in wanted):
        return created
    before = _bounded_lock_wait(conn)
    for day in wanted:
        name = partition_name(day)
        if name in have:
            continue
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        end = start + timedelta(days=1)
        conn.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF {PARENT} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
        created.append(name)
    _restore_lock_wait(conn, before)
    return created


def drop_expired_partitions(conn: Connection, cutoff: datetime) -> list[str]:
    """Drop partitions that hold only rows older than ``cutoff``; return their names."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK_KEY})
    dropped: list[str] = []
    expired = [
        name
        for name, day in sorted(existing_partitions(conn).items(), key=lambda kv: kv[1])
        if datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) <= cutoff
    ]
    if not expired:
        return dropped
    before = _bounded_lock_wait(conn)
    for name in expired:
        conn.execute(text(f"DROP TABLE {name}"))
        dropped.append(name)
    _restore_lock_wait(conn, before)
    return dropped


class PartitionCache:
    """Which days already have a partition, so the ingestion hot path asks the catalog only on a miss."""

    def __init__(self) -> None:
        self._days: set[date] = set()
        self._lock = threading.Lock()

    def missing(self, days: Iterable[date]) -> set[date]:
        with self._lock:
            return set(days) - self._days

    def add(self, days: Iterable[date]) -> None:
        with self._lock:
            self._days.update(days)

    def forget_before(self, day: date) -> None:
        with self._lock:
            self._days = {d for d in self._days if d >= day}


def truncate_if_empty(conn: Connection, day: date, emptied_at: datetime) -> bool:
    """Give back the space of a day's partition whose rows all moved into blocks (compaction, the
    last of them committed at ``emptied_at``): deleted rows leave the partition's B-tree at its
    full size until the day is dropped, a third of what the rows had cost.

    TRUNCATE is not MVCC-safe (a snapshot from before it would see the partition empty, and the
    blocks not yet written): so only when no other transaction began before ``emptied_at``; only
    if the partition holds no row, under its own lock (waited for ``DDL_LOCK_TIMEOUT`` at most:
    ``is_lock_timeout``). False when any of that is not so: the caller tries again later."""
    name = partition_name(day)
    if name not in existing_partitions(conn):
        return False
    older = conn.execute(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) AND xact_start <= :t)"
        ),
        {"t": emptied_at},
    ).scalar()
    if older:
        return False
    before = _bounded_lock_wait(conn)
    conn.execute(text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
    _restore_lock_wait(conn, before)
    if conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {name})")).scalar():
        return False
    conn.execute(text(f"TRUNCATE {name}"))
    return True
