"""Alerts, their history, acknowledgements and silences; the outbox, the delivery log and
retraining triggers. Reading needs `read`; acknowledging, silencing and redelivering `admin`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from alerts.records import AlertRecord
from alerts.silences import SilenceSpec
from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services.alerting import alert_ops, delivery
from monitor.services.catalog.keys import Scope

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["alerts"])
read = [Depends(require(Scope.read))]
admin = [Depends(require(Scope.admin))]


@router.get("/alerts", dependencies=read, response_model=schemas.AlertList)
def list_alerts(
    ctx: Ctx,
    state: str | None = Query(None, description="pending, firing or resolved"),
    model: str | None = None,
) -> FastJSONResponse:
    """Alert instances with their evidence; ``silenced_by`` lists the silences muting each,
    ``inhibited_by`` the firing alerts that mute it (inhibit rules)."""
    return FastJSONResponse({"alerts": alert_ops.list_alerts(ctx, state, model)})


@router.get("/alerts/history", dependencies=read, response_model=schemas.AlertHistory)
def alert_history(ctx: Ctx, model: str | None = None, limit: int = Query(500, ge=1, le=10_000)) -> FastJSONResponse:
    return FastJSONResponse({"history": alert_ops.alert_history(ctx, model, limit)})


@router.get("/alerts/{fingerprint}", dependencies=read, response_model=AlertRecord)
def get_alert(fingerprint: str, ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse(alert_ops.get_alert(ctx, fingerprint))


class Ack(BaseModel):
    by: str = Field(min_length=1, max_length=200)
    comment: str = Field("", max_length=2000)


@router.post("/alerts/{fingerprint}/ack", dependencies=admin, response_model=AlertRecord)
def acknowledge(fingerprint: str, ack: Ack, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Acknowledge an alert (until its next incident). It goes on notifying; silence it to stop that."""
    return FastJSONResponse(alert_ops.acknowledge(ctx, fingerprint, ack.by, ack.comment, actor))


@router.get("/silences", dependencies=read, response_model=schemas.SilenceList)
def list_silences(ctx: Ctx, active: bool = False) -> FastJSONResponse:
    return FastJSONResponse({"silences": alert_ops.list_silences(ctx, active)})


@router.post("/silences", status_code=201, dependencies=admin, response_model=schemas.SilenceOut)
def create_silence(spec: SilenceSpec, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Mute alerts whose labels match every matcher (=, !=, =~, !~) from ``starts_at`` to ``ends_at``."""
    return FastJSONResponse(alert_ops.create_silence(ctx, spec, actor), status_code=201)


@router.delete("/silences/{silence_id}", status_code=204, dependencies=admin)
def expire_silence(silence_id: str, ctx: Ctx, actor: Caller) -> None:
    alert_ops.expire_silence(ctx, silence_id, actor)


@router.get("/outbox", dependencies=read, response_model=schemas.OutboxList)
def list_outbox(
    ctx: Ctx, status: str | None = None, receiver: str | None = None, limit: int = Query(200, ge=1, le=5000)
) -> FastJSONResponse:
    """Messages to deliver or delivered: status, attempts, next attempt, last error, the body."""
    return FastJSONResponse({"messages": alert_ops.list_outbox(ctx, status, receiver, limit)})


@router.post("/outbox/{message_id}/redeliver", status_code=202, dependencies=admin, response_model=schemas.Redelivery)
def redeliver(message_id: str, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Send a message again (same webhook-id: receivers that saw it drop the repeat)."""
    delivery.redeliver(ctx, message_id, actor)
    return FastJSONResponse({"message_id": message_id, "status": "pending"}, status_code=202)


@router.get("/deliveries", dependencies=read, response_model=schemas.DeliveryList)
def list_deliveries(
    ctx: Ctx, message_id: str | None = None, receiver: str | None = None, limit: int = Query(500, ge=1, le=10_000)
) -> FastJSONResponse:
    """The delivery log: every attempt with its status code, latency and error."""
    return FastJSONResponse({"deliveries": alert_ops.list_deliveries(ctx, message_id, receiver, limit)})


@router.get("/retrain-triggers", dependencies=read, response_model=schemas.TriggerList)
def list_retrain_triggers(
    ctx: Ctx, model: str | None = None, limit: int = Query(200, ge=1, le=5000)
) -> FastJSONResponse:
    """Every retraining request sent (or being sent), with its evidence and delivery status."""
    return FastJSONResponse({"triggers": alert_ops.list_retrain_triggers(ctx, model, limit)})
