"""Reading request bodies: size limit, gzip, JSON and NDJSON, with errors that say where."""

from __future__ import annotations

import zlib

from fastapi import Request

from monitor.errors import MonitorError, PayloadTooLarge


async def read_body(request: Request, limit: int, setting: str = "MONITOR_MAX_BODY_BYTES") -> bytes:
    """The body, decompressed when gzip-encoded, refused with 413 past ``limit`` bytes either way."""
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
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise MonitorError(f"the gzip body cannot be decompressed: {exc}") from exc
        if len(body) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge.over(limit, setting)
    return body


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
