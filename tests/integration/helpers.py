"""Helpers shared by the integration tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from monitor.metrics.names import METRICS
from monitor.metrics.points import MetricPoint
from monitor.services.alerting.delivery import deliver_due
from monitor.services.infra.context import ServiceContext

# Every stored prediction, one a row or compacted into blocks (the scheduler compacts past hours):
# what a test counting the log reads.
LOG_ROWS = (
    "(SELECT model_id, prediction_id, ts FROM predictions UNION ALL "
    "SELECT b.model_id, r.prediction_id, r.ts "
    "FROM prediction_blocks b, unnest(b.prediction_id, b.ts) r(prediction_id, ts))"
)

BINARY_SPEC: dict[str, Any] = {
    "name": "churn",
    "task": "binary_classification",
    "classes": ["stay", "leave"],
    "features": [
        {"name": "tenure", "type": "numerical"},
        {"name": "plan", "type": "categorical"},
        {"name": "autopay", "type": "boolean", "required": False},
    ],
    "segments": ["plan", "country"],
}


@dataclass
class Api:
    http: TestClient
    admin: dict[str, str]
    ingest: dict[str, str]
    read: dict[str, str]
    ctx: ServiceContext
    data: dict[str, str] = field(default_factory=dict)  # the `data` scope: look-ups and exports

    def count(self, sql: str, **params: Any) -> int:
        with self.ctx.engine.connect() as conn:
            return int(conn.execute(text(sql), params).scalar_one())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def prediction(pid: str | None = "p1", **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"features": {"tenure": 12, "plan": "basic"}, "prediction": "stay", "scores": 0.3}
    if pid is not None:
        rec["prediction_id"] = pid
    rec.update(kw)
    return rec


@dataclass
class Receiver:
    """A webhook receiver that answers 503 (with Retry-After: 0) to the first ``fail_first``
    attempts of each message (by webhook-id), then 200; it keeps every request."""

    fail_first: int = 0
    status_by_path: dict[str, int] = field(default_factory=dict)  # a fixed answer for these paths
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["status"] == 200]


def unnamed_metrics(ctx: ServiceContext) -> set[str]:
    """Metrics the run wrote that a rule could not name (``monitor.metrics.names``)."""
    with ctx.engine.connect() as conn:
        written = {row[0] for row in conn.execute(text("SELECT DISTINCT metric FROM metric_points"))}
    assert written, "no metric points"
    return written - set(METRICS)


def drift_point(end: datetime, drifted: bool, value: float) -> MetricPoint:
    return MetricPoint(
        "dataset_drift", end - timedelta(hours=1), end, value, sample_size=900, threshold=0.5, drifted=drifted
    )


def deliver_all(api: Api, rounds: int = 10) -> None:
    """Deliver until nothing is due, fast-forwarding the clock past each backoff."""
    with httpx.Client() as client:
        for i in range(rounds):
            if not deliver_due(api.ctx, client, now=datetime.now(UTC) + timedelta(minutes=30 * (i + 1))):
                return


@contextmanager
def scratch_database(database_url: str, suffix: str) -> Iterator[str]:
    """The URL of a database of its own on the tests' server, dropped afterwards: for a test that
    needs one untouched (the shared one is left at head, and keeps statistics through its
    truncations)."""
    url = make_url(database_url)
    admin = url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    scratch = f"{url.database}_{suffix}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    try:
        yield url.set(database=scratch).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')


@contextmanager
def scratch_engine(database_url: str, suffix: str) -> Iterator[Engine]:
    """An engine on a ``scratch_database``."""
    with scratch_database(database_url, suffix) as url:
        engine = create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
