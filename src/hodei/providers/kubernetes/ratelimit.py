"""A client-side token bucket bounding how fast the provider calls the API server.

Without it a burst of queued jobs turns into a burst of pod creates that can trip the API
server's priority-and-fairness limits for every tenant. ``HODEI_K8S_QPS`` refills the
bucket and ``HODEI_K8S_BURST`` sizes it, as client-go's QPS/Burst do. A caller reserves
a token and learns how long to wait for it; reservations may run the balance below zero,
which queues callers fairly without a lock. The clock is injected so tests need no sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``qps`` tokens per second, at most ``burst`` saved up."""

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst ≥ 1")
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()

    def reserve(self) -> float:
        """Take one token now; return the seconds the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._qps)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    async def acquire(self) -> None:
        """Wait until one request may be sent."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)
