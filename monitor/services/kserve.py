"""KServe payload logger ingestion: the first half of an event waits in the database; the
second makes the pair into predictions (one per instance), ingested like any other — so a
retried half, or a pair seen twice, lands once (prediction ids ``<ce-id>-<i>``).

The first half costs a JSON parse (a half that is not JSON is refused at once), one index probe
(is its pair stored already?) and one insert: the logger's queue, which blocks inference when
full, is answered fast. An instance that cannot be read or is invalid is skipped and counted as a
rejected record and a schema violation (the logger cannot act on an error), the others are
stored; a pair none of whose instances could be stored is a 422 naming each. A half repeated
after its pair was stored is answered as a duplicate instead of waiting for ever.
"""

from __future__ import annotations

from typing import Any

import orjson

from monitor.db import kserve_repo
from monitor.domain.kserve import REQUEST, RESPONSE, CloudEvent, KServeError, pair_to_records
from monitor.domain.records import RecordError
from monitor.domain.schema import schema_from_json
from monitor.errors import InvalidRecords, MonitorError
from monitor.services import ingestion
from monitor.services.context import ServiceContext
from monitor.services.registry import resolve_cached

KIND = {REQUEST: "request", RESPONSE: "response"}


def receive(ctx: ServiceContext, event: CloudEvent) -> dict[str, Any]:
    """Keep one half of a request/response pair until the other arrives; with both, store the
    pair's predictions and forget the halves."""
    # 404 for a model never registered; cached like every ingestion path's lookup
    vrow = resolve_cached(ctx, [(event.model, None)])[(event.model, None)]
    kind = KIND[event.type]
    other_kind = "response" if kind == "request" else "request"
    try:
        doc = _json(event.body, kind)  # a half that is not JSON is refused at once, not kept waiting
    except KServeError as exc:
        raise MonitorError(f"KServe event {event.id}: {exc}") from None
    with ctx.uow() as uow:
        kserve_repo.lock_pair(uow.conn, event.model, event.id)
        other = kserve_repo.find(uow.conn, event.model, event.id, other_kind)
        if other is None:
            if _completed(uow.conn, vrow.model_id, event.id, doc):
                uow.commit()
                return {"event": event.id, "status": "duplicate: this pair was stored already"}
            kserve_repo.store(uow.conn, event.model, event.id, kind, event.body, event.time)
            uow.commit()
            return {"event": event.id, "status": f"waiting for the {other_kind}"}
        uow.commit()
    timestamp = (event.time if kind == "request" else other["event_time"]) or event.time
    try:
        stored = _json(other["body"], other_kind)
        request_doc, response_doc = (doc, stored) if kind == "request" else (stored, doc)
        records, unreadable = pair_to_records(
            event.id, request_doc, response_doc, schema_from_json(vrow.schema), timestamp
        )
    except KServeError as exc:
        with ctx.uow() as uow:
            kserve_repo.forget(uow.conn, event.model, event.id)
            uow.commit()
        raise MonitorError(f"KServe event {event.id}: {exc}") from None
    result = (
        ingestion.ingest_predictions(
            ctx, records, model=event.model, version=vrow.version, on_error=ingestion.OnError.skip
        )
        if records
        else ingestion.PredictionResult(ids=[])
    )
    if unreadable:
        ingestion.count_rejected(ctx, "prediction", vrow.model_id, unreadable)
    with ctx.uow() as uow:
        # Not waited on to disk: lost in a crash, the pair's halves are an orphan maintenance drops
        # within the hour, and a resent half finds the predictions already stored (same ids).
        kserve_repo.forget(uow.conn, event.model, event.id, durable=False)
        uow.commit()
    errors = _by_instance(records, result.errors) + unreadable
    errors.sort(key=lambda e: (e.index is None, e.index or 0))
    if not (result.accepted or result.duplicates) and errors:
        # nothing of the pair could be stored: a 422 naming each instance and field, not "stored"
        raise InvalidRecords(f"KServe event {event.id}: no instance could be stored", errors)
    return {
        "event": event.id,
        "status": "stored",
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected + len(unreadable),
        "errors": [e.as_dict() for e in errors],
    }


def _by_instance(records: list[dict[str, Any]], errors: list[RecordError]) -> list[RecordError]:
    """Validation's errors name the record's place in ``records``; the caller knows instances
    (a record's prediction id ends with its instance's index)."""
    instance = [int(r["prediction_id"].rsplit("-", 1)[1]) for r in records]
    return [RecordError(None if e.index is None else instance[e.index], e.field, e.reason) for e in errors]


def _completed(conn: Any, model_id: int, event_id: str, doc: Any) -> bool:
    """A half arriving again after its pair was made into predictions (a logger's retry): its
    instances' predictions are stored. Storing it as waiting would leave an orphan half."""
    n = _instances(doc)
    return n > 0 and kserve_repo.any_stored(conn, model_id, [f"{event_id}-{i}" for i in range(min(n, 1000))])


def _instances(doc: Any) -> int:
    if not isinstance(doc, dict):
        return 0
    for key in ("instances", "predictions", "inputs", "outputs"):
        value = doc.get(key)
        if isinstance(value, list):
            if key in ("inputs", "outputs") and value and isinstance(value[0], dict):
                shape = value[0].get("shape")
                return int(shape[0]) if isinstance(shape, list) and shape and isinstance(shape[0], int) else 0
            return len(value)
    return 0


def _json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise KServeError(f"{what} body is not JSON: {exc}") from None
