"""Reading request bodies (bounded by the request guard), and the media types the ingestion
routes take."""

from __future__ import annotations

from fastapi import Request

from monitor.domain.payloads import NDJSON_TYPES
from monitor.errors import UnsupportedMediaType

JSON_TYPES = {"application/json", *NDJSON_TYPES}


async def read_body(request: Request) -> bytes:
    """The whole body, decoded from gzip and within its route's size limit and the body timeout:
    ``monitor.api.guard`` bounds it as it arrives (413 / 408), before any of it is held here."""
    return await request.body()


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
