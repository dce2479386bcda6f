"""Receivers: where notifications and retraining events go, and how they are grouped."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.dispatch import Timers
from alerts.rules import parse_duration
from alerts.signing import SECRET_PREFIX, key_bytes
from alerts.urls import check_url


class ReceiverKind(StrEnum):
    webhook = "webhook"  # Alertmanager's webhook payload, signed
    slack = "slack"  # a Slack incoming-webhook message
    alertmanager = "alertmanager"  # pushed into an existing Alertmanager: POST {url}/api/v2/alerts
    retrain = "retrain"  # model.retrain_requested events, signed


# Headers a receiver may not set: the signature's, and what the HTTP client derives itself.
_RESERVED_HEADERS = {
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # an RFC 9110 token

# Alertmanager expects alerts re-sent while they fire (its resolve_timeout is 5 minutes).
_DEFAULTS = {
    ReceiverKind.alertmanager: ("0s", "1m", "1m"),
}


class ReceiverSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
    kind: ReceiverKind = ReceiverKind.webhook
    url: str = Field(
        description="where requests go; for kind alertmanager the Alertmanager's base URL "
        "(http://alertmanager:9093): alerts are posted to its /api/v2/alerts"
    )
    secret: str | None = Field(
        None,
        description="whsec_…; generated when absent and shown once. Signs every request (Standard Webhooks); "
        "slack and alertmanager receivers check no signature, so need none in the rules file",
    )
    headers: dict[str, str] | None = Field(
        None,
        description="sent with every request, e.g. Authorization for a receiver behind auth; values are "
        "never shown again; absent when replacing a receiver: the old ones are kept",
    )
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "model"])
    group_wait: str | None = None
    group_interval: str | None = None
    repeat_interval: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        # The form of the URL here; its address against the settings where the receiver is stored,
        # and names resolved and checked before every attempt.
        check_url(v, allow_private=True, allow_loopback=True)
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is not None:
            if not v.startswith(SECRET_PREFIX):
                raise ValueError("a secret looks like whsec_ followed by base64")
            if len(key_bytes(v)) < 16:
                raise ValueError("a secret needs at least 16 bytes of key")
        return v

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        if len(v) > 20:
            raise ValueError("at most 20 headers")
        for name, value in v.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a header name")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by the monitor itself")
            if any(c in value for c in "\r\n\0") or len(value) > 4096:
                raise ValueError(f"the value of {name!r} must be one line of at most 4096 characters")
        return v

    @field_validator("group_wait", "group_interval", "repeat_interval")
    @classmethod
    def _durations(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    def timers(self) -> Timers:
        wait, interval, repeat = _DEFAULTS.get(self.kind, ("30s", "5m", "4h"))
        return Timers(
            parse_duration(self.group_wait or wait),
            parse_duration(self.group_interval or interval),
            parse_duration(self.repeat_interval or repeat),
        )


@dataclass(frozen=True)
class Receiver:
    """A stored receiver as the notification pipeline needs it (no URL, no secrets)."""

    name: str
    kind: ReceiverKind
    group_by: list[str]
    timers: Timers = field(default_factory=Timers)


def timers_from_seconds(wait: int, interval: int, repeat: int) -> Timers:
    return Timers(timedelta(seconds=wait), timedelta(seconds=interval), timedelta(seconds=repeat))
