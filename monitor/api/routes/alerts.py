"""Alerts, their history, acknowledgements and silences; the outbox, the delivery log and
retraining triggers. Reading needs `read`; acknowledging, silencing and redelivering `admin`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from alerts.silences import SilenceSpec
from monitor.api.deps import get_ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services import alert_ops, delivery
from monitor.services.context import ServiceContext
from monitor.services.keys import Scope

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["alerts"])
read = [Depends(require(Scope.read))]
admin = [Depends(require(Scope.admin))]


@router.get("/alerts", dependencies=read)
async def list_alerts(
    state: str | None = Query(None, description="pending, firing or resolved"),
    model: str | None = None,
    ctx: ServiceContext = Depends(get_ctx),
) -> FastJSONResponse:
    """Alert instances with their evidence; ``silenced_by`` lists the silences muting each."""
    return FastJSONResponse({"alerts": await run_in_threadpool(alert_ops.list_alerts, ctx, state, model)})


@router.get("/alerts/history", dependencies=read)
async def alert_history(
    model: str | None = None, limit: int = Query(500, ge=1, le=10_000), ctx: ServiceContext = Depends(get_ctx)
) -> FastJSONResponse:
    return FastJSONResponse({"history": await run_in_threadpool(alert_ops.alert_history, ctx, model, limit)})


@router.get("/alerts/{fingerprint}", dependencies=read)
async def get_alert(fingerprint: str, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse(await run_in_threadpool(alert_ops.get_alert, ctx, fingerprint))


class Ack(BaseModel):
    by: str = Field(min_length=1, max_length=200)
    comment: str = Field("", max_length=2000)


@router.post("/alerts/{fingerprint}/ack", dependencies=admin)
async def acknowledge(fingerprint: str, ack: Ack, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Acknowledge an alert (until its next incident). It goes on notifying; silence it to stop that."""
    return FastJSONResponse(await run_in_threadpool(alert_ops.acknowledge, ctx, fingerprint, ack.by, ack.comment))


@router.get("/silences", dependencies=read)
async def list_silences(active: bool = False, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse({"silences": await run_in_threadpool(alert_ops.list_silences, ctx, active)})


@router.post("/silences", status_code=201, dependencies=admin)
async def create_silence(spec: SilenceSpec, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Mute alerts whose labels match every matcher (=, !=, =~, !~) from ``starts_at`` to ``ends_at``."""
    return FastJSONResponse(await run_in_threadpool(alert_ops.create_silence, ctx, spec), status_code=201)


@router.delete("/silences/{silence_id}", status_code=204, dependencies=admin)
async def expire_silence(silence_id: str, ctx: ServiceContext = Depends(get_ctx)) -> None:
    await run_in_threadpool(alert_ops.expire_silence, ctx, silence_id)


@router.get("/outbox", dependencies=read)
async def list_outbox(
    status: str | None = None,
    receiver: str | None = None,
    limit: int = Query(200, ge=1, le=5000),
    ctx: ServiceContext = Depends(get_ctx),
) -> FastJSONResponse:
    """Messages to deliver or delivered: status, attempts, next attempt, last error, the body."""
    return FastJSONResponse({"messages": await run_in_threadpool(alert_ops.list_outbox, ctx, status, receiver, limit)})


@router.post("/outbox/{message_id}/redeliver", status_code=202, dependencies=admin)
async def redeliver(message_id: str, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Send a message again (same webhook-id: receivers that saw it drop the repeat)."""
    await run_in_threadpool(delivery.redeliver, ctx, message_id)
    return FastJSONResponse({"message_id": message_id, "status": "pending"}, status_code=202)


@router.get("/deliveries", dependencies=read)
async def list_deliveries(
    message_id: str | None = None,
    receiver: str | None = None,
    limit: int = Query(500, ge=1, le=10_000),
    ctx: ServiceContext = Depends(get_ctx),
) -> FastJSONResponse:
    """The delivery log: every attempt with its status code, latency and error."""
    return FastJSONResponse(
        {"deliveries": await run_in_threadpool(alert_ops.list_deliveries, ctx, message_id, receiver, limit)}
    )


@router.get("/retrain-triggers", dependencies=read)
async def list_retrain_triggers(
    model: str | None = None, limit: int = Query(200, ge=1, le=5000), ctx: ServiceContext = Depends(get_ctx)
) -> FastJSONResponse:
    """Every retraining request sent (or being sent), with its evidence and delivery status."""
    return FastJSONResponse({"triggers": await run_in_threadpool(alert_ops.list_retrain_triggers, ctx, model, limit)})
