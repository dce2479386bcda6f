"""Request payloads for ingestion: one record, an array, a batch object, or NDJSON."""

from __future__ import annotations

import json
from typing import Any

import orjson

from monitor.errors import MalformedBody, MonitorError

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}


def _loads(data: bytes) -> Any:
    """JSON through orjson; a number orjson cannot hold (an integer of hundreds of digits reads as
    an infinite double there) through the standard library, which reads it exactly, so that the
    validator names the record and field it is in instead of the whole body being malformed."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "infinity" not in str(exc):
            raise
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise orjson.JSONDecodeError(str(exc), "", 0) from exc


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
                records.append(_loads(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"NDJSON line {lineno} is not valid JSON: {exc}") from exc
        return records, None, None
    try:
        doc = _loads(body)
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
