from __future__ import annotations

import socket

import pytest

from alerts.urls import Target, UnsafeURL, check_url, vet_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://127.0.0.1:5432/", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://0.0.0.0/hook", "reserved"),
        ("http://user:pw@example.com/hook", "credentials"),
        ("http://localhost:9/hook", "loopback"),
    ],
)
def test_unsafe_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url)


def test_allowed_when_the_settings_say_so() -> None:
    assert check_url("http://127.0.0.1:8080/hook", allow_loopback=True)
    assert check_url("http://10.1.2.3/hook", allow_private=True)
    with pytest.raises(UnsafeURL, match="link-local"):
        check_url("http://169.254.169.254/", allow_private=True, allow_loopback=True)


def test_public_literal_and_unresolved_names() -> None:
    assert check_url("https://93.184.216.34/hook")
    assert check_url("https://hooks.example.com/x", resolve=False)


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
