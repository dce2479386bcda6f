"""Storing and reading metric points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from monitor.db import metrics_repo, registry_repo
from monitor.db.registry_repo import VersionRow
from monitor.errors import NotFound
from monitor.metrics.points import MetricPoint
from monitor.services.catalog.registry import model_id_or_404
from monitor.services.infra.context import ServiceContext


def record_points(ctx: ServiceContext, model: str, version: str | None, points: Sequence[MetricPoint]) -> int:
    """Store a run's points in one transaction; running the same window again overwrites them."""
    with ctx.uow() as uow:
        vrow = registry_repo.get_version(uow.conn, model, version)
        if vrow is None:
            raise NotFound(
                f"model {model!r} has no version {version!r}" if version else f"model {model!r} is not registered"
            )
        n = _upsert(uow.conn, vrow, points)
        uow.commit()
    return n


def store_points(ctx: ServiceContext, vrow: VersionRow, points: Sequence[MetricPoint]) -> int:
    """``record_points`` for a version already read."""
    with ctx.uow() as uow:
        n = _upsert(uow.conn, vrow, points)
        uow.commit()
    return n


def _upsert(conn: Connection, vrow: VersionRow, points: Sequence[MetricPoint]) -> int:
    """The points upserted, their digests laid out by the version's features as the row holds them."""
    features = [f["name"] for f in vrow.schema["features"]]
    return metrics_repo.upsert_points(conn, vrow.model_id, vrow.version_id, points, features)


def query_metrics(
    ctx: ServiceContext,
    model: str,
    *,
    metric: str | None = None,
    version: str | None = None,
    labels: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 10_000,
) -> list[dict[str, Any]]:
    with ctx.uow() as uow:
        model_id = model_id_or_404(uow.conn, model)
        version_id = None
        if version is not None:
            vrow = registry_repo.get_version(uow.conn, model, version)
            if vrow is None:
                raise NotFound(f"model {model!r} has no version {version!r}")
            version_id = vrow.version_id
        return metrics_repo.query_points(
            uow.conn, model_id, metric=metric, version_id=version_id, labels=labels, start=start, end=end, limit=limit
        )
