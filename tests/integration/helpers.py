"""Helpers shared by the integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from monitor.services.context import ServiceContext

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
