"""Token buckets, one per key, in each process.

- Requests per API key (``rate_limit_per_second`` refills the bucket, ``rate_limit_burst`` bounds
  it): over it, 429 with Retry-After. With N API processes a key may send up to N times the rate
  in all; the limit stops a runaway client from starving the others, it does not meter usage.
- Failed authentications per client address (``auth_failures_per_second`` / ``_burst``): a
  wrong key costs a database lookup, so a client guessing keys is answered 429 once it has
  used up its failures, before any lookup, until the bucket refills.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from monitor.errors import TooManyRequests

MAX_BUCKETS = 100_000  # past this, buckets that have refilled are forgotten (they hold no state)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(
        self,
        per_second: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        what: str = "this API key is over its rate of {rate:g} requests per second",
    ) -> None:
        self.per_second = per_second
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._what = what
        self._buckets: dict[Hashable, _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key: Hashable, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            b = self._buckets[key] = _Bucket(self.burst, now)
        b.tokens = min(self.burst, b.tokens + (now - b.at) * self.per_second)
        b.at = now
        return b

    def _forget_full(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.per_second >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: start again rather than grow without bound
            self._buckets.clear()

    def _refuse(self, tokens: float) -> TooManyRequests:
        wait = (1 - tokens) / self.per_second
        return TooManyRequests(f"{self._what.format(rate=self.per_second)}; retry in {wait:.2f} s", wait)

    def acquire(self, key: Hashable) -> None:
        """Take one token for ``key``, or raise ``TooManyRequests``."""
        if self.per_second <= 0:
            return
        with self._lock:
            b = self._bucket(key, self._clock())
            if b.tokens >= 1:
                b.tokens -= 1
                return
            tokens = b.tokens
        raise self._refuse(tokens)

    def check(self, key: Hashable) -> None:
        """Raise ``TooManyRequests`` if ``key`` has no token left; take none."""
        if self.per_second <= 0:
            return
        with self._lock:
            tokens = self._bucket(key, self._clock()).tokens
        if tokens < 1:
            raise self._refuse(tokens)

    def charge(self, key: Hashable) -> None:
        """Take a token for ``key`` if it has one (counting a failure that already happened)."""
        if self.per_second <= 0:
            return
        with self._lock:
            b = self._bucket(key, self._clock())
            b.tokens = max(0.0, b.tokens - 1)
