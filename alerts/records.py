"""An alert instance, a change of its state and an attempt to deliver a message, as stored and
shown: one shape each, declared once, for the repository that stores them, the services that
make them and the API that returns them (its documented responses are these types).

``typing_extensions``' TypedDict: pydantic reads it on Python 3.11 (the standard library's only
from 3.12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired

from typing_extensions import TypedDict

from alerts.state import State


class AlertHistoryEntry(TypedDict):
    """One change of an alert instance's state, with the evidence it changed on."""

    id: NotRequired[int]  # once stored
    fingerprint: str
    rule: str
    model: str
    from_state: State
    to_state: State
    at: datetime
    value: float | None
    threshold: float | None
    labels: dict[str, str]
    evidence: dict[str, Any]


class AlertRecord(TypedDict):
    """An alert instance: one rule on one model and one set of labels, its state and evidence."""

    fingerprint: str
    rule: str
    model: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: State
    active_at: datetime | None
    fired_at: datetime | None
    last_true_at: datetime | None
    resolved_at: datetime | None
    value: float | None
    threshold: float | None
    evidence: dict[str, Any]
    acknowledged_by: NotRequired[str | None]
    acknowledged_at: NotRequired[datetime | None]
    ack_comment: NotRequired[str | None]
    updated_at: datetime
    # where alerts are listed or shown: the silences and the firing alerts muting it
    silenced_by: NotRequired[list[str]]
    inhibited_by: NotRequired[list[str]]
    history: NotRequired[list[AlertHistoryEntry]]  # where one alert is shown: its transitions, newest first


class DeliveryAttempt(TypedDict):
    """One attempt to deliver a message."""

    message_id: str
    receiver: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float | None
    outcome: str
    error: str | None
