"""Reading request bodies: the size limit, and the media types the ingestion routes take."""

from __future__ import annotations

from fastapi import Request

from monitor.domain.payloads import NDJSON_TYPES
from monitor.errors import PayloadTooLarge, UnsupportedMediaType

JSON_TYPES = {"application/json", *NDJSON_TYPES}


async def read_body(request: Request, limit: int, setting: str = "MONITOR_MAX_BODY_BYTES") -> bytes:
    """The body (already decoded from gzip by ``monitor.api.encoding``), refused with 413 past
    ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge.over(limit, setting)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge.over(limit, setting)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


def json_media_type(request: Request) -> str:
    """The body's media type, if it is one the JSON ingestion routes read (JSON or NDJSON; none
    given reads as JSON); else 415: a text/plain or XML body is not guessed at."""
    kind = media_type(request)
    if kind not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {kind[:100]!r} is not read here; send application/json or application/x-ndjson"
        )
    return kind
