"""Receiver URLs are checked before anything is sent to them: a webhook target the service can
be told to call is a request forgery risk (cloud metadata at 169.254.169.254, the database,
admin ports on loopback). Private, loopback, link-local and reserved targets are refused unless
the settings allow them (tests and all-on-one-host setups allow loopback). The check is an
allow-list: only globally routable addresses pass by default, so that ranges a deny-list forgets
(shared address space 100.64.0.0/10, where a cloud metadata service answers at 100.100.100.200;
192.0.0.0/24; IPv6 addresses that carry an IPv4 one, 6to4, Teredo, NAT64, mapped) are refused
for what they lead to.

A name is resolved once per attempt, and the request goes to the address that was checked
(``vet_url``): if the connection resolved the name again, a DNS server answering a public
address to the check and 169.254.169.254 to the connection (DNS rebinding) would get past it."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit


class UnsafeURL(ValueError):
    pass


IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT: private in all but name


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped, 6to4, Teredo (its client, where the traffic
    ends up), NAT64, or the old IPv4-compatible form (::a.b.c.d)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (0xFFFF < int(ip) < 2**32):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _forbidden(ip: IP, allow_private: bool, allow_loopback: bool) -> str:
    """Why a request must not go to ``ip`` ('' if it may)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            why = _forbidden(inner, allow_private, allow_loopback)
            return f"{why} (as {inner})" if why else ""
    if ip.is_loopback:
        return "" if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if ip.is_global:
        return ""
    if allow_private and (ip.is_private or ip in _SHARED):
        return ""
    return "not a globally routable address (private, shared or special-purpose)"


@dataclass(frozen=True)
class Target:
    """Where a checked URL's request goes: the URL with its host name replaced by the address
    that was checked, the name for the Host header, and for https the name the server's
    certificate is checked against (the TLS SNI)."""

    url: str
    host_header: str | None = None  # None: the URL's host was an address already
    sni_hostname: str | None = None


def check_url(
    url: str,
    *,
    allow_private: bool = False,
    allow_loopback: bool = False,
    resolve: bool = True,
) -> str:
    """The URL if it is an http(s) URL whose host resolves only to allowed addresses; else
    ``UnsafeURL`` saying why. ``resolve=False`` checks literal IP hosts only (for validating a
    rule offline; the deliverer checks again, resolving, before every attempt)."""
    _checked_addresses(url, allow_private, allow_loopback, resolve)
    return url


def vet_url(url: str, *, allow_private: bool = False, allow_loopback: bool = False) -> list[Target]:
    """Check ``url`` as ``check_url`` does; one request target per address checked, in the
    resolver's order (the next is tried when one refuses the connection)."""
    parts, addresses, resolved = _checked_addresses(url, allow_private, allow_loopback, resolve=True)
    if not resolved:  # an address already
        return [Target(url)]
    host = parts.hostname or ""
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    targets = []
    for ip in dict.fromkeys(addresses):  # getaddrinfo repeats an address per socket type
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        sni = host if parts.scheme == "https" else None
        targets.append(Target(parts._replace(netloc=netloc).geturl(), host_header, sni))
    return targets


def _checked_addresses(
    url: str, allow_private: bool, allow_loopback: bool, resolve: bool
) -> tuple[SplitResult, list[IP], bool]:
    """The URL's parts, its host's addresses (all allowed), and whether the host was a name resolved."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeURL(f"{url!r}: no host")
    if parts.username or parts.password:
        raise UnsafeURL(f"{url!r}: credentials in the URL are not allowed; use the receiver's headers")
    host = parts.hostname
    resolved = False
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return parts, [], False
        resolved = True
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except socket.gaierror as exc:
            raise UnsafeURL(f"{url!r}: cannot resolve {host!r}: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise UnsafeURL(f"{url!r}: {host!r} resolves to no address") from None
    for ip in addresses:
        why = _forbidden(ip, allow_private, allow_loopback)
        if why:
            raise UnsafeURL(f"{url!r}: {host!r} is {why}; allow it in the settings if it is intended")
    return parts, addresses, resolved
