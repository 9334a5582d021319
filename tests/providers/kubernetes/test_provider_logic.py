"""The provider's own logic with an in-memory PodApi: statuses pushed in order, the log
tail read only for an abnormal exit, the pending timeout, idempotent create/delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from hodei.config.settings import KubernetesSettings
from hodei.domain.clock import SystemClock
from hodei.providers.base import ProviderError, WorkerPhase
from hodei.providers.kubernetes import KubernetesApiError, KubernetesProvider
from hodei.providers.kubernetes.errors import api_error
from hodei.providers.kubernetes.pods import pod_name
from hodei.providers.kubernetes.provider import DELETED_BY_OTHERS
from hodei.supervision import Background
from tests.fixtures.clock import FakeClock
from tests.fixtures.waiting import eventually

from .fake_api import FakePodApi
from .helpers import FakeTime, Recorder, worker_request

RUNNING = {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]}


def exited(code: int, reason: str = "Error") -> dict[str, object]:
    phase = "Succeeded" if code == 0 else "Failed"
    term = {"exitCode": code, "reason": reason}
    return {"phase": phase, "containerStatuses": [{"state": {"terminated": term}}]}


@pytest.fixture
def api() -> FakePodApi:
    return FakePodApi()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def started(
    api: FakePodApi, clock: FakeClock
) -> AsyncIterator[tuple[KubernetesProvider, Recorder]]:
    settings = KubernetesSettings(enabled=True, pending_timeout=0.3, max_workers=7)
    provider = KubernetesProvider(settings=settings, api=api, instance="test", clock=clock)
    recorder = Recorder()
    await provider.start(recorder)
    try:
        yield provider, recorder
    finally:
        await provider.close()


async def test_capacity_and_name(started: tuple[KubernetesProvider, Recorder]) -> None:
    provider, _ = started
    assert provider.name == "kubernetes"
    assert provider.capacity == 7


async def test_lifecycle_pushes_each_change_once(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    name = pod_name(request.worker_id)
    status = await provider.create_worker(request)
    assert status.phase is WorkerPhase.PENDING and status.name == name
    assert await provider.create_worker(request) == status  # retried: the same pod
    api.set_status(name, RUNNING)
    await recorder.wait_for(request.worker_id, WorkerPhase.RUNNING, within=2)
    api.set_status(name, exited(0, "Completed"))
    await recorder.wait_for(request.worker_id, WorkerPhase.EXITED, within=2)
    await provider.delete_worker(request.worker_id)
    await provider.delete_worker(request.worker_id)  # absent: fine
    await recorder.wait_for(request.worker_id, WorkerPhase.GONE, within=2)
    phases = [s.phase for s in recorder.of(request.worker_id)]
    assert phases == [WorkerPhase.RUNNING, WorkerPhase.EXITED, WorkerPhase.GONE]
    assert api.calls == {"list": 1, "watch": 1, "create": 2, "delete": 2}  # no log read
    assert provider.status(request.worker_id) is None  # forgotten once gone


async def test_abnormal_exit_carries_log_tail_before_gone(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    name = pod_name(request.worker_id)
    await provider.create_worker(request)
    api.logs[name] = "connecting to 127.0.0.1:1\nerror: connection refused\n"
    api.log_gate = asyncio.Event()  # hold the log read until the pod is gone
    api.set_status(name, exited(1))
    await eventually(lambda: api.calls.get("log") == 1)  # the exit is held for its log
    await provider.delete_worker(request.worker_id)
    await eventually(api.delivered)  # the deletion reached the provider...
    assert recorder.of(request.worker_id) == []  # ...and did not overtake the held exit
    api.log_gate.set()
    await recorder.wait_for(request.worker_id, WorkerPhase.GONE, within=2)
    first, second = recorder.of(request.worker_id)
    assert first.phase is WorkerPhase.EXITED and first.exit_code == 1
    assert first.reason == "ContainerExited"
    assert first.message is not None and "error: connection refused" in first.message
    assert second.phase is WorkerPhase.GONE
    assert api.calls["log"] == 1


async def test_pending_timeout_fails_and_deletes(
    api: FakePodApi, clock: FakeClock, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    await provider.create_worker(request)
    await eventually(api.delivered)
    await clock.advance(0.29)
    assert recorder.of(request.worker_id) == []  # not yet: 0.3 s is the limit
    await clock.advance(0.1)
    failed = await recorder.wait_for(request.worker_id, WorkerPhase.FAILED, within=3)
    assert failed.reason == "PendingTimeout"
    assert failed.message == ("the worker pod stayed Pending for 0.3s (HODEI_K8S_PENDING_TIMEOUT)")
    await recorder.wait_for(request.worker_id, WorkerPhase.GONE, within=2)
    assert api.pods == {}
    assert api.calls["delete"] == 1


async def test_running_pod_is_not_timed_out(
    api: FakePodApi, clock: FakeClock, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    await provider.create_worker(request)
    api.set_status(pod_name(request.worker_id), RUNNING)
    await recorder.wait_for(request.worker_id, WorkerPhase.RUNNING, within=2)
    await clock.advance(0.6)  # twice the pending timeout
    assert [s.phase for s in recorder.of(request.worker_id)] == [WorkerPhase.RUNNING]


async def test_failed_create_is_raised_and_forgotten(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, _ = started

    async def refuse(body: object) -> dict[str, object]:
        raise KubernetesApiError("denied", status=403)

    api.create_pod = refuse  # type: ignore[method-assign]
    request = worker_request()
    with pytest.raises(KubernetesApiError):
        await provider.create_worker(request)
    assert provider.status(request.worker_id) is None


async def test_list_workers_reads_the_cache(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, _ = started
    requests = [worker_request() for _ in range(3)]
    for r in requests:
        await provider.create_worker(r)
    calls = dict(api.calls)
    listed = await provider.list_workers()
    assert {s.worker_id for s in listed} == {r.worker_id for r in requests}
    assert {s.job_id for s in listed} == {r.job_id for r in requests}
    assert api.calls == calls  # no API call


async def test_finished_pod_left_behind_is_removed(
    api: FakePodApi, clock: FakeClock, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    provider.finished_pod_ttl = 0.2
    request = worker_request()
    await provider.create_worker(request)
    api.set_status(pod_name(request.worker_id), exited(0, "Completed"))
    await recorder.wait_for(request.worker_id, WorkerPhase.EXITED, within=2)
    await clock.advance(0.1)
    assert len(api.pods) == 1  # kept until the TTL has passed
    # Nobody deletes it: the provider does, once the TTL has passed.
    await clock.advance(0.2)
    await recorder.wait_for(request.worker_id, WorkerPhase.GONE, within=3)
    assert api.pods == {}


async def test_a_deletion_hodei_did_not_ask_for_fails_the_worker_as_lost(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    name = pod_name(request.worker_id)
    await provider.create_worker(request)
    api.set_status(name, RUNNING)
    await recorder.wait_for(request.worker_id, WorkerPhase.RUNNING, within=2)
    api.mark_deleting(name)  # kubectl delete pod, by someone else
    lost = await recorder.wait_for(request.worker_id, WorkerPhase.FAILED, within=2)
    assert (lost.reason, lost.message) == ("WorkerLost", DELETED_BY_OTHERS)
    assert provider.status(request.worker_id) == lost


async def test_its_own_graceful_delete_is_no_disruption(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    api.graceful = True
    request, other = worker_request(), worker_request()
    for r in (request, other):
        await provider.create_worker(r)
        api.set_status(pod_name(r.worker_id), RUNNING)
    await recorder.wait_for(request.worker_id, WorkerPhase.RUNNING, within=2)
    await provider.delete_worker(request.worker_id)
    api.mark_deleting(pod_name(other.worker_id))
    await recorder.wait_for(other.worker_id, WorkerPhase.FAILED, within=2)
    # Statuses are delivered in order: the own pod's deletion was seen before, and said nothing.
    assert [s.phase for s in recorder.of(request.worker_id)] == [WorkerPhase.RUNNING]


async def test_eviction_condition_fails_a_running_worker_as_evicted(
    api: FakePodApi, started: tuple[KubernetesProvider, Recorder]
) -> None:
    provider, recorder = started
    request = worker_request()
    name = pod_name(request.worker_id)
    await provider.create_worker(request)
    api.set_status(name, RUNNING)
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }
    api.set_status(name, {**RUNNING, "conditions": [condition]})
    evicted = await recorder.wait_for(request.worker_id, WorkerPhase.FAILED, within=2)
    assert (evicted.reason, evicted.message) == (
        "Evicted",
        "EvictionByEvictionAPI: Eviction API: evicting",
    )


def _error(status: int, body: Mapping[str, Any], retry_after: float | None = None) -> Any:
    return api_error(
        status=status,
        body=body,
        verb="create",
        resource="pods",
        namespace="hodei-workers",
        retry_after=retry_after,
    )


QUOTA = {
    "reason": "Forbidden",
    "message": 'pods "p" is forbidden: exceeded quota: one-pod, requested: pods=1, '
    "used: pods=1, limited: pods=1",
}


@pytest.fixture
async def timed(api: FakePodApi) -> AsyncIterator[tuple[KubernetesProvider, Recorder, FakeTime]]:
    time = FakeTime()
    settings = KubernetesSettings(enabled=True, pending_timeout=30.0)
    provider = KubernetesProvider(
        settings=settings,
        api=api,
        instance="test",
        clock=time,
        sleep=time.wait,
        rand=lambda: 0.0,
    )
    recorder = Recorder()
    await provider.start(recorder)
    try:
        yield provider, recorder, time
    finally:
        await provider.close()


async def test_quota_exceeded_waits_with_backoff_and_says_why(
    api: FakePodApi, timed: tuple[KubernetesProvider, Recorder, FakeTime]
) -> None:
    provider, recorder, time = timed
    api.create_errors = [_error(403, QUOTA) for _ in range(3)]
    request = worker_request()
    status = await provider.create_worker(request)
    assert status.phase is WorkerPhase.PENDING
    assert api.calls["create"] == 4
    assert time.slept == [0.25, 0.5, 1.0]
    waiting = await recorder.wait_for(request.worker_id, WorkerPhase.PENDING, within=2)
    assert (waiting.reason, waiting.message) == (
        "QuotaExceeded",
        "waiting for quota: exceeded quota: one-pod, requested: pods=1, used: pods=1, "
        "limited: pods=1",
    )


async def test_quota_that_never_frees_fails_at_the_pending_timeout(
    api: FakePodApi, timed: tuple[KubernetesProvider, Recorder, FakeTime]
) -> None:
    provider, _, time = timed
    api.create_errors = [_error(403, QUOTA) for _ in range(100)]
    with pytest.raises(KubernetesApiError) as caught:
        await provider.create_worker(worker_request())
    assert caught.value.reason == "QuotaExceeded"
    assert str(caught.value) == (
        "waiting for quota: exceeded quota: one-pod, requested: pods=1, used: pods=1, "
        "limited: pods=1; gave up after 30s (HODEI_K8S_PENDING_TIMEOUT)"
    )
    assert sum(time.slept) == pytest.approx(30.0)


async def test_throttling_is_ridden_out_honouring_retry_after(
    api: FakePodApi, timed: tuple[KubernetesProvider, Recorder, FakeTime]
) -> None:
    provider, _, time = timed
    # 20 s of 429 with Retry-After: 5, within the 30 s budget.
    api.create_errors = [_error(429, {"reason": "TooManyRequests"}, 5.0) for _ in range(4)]
    status = await provider.create_worker(worker_request())
    assert status.phase is WorkerPhase.PENDING
    assert time.slept == [5.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize("status", [400, 422, 403])
async def test_permanent_errors_are_one_create(
    api: FakePodApi, timed: tuple[KubernetesProvider, Recorder, FakeTime], status: int
) -> None:
    provider, _, time = timed
    api.create_errors = [_error(status, {"reason": "Invalid", "message": "no"})]
    with pytest.raises(KubernetesApiError):
        await provider.create_worker(worker_request())
    assert api.calls["create"] == 1 and time.slept == []


async def test_deleting_a_waiting_worker_stops_its_create(
    api: FakePodApi, timed: tuple[KubernetesProvider, Recorder, FakeTime]
) -> None:
    provider, recorder, _ = timed
    api.create_errors = [_error(403, QUOTA) for _ in range(100)]
    request = worker_request()
    creating = asyncio.create_task(provider.create_worker(request))
    await recorder.wait_for(request.worker_id, WorkerPhase.PENDING, within=2)
    await provider.delete_worker(request.worker_id)  # the job was cancelled
    with pytest.raises(ProviderError):
        await creating
    assert api.pods == {}


class Injected(RuntimeError):
    """The exception a test injects into one of the provider's loops."""


