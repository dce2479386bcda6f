"""Reading request bodies: size limit, gzip, JSON and NDJSON, with errors that say where."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from monitor.errors import MonitorError, PayloadTooLarge

NDJSON_TYPES = {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}


class MalformedBody(MonitorError):
    status_code = 400
    code = "malformed_json"


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (MONITOR_MAX_BODY_BYTES)")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when gzip-encoded, refused with 413 past ``limit`` bytes either way."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise MonitorError(f"the gzip body cannot be decompressed: {exc}") from exc
        if len(body) > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
    return body


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


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
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise MalformedBody(f"NDJSON line {lineno} is not valid JSON: {exc}") from exc
        return records, None, None
    try:
        doc = orjson.loads(body)
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
