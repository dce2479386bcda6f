from __future__ import annotations

import pytest

from alerts.urls import UnsafeURL, check_url


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
