"""Liveness and readiness probes (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.deps import Ctx
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse, error_body
from monitor.services.infra.database_status import readiness

router = APIRouter(route_class=GuardedRoute, tags=["health"])


@router.get("/healthz", response_model=schemas.Healthy)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=schemas.Ready,
    responses={503: {"description": "The database is unreachable or not migrated to head"}},
)
async def readyz(ctx: Ctx) -> FastJSONResponse:
    try:
        at_head, rev = await run_in_threadpool(readiness, ctx)
    except Exception as exc:
        return FastJSONResponse(
            error_body("not_ready", f"database unreachable: {exc}"), 503, headers={"Retry-After": "5"}
        )
    if not at_head:
        return FastJSONResponse(error_body("not_ready", f"migrations not at head (at {rev})"), 503)
    return FastJSONResponse({"status": "ready", "revision": rev})
