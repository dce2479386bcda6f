"""The Model Monitor's client: log predictions and labels from a serving system without
blocking it (``MonitorClient``), and verify the service's signed webhooks (``verify_webhook``).
Its one third-party dependency is httpx."""

from __future__ import annotations

from monitor_client.client import ClientStats, MonitorAPIError, MonitorClient
from monitor_client.signing import WebhookVerificationError
from monitor_client.signing import verify as verify_webhook

__all__ = ["ClientStats", "MonitorAPIError", "MonitorClient", "WebhookVerificationError", "verify_webhook"]
