"""Rules, inhibit rules and receivers (reading needs `read`, changing needs `admin`).

Their bodies are documented with the models' shapes (``alerts.rules.Rule``,
``alerts.inhibit.InhibitRule``, ``alerts.receivers.ReceiverSpec``) and validated by the
services, which answer a bad one with 400 naming the rule, the field and the reason: the same
answer the rules file's report gives."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from alerts.inhibit import InhibitRule
from alerts.receivers import ReceiverSpec
from alerts.rules import Rule
from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.openapi_docs import model_body
from monitor.api.responses import FastJSONResponse
from monitor.services.alerting import alert_config
from monitor.services.catalog.keys import Scope

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["rules"])
JsonObject = Annotated[dict[str, Any], Body()]
read = [Depends(require(Scope.read))]
admin = [Depends(require(Scope.admin))]
NAMED = frozenset({"name"})
RULE_BODY = model_body(Rule, "A rule (the rules file's `rules:` entries)")


@router.get("/rules", dependencies=read, response_model=schemas.RuleList)
def list_rules(ctx: Ctx) -> FastJSONResponse:
    """Every rule, and what the last load of the rules file refused (rule, field, reason)."""
    return FastJSONResponse(alert_config.list_rules(ctx))


@router.post("/rules", status_code=201, dependencies=admin, response_model=schemas.StoredRule, openapi_extra=RULE_BODY)
def create_rule(doc: JsonObject, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """A new rule; refused with the field and the reason when invalid."""
    return FastJSONResponse(alert_config.put_rule(ctx, doc, create=True, actor=actor), status_code=201)


@router.get("/rules/{name}", dependencies=read, response_model=schemas.StoredRule)
def get_rule(name: str, ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse(alert_config.get_rule(ctx, name))


@router.put("/rules/{name}", dependencies=admin, response_model=schemas.StoredRule, openapi_extra=RULE_BODY)
def replace_rule(name: str, doc: JsonObject, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    return FastJSONResponse(alert_config.put_rule(ctx, doc, name=name, actor=actor))


@router.delete("/rules/{name}", status_code=204, dependencies=admin)
def delete_rule(name: str, ctx: Ctx, actor: Caller) -> None:
    alert_config.delete_rule(ctx, name, actor)


@router.get("/receivers", dependencies=read, response_model=schemas.ReceiverList)
def list_receivers(ctx: Ctx) -> FastJSONResponse:
    return FastJSONResponse({"receivers": alert_config.list_receivers(ctx)})


@router.put(
    "/receivers/{name}",
    dependencies=admin,
    response_model=schemas.ReceiverOut,
    openapi_extra=model_body(ReceiverSpec, "A receiver (its name from the path)", from_path=NAMED),
)
def put_receiver(name: str, doc: JsonObject, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Create or replace a receiver. The answer holds its signing secret (whsec_…), the only time
    it is shown; replacing a receiver without a secret keeps the old one."""
    return FastJSONResponse(alert_config.put_receiver(ctx, {**doc, "name": name}, actor))


@router.delete("/receivers/{name}", status_code=204, dependencies=admin)
def delete_receiver(name: str, ctx: Ctx, actor: Caller) -> None:
    alert_config.delete_receiver(ctx, name, actor)


@router.get("/inhibit-rules", dependencies=read, response_model=schemas.InhibitRuleList)
def list_inhibit_rules(ctx: Ctx) -> FastJSONResponse:
    """Inhibit rules: while an alert matching ``source_matchers`` fires, alerts matching
    ``target_matchers`` with the same values of the ``equal`` labels notify nobody."""
    return FastJSONResponse({"inhibit_rules": alert_config.list_inhibit_rules(ctx)})


@router.put(
    "/inhibit-rules/{name}",
    dependencies=admin,
    response_model=schemas.StoredRule,
    openapi_extra=model_body(InhibitRule, "An inhibit rule (its name from the path)", from_path=NAMED),
)
def put_inhibit_rule(name: str, doc: JsonObject, ctx: Ctx, actor: Caller) -> FastJSONResponse:
    """Create or replace an inhibit rule; refused with the field and the reason when invalid."""
    return FastJSONResponse(alert_config.put_inhibit_rule(ctx, {**doc, "name": name}, actor))


@router.delete("/inhibit-rules/{name}", status_code=204, dependencies=admin)
def delete_inhibit_rule(name: str, ctx: Ctx, actor: Caller) -> None:
    alert_config.delete_inhibit_rule(ctx, name, actor)
