"""Prometheus' two scrapes (each needs `read`: give Prometheus a read key as its scrape
``authorization`` credentials): ``GET /metrics``, this process's own numbers, to scrape on every
replica; ``GET /metrics/database``, the numbers read from the database, alike on every replica,
to scrape once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import require
from monitor.api.guard import GuardedRoute
from monitor.services.catalog.keys import Scope

router = APIRouter(route_class=GuardedRoute, tags=["operations"])


async def _exposition(registry: CollectorRegistry) -> Response:
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/metrics", dependencies=[Depends(require(Scope.read))], response_class=Response)
async def metrics(request: Request) -> Response:
    """This process's own numbers: ingestion latency (over every worker of ``monitor serve
    --workers N``). Scrape every replica."""
    return await _exposition(request.app.state.metrics.process)


@router.get("/metrics/database", dependencies=[Depends(require(Scope.read))], response_class=Response)
async def database_metrics(request: Request) -> Response:
    """Records ingested, webhook deliveries by outcome, scheduler job durations, failures, last
    successes and backlog, and the newest model metrics: read from the database, the same on every
    replica. Scrape once (through the service's address, not each replica)."""
    return await _exposition(request.app.state.metrics.database)
