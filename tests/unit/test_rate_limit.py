from __future__ import annotations

import pytest

from monitor.errors import TooManyRequests
from monitor.services.rate_limit import RateLimiter


def test_a_bucket_per_key_refilled_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=2, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.acquire(1)  # the burst
    with pytest.raises(TooManyRequests) as err:
        limiter.acquire(1)
    assert err.value.retry_after == pytest.approx(0.5) and err.value.status_code == 429
    limiter.acquire(2)  # another key has its own bucket
    now[0] = 0.5
    limiter.acquire(1)  # half a second refilled one token
    with pytest.raises(TooManyRequests):
        limiter.acquire(1)


def test_zero_turns_it_off() -> None:
    limiter = RateLimiter(per_second=0, burst=1)
    for _ in range(1000):
        limiter.acquire(1)
