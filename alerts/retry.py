"""When a delivery is tried again: connection errors, timeouts, 5xx, 408 and 429 are retried
with exponential backoff and full jitter, honouring Retry-After; any other 4xx fails for good."""

from __future__ import annotations

from enum import StrEnum

# the backoff itself is shared with the client SDK
from monitor_client.retry import BASE_SECONDS, CAP_SECONDS, backoff_seconds, retry_after_seconds

RETRY_STATUS = {408, 429}


class Outcome(StrEnum):
    delivered = "delivered"
    retry = "retry"
    failed = "failed"


def classify(status: int | None) -> Outcome:
    """``status`` None: the request never got an answer (connection error, timeout)."""
    if status is None or status >= 500 or status in RETRY_STATUS:
        return Outcome.retry
    if 200 <= status < 300:
        return Outcome.delivered
    return Outcome.failed


__all__ = [
    "BASE_SECONDS",
    "CAP_SECONDS",
    "RETRY_STATUS",
    "Outcome",
    "backoff_seconds",
    "classify",
    "retry_after_seconds",
]
