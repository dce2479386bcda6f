"""Rules and receivers (reading needs `read`, changing needs `admin`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from starlette.concurrency import run_in_threadpool

from monitor.api.deps import get_ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.services import alert_config
from monitor.services.context import ServiceContext
from monitor.services.keys import Scope

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["rules"])
JsonObject = Annotated[dict[str, Any], Body()]
read = [Depends(require(Scope.read))]
admin = [Depends(require(Scope.admin))]


@router.get("/rules", dependencies=read)
async def list_rules(ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Every rule, and what the last load of the rules file refused (rule, field, reason)."""
    return FastJSONResponse(await run_in_threadpool(alert_config.list_rules, ctx))


@router.post("/rules", status_code=201, dependencies=admin)
async def create_rule(doc: JsonObject, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """A new rule; refused with the field and the reason when invalid."""
    rule = await run_in_threadpool(lambda: alert_config.put_rule(ctx, doc, create=True))
    return FastJSONResponse(rule, status_code=201)


@router.get("/rules/{name}", dependencies=read)
async def get_rule(name: str, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse(await run_in_threadpool(alert_config.get_rule, ctx, name))


@router.put("/rules/{name}", dependencies=admin)
async def replace_rule(name: str, doc: JsonObject, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse(await run_in_threadpool(lambda: alert_config.put_rule(ctx, doc, name=name)))


@router.delete("/rules/{name}", status_code=204, dependencies=admin)
async def delete_rule(name: str, ctx: ServiceContext = Depends(get_ctx)) -> None:
    await run_in_threadpool(alert_config.delete_rule, ctx, name)


@router.get("/receivers", dependencies=read)
async def list_receivers(ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    return FastJSONResponse({"receivers": await run_in_threadpool(alert_config.list_receivers, ctx)})


@router.put("/receivers/{name}", dependencies=admin)
async def put_receiver(name: str, doc: JsonObject, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Create or replace a receiver. The answer holds its signing secret (whsec_…), the only time
    it is shown; replacing a receiver without a secret keeps the old one."""
    row = await run_in_threadpool(alert_config.put_receiver, ctx, {**doc, "name": name})
    return FastJSONResponse(row)


@router.delete("/receivers/{name}", status_code=204, dependencies=admin)
async def delete_receiver(name: str, ctx: ServiceContext = Depends(get_ctx)) -> None:
    await run_in_threadpool(alert_config.delete_receiver, ctx, name)


@router.get("/inhibit-rules", dependencies=read)
async def list_inhibit_rules(ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Inhibit rules: while an alert matching ``source_matchers`` fires, alerts matching
    ``target_matchers`` with the same values of the ``equal`` labels notify nobody."""
    return FastJSONResponse({"inhibit_rules": await run_in_threadpool(alert_config.list_inhibit_rules, ctx)})


@router.put("/inhibit-rules/{name}", dependencies=admin)
async def put_inhibit_rule(name: str, doc: JsonObject, ctx: ServiceContext = Depends(get_ctx)) -> FastJSONResponse:
    """Create or replace an inhibit rule; refused with the field and the reason when invalid."""
    return FastJSONResponse(await run_in_threadpool(alert_config.put_inhibit_rule, ctx, {**doc, "name": name}))


@router.delete("/inhibit-rules/{name}", status_code=204, dependencies=admin)
async def delete_inhibit_rule(name: str, ctx: ServiceContext = Depends(get_ctx)) -> None:
    await run_in_threadpool(alert_config.delete_inhibit_rule, ctx, name)
