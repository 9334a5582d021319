"""When and how long to wait before repeating a Kubernetes API request.

A busy API server answers 429 with a ``Retry-After``; a restarting one answers 5xx or
drops the connection. Retrying those with exponential backoff and jitter rides out the
hiccup without stampeding the server when many workers start at once. The schedule is a
pure function and the driver takes its ``sleep`` and ``random`` as arguments, so tests
check the exact delays without waiting.
"""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hodei.providers.kubernetes.errors import KubernetesApiError

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
Random = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half the delay fixed, half random."""

    attempts: int = 6  # tries in total, the first included
    base: float = 0.2  # seconds before the first retry (before jitter)
    factor: float = 2.0
    cap: float = 10.0  # longest backoff
    max_retry_after: float = 60.0  # a server asking for longer is not waited on that long

    def backoff(self, retry: int, rand: float) -> float:
        """Delay before retry number ``retry`` (0-based) given ``rand`` in [0, 1)."""
        full = min(self.cap, self.base * self.factor**retry)
        return full / 2 + full / 2 * rand

    def delay(self, retry: int, rand: float, retry_after: float | None) -> float:
        """Backoff, but never shorter than what the server asked for in ``Retry-After``."""
        delay = self.backoff(retry, rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


def schedule(policy: RetryPolicy, rands: list[float]) -> list[float]:
    """The delays between tries when nothing asks for more (for tests and docs)."""
    return [policy.backoff(i, r) for i, r in enumerate(rands[: policy.attempts - 1])]


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Sleep,
    rand: Random = _random.random,
    on_retry: Callable[[KubernetesApiError, float], None] | None = None,
) -> T:
    """Run ``call`` until it succeeds, a non-retryable error occurs, or tries run out."""
    retry = 0
    while True:
        try:
            return await call()
        except KubernetesApiError as exc:
            if not exc.retryable or retry + 1 >= policy.attempts:
                raise
            delay = policy.delay(retry, rand(), exc.retry_after)
            if on_retry is not None:
                on_retry(exc, delay)
            await sleep(delay)
            retry += 1


# Creates that wait (throttling, outages, an exhausted quota) back off up to this long
# between tries; they keep trying until the pending budget is spent, not a fixed count.
WAIT_POLICY = RetryPolicy(base=0.5, factor=2.0, cap=10.0)


def wait_delay(
    policy: RetryPolicy,
    *,
    retry: int,
    rand: float,
    retry_after: float | None,
    elapsed: float,
    budget: float,
) -> float | None:
    """Seconds to wait before try ``retry + 1`` of a create that may succeed later, or
    ``None`` when waiting would overrun ``budget`` seconds (``elapsed`` already spent).

    The backoff is :meth:`RetryPolicy.delay` (Retry-After honoured, capped by the policy);
    the last wait is shortened so one more try happens right at the end of the budget."""
    if elapsed >= budget:
        return None
    delay = policy.delay(min(retry, 30), rand, retry_after)
    return min(delay, budget - elapsed)
