"""``GET /metrics`` in Prometheus's text format (needs `read`: give Prometheus a read key as its
scrape ``authorization`` credentials)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import require
from monitor.api.guard import GuardedRoute
from monitor.services.keys import Scope

router = APIRouter(route_class=GuardedRoute, tags=["operations"])


@router.get("/metrics", dependencies=[Depends(require(Scope.read))], response_class=Response)
async def metrics(request: Request) -> Response:
    """Records ingested, ingestion latency (this process), webhook deliveries by outcome,
    scheduler job durations and last successes, and the newest model metrics."""
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
