"""Request payloads for ingestion: one record, an array, a batch object, or NDJSON."""

from __future__ import annotations

import json
from typing import Any

import orjson

from monitor.errors import MalformedBody, MonitorError

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}


def loads_json(data: bytes) -> Any:
    """JSON through orjson; what orjson refuses, through the standard library, so that the
    validator names the record and field a value is in instead of the whole body being malformed:
    a number orjson cannot hold (an integer of hundreds of digits reads as an infinite double
    there; the standard library reads it exactly), and the ``Infinity``, ``-Infinity`` and ``NaN``
    literals that Python's ``json.dumps`` writes for a float feature (±inf in a numerical feature
    is kept; NaN is a missing value). Anything still unreadable keeps orjson's message."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        first = exc
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise first from None


def parse_records(body: bytes, content_type: str) -> tuple[list[Any], str | None, str | None]:
    """Records and the batch-level model and version.

    Accepts one record object, a JSON array of records, ``{"model", "version", "records": [...]}``,
    or NDJSON (one record, or one such batch, a line).
    """
    if not body.strip():
        raise MalformedBody("the request body is empty")
    if content_type in NDJSON_TYPES:
        records: list[Any] = []
        for lineno, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(loads_json(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"NDJSON line {lineno} is not valid JSON: {exc}") from exc
        return records, None, None
    try:
        doc = loads_json(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"the request body is not valid JSON: {exc}") from exc
    if isinstance(doc, list):
        return doc, None, None
    if isinstance(doc, dict) and "records" in doc:
        records = doc["records"]
        if not isinstance(records, list):
            raise MalformedBody("`records` must be a JSON array")
        unknown = set(doc) - {"model", "version", "records"}
        if unknown:
            raise MonitorError(f"unknown batch fields: {', '.join(sorted(unknown))}")
        model, version = doc.get("model"), doc.get("version")
        if model is not None and not isinstance(model, str):
            raise MonitorError("`model` must be a string")
        return records, model, None if version is None else str(version)
    if isinstance(doc, dict):
        return [doc], None, None
    raise MalformedBody("expected a JSON object or array")
