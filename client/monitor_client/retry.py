"""Retrying with backoff: exponential backoff with full jitter, never sooner than the other
side's Retry-After (seconds or an HTTP date). The client SDK and the service's webhook
deliverer retry the same way."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

BASE_SECONDS = 1.0
CAP_SECONDS = 600.0


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
