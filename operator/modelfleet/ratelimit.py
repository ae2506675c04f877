"""Client-side rate limit for Kubernetes API calls: a token bucket (QPS with a burst), like client-go's.

A mass rollout must not flood a shared API server: every call takes one token; tokens refill at
`qps` per second up to `burst`. Calls wait for a token rather than fail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import Counter

THROTTLED = Counter(
    "modelfleet_kube_throttled_seconds", "Seconds API calls waited for the client-side rate limit (QPS/burst)"
)


class TokenBucket:
    """`qps` tokens per second, at most `burst` saved up; thread-safe. qps <= 0 turns the limit off."""

    def __init__(
        self,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.qps, self.burst = float(qps), max(1, int(burst))
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token now (possibly on credit); returns how long the caller must wait before using it."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.qps)
            self._stamp = now
            self._tokens -= 1.0
            # A negative balance is a queue of callers: each waits until its own token has been refilled.
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def take(self) -> float:
        """Block until a token is ours; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            THROTTLED.inc(wait)
            self._sleep(wait)
        return wait
