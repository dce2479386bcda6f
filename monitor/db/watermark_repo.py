"""Job watermarks. Functions take a connection and never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text


def get(conn: Connection, version_id: int, job: str) -> datetime | None:
    return conn.execute(
        text("SELECT done_until FROM job_watermarks WHERE model_version_id = :v AND job = :j"),
        {"v": version_id, "j": job},
    ).scalar()


def of_version(conn: Connection, version_id: int) -> dict[str, datetime]:
    """Every job's watermark of the version, in one statement."""
    rows = conn.execute(
        text("SELECT job, done_until FROM job_watermarks WHERE model_version_id = :v"), {"v": version_id}
    )
    return {job: until for job, until in rows}


def set_many(conn: Connection, version_id: int, done_until: dict[str, datetime]) -> None:
    """``set_`` for several jobs of the version, in one statement."""
    if not done_until:
        return
    conn.execute(
        text(
            """
            INSERT INTO job_watermarks (model_version_id, job, done_until)
            SELECT :v, job, until FROM unnest(CAST(:jobs AS text[]), CAST(:untils AS timestamptz[])) AS t (job, until)
            ON CONFLICT (model_version_id, job) DO UPDATE SET done_until = EXCLUDED.done_until,
                updated_at = EXCLUDED.updated_at  -- the default, now(): Citus takes no function there
            """
        ),
        {"v": version_id, "jobs": list(done_until), "untils": list(done_until.values())},
    )
