"""Resolving a receiver's host name before each delivery attempt, and pinning the request to the
addresses checked (``alerts.urls.pin`` decides, purely, which addresses are allowed)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from alerts.urls import Target, UnsafeURL, default_port, literal_address, pin


def vet_url(url: str, *, allow_private: bool = False, allow_loopback: bool = False) -> list[Target]:
    """One request target per address ``url``'s host resolves to, every one of them allowed, in
    the resolver's order (the next is tried when one refuses the connection); ``UnsafeURL`` when
    the URL or any of its addresses is refused, or the name does not resolve."""
    addresses: list[str] = []
    parts = urlsplit(url)
    if parts.hostname and literal_address(parts) is None:
        try:
            infos = socket.getaddrinfo(parts.hostname, default_port(url))
        except socket.gaierror as exc:
            raise UnsafeURL(f"{url!r}: cannot resolve {parts.hostname!r}: {exc}") from exc
        addresses = [str(info[4][0]) for info in infos]
    return pin(url, addresses, allow_private=allow_private, allow_loopback=allow_loopback)
