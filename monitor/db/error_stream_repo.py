"""The error-stream detectors' state per hour, and the error stream they read (the minutes kept in
the hourly quality summaries). Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from monitor.db.tables import bucket_summaries, error_stream_states
from monitor.metrics.quality_summary import QUALITY_COLUMN


@dataclass(frozen=True)
class HourState:
    hour: datetime
    state: dict[str, Any]
    detections: list[list[float]]
    rows: int
    error_rate: float


def _hour_state(r: Any) -> HourState:
    return HourState(r.hour, r.state, r.detections, int(r.rows), float(r.error_rate))


def _states() -> Any:
    t = error_stream_states.c
    return select(t.hour, t.state, t.detections, t.rows, t.error_rate)


def state_before(
    conn: Connection, model_id: int, version_id: int, segment: str, method: str, hour: datetime
) -> HourState | None:
    """The state after the last hour before ``hour`` that the detector read, if any."""
    t = error_stream_states.c
    r = conn.execute(
        _states()
        .where(
            t.model_id == model_id,
            t.model_version_id == version_id,
            t.segment == segment,
            t.method == method,
            t.hour < hour,
        )
        .order_by(t.hour.desc())
        .limit(1)
    ).first()
    return None if r is None else _hour_state(r)


def states_between(
    conn: Connection, model_id: int, version_id: int, segment: str, method: str, start: datetime, end: datetime
) -> list[HourState]:
    """The hours in [start, end) the detector read, in time order."""
    t = error_stream_states.c
    rows = conn.execute(
        _states()
        .where(
            t.model_id == model_id,
            t.model_version_id == version_id,
            t.segment == segment,
            t.method == method,
            t.hour >= start,
            t.hour < end,
        )
        .order_by(t.hour)
    ).all()
    return [_hour_state(r) for r in rows]


def replace_from(
    conn: Connection,
    model_id: int,
    version_id: int,
    segment: str,
    method: str,
    start: datetime,
    hours: Sequence[HourState],
) -> None:
    """Forget what the detector read from ``start`` on and store what it read again."""
    t = error_stream_states.c
    conn.execute(
        delete(error_stream_states).where(
            t.model_id == model_id,
            t.model_version_id == version_id,
            t.segment == segment,
            t.method == method,
            t.hour >= start,
        )
    )
    if hours:
        conn.execute(
            error_stream_states.insert(),
            [
                {
                    "model_id": model_id,
                    "model_version_id": version_id,
                    "segment": segment,
                    "method": method,
                    "hour": h.hour,
                    "state": h.state,
                    "detections": h.detections,
                    "rows": h.rows,
                    "error_rate": h.error_rate,
                }
                for h in hours
            ],
        )


def first_stream_hour(
    conn: Connection, model_id: int, version_id: int, reference_id: int, segment: str
) -> datetime | None:
    """The first hour whose quality summary is kept: where a detector with no state starts."""
    b = bucket_summaries.c
    return conn.execute(
        select(func.min(b.bucket_start)).where(
            b.model_id == model_id,
            b.model_version_id == version_id,
            b.reference_id == reference_id,
            b.bucket_hours == 1,
            b.segment == segment,
            b.column_name == QUALITY_COLUMN,
        )
    ).scalar()


def error_minutes(
    conn: Connection, model_id: int, version_id: int, reference_id: int, segment: str, start: datetime, end: datetime
) -> dict[datetime, list[list[int]]]:
    """Per hour in [start, end) with a quality summary, its minutes as [[epoch minute, labelled
    rows, errors], ...] (only that part of the summary is read)."""
    rows = conn.execute(
        text(
            """
            SELECT bucket_start, stats -> 'minutes' AS minutes FROM bucket_summaries
            WHERE model_id = :m AND model_version_id = :v AND reference_id = :r AND bucket_hours = 1 AND segment = :s
              AND column_name = :c AND bucket_start >= :start AND bucket_start < :end
            ORDER BY bucket_start
            """
        ),
        {
            "m": model_id,
            "v": version_id,
            "r": reference_id,
            "s": segment,
            "c": QUALITY_COLUMN,
            "start": start,
            "end": end,
        },
    ).all()
    return {r.bucket_start: r.minutes or [] for r in rows}
