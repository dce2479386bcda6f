"""The scheduler processes and the models' leases (``scheduler_processes``, ``model_leases``).
Functions take a connection and never commit.

Times are the scheduler's clock, passed in, not the database's ``now()``: the same clock decides
when a model is due and when a lease lapses, and the scheduler's tests drive it. Processes on
several hosts need clocks that agree to well within a lease (NTP does); that a model never runs in
two processes at once does not rest on clocks at all but on an advisory lock held during the run
(``monitor.scheduler.SchedulerSession``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class ProcessBeat:
    """A scheduler process as it reports itself at each tick."""

    process_id: str
    host: str
    pid: int
    started_at: datetime
    lease_seconds: float
    leader: bool
    models_held: int
    lag_seconds: float
    runs: int


@dataclass(frozen=True)
class DueModel:
    """A model this process holds whose run is due: its settings come with it (one query for
    the tick's due work, not one per model)."""

    model_id: int
    name: str
    monitoring: dict[str, Any]
    due_at: datetime


def heartbeat(conn: Connection, beat: ProcessBeat, now: datetime) -> None:
    conn.execute(
        text(
            "INSERT INTO scheduler_processes (process_id, host, pid, started_at, heartbeat_at, lease_seconds, "
            "leader, models_held, lag_seconds, runs) VALUES (:process_id, :host, :pid, :started_at, :now, "
            ":lease_seconds, :leader, :models_held, :lag_seconds, :runs) ON CONFLICT (process_id) DO UPDATE SET "
            "heartbeat_at = EXCLUDED.heartbeat_at, lease_seconds = EXCLUDED.lease_seconds, leader = EXCLUDED.leader, "
            "models_held = EXCLUDED.models_held, lag_seconds = EXCLUDED.lag_seconds, runs = EXCLUDED.runs"
        ),
        {**beat.__dict__, "now": now},
    )


def forget_process(conn: Connection, process_id: str) -> None:
    conn.execute(text("DELETE FROM scheduler_processes WHERE process_id = :p"), {"p": process_id})


def forget_dead_processes(conn: Connection, now: datetime, leases: int) -> None:
    """Processes silent for ``leases`` of their leases: shown as dead until then, then dropped."""
    conn.execute(
        text("DELETE FROM scheduler_processes WHERE heartbeat_at + lease_seconds * :k * interval '1 second' < :now"),
        {"k": leases, "now": now},
    )


def live_processes(conn: Connection, now: datetime, besides: str) -> int:
    """The live processes other than ``besides``: those whose heartbeat is within their lease."""
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM scheduler_processes WHERE process_id <> :me "
                "AND heartbeat_at + lease_seconds * interval '1 second' > :now"
            ),
            {"now": now, "me": besides},
        ).scalar_one()
    )


def sync_models(conn: Connection, now: datetime) -> int:
    """A lease row for every registered model (due at once), none for a model no longer there;
    returns how many models there are. The two id lists are compared here, not in one statement:
    Citus does not modify a coordinator table with a subquery over a reference table."""
    registered = set(conn.execute(text("SELECT id FROM models")).scalars())
    leased = set(conn.execute(text("SELECT model_id FROM model_leases")).scalars())
    if new := sorted(registered - leased):
        conn.execute(
            text(
                "INSERT INTO model_leases (model_id, due_at) SELECT unnest(CAST(:ids AS integer[])), :now "
                "ON CONFLICT DO NOTHING"
            ),
            {"ids": new, "now": now},
        )
    if gone := sorted(leased - registered):
        conn.execute(text("DELETE FROM model_leases WHERE model_id = ANY(:ids)"), {"ids": gone})
    return len(registered)


def renew(conn: Connection, process_id: str, until: datetime) -> list[int]:
    """Extend every lease the process holds; returns the models it holds. A lease that lapsed
    and was taken by another process is no longer the process's, and is not renewed."""
    rows = conn.execute(
        text("UPDATE model_leases SET expires_at = :until WHERE owner = :p RETURNING model_id"),
        {"p": process_id, "until": until},
    )
    return sorted(int(r) for r in rows.scalars())


