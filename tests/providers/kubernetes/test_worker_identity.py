"""A worker pod cannot be impersonated by someone who can read its spec.

The attacker here holds what ``kubectl get pod -o json`` shows anyone allowed to get pods
in the workers' namespace: the worker id and its one-time token. The control plane
admits a registration only from the pod's own IP while the pod is Running, as its watch
reports them (the emulator's kubelet gives pods the host's 127.0.0.1, as hostNetwork pods
get their node's IP; the attacker's "other machine" is 127.0.0.2).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import grpc
import pytest

from hodei.api.messages import AssignJob
from hodei.cli.client import HodeiClient
from hodei.domain.ids import JobId
from hodei.domain.jobs import JobSpec, Resources
from hodei.domain.states import JobState
from tests.fixtures.relay import Relay
from tests.fixtures.scripted_worker import StreamEnded, WorkerClient

from .conftest import Make
from .helpers import NAMESPACE

pytestmark = pytest.mark.slow


async def _stolen(admin_kubeconfig: str, *, phase: str) -> tuple[str, str]:
    """(worker id, token) read with kubectl from the worker pod once it is in ``phase``."""
    for _ in range(200):
        result = await asyncio.to_thread(
            subprocess.run,
            [
                "kubectl",
                "--kubeconfig",
                admin_kubeconfig,
                "-n",
                NAMESPACE,
                "get",
                "pods",
                "-o",
                "json",
            ],
            capture_output=True,
            check=True,
        )
        pods = json.loads(result.stdout)["items"]
        if pods and pods[0]["status"].get("phase") == phase:
            env = {e["name"]: e.get("value") for e in pods[0]["spec"]["containers"][0]["env"]}
            return env["HODEI_WORKER_ID"], env["HODEI_WORKER_TOKEN"]
        await asyncio.sleep(0.1)  # an outside system: no event to await
    raise AssertionError(f"no worker pod reached {phase}")


async def _submit(plane: Any, spec: JobSpec) -> str:
    async with HodeiClient(plane.address) as client:
        return (await client.submit(spec)).id


async def _refused(address: str, worker_id: str, token: str) -> StreamEnded:
    """Register as ``worker_id`` with ``token`` over ``address``; the refusal it gets."""
    attacker = WorkerClient(address)
    try:
        with pytest.raises(StreamEnded) as info:
            await attacker.register(worker_id, token=token)
    finally:
        await attacker.close()
    return info.value


async def test_token_from_a_pending_pods_spec_does_not_register(cluster_factory: Make) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="60")
    emulator, plane = cluster.emulator, cluster.plane
    spec = JobSpec(
        shell="echo secret-work",
        env={"CREDENTIAL": "do-not-leak"},
        resources=Resources(cpu_request="64"),
    )
    job_id = await _submit(plane, spec)
    worker_id, token = await _stolen(emulator.admin_kubeconfig, phase="Pending")
    refusal = await _refused(plane.address, worker_id, token)
    assert refusal.code is grpc.StatusCode.UNAVAILABLE
    assert "not reported Running yet" in (refusal.details or "")
    job = await plane.jobs.get(JobId(job_id))
    assert job is not None and job.state is JobState.STARTING and job.started_at is None


async def test_token_from_a_running_pods_spec_does_not_register_from_elsewhere(
    cluster_factory: Make,
) -> None:
    # The pod's own agent dials nowhere, so the pod runs and its token stays unused.
    cluster = await cluster_factory(HODEI_SERVER_ADDRESS="127.0.0.1:9")
    emulator, plane = cluster.emulator, cluster.plane
    job_id = await _submit(plane, JobSpec(shell="echo secret-work"))
    worker_id, token = await _stolen(emulator.admin_kubeconfig, phase="Running")
    async with Relay(plane.address, source="127.0.0.2") as elsewhere:
        refusal = await _refused(elsewhere.address, worker_id, token)
    assert refusal.code is grpc.StatusCode.PERMISSION_DENIED
    assert "does not come from its pod's address" in (refusal.details or "")
    # From the pod's address the same token is admitted: the address made the difference.
    agent = WorkerClient(plane.address)
    try:
        await agent.register(worker_id, token=token)
        assigned = await agent.expect(AssignJob)
    finally:
        await agent.close()
    assert isinstance(assigned, AssignJob) and assigned.job_id == job_id
