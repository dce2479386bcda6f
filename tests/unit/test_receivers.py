"""Receiver specs: URLs without credentials, headers of their own, the timers' defaults."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from alerts.receivers import ReceiverKind, ReceiverSpec


def spec(**kw: object) -> ReceiverSpec:
    return ReceiverSpec.model_validate({"name": "r", "url": "https://hooks.example.com/x", **kw})


def test_credentials_go_in_headers_not_the_url() -> None:
    with pytest.raises(ValidationError, match="credentials in the URL are not allowed"):
        spec(url="https://user:pass@hooks.example.com/x")
    assert spec(headers={"Authorization": "Bearer t0ken"}).headers == {"Authorization": "Bearer t0ken"}
    assert spec().headers is None  # absent: a replaced receiver keeps its old ones


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"webhook-signature": "v1,forged"}, "set by the monitor itself"),
        ({"Content-Type": "text/plain"}, "set by the monitor itself"),
        ({"Host": "internal"}, "set by the monitor itself"),
        ({"bad name": "x"}, "is not a header name"),
        ({"X-Token": "a\r\nX-Injected: 1"}, "one line"),
        ({"X-Token": "x" * 4097}, "one line"),
        ({f"X-{i}": "v" for i in range(21)}, "at most 20 headers"),
    ],
)
def test_bad_headers_are_refused_with_the_reason(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        spec(headers=headers)


def test_timer_defaults_by_kind() -> None:
    assert spec().timers().group_wait == timedelta(seconds=30)
    assert spec(kind=ReceiverKind.alertmanager).timers().repeat_interval == timedelta(minutes=1)
    assert spec(group_wait="0s").timers().group_wait == timedelta(0)
