"""The retry schedule and driver, and the token bucket, without sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from hodei.providers.kubernetes.errors import KubernetesApiError
from hodei.providers.kubernetes.ratelimit import TokenBucket
from hodei.providers.kubernetes.retry import RetryPolicy, schedule, wait_delay, with_retries


def test_backoff_doubles_with_equal_jitter_and_caps() -> None:
    policy = RetryPolicy(attempts=8, base=0.2, factor=2.0, cap=1.0)
    assert schedule(policy, [0.0] * 7) == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5]
    assert schedule(policy, [1.0] * 7) == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    assert policy.backoff(1, 0.5) == pytest.approx(0.3)


def test_retry_after_is_a_floor_but_bounded() -> None:
    policy = RetryPolicy(base=0.2, max_retry_after=30)
    assert policy.delay(0, 0.0, retry_after=2.0) == 2.0
    assert policy.delay(0, 0.0, retry_after=None) == 0.1
    assert policy.delay(0, 0.0, retry_after=600) == 30


class Flaky:
    def __init__(self, failures: list[KubernetesApiError]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def err(status: int, retry_after: float | None = None) -> KubernetesApiError:
    return KubernetesApiError(f"HTTP {status}", status=status, retry_after=retry_after)


async def test_retries_429_500_and_dropped_connections_then_succeeds() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    call = Flaky([err(429, retry_after=1.0), err(500), err(0), err(503)])
    result = await with_retries(call, policy=RetryPolicy(), sleep=sleep, rand=lambda: 0.0)
    assert result == "ok"
    assert call.calls == 5
    assert slept == [1.0, 0.2, 0.4, 0.8]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    async def sleep(s: float) -> None:
        raise AssertionError("must not sleep")

    call = Flaky([err(status)])
    with pytest.raises(KubernetesApiError) as info:
        await with_retries(call, policy=RetryPolicy(), sleep=sleep)
    assert info.value.status == status
    assert call.calls == 1


async def test_gives_up_after_the_last_attempt() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    call = Flaky([err(500)] * 10)
    with pytest.raises(KubernetesApiError):
        await with_retries(call, policy=RetryPolicy(attempts=3), sleep=sleep, rand=lambda: 1.0)
    assert call.calls == 3
    assert slept == [0.2, 0.4]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    bucket = TokenBucket(qps=10, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    waits = [bucket.reserve() for _ in range(3)]
    assert waits == pytest.approx([0.1, 0.2, 0.3])  # callers queue one token apart
    clock.now = 10.0  # a long idle time refills only up to the burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)


async def test_token_bucket_acquire_sleeps_the_reserved_time() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    bucket = TokenBucket(qps=2, burst=1, clock=FakeClock(), sleep=sleep)
    await bucket.acquire()
    await bucket.acquire()
    assert slept == [0.5]


def test_wait_delay_backs_off_honours_retry_after_and_stops_at_the_budget() -> None:
    policy = RetryPolicy(base=0.5, factor=2.0, cap=10.0)
    kwargs: dict[str, Any] = {"rand": 0.0, "retry_after": None, "budget": 60.0}
    assert [wait_delay(policy, retry=r, elapsed=0.0, **kwargs) for r in range(6)] == [
        0.25,
        0.5,
        1.0,
        2.0,
        4.0,
        5.0,  # the cap's fixed half
    ]
    # A server asking for 7 s is waited on that long.
    assert wait_delay(policy, retry=0, rand=0.0, retry_after=7.0, elapsed=0.0, budget=60.0) == 7.0
    # The last wait ends at the budget, so one more try happens right at its end.
    assert wait_delay(policy, retry=0, rand=0.0, retry_after=7.0, elapsed=58.0, budget=60.0) == 2.0
    assert wait_delay(policy, retry=9, elapsed=60.0, **kwargs) is None
