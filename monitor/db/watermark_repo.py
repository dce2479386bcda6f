"""Job watermarks. Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text


def get(conn: Connection, version_id: int, job: str) -> datetime | None:
    return conn.execute(
        text("SELECT done_until FROM job_watermarks WHERE model_version_id = :v AND job = :j"),
        {"v": version_id, "j": job},
    ).scalar()


def set_(conn: Connection, version_id: int, job: str, done_until: datetime) -> None:
    conn.execute(
        text(
            """
            INSERT INTO job_watermarks (model_version_id, job, done_until) VALUES (:v, :j, :d)
            ON CONFLICT (model_version_id, job) DO UPDATE SET done_until = EXCLUDED.done_until,
                updated_at = EXCLUDED.updated_at  -- the default, now(): Citus takes no function there
            """
        ),
        {"v": version_id, "j": job, "d": done_until},
    )
