"""Standard Webhooks signatures (https://www.standardwebhooks.com/): the sender's side and the
receiver's verify helper.

Headers: ``webhook-id`` (the message's stable id, the same on every retry), ``webhook-timestamp``
(seconds since the epoch, fresh per attempt) and ``webhook-signature``: space-separated
``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` entries (several during a secret rotation).
Secrets are ``whsec_`` + base64 of the key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300  # the spec's suggested replay window


class WebhookVerificationError(ValueError):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def key_bytes(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    mac = hmac.new(key_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign(secret, msg_id, ts, body)}


def verify(
    secret: str,
    request_headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check a received webhook; returns its ``webhook-id`` (drop a duplicate by it) or raises
    ``WebhookVerificationError`` saying what is wrong. Header names are matched case-insensitively."""
    h = {k.lower(): v for k, v in request_headers.items()}
    try:
        msg_id, ts_text, signatures = h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance: a replay or a skewed clock")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for entry in signatures.split():
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return msg_id
    raise WebhookVerificationError("no signature matches")
