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

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from monitor.db import kserve_repo, log_repo
from monitor.domain.kserve import REQUEST, RESPONSE, CloudEvent, KServeError, pair_to_records
from monitor.domain.schema import declared_schema_from_json
from monitor.errors import InvalidRecords, MonitorError, RecordError
from monitor.services.catalog.registry import resolve_cached, versions_cached
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest import ingestion

KIND = {REQUEST: "request", RESPONSE: "response"}


def _version(ctx: ServiceContext, event: CloudEvent, version: str | None) -> tuple[str | None, str | None]:
    """Whose predictions these are, and the suffix their ids take.

    The version named by the logger's URL (``?version=``); else, for a canary rollout's predictor
    (``Ce-Endpoint: canary``), the version deployed as canary; else the champion, or the newest
    (None) when none is declared. A named version other than the champion shares the request ids
    of the champion's predictions (a canary's split, a shadow's mirror), so its prediction ids
    carry ``@<version>``."""
    versions = versions_cached(ctx, event.model)
    champion = next((v.version for v in reversed(versions) if v.deployment == "champion"), None)
    if version is None and event.endpoint == "canary":
        version = next((v.version for v in reversed(versions) if v.deployment == "canary"), None)
    if version is None:
        return champion, None
    return version, (None if version == champion else version)


def receive(ctx: ServiceContext, event: CloudEvent, version: str | None = None) -> dict[str, Any]:
    """Keep one half of a request/response pair until the other arrives; with both, store the
    pair's predictions and forget the halves. A named version (a canary's or a shadow's logger)
    keeps its halves apart from another version's of the same request id."""
    version, named = _version(ctx, event, version)
    # 404 for a model (or version) never registered; cached like every ingestion path's lookup
    vrow = resolve_cached(ctx, [(event.model, version)])[(event.model, version)]
    # the pair's key among the waiting halves: a named version's apart from another's
    pair = event.id if named is None else f"{event.id}@{named}"
    kind = KIND[event.type]
    other_kind = "response" if kind == "request" else "request"
    try:
        doc = _json(event.body, kind)  # a half that is not JSON is refused at once, not kept waiting
    except KServeError as exc:
        raise MonitorError(f"KServe event {event.id}: {exc}") from None
    with ctx.uow() as uow:
        kserve_repo.lock_pair(uow.conn, event.model, pair)
        other = kserve_repo.find(uow.conn, event.model, pair, other_kind)
        if other is None:
            personal = ctx.personal_data(vrow.version_id, vrow.schema)
            stored_as = partial(personal.stored_ids, hashes=ctx.secrets.value_hashes)
            if _completed(uow.conn, vrow.model_id, event.id, named, doc, stored_as):
                uow.commit()
                return {"event": event.id, "status": "duplicate: this pair was stored already"}
            kserve_repo.store(uow.conn, event.model, pair, kind, event.body, event.time)
            uow.commit()
            return {"event": event.id, "status": f"waiting for the {other_kind}"}
        uow.commit()
    timestamp = (event.time if kind == "request" else other.event_time) or event.time
    try:
        stored = _json(other.body, other_kind)
        request_doc, response_doc = (doc, stored) if kind == "request" else (stored, doc)
        records, unreadable = pair_to_records(
            event.id, request_doc, response_doc, declared_schema_from_json(vrow.schema), timestamp, named
        )
    except KServeError as exc:
        with ctx.uow() as uow:
            kserve_repo.forget(uow.conn, event.model, pair)
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
        kserve_repo.forget(uow.conn, event.model, pair, durable=False)
        uow.commit()
    return _answer(event.id, records, result, unreadable)


def _answer(
    event_id: str, records: list[dict[str, Any]], result: ingestion.PredictionResult, unreadable: list[RecordError]
) -> dict[str, Any]:
    """What a completed pair answers: what was stored, and each instance refused."""
    errors = _by_instance(records, result.errors) + unreadable
    errors.sort(key=lambda e: (e.index is None, e.index or 0))
    if not (result.accepted or result.duplicates) and errors:
        # nothing of the pair could be stored: a 422 naming each instance and field, not "stored"
        raise InvalidRecords(f"KServe event {event_id}: no instance could be stored", errors)
    return {
        "event": event_id,
        "status": "stored",
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected + len(unreadable),
        "errors": [e.as_dict() for e in errors],
    }


def _by_instance(records: list[dict[str, Any]], errors: list[RecordError]) -> list[RecordError]:
    """Validation's errors name the record's place in ``records``; the caller knows instances
    (a record's request id ends with its instance's index)."""
    instance = [int(r["request_id"].rsplit("-", 1)[1]) for r in records]
    return [RecordError(None if e.index is None else instance[e.index], e.field, e.reason) for e in errors]


def _completed(
    conn: Any, model_id: int, event_id: str, version: str | None, doc: Any, stored_as: Callable[[str], list[str]]
) -> bool:
    """A half arriving again after its pair was made into predictions (a logger's retry): its
    instances' predictions are stored (under the ids ``stored_as`` gives: hashed, for a model
    that hashes them). Storing it as waiting would leave an orphan half."""
    n = _instances(doc)
    suffix = "" if version is None else f"@{version}"  # a named version's ids, as pair_to_records makes them
    ids = [stored for i in range(min(n, 1000)) for stored in stored_as(f"{event_id}-{i}{suffix}")]
    return bool(ids) and bool(log_repo.stored_prediction_ids(conn, model_id, ids))


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
