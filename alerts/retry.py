"""When a delivery is tried again: connection errors, timeouts, 5xx, 408 and 429 are retried
with exponential backoff and full jitter, honouring Retry-After; any other 4xx fails for good."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

RETRY_STATUS = {408, 429}
BASE_SECONDS = 1.0
CAP_SECONDS = 600.0


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


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rng: random.Random | None = None,
) -> float:
    """Delay before attempt ``attempt + 1`` (``attempt`` counts from 1): full jitter over
    base·2^(attempt-1), capped; never sooner than the receiver's Retry-After."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
