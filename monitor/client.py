"""The client SDK, from the light client distribution (``client/``, package ``monitor_client``)
that serving systems install on their own; the server imports the same code."""

from __future__ import annotations

from monitor_client import ClientStats, MonitorAPIError, MonitorClient, WebhookVerificationError, verify_webhook

__all__ = ["ClientStats", "MonitorAPIError", "MonitorClient", "WebhookVerificationError", "verify_webhook"]
