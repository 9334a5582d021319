"""The kubelet seen through the API: kubernetes_asyncio and kubectl against the emulator.

A pod is created over HTTPS, watched through Pending → Running → Succeeded, its log read
back; an unschedulable pod and a deletion are observed the way Hodei's provider observes
them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from kube_emulator.testing import EmulatorConfig, RunningEmulator, running_emulator

from ..conftest import api_client_for

pytestmark = pytest.mark.slow
IMAGE = "python:3.11"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One emulator with the kubelet (process runtime) for the module."""
    config = EmulatorConfig(
        workdir=tmp_path_factory.mktemp("emulator"),
        kubelet=True,
        images=(IMAGE,),
        node_cpu="2",
        node_memory="4Gi",
    )
    with running_emulator(config) as running:
        yield running


@pytest.fixture
async def core(emulator: RunningEmulator) -> AsyncIterator[client.CoreV1Api]:
    api_client = await api_client_for(emulator.admin_kubeconfig)
    async with api_client:
        yield client.CoreV1Api(api_client)


def pod_body(name: str, code: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "command": [sys.executable, "-c", code]}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


async def watch_until(
    core: client.CoreV1Api, namespace: str, created: Any, phases: set[str]
) -> list[Any]:
    """``created`` and every later version of the pod, up to one in ``phases``."""
    name = created.metadata.name
    seen: list[Any] = [created]
    if created.status.phase in phases:
        return seen
    async with asyncio.timeout(20), watch.Watch() as stream:
        async for event in stream.stream(
            core.list_namespaced_pod,
            namespace,
            field_selector=f"metadata.name={name}",
            resource_version=created.metadata.resource_version,
            timeout_seconds=20,
        ):
            pod = event["object"]
            seen.append(pod)
            if pod.status.phase in phases:
                break
    return seen


def phases(versions: list[Any]) -> list[str]:
    result: list[str] = []
    for pod in versions:
        if not result or result[-1] != pod.status.phase:
            result.append(pod.status.phase)
    return result


async def test_pod_lifecycle_watched_and_logged(core: client.CoreV1Api, namespace: str) -> None:
    code = "import time; print('hello from the pod', flush=True); time.sleep(0.5)"
    created = await core.create_namespaced_pod(namespace, pod_body("hello", code))
    versions = await watch_until(core, namespace, created, {"Succeeded", "Failed"})
    assert phases(versions) == ["Pending", "Running", "Succeeded"]
    final = versions[-1]
    assert final.spec.node_name == "emulator-node"
    state = final.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (0, "Completed")
    assert final.status.start_time is not None
    rvs = [int(v.metadata.resource_version) for v in versions]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    log = await core.read_namespaced_pod_log("hello", namespace)
    assert log == "hello from the pod\n"


async def test_unschedulable_pod_reports_the_schedulers_reason(
    core: client.CoreV1Api, namespace: str
) -> None:
    big = {"resources": {"requests": {"cpu": "3"}}}
    await core.create_namespaced_pod(namespace, pod_body("big", "pass", container=big))
    async with asyncio.timeout(10):
        while True:
            pod = await core.read_namespaced_pod("big", namespace)
            conditions = pod.status.conditions or []
            if conditions:
                break
            await asyncio.sleep(0.05)
    (scheduled,) = [c for c in conditions if c.type == "PodScheduled"]
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")
    assert scheduled.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod."
    )
    assert pod.status.phase == "Pending"


async def test_delete_terminates_then_removes(core: client.CoreV1Api, namespace: str) -> None:
    created = await core.create_namespaced_pod(
        namespace,
        pod_body("sleeper", "import time; time.sleep(60)", terminationGracePeriodSeconds=5),
    )
    await watch_until(core, namespace, created, {"Running"})
    deleted = await core.delete_namespaced_pod("sleeper", namespace)
    assert deleted.metadata.deletion_timestamp is not None
    async with asyncio.timeout(10):
        while True:
            try:
                await core.read_namespaced_pod("sleeper", namespace)
            except ApiException as error:
                assert error.status == 404
                break
            await asyncio.sleep(0.05)


def test_kubectl_sees_the_node_and_pod_logs(emulator: RunningEmulator, namespace: str) -> None:
    nodes = emulator.kubectl("get", "nodes", check=True)
    header, row = nodes.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert row.split()[:3] == ["emulator-node", "Ready", "<none>"]
    assert row.split()[-1] == "v1.33.0"
    name = f"k-{uuid.uuid4().hex[:6]}"
    emulator.kubectl(
        "run",
        name,
        "-n",
        namespace,
        f"--image={IMAGE}",
        "--restart=Never",
        "--command",
        "--",
        sys.executable,
        "-c",
        "print('via kubectl')",
        check=True,
    )
    emulator.kubectl(
        "wait",
        "-n",
        namespace,
        f"pod/{name}",
        "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=20s",
        check=True,
    )
    logs = emulator.kubectl("logs", "-n", namespace, name, "-f", check=True)
    assert logs.stdout == "via kubectl\n"


def test_kubectl_shows_init_containers_and_their_logs(
    emulator: RunningEmulator, namespace: str
) -> None:
    name = f"init-{uuid.uuid4().hex[:6]}"
    init = {
        "name": "setup",
        "image": IMAGE,
        "command": [sys.executable, "-c", "print('set up')"],
    }
    body = pod_body(name, "print('main ran')", initContainers=[init])
    emulator.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body), check=True)
    emulator.kubectl(
        "wait", "-n", namespace, f"pod/{name}",
        "--for=jsonpath={.status.phase}=Succeeded", "--timeout=20s", check=True,
    )  # fmt: skip
    reason = emulator.kubectl(
        "get", "pod", name, "-n", namespace,
        "-o", "jsonpath={.status.initContainerStatuses[0].state.terminated.reason}", check=True,
    )  # fmt: skip
    assert reason.stdout == "Completed"
    assert emulator.kubectl("logs", "-n", namespace, name, "-c", "setup").stdout == "set up\n"
    assert emulator.kubectl("logs", "-n", namespace, name, "-c", "main").stdout == "main ran\n"
