"""Fault injection and request counting, seen through kubernetes_asyncio."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kube_emulator.testing import RunningEmulator
from tests.fixtures.waiting import eventually

from .conftest import Raw

POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}


@pytest.fixture(autouse=True)
def clear_faults(emulator: RunningEmulator) -> None:
    emulator.faults.clear()


async def test_fail_next_with_429_sets_retry_after(raw: Raw, emulator: RunningEmulator) -> None:
    emulator.faults.fail_next(1, verb="list", resource="pods", status=429, retry_after=3)
    code, headers, data = await raw.request("GET", "/api/v1/pods")
    assert code == 429
    assert headers["Retry-After"] == "3"
    assert b'"reason":"TooManyRequests"' in data
    assert (await raw.request("GET", "/api/v1/pods"))[0] == 200  # only the next one


async def test_fail_next_matches_verb_and_resource(
    api: client.ApiClient, emulator: RunningEmulator, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    emulator.faults.fail_next(2, verb="create", resource="pods", status=500)
    await core.list_namespaced_pod(namespace)  # other verbs are unaffected
    for _ in range(2):
        with pytest.raises(ApiException) as failed:
            await core.create_namespaced_pod(namespace, POD)
        assert failed.value.status == 500
    await core.create_namespaced_pod(namespace, POD)


async def test_fail_next_with_422_is_a_validation_failure_naming_the_object(
    api: client.ApiClient, emulator: RunningEmulator, namespace: str
) -> None:
    emulator.faults.fail_next(1, verb="create", resource="pods", status=422)
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as failed:
        await core.create_namespaced_pod(namespace, POD)
    assert failed.value.status == 422
    body = json.loads(failed.value.body)
    assert (body["reason"], body["message"]) == (
        "Invalid",
        'Pod "p" is invalid: spec: Invalid value: injected fault',
    )
    assert body["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": "Invalid value: injected fault", "field": "spec"}
    ]


async def test_dropped_connection(raw: Raw, emulator: RunningEmulator, namespace: str) -> None:
    # A POST, because HTTP clients silently retry idempotent requests on a dropped connection.
    emulator.faults.fail_next(1, verb="create", resource="configmaps", status="drop")
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with pytest.raises(aiohttp.ClientError):
        await raw.request("POST", path, json={"metadata": {"name": "dropped"}})
    assert (await raw.request("POST", path, json={"metadata": {"name": "dropped"}}))[0] == 201


async def test_close_watches_ends_open_streams(
    api: client.ApiClient, emulator: RunningEmulator, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    w = watch.Watch()

    seen: list[str] = []

    async def consume() -> list[str]:
        async with w.stream(core.list_namespaced_pod, namespace, timeout_seconds=30) as stream:
            async for event in stream:
                seen.append(event["type"])
        return seen

    task = asyncio.create_task(consume())
    await core.create_namespaced_pod(namespace, POD)
    await eventually(lambda: seen == ["ADDED"])  # the stream is open: it delivered
    await asyncio.to_thread(emulator.faults.close_watches)
    assert await asyncio.wait_for(task, 5) == ["ADDED"]


async def test_latency_delays_requests(raw: Raw, emulator: RunningEmulator) -> None:
    emulator.faults.set_latency(0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await raw.request("GET", "/api/v1/namespaces")
    assert loop.time() - started >= 0.3
    emulator.faults.set_latency(0)


async def test_request_counts_by_verb_and_resource(
    api: client.ApiClient, emulator: RunningEmulator, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    emulator.reset_request_counts()
    pod = {"metadata": {"name": "c"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    await core.create_namespaced_pod(namespace, pod)
    await core.read_namespaced_pod("c", namespace)
    await core.read_namespaced_pod_status("c", namespace)
    await core.list_namespaced_pod(namespace)
    await core.delete_namespaced_pod("c", namespace)
    assert emulator.request_counts() == {
        ("create", "pods"): 1,
        ("get", "pods"): 1,
        ("get", "pods/status"): 1,
        ("list", "pods"): 1,
        ("delete", "pods"): 1,
    }
