"""Standard Webhooks signatures: the one implementation lives in the client distribution
(``monitor_client.signing``), which receivers install to verify what the service signs here."""

from __future__ import annotations

from monitor_client.signing import (
    DEFAULT_TOLERANCE_SECONDS,
    SECRET_PREFIX,
    WebhookVerificationError,
    headers,
    key_bytes,
    new_secret,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "headers",
    "key_bytes",
    "new_secret",
    "sign",
    "verify",
]
