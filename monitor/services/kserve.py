"""KServe payload logger ingestion: the first half of an event waits in the database; the
second makes the pair into predictions (one per instance), ingested like any other — so a
retried half, or a pair seen twice, lands once (prediction ids ``<ce-id>-<i>``).

The first half costs one insert: the logger's queue, which blocks inference when full, is
answered fast. Invalid instances are skipped and counted as schema violations (the logger
cannot act on an error), valid ones are stored.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.db import kserve_repo
from monitor.domain.kserve import REQUEST, RESPONSE, CloudEvent, KServeError, pair_to_records
from monitor.domain.schema import schema_from_json
from monitor.errors import MonitorError
from monitor.services import ingestion
from monitor.services.context import ServiceContext
from monitor.services.registry import resolve_cached

KIND = {REQUEST: "request", RESPONSE: "response"}


def receive(ctx: ServiceContext, event: CloudEvent) -> dict[str, Any]:
    # 404 for a model never registered; cached like every ingestion path's lookup
    vrow = resolve_cached(ctx, [(event.model, None)])[(event.model, None)]
    kind = KIND[event.type]
    other_kind = "response" if kind == "request" else "request"
    with ctx.uow() as uow:
        kserve_repo.lock_pair(uow.conn, event.model, event.id)
        other = kserve_repo.find(uow.conn, event.model, event.id, other_kind)
        if other is None:
            kserve_repo.store(uow.conn, event.model, event.id, kind, event.body, event.time)
            uow.commit()
            return {"event": event.id, "status": f"waiting for the {other_kind}"}
        uow.commit()
    request_body, response_body = (event.body, other["body"]) if kind == "request" else (other["body"], event.body)
    timestamp = (event.time if kind == "request" else other["event_time"]) or event.time
    try:
        records = pair_to_records(
            event.id,
            _json(request_body, "request"),
            _json(response_body, "response"),
            schema_from_json(vrow.schema),
            timestamp,
        )
    except KServeError as exc:
        with ctx.uow() as uow:
            kserve_repo.forget(uow.conn, event.model, event.id)
            uow.commit()
        raise MonitorError(f"KServe event {event.id}: {exc}") from None
    result = ingestion.ingest_predictions(
        ctx, records, model=event.model, version=vrow.version, on_error=ingestion.OnError.skip
    )
    with ctx.uow() as uow:
        # Not waited on to disk: lost in a crash, the pair's halves are an orphan maintenance drops
        # within the hour, and a resent half finds the predictions already stored (same ids).
        kserve_repo.forget(uow.conn, event.model, event.id, durable=False)
        uow.commit()
    return {
        "event": event.id,
        "status": "stored",
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "errors": [e.as_dict() for e in result.errors],
    }


def _json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise KServeError(f"{what} body is not JSON: {exc}") from None
