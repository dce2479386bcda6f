"""KServe payload logger: point an InferenceService's ``logger.url`` here."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.body import read_body
from monitor.api.deps import Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import FastJSONResponse
from monitor.domain.kserve import CloudEvent, KServeError
from monitor.errors import MonitorError
from monitor.services.catalog.keys import Scope
from monitor.services.ingest import kserve

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["ingestion"])


@router.post(
    "/kserve",
    dependencies=[Depends(require(Scope.ingest, query_key=True))],
    response_model=schemas.KServeReceived,
    responses={202: {"description": "Stored; waiting for the event's other half", "model": schemas.KServeReceived}},
)
async def kserve_event(
    request: Request,
    ctx: Ctx,
    version: str | None = Query(
        None,
        max_length=64,
        description="the version this logger's InferenceService serves (a canary's or a shadow's); default: the "
        "version deployed as canary for Ce-Endpoint: canary, else the champion (the newest where none is declared)",
    ),
) -> FastJSONResponse:
    """A CloudEvent from KServe's payload logger (binary mode: ``Ce-Id``, ``Ce-Type``
    ``org.kubeflow.serving.inference.request`` / ``.response``, ``Ce-Inferenceservicename`` naming a
    registered model; V1 or Open Inference Protocol V2 bodies). The key may be sent as
    ``?api_key=``, since the logger sends no custom headers. 202 while the event's other half is
    awaited, 200 with what was stored once the pair is complete."""
    body = await read_body(request)
    try:
        event = CloudEvent.from_headers(dict(request.headers), body)
    except KServeError as exc:
        raise MonitorError(str(exc)) from None
    result = await run_in_threadpool(kserve.receive, ctx, event, version)
    return FastJSONResponse(result, status_code=202 if result["status"] != "stored" else 200)
