"""Receiver URLs are checked before anything is sent to them: a webhook target the service can
be told to call is a request forgery risk (cloud metadata at 169.254.169.254, the database,
admin ports on loopback). Private, loopback, link-local and reserved targets are refused unless
the settings allow them (tests and all-on-one-host setups allow loopback). The check is an
allow-list: only globally routable addresses pass by default, so that ranges a deny-list forgets
(shared address space 100.64.0.0/10, where a cloud metadata service answers at 100.100.100.200;
192.0.0.0/24; IPv6 addresses that carry an IPv4 one, 6to4, Teredo, NAT64, mapped) are refused
for what they lead to.

A name is resolved once per attempt, by the deliverer (``monitor.services.alerting.resolver``: this
package does no I/O), and the request goes to the address that was checked (``pin``): if the
connection resolved the name again, a DNS server answering a public address to the check and
169.254.169.254 to the connection (DNS rebinding) would get past it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit


class UnsafeURL(ValueError):
    pass


IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _networks(*named: tuple[str, str]) -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    return tuple((ipaddress.ip_network(n), name) for n, name in named)


# What MONITOR_ALLOW_PRIVATE_RECEIVERS lets through: networks for private use, nothing else
_PRIVATE_USE = _networks(
    ("10.0.0.0/8", "private use"),
    ("172.16.0.0/12", "private use"),
    ("192.168.0.0/16", "private use"),
    ("100.64.0.0/10", "shared address space"),
    ("fc00::/7", "unique local"),
)
PRIVATE = "not a globally routable address (private: {})"
# IANA's IPv4 and IPv6 Special-Purpose Address Registries (2025), every entry whatever its
# "globally reachable" column says: no webhook lives at an anycast protocol address either
# (Python's is_global let 192.0.0.192 and 192.0.0.9 through). The private-use blocks above are
# among them.
SPECIAL_PURPOSE = _PRIVATE_USE + _networks(
    ("0.0.0.0/8", "this network"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link local"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.31.196.0/24", "AS112"),
    ("192.52.193.0/24", "AMT"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.175.48.0/24", "AS112 direct delegation"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "limited broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped"),
    ("64:ff9b::/96", "IPv4-IPv6 translation"),
    ("64:ff9b:1::/48", "local-use IPv4-IPv6 translation"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("2620:4f:8000::/48", "AS112"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fe80::/10", "link local"),
)


def special_purpose(ip: IP) -> str:
    """The IANA special-purpose block ``ip`` is in ('' if none)."""
    return next((name for net, name in SPECIAL_PURPOSE if ip.version == net.version and ip in net), "")


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
    private = next((name for net, name in _PRIVATE_USE if ip.version == net.version and ip in net), "")
    if private:
        return "" if allow_private else PRIVATE.format(private)
    special = special_purpose(ip)
    if special:
        return f"not a globally routable address (special-purpose: {special})"
    if ip.is_global:
        return ""
    return "not a globally routable address (special-purpose)"


@dataclass(frozen=True)
class Target:
    """Where a checked URL's request goes: the URL with its host name replaced by the address
    that was checked, the name for the Host header, and for https the name the server's
    certificate is checked against (the TLS SNI)."""

    url: str
    host_header: str | None = None  # None: the URL's host was an address already
    sni_hostname: str | None = None


def check_url(url: str, *, allow_private: bool = False, allow_loopback: bool = False) -> str:
    """The URL if it is an http(s) URL without credentials whose host, when an address, is
    allowed; else ``UnsafeURL`` saying why. A host name is not resolved here (this package does
    no I/O): the deliverer resolves it before every attempt and checks the answer with ``pin``."""
    parts = _parts(url)
    literal = literal_address(parts)
    if literal is not None:
        _check_addresses(url, parts, [literal], allow_private, allow_loopback)
    return url


def literal_address(parts: SplitResult) -> IP | None:
    """The URL's host when it is an address, else None (a name, to be resolved)."""
    try:
        return ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return None


def pin(url: str, addresses: list[str], *, allow_private: bool = False, allow_loopback: bool = False) -> list[Target]:
    """Request targets for ``url`` whose host name resolved to ``addresses`` (in the resolver's
    order, repeats allowed): one per address, all checked, each with the name for the Host header
    and the TLS SNI; ``UnsafeURL`` when any address is forbidden or there is none. A URL whose
    host is an address already is its own single target (``addresses`` is not read)."""
    parts = _parts(url)
    literal = literal_address(parts)
    if literal is not None:
        _check_addresses(url, parts, [literal], allow_private, allow_loopback)
        return [Target(url)]
    host = parts.hostname or ""
    if not addresses:
        raise UnsafeURL(f"{url!r}: {host!r} resolves to no address")
    ips = list(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in addresses))
    _check_addresses(url, parts, ips, allow_private, allow_loopback)
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    sni = host if parts.scheme == "https" else None
    targets = []
    for ip in ips:
        literal_host = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = literal_host if parts.port is None else f"{literal_host}:{parts.port}"
        targets.append(Target(parts._replace(netloc=netloc).geturl(), host_header, sni))
    return targets


def default_port(url: str) -> int:
    parts = _parts(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _parts(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL(f"{url!r}: only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeURL(f"{url!r}: no host")
    if parts.username or parts.password:
        raise UnsafeURL(f"{url!r}: credentials in the URL are not allowed; use the receiver's headers")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError as exc:
        raise UnsafeURL(f"{url!r}: {exc}") from None
    return parts


# The service's settings that allow each kind of address (the environment variables, as a user
# sets them); the other kinds are never allowed.
ALLOWED_BY = {
    "a loopback address": "MONITOR_ALLOW_LOOPBACK_RECEIVERS=true",
    PRIVATE.removesuffix("{})"): "MONITOR_ALLOW_PRIVATE_RECEIVERS=true",
}


def _check_addresses(url: str, parts: SplitResult, ips: list[IP], allow_private: bool, allow_loopback: bool) -> None:
    for ip in ips:
        why = _forbidden(ip, allow_private, allow_loopback)
        if why:
            setting = next((v for k, v in ALLOWED_BY.items() if why.startswith(k)), None)
            how = f"set {setting} where the service runs if it is intended" if setting else "it cannot be allowed"
            raise UnsafeURL(f"{url!r}: {parts.hostname!r} is {why}; {how}")
