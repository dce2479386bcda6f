"""One notifier per receiver kind: where its request goes, what its body is, and whether a failed
attempt is worth retrying. The deliverer signs, sends and records; it asks the notifier the rest.
Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from alerts.payloads import Notice, alertmanager_alerts, alertmanager_webhook, slack_message
from alerts.receivers import ReceiverKind
from alerts.retry import Outcome, classify


@dataclass(frozen=True)
class Notification:
    """A group's notification, before it takes a receiver's form."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    notices: list[Notice]
    external_url: str = ""


class Notifier(Protocol):
    kind: ReceiverKind

    def url(self, receiver_url: str) -> str:
        """Where the request goes, from the receiver's configured URL."""
        ...

    def outcome(self, status: int | None) -> Outcome:
        """Delivered, worth retrying, or failed for good (``status`` None: no answer)."""
        ...


class GroupNotifier(Notifier, Protocol):
    def body(self, n: Notification) -> Any:
        """The JSON body that tells the receiver of the group's alerts."""
        ...


class _HTTPNotifier:
    """A POST to the receiver's URL, retried as ``alerts.retry.classify`` says: connection
    errors, timeouts, 5xx, 408 and 429 again (with backoff); any other 4xx fails for good."""

    def url(self, receiver_url: str) -> str:
        return receiver_url

    def outcome(self, status: int | None) -> Outcome:
        return classify(status)


class WebhookNotifier(_HTTPNotifier):
    """Alertmanager's webhook payload (version 4), signed: anything that reads it reads this."""

    kind = ReceiverKind.webhook

    def body(self, n: Notification) -> Any:
        return alertmanager_webhook(n.receiver, n.group_key, n.group_labels, n.notices, n.external_url)


class SlackNotifier(WebhookNotifier):
    """A Slack incoming-webhook message. Slack answers a malformed or refused message (an archived
    channel, a revoked hook) with a 4xx that no retry changes; it rate-limits with 429."""

    kind = ReceiverKind.slack

    def body(self, n: Notification) -> Any:
        return slack_message(super().body(n))


class AlertmanagerNotifier(_HTTPNotifier):
    """Pushed into an existing Alertmanager (``POST {url}/api/v2/alerts``), which groups, silences
    and routes them itself. Alerts are re-sent while they fire, so a message that failed for good
    is followed by a fresh one within the receiver's repeat interval."""

    kind = ReceiverKind.alertmanager

    def url(self, receiver_url: str) -> str:
        base = receiver_url.rstrip("/").removesuffix("/api/v2/alerts")  # the base URL, or the endpoint given
        return base + "/api/v2/alerts"

    def body(self, n: Notification) -> Any:
        return alertmanager_alerts(n.notices)


class RetrainNotifier(_HTTPNotifier):
    """``model.retrain_requested`` events (``alerts.payloads.retrain_event``), signed; built when
    an alert first fires, not from a group."""

    kind = ReceiverKind.retrain


GROUP_NOTIFIERS: dict[ReceiverKind, GroupNotifier] = {
    n.kind: n for n in (WebhookNotifier(), SlackNotifier(), AlertmanagerNotifier())
}
NOTIFIERS: dict[ReceiverKind, Notifier] = {**GROUP_NOTIFIERS, ReceiverKind.retrain: RetrainNotifier()}


def notifier(kind: str) -> Notifier:
    return NOTIFIERS[ReceiverKind(kind)]
