"""Prediction-log and label ingestion routes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.body import json_media_type, read_body
from monitor.api.deps import Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.openapi_docs import LABEL_BODY, PREDICTION_BODY
from monitor.api.responses import FastJSONResponse
from monitor.domain.payloads import parse_records
from monitor.services.catalog.keys import Scope
from monitor.services.ingest import ingestion
from monitor.services.ingest.ingestion import OnError

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["ingestion"])

_ON_ERROR = Query(
    OnError.reject,
    description="`reject` (default): any invalid record rejects the whole request. "
    "`skip`: store the valid records and return the rejected ones.",
)


def _result(result: Any) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every id of a big batch one Python call at a time.
    out = {f.name: getattr(result, f.name) for f in fields(result)}
    out["errors"] = [e.as_dict() for e in result.errors]
    return out


@router.post(
    "/predictions",
    dependencies=[Depends(require(Scope.ingest))],
    openapi_extra=PREDICTION_BODY,
    response_model=schemas.PredictionsStored,
)
async def post_predictions(request: Request, ctx: Ctx, on_error: OnError = _ON_ERROR) -> FastJSONResponse:
    """Log predictions: one record, a JSON batch, a JSON array or NDJSON. Answers only after the commit."""
    kind = json_media_type(request)  # before the body is read
    body = await read_body(request)
    result = await run_in_threadpool(ingestion.ingest_prediction_body, ctx, body, kind, on_error=on_error)
    return FastJSONResponse(_result(result))


@router.post(
    "/labels",
    dependencies=[Depends(require(Scope.ingest))],
    openapi_extra=LABEL_BODY,
    response_model=schemas.LabelsStored,
)
async def post_labels(request: Request, ctx: Ctx, on_error: OnError = _ON_ERROR) -> FastJSONResponse:
    """Ground truth by prediction id. A label may precede its prediction; a newer label replaces an older one."""
    kind = json_media_type(request)  # before the body is read
    body = await read_body(request)
    records, model, _ = parse_records(body, kind)
    result = await run_in_threadpool(ingestion.ingest_labels, ctx, records, model=model, on_error=on_error)
    return FastJSONResponse(_result(result))
