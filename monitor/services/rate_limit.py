"""Requests per API key: a token bucket per key in each API process (``rate_limit_per_second``
refills it, ``rate_limit_burst`` bounds it). Over the limit a request gets 429 with Retry-After.
With N API processes a key may send up to N times the rate in all; the limit is there to stop a
runaway client from starving the others, not to meter usage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from monitor.errors import TooManyRequests


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key_id: int) -> None:
        """Take one request's token for the key, or raise ``TooManyRequests``."""
        if self.per_second <= 0:
            return
        now = self._clock()
        with self._lock:
            b = self._buckets.get(key_id)
            if b is None:
                b = self._buckets[key_id] = _Bucket(self.burst, now)
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.per_second)
            b.at = now
            if b.tokens >= 1:
                b.tokens -= 1
                return
            wait = (1 - b.tokens) / self.per_second
        raise TooManyRequests(
            f"this API key is over its rate of {self.per_second:g} requests per second; retry in {wait:.2f} s", wait
        )