async def test_housekeeping_killed_by_an_exception_is_restarted_by_the_supervision(
    api: FakePodApi,
) -> None:
    trips = iter([False, True])  # the first clock read of a round raises, once

    class TrippingClock(SystemClock):
        def monotonic(self) -> float:
            if next(trips, False):
                raise Injected("clock")
            return super().monotonic()

    clock = TrippingClock()

    restarted: list[str] = []
    loops = Background(on_restart=restarted.append, backoff=(0.05,))
    settings = KubernetesSettings(enabled=True, pending_timeout=0.3)
    provider = KubernetesProvider(
        settings=settings, api=api, instance="test", clock=clock, loops=loops
    )
    recorder = Recorder()
    await provider.start(recorder)
    try:
        await eventually(lambda: restarted == ["kubernetes-housekeeping"])
        request = worker_request()
        await provider.create_worker(request)  # its pending timeout needs housekeeping back
        failed = await recorder.wait_for(request.worker_id, WorkerPhase.FAILED, within=3)
        assert failed.reason == "PendingTimeout"
        assert loops.down() == {}
    finally:
        await provider.close()


def test_pod_origin_is_the_pods_ip_once_running() -> None:
    from hodei.providers.base import Origin
    from hodei.providers.kubernetes.provider import pod_origin

    assert pod_origin(None) == Origin(bound=True)  # not seen by the watch yet
    pending = {"status": {"phase": "Pending", "podIP": "10.244.1.7"}}
    assert pod_origin(pending) == Origin(bound=True, running=False, address="10.244.1.7")
    running = {"status": {"phase": "Running", "podIP": "10.244.1.7"}}
    assert pod_origin(running) == Origin(bound=True, running=True, address="10.244.1.7")
    assert pod_origin({"status": {"phase": "Running"}}) == Origin(bound=True, running=True)
