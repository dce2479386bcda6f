"""What the service's own metrics read: job runs, ingestion counts, deliveries. Functions take a
connection and never commit."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict, cast

from sqlalchemy import Connection, text


class JobRun(TypedDict):
    """A job's bookkeeping for a model: its last success, its last failure, how many failed."""

    job: str
    last_success_at: datetime | None
    last_duration_s: float | None
    last_error: str | None
    last_error_at: datetime | None
    failures: int


class ModelJobRun(JobRun):
    model: str


class IngestTotal(TypedDict):
    model: str
    kind: str
    accepted: int
    duplicates: int
    rejected: int


class DeliveryTotal(TypedDict):
    receiver: str
    outcome: str
    n: int


class SummaryBacklog(TypedDict):
    model: str
    rows: int
    oldest: datetime


def record_job_success(conn: Connection, model: str, job: str, at: datetime, duration_s: float) -> None:
    conn.execute(
        text(
            "INSERT INTO job_runs (model, job, last_success_at, last_duration_s) VALUES (:m, :j, :at, :d) "
            "ON CONFLICT (model, job) DO UPDATE SET last_success_at = EXCLUDED.last_success_at, "
            "last_duration_s = EXCLUDED.last_duration_s"
        ),
        {"m": model, "j": job, "at": at, "d": duration_s},
    )


def record_job_failure(conn: Connection, model: str, job: str, at: datetime, error: str, count: int = 1) -> None:
    conn.execute(
        text(
            "INSERT INTO job_runs (model, job, last_error, last_error_at, failures) VALUES (:m, :j, :e, :at, :n) "
            "ON CONFLICT (model, job) DO UPDATE SET last_error = EXCLUDED.last_error, "
            "last_error_at = EXCLUDED.last_error_at, failures = job_runs.failures + EXCLUDED.failures"
        ),
        {"m": model, "j": job, "e": error[:2000], "at": at, "n": count},
    )


def job_runs(conn: Connection) -> list[ModelJobRun]:
    rows = conn.execute(
        text("SELECT model, job, last_success_at, last_duration_s, last_error, last_error_at, failures FROM job_runs")
    ).mappings()
    return [cast(ModelJobRun, dict(r)) for r in rows]


def model_job_runs(conn: Connection, model: str) -> list[JobRun]:
    rows = conn.execute(
        text(
            "SELECT job, last_success_at, last_duration_s, last_error, last_error_at, failures FROM job_runs "
            "WHERE model = :m ORDER BY job"
        ),
        {"m": model},
    ).mappings()
    return [cast(JobRun, dict(r)) for r in rows]


def ingest_totals(conn: Connection) -> list[IngestTotal]:
    """Records per model and kind since retention last trimmed the hourly counts."""
    rows = conn.execute(
        text(
            "SELECT m.name AS model, s.kind, sum(s.accepted) AS accepted, sum(s.duplicates) AS duplicates, "
            "sum(s.rejected) AS rejected FROM ingest_stats s JOIN models m ON m.id = s.model_id GROUP BY 1, 2"
        )
    ).mappings()
    return [cast(IngestTotal, dict(r)) for r in rows]


def delivery_totals(conn: Connection) -> list[DeliveryTotal]:
    rows = conn.execute(text("SELECT receiver, outcome, count(*) AS n FROM deliveries GROUP BY 1, 2")).mappings()
    return [cast(DeliveryTotal, dict(r)) for r in rows]


def summary_backlog(conn: Connection, model: str | None = None) -> list[SummaryBacklog]:
    """Per model (or of one), the predictions summarised at ingestion and not yet folded by the
    scheduler, and when the oldest of them was written."""
    only = "" if model is None else "AND m.name = :model "
    rows = conn.execute(
        text(
            "SELECT m.name AS model, sum(d.n_rows) AS rows, min(d.written_at) AS oldest FROM summary_deltas d "
            f"JOIN models m ON m.id = d.model_id WHERE d.kind = 'columns' AND d.segment = '' {only}GROUP BY 1"
        ),
        {"model": model},
    ).mappings()
    return [cast(SummaryBacklog, dict(r)) for r in rows]
