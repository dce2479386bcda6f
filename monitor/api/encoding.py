"""Request bodies' Content-Encoding, decoded once for every route as the body arrives.

- ``gzip`` (and ``x-gzip``): every member is decoded, as ``cat a.gz b.gz`` and log shippers that
  append members produce them (decoding only the first would acknowledge records never stored);
  bytes after the last member that are not another member, and a stream that ends inside a
  member, are refused with 400; the decoded size is bounded like any body (413).
- ``identity`` or none: passed as it is.
- anything else (``br``, ``deflate``, ``zstd``, a list of encodings): 415 once the route reads the
  body, never taken for plain text.

The route sees the decoded body with ``Content-Encoding`` and ``Content-Length`` removed from the
request's headers, so nothing decodes it twice.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from monitor.errors import PayloadTooLarge

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

IDENTITY = {"", "identity"}
GZIP = {"gzip", "x-gzip"}
CLOSE = {"Connection": "close"}
_GZIP_WBITS = 31  # a gzip header and trailer, nothing else


def content_encoding(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"content-encoding":
            return value.decode("latin-1").strip().lower()
    return ""


def without_encoding_headers(scope: Message) -> Message:
    """The request as the route sees it once its body is decoded."""
    dropped = (b"content-encoding", b"content-length")
    return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k not in dropped]}


class Unsupported:
    """``receive`` for an encoding the service does not decode: 415 when the body is read."""

    def __init__(self, receive: Receive, encoding: str) -> None:
        self._receive, self._encoding = receive, encoding

    async def __call__(self) -> Message:
        raise HTTPException(
            415,
            f"Content-Encoding {self._encoding[:50]!r} is not decoded here; send the body as it is, or gzip",
            headers=CLOSE,
        )


class Gunzip:
    """``receive`` that hands the route the body's gzip members decoded, at most ``limit`` bytes."""

    def __init__(self, receive: Receive, limit: int, variable: str) -> None:
        self._receive, self._limit, self._variable = receive, limit, variable
        self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
        self._members = 0  # members begun
        self._size = 0
        self._done = False

    async def __call__(self) -> Message:
        if self._done:
            return await self._receive()
        message = await self._receive()
        if message["type"] != "http.request":
            self._done = True
            return message
        decoded = self._feed(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if not more:
            self._done = True
            if self._members == 0 or not self._inflater.eof:
                raise HTTPException(400, "the gzip body ends inside a member (truncated, or empty)", CLOSE)
        return {"type": "http.request", "body": decoded, "more_body": more}

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            if self._members == 0 or self._inflater.eof:
                if self._members and data[:1] != b"\x1f":
                    raise HTTPException(400, "bytes after the end of the gzip body that are not another member", CLOSE)
                if self._members:
                    self._inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
                self._members += 1
            try:
                chunk = self._inflater.decompress(data, self._limit + 1 - self._size)
            except zlib.error as exc:
                where = "" if self._members == 1 else f" (member {self._members})"
                raise HTTPException(400, f"the gzip body cannot be decompressed{where}: {exc}", CLOSE) from None
            self._size += len(chunk)
            if self._size > self._limit or self._inflater.unconsumed_tail:
                raise HTTPException(413, PayloadTooLarge.over(self._limit, self._variable).message, CLOSE)
            out.append(chunk)
            data = self._inflater.unused_data if self._inflater.eof else b""
        return b"".join(out)
