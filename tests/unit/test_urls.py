from __future__ import annotations

import socket

import pytest

from alerts.urls import Target, UnsafeURL, check_url, pin
from monitor.services.alerting.resolver import vet_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://127.0.0.1:5432/", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:10.0.0.1]/hook", "not a globally routable"),
        ("http://10.1.2.3/hook", "not a globally routable"),
        ("http://192.168.0.10/hook", "not a globally routable"),
        ("http://100.100.100.200/latest/meta-data", "not a globally routable"),  # shared space: a cloud's metadata
        ("http://100.64.0.1/hook", "not a globally routable"),
        ("http://192.0.0.170/hook", "not a globally routable"),
        ("http://198.18.0.1/hook", "not a globally routable"),  # benchmarking
        ("http://192.0.2.1/hook", "not a globally routable"),  # documentation
        ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 6to4 of 169.254.169.254
        ("http://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
        ("http://[2002:c0a8:0001::1]/hook", "not a globally routable"),  # 6to4 of 192.168.0.1
        ("http://[64:ff9b::a9fe:a9fe]/hook", "link-local"),  # NAT64 of 169.254.169.254
        ("http://[::127.0.0.1]/hook", "loopback"),  # IPv4-compatible
        ("http://[2001:0:4136:e378::f5ff:fffe]/hook", "as 10.0.0.1"),  # Teredo, its client 10.0.0.1
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fd00::1]/hook", "not a globally routable"),  # unique local
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[2001:db8::1]/hook", "not a globally routable"),  # documentation
        ("http://0.0.0.0/hook", "reserved"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http://localhost:9/hook", "loopback"),  # a name: refused once resolved
    ],
)
def test_unsafe_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        vet_url(url)
    if "localhost" not in url:  # the pure check refuses what it can see without resolving
        with pytest.raises(UnsafeURL, match=reason):
            check_url(url)


def test_the_pure_check_pins_to_the_addresses_it_is_given() -> None:
    assert pin("https://hooks.example.com/x", ["93.184.216.34", "93.184.216.34"]) == [
        Target("https://93.184.216.34/x", "hooks.example.com", "hooks.example.com")
    ]
    with pytest.raises(UnsafeURL, match="link-local"):
        pin("https://hooks.example.com/x", ["93.184.216.34", "169.254.169.254"])
    with pytest.raises(UnsafeURL, match="no address"):
        pin("https://hooks.example.com/x", [])
    with pytest.raises(UnsafeURL, match="link-local"):  # a scoped address is judged without its zone
        pin("http://example.com/x", ["fe80::1%eth0", "::1"])


def test_allowed_when_the_settings_say_so() -> None:
    assert check_url("http://127.0.0.1:8080/hook", allow_loopback=True)
    assert check_url("http://10.1.2.3/hook", allow_private=True)
    assert check_url("http://100.64.0.1/hook", allow_private=True)
    assert check_url("http://[2002:c0a8:0001::1]/hook", allow_private=True)
    with pytest.raises(UnsafeURL, match="link-local"):
        check_url("http://169.254.169.254/", allow_private=True, allow_loopback=True)


def test_public_literal_and_unresolved_names() -> None:
    assert check_url("https://93.184.216.34/hook")
    assert check_url("https://[2606:2800:220:1::1]/hook")
    assert check_url("https://[2002:5db8:d822::1]/hook")  # 6to4 of a public address
    assert check_url("https://hooks.example.com/x")  # a name: checked when resolved, before each attempt


def _resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, 1, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("url", "answers", "expected"),
    [
        (
            "http://hooks.example.com/x?a=1",
            ["93.184.216.34", "93.184.216.34"],  # one per socket type: one target
            [Target("http://93.184.216.34/x?a=1", "hooks.example.com")],
        ),
        (
            "https://Hooks.Example.com:8443/x",
            ["2606:2800:220:1::1", "93.184.216.34"],
            [
                Target("https://[2606:2800:220:1::1]:8443/x", "hooks.example.com:8443", "hooks.example.com"),
                Target("https://93.184.216.34:8443/x", "hooks.example.com:8443", "hooks.example.com"),
            ],
        ),
        ("https://93.184.216.34/hook", [], [Target("https://93.184.216.34/hook")]),  # an address: nothing to pin
    ],
)
def test_a_request_is_pinned_to_the_address_checked(
    monkeypatch: pytest.MonkeyPatch, url: str, answers: list[str], expected: list[Target]
) -> None:
    _resolving(monkeypatch, {"hooks.example.com": answers})
    assert vet_url(url) == expected


def test_a_name_with_any_forbidden_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.216.34", "169.254.169.254"], "empty.example.com": []})
    with pytest.raises(UnsafeURL, match="link-local"):
        vet_url("http://hooks.example.com/x")
    with pytest.raises(UnsafeURL, match="no address"):
        vet_url("http://empty.example.com/x")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:8080/hook", "set MONITOR_ALLOW_LOOPBACK_RECEIVERS=true where the service runs"),
        ("http://[::ffff:127.0.0.1]/hook", "set MONITOR_ALLOW_LOOPBACK_RECEIVERS=true"),
        ("http://10.1.2.3/hook", "set MONITOR_ALLOW_PRIVATE_RECEIVERS=true where the service runs"),
        ("http://169.254.169.254/", "it cannot be allowed"),
        ("http://0.0.0.0/hook", "it cannot be allowed"),
    ],
)
def test_a_refusal_names_the_setting_that_allows_it(url: str, says: str) -> None:
    with pytest.raises(UnsafeURL, match=says):
        check_url(url)


def test_the_settings_a_refusal_names_exist() -> None:
    from alerts.urls import ALLOWED_BY
    from monitor.config import Settings

    for setting in ALLOWED_BY.values():
        name, value = setting.split("=")
        field = name.removeprefix("MONITOR_").lower()
        assert field in Settings.model_fields and value == "true"
        assert Settings(**{field: True}).model_dump()[field] is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://192.0.0.192/hook",  # IETF protocol assignments: Python's is_global said yes
        "http://[::ffff:192.0.0.192]/hook",
        "http://[2002:c000:c0::]/hook",  # 6to4 of 192.0.0.192
        "http://192.0.0.9/hook",  # PCP anycast: "globally reachable" in IANA's column, no webhook
        "http://192.0.0.10/hook",
        "http://192.31.196.1/hook",  # AS112
        "http://192.52.193.1/hook",  # AMT
        "http://192.175.48.1/hook",
        "http://[2001:1::1]/hook",  # IPv6 PCP anycast
        "http://[2001:4:112::1]/hook",  # AS112-v6
        "http://[2620:4f:8000::1]/hook",
        "http://[3fff::1]/hook",  # documentation (RFC 9637)
        "http://[5f00::1]/hook",  # segment routing
        "http://[100::1]/hook",  # discard-only
    ],
)
def test_every_special_purpose_address_is_refused_even_where_the_settings_allow_private_ones(url: str) -> None:
    with pytest.raises(UnsafeURL, match=r"special-purpose|reserved"):
        check_url(url, allow_private=True)


def test_allowing_private_receivers_allows_private_use_networks_only() -> None:
    for url in (
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
    ):
        assert check_url(url, allow_private=True)
    for url in ("http://192.0.2.1/", "http://198.18.0.1/", "http://[2001:db8::1]/"):  # Python calls these private
        with pytest.raises(UnsafeURL, match="special-purpose"):
            check_url(url, allow_private=True)
    assert check_url("http://93.184.216.34/hook")  # an ordinary public address
    assert check_url("http://[2606:2800:220:1:248:1893:25c8:1946]/hook")
