"""Gzip bodies decoded as they arrive: every member, split anywhere; garbage and truncation refused."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
from starlette.exceptions import HTTPException

from monitor.api.encoding import Gunzip, Unsupported


def _receive(chunks: list[bytes]) -> Any:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


def _read(chunks: list[bytes], limit: int = 1 << 20) -> bytes:
    async def run() -> bytes:
        g = Gunzip(_receive(chunks), limit, "MONITOR_MAX_BODY_BYTES")
        out = b""
        while True:
            m = await g()
            out += m["body"]
            if not m["more_body"]:
                return out

    return asyncio.run(run())


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1 << 20])
def test_every_member_is_decoded_however_the_body_is_split(size: int) -> None:
    body = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"b": 2}\n') + gzip.compress(b"")
    assert _read(_split(body, size)) == b'{"a": 1}\n{"b": 2}\n'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gzip.compress(b"[1]") + b"garbage", "not another member"),
        (gzip.compress(b"[1]") + b"\x1f\x8bxx", "member 2"),
        (gzip.compress(b"[1, 2, 3]")[:-5], "ends inside a member"),
        (b"", "ends inside a member"),
        (b"[1, 2]", "cannot be decompressed"),
    ],
)
def test_garbage_and_truncation_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(HTTPException) as err:
        _read(_split(body, 3))
    assert err.value.status_code == 400 and reason in err.value.detail


def test_the_decoded_size_is_bounded() -> None:
    bomb = gzip.compress(b"0" * 10_000_000)
    with pytest.raises(HTTPException) as err:
        _read(_split(bomb, 4096), limit=1_000_000)
    assert err.value.status_code == 413


def test_an_encoding_not_decoded_is_415_when_read() -> None:
    with pytest.raises(HTTPException) as err:
        asyncio.run(Unsupported(_receive([b"x"]), "br")())
    assert err.value.status_code == 415 and "'br'" in err.value.detail