def claim(conn: Connection, process_id: str, now: datetime, until: datetime, limit: int) -> list[int]:
    """Take up to ``limit`` free or lapsed leases, the longest overdue models first; rows another
    process is claiming at the same moment are skipped, not waited for. A model whose run never
    finished (its process died in it) is due at once: its due time had moved on as the run began."""
    if limit <= 0:
        return []
    rows = conn.execute(
        text(
            "UPDATE model_leases SET owner = :p, expires_at = :until, running_since = NULL, "
            "due_at = CASE WHEN running_since IS NULL THEN due_at ELSE least(due_at, :now) END WHERE model_id IN ("
            "  SELECT model_id FROM model_leases WHERE owner IS NULL OR expires_at <= :now"
            "  ORDER BY due_at, model_id LIMIT :limit FOR UPDATE SKIP LOCKED"
            ") RETURNING model_id"
        ),
        {"p": process_id, "now": now, "until": until, "limit": limit},
    )
    return sorted(int(r) for r in rows.scalars())


def release(conn: Connection, process_id: str, limit: int | None = None) -> list[int]:
    """Give back ``limit`` of the process's leases (all where None), those due last first: the
    process that takes them has until then to start."""
    rows = conn.execute(
        text(
            "UPDATE model_leases SET owner = NULL, expires_at = NULL WHERE model_id IN ("
            "  SELECT model_id FROM model_leases WHERE owner = :p ORDER BY due_at DESC, model_id"
            "  LIMIT :limit FOR UPDATE"
            ") RETURNING model_id"
        ),
        {"p": process_id, "limit": limit},
    )
    return sorted(int(r) for r in rows.scalars())


def due(conn: Connection, process_id: str, by: datetime) -> list[DueModel]:
    """The process's models due by ``by``, the longest overdue first, with their settings."""
    rows = conn.execute(
        text(
            "SELECT l.model_id, m.name, m.monitoring, l.due_at FROM model_leases l JOIN models m ON m.id = l.model_id "
            "WHERE l.owner = :p AND l.due_at <= :by ORDER BY l.due_at, l.model_id"
        ),
        {"p": process_id, "by": by},
    )
    return [DueModel(int(r[0]), r[1], r[2], r[3]) for r in rows]


def oldest_due(conn: Connection, process_id: str) -> datetime | None:
    """When the process's most overdue model fell due (its lag is measured from there)."""
    value: datetime | None = conn.execute(
        text("SELECT min(due_at) FROM model_leases WHERE owner = :p"), {"p": process_id}
    ).scalar()
    return value


def start_run(
    conn: Connection, process_id: str, model_id: int, now: datetime, by: datetime, next_due: datetime
) -> bool:
    """Move the model's due time on as its run starts, if the process still holds it and it is
    still due: False when another process took it over or ran it since the tick looked."""
    row = conn.execute(
        text(
            "UPDATE model_leases SET due_at = :next, running_since = :now WHERE model_id = :m AND owner = :p "
            "AND due_at <= :by RETURNING model_id"
        ),
        {"m": model_id, "p": process_id, "by": by, "next": next_due, "now": now},
    ).first()
    return row is not None


def finish_run(conn: Connection, process_id: str, model_id: int, at: datetime, seconds: float) -> None:
    conn.execute(
        text("UPDATE model_leases SET last_run_at = :at, last_run_seconds = :s, last_run_by = :p WHERE model_id = :m"),
        {"m": model_id, "p": process_id, "at": at, "s": seconds},
    )


def count_run(conn: Connection, process_id: str) -> None:
    conn.execute(text("UPDATE scheduler_processes SET runs = runs + 1 WHERE process_id = :p"), {"p": process_id})


def due_again(conn: Connection, model_id: int, at: datetime) -> None:
    """A failed run: the model is due again at the next tick, not a schedule later."""
    conn.execute(
        text("UPDATE model_leases SET due_at = :at, running_since = NULL WHERE model_id = :m"),
        {"m": model_id, "at": at},
    )


def processes(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT process_id, host, pid, started_at, heartbeat_at, lease_seconds, leader, models_held, "
            "lag_seconds, runs FROM scheduler_processes ORDER BY started_at, process_id"
        )
    ).mappings()
    return [dict(r) for r in rows]


def leases(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT m.name AS model, l.owner, l.expires_at, l.due_at, l.last_run_at, l.last_run_seconds, "
            "l.last_run_by FROM model_leases l JOIN models m ON m.id = l.model_id ORDER BY m.name"
        )
    ).mappings()
    return [dict(r) for r in rows]


def lease_of(conn: Connection, model_id: int) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text(
                "SELECT owner, expires_at, due_at, last_run_at, last_run_seconds, last_run_by FROM model_leases "
                "WHERE model_id = :m"
            ),
            {"m": model_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None
