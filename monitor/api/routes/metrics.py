"""Metric points of a model."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from monitor.api import schemas
from monitor.api.deps import Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.errors import MonitorError
from monitor.services.catalog.keys import Scope
from monitor.services.jobs import metric_store

router = APIRouter(route_class=GuardedRoute, prefix="/v1/models", tags=["metrics"])


def _labels(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise MonitorError(f"label filter {pair!r} must look like key:value, e.g. feature:age")
        out[key] = value
    return out


@router.get("/{name}/metrics", dependencies=[Depends(require(Scope.read))], response_model=schemas.MetricPoints)
def get_metrics(
    name: str,
    ctx: Ctx,
    metric: str | None = Query(None, description="e.g. feature_drift, dataset_drift, quality.accuracy"),
    version: str | None = Query(None),
    label: list[str] = Query([], description="key:value, repeatable; every one must match"),
    start: datetime | None = Query(None, description="windows ending after this time"),
    end: datetime | None = Query(None, description="windows starting before this time"),
    limit: int = Query(10_000, ge=1, le=100_000),
) -> FastJSONResponse:
    """Metric points, oldest window first, each with its sample size, threshold and details."""
    points = metric_store.query_metrics(
        ctx, name, metric=metric, version=version, labels=_labels(label), start=start, end=end, limit=limit
    )
    return FastJSONResponse({"points": points})
