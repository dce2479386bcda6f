"""uvicorn's HTTP protocols with a deadline on the request head.

uvicorn times out idle keep-alive connections, but not one that sends a request line and then a
header byte every few seconds: such a connection stays open for ever, and a few hundred of them
use up the process. Here the head of each request (request line and headers) must arrive within
``header_timeout_seconds`` of the connection being made or of the request's first byte; the body's
own deadline is the request guard's (``monitor.api.guard``). ``max_connections`` bounds what is
open at once (uvicorn answers 503 past it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor import tls
from monitor.config import Settings, get_settings

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn; h11 is always there
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

# Set by server_options() in the process that starts the server; a worker process started by
# uvicorn reads the settings from its environment instead.
_header_timeout: float | None = None


def _timeout() -> float:
    return _header_timeout if _header_timeout is not None else get_settings().header_timeout_seconds


class _HeadDeadline:
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _head_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(_timeout(), self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class H11WithHeadDeadline(_HeadDeadline, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still waiting for (the rest of) a request head
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


if HttpToolsProtocol is not None:

    class HttpToolsWithHeadDeadline(_HeadDeadline, HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options that bound slow and idle connections by the settings, believe forwarded
    headers from the configured proxies only, and serve HTTPS where a certificate is set."""
    global _header_timeout
    _header_timeout = settings.header_timeout_seconds
    protocol = HttpToolsWithHeadDeadline if HttpToolsProtocol is not None else H11WithHeadDeadline
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    forwarded = {"proxy_headers": bool(proxies), "forwarded_allow_ips": ",".join(proxies) or None}
    return {
        "http": protocol,
        "limit_concurrency": settings.max_connections,
        **forwarded,
        **tls.uvicorn_options(settings),
    }
