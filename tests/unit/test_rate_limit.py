from __future__ import annotations

import pytest

from monitor.errors import TooManyRequests
from monitor.services.ingest.rate_limit import RateLimiter


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


def test_failures_are_charged_and_checked_per_address() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=1, burst=3, clock=lambda: now[0], what="too many failed logins from {rate:g}")
    for _ in range(3):
        limiter.check("10.0.0.1")
        limiter.charge("10.0.0.1")
    with pytest.raises(TooManyRequests) as err:
        limiter.check("10.0.0.1")
    assert err.value.retry_after == pytest.approx(1.0)
    limiter.check("10.0.0.2")  # another address is not affected
    limiter.charge("10.0.0.1")  # charging an empty bucket does not go below zero
    now[0] = 1.0
    limiter.check("10.0.0.1")


def test_buckets_do_not_grow_without_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.services.ingest import rate_limit

    monkeypatch.setattr(rate_limit, "MAX_BUCKETS", 10)
    now = [0.0]
    limiter = RateLimiter(per_second=1, burst=2, clock=lambda: now[0])
    for address in range(50):
        limiter.charge(address)
    assert len(limiter._buckets) <= 10
