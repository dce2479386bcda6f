"""The stored records themselves (the `data` scope): one prediction with everything recorded
about it, and a window's rows exported as Parquet or CSV. The audit log (`admin`)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from monitor.api import schemas
from monitor.api.deps import Caller, Ctx, require
from monitor.api.guard import GuardedRoute
from monitor.api.responses import ClosingStreamingResponse, FastJSONResponse
from monitor.domain.export_table import ExportFormat
from monitor.services.catalog.keys import Scope
from monitor.services.read_models import audit, export, records

router = APIRouter(route_class=GuardedRoute, prefix="/v1", tags=["records"])
data = [Depends(require(Scope.data))]


@router.get("/predictions/{prediction_id:path}", dependencies=data, response_model=schemas.PredictionRecord)
def get_prediction(
    prediction_id: str, ctx: Ctx, actor: Caller, model: str = Query(description="the model it was logged for")
) -> FastJSONResponse:
    """A stored prediction: its record and version, its label with the labels it replaced, the
    windows it counted in and the alerts and retraining requests about those windows. Audited."""
    return FastJSONResponse(records.get_prediction(ctx, model, prediction_id, actor))


@router.get(
    "/models/{name}/export",
    dependencies=data,
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The window's predictions with their labels, in (timestamp, prediction_id) order",
            "content": {
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def export_window(
    name: str,
    ctx: Ctx,
    actor: Caller,
    start: datetime = Query(description="the window's start (inclusive); to resume, the last row's timestamp"),
    end: datetime = Query(description="the window's end (exclusive)"),
    version: str | None = Query(None, description="one version (default: every version, with a `version` column)"),
    format: ExportFormat = Query(ExportFormat.parquet),
    after: str | None = Query(None, description="to resume: the prediction_id of the last row received"),
    spreadsheet_safe: bool = Query(False, description="CSV for spreadsheets: text cells starting = + - @ get a '"),
) -> StreamingResponse:
    """Stream a window's predictions with their labels as Parquet (a row group per chunk) or CSV,
    in bounded memory. One export at a time per key; audited when it starts and when it ends."""
    req = export.ExportRequest(name, start, end, version, format, after, spreadsheet_safe)
    started = await run_in_threadpool(export.start_export, ctx, req, actor)
    headers = {"Content-Disposition": f'attachment; filename="{started.filename}"', "Cache-Control": "no-store"}
    # closed when the response ends, also when the client went away mid-body (the export's lock,
    # slot and connection are freed then, and its stop audited)
    return ClosingStreamingResponse(
        started.body, media_type=started.media_type, headers=headers, on_close=started.close
    )


@router.get("/audit", dependencies=[Depends(require(Scope.admin))], response_model=schemas.AuditPage)
def audit_log(
    ctx: Ctx,
    action: str | None = Query(None, max_length=100, description="an action (key.created), or a family (rule.)"),
    model: str | None = Query(None, max_length=200),
    key: str | None = Query(None, max_length=64, description="a key's prefix"),
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = Query(
        None, ge=1, le=2**63 - 1, description="the next page: next_before_id of the page before"
    ),
    limit: int = Query(200, ge=1, le=5000),
) -> FastJSONResponse:
    """The audit log, newest first: who (key, or the command line, or the rules file), what,
    when, from where. Kept for MONITOR_HISTORY_RETENTION_DAYS; nothing changes an entry."""
    page = audit.list_entries(
        ctx, action=action, model=model, key_prefix=key, since=since, until=until, before_id=before_id, limit=limit
    )
    return FastJSONResponse(page)
