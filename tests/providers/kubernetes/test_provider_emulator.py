"""The provider against the project's Kubernetes API emulator, over HTTPS, with the real
kubernetes_asyncio client: idempotent creates, the shared watch (resume, relist on 410),
retries on 429/500/dropped connections, request counts and the pending timeout.

Every test runs the provider as the ``hodei-system/hodei-control-plane`` ServiceAccount
with exactly the rights of the project's own ``deploy/kubernetes/rbac.yaml``: least
privilege is proven by the whole file, not by one test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from hodei.providers.base import WorkerPhase
from hodei.providers.kubernetes.pods import pod_name

from .helpers import MANIFESTS, Admin, api_counts, running_provider, settings_for, worker_request

CONTROL_PLANE = ("hodei-system", "hodei-control-plane")


@pytest.fixture
def emulator(kube_emulator_factory: Any) -> Any:
    running = kube_emulator_factory(serviceaccounts=(CONTROL_PLANE,))
    running.apply_manifest(MANIFESTS / "namespace.yaml")
    running.apply_manifest(MANIFESTS / "rbac.yaml")
    return running


@pytest.fixture
def kubeconfig(emulator: Any) -> Path:
    return Path(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE))


@pytest.fixture
async def admin(emulator: Any) -> AsyncIterator[Admin]:
    async with Admin.connect(Path(emulator.admin_kubeconfig)) as handle:
        yield handle


RUNNING = {"phase": "Running", "containerStatuses": [{"name": "worker", "state": {"running": {}}}]}


async def test_create_is_idempotent_and_delete_tolerates_absence(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    registry = CollectorRegistry()
    async with running_provider(settings, registry=registry) as (provider, recorder):
        request = worker_request()
        first = await provider.create_worker(request)
        again = await provider.create_worker(request)  # a retried create: 409, success
        assert first.phase is again.phase is WorkerPhase.PENDING
        assert first.name == pod_name(request.worker_id)
        assert await admin.pod_names() == [pod_name(request.worker_id)]
        assert provider.status(request.worker_id) is not None

        await provider.delete_worker(request.worker_id)
        await recorder.wait_for(request.worker_id, WorkerPhase.GONE)
        await provider.delete_worker(request.worker_id)  # absent: not an error
        assert await admin.pod_names() == []
        counts = provider.metrics.request_counts()
        assert counts[("create", "201")] == 1
        assert counts[("create", "409")] == 1
        # The metrics live in the registry the control plane passed in.
        assert registry.get_sample_value("hodei_k8s_pods_created_total") == 1
        assert registry.get_sample_value("hodei_k8s_pods_deleted_total") == 1
        sample = {"verb": "create", "code": "409"}
        assert registry.get_sample_value("hodei_k8s_api_requests_total", sample) == 1


async def test_one_create_one_delete_and_no_per_pod_reads(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, recorder):
        emulator.reset_request_counts()
        requests = [worker_request() for _ in range(5)]
        await asyncio.gather(*(provider.create_worker(r) for r in requests))
        for r in requests:
            await admin.set_status(pod_name(r.worker_id), RUNNING)
        for r in requests:
            await recorder.wait_for(r.worker_id, WorkerPhase.RUNNING)
            assert provider.status(r.worker_id).phase is WorkerPhase.RUNNING  # type: ignore[union-attr]
        await asyncio.gather(*(provider.delete_worker(r.worker_id) for r in requests))
        for r in requests:
            await recorder.wait_for(r.worker_id, WorkerPhase.GONE)
        counts = api_counts(emulator)
        # The admin's own calls are in the counts too: 5 status patches and 1 list each time
        # it lists; the provider's are the creates, deletes and nothing else on pods.
        assert counts.get(("create", "pods")) == 5
        assert counts.get(("delete", "pods")) == 5
        assert counts.get(("get", "pods"), 0) == 0
        assert counts.get(("get", "pods/status"), 0) == 0
        assert counts.get(("list", "pods"), 0) == 0
        assert counts.get(("watch", "pods"), 0) <= 1  # the one shared watch, no restarts


async def test_watch_resumes_after_dropped_connection(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, recorder):
        request = worker_request()
        await provider.create_worker(request)
        emulator.reset_request_counts()
        emulator.faults.close_watches()
        await admin.set_status(pod_name(request.worker_id), RUNNING)
        await recorder.wait_for(request.worker_id, WorkerPhase.RUNNING)
        counts = api_counts(emulator)
        assert counts.get(("list", "pods"), 0) == 0  # resumed from its version, no relist
        assert counts.get(("watch", "pods"), 0) >= 1
        running = [s for s in recorder.of(request.worker_id) if s.phase is WorkerPhase.RUNNING]
        assert len(running) == 1


async def test_relist_on_410_loses_and_duplicates_nothing(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, recorder):
        changed, deleted = worker_request(), worker_request()
        await provider.create_worker(changed)
        await provider.create_worker(deleted)
        # Keep the watch down for a moment, change things, and drop the history.
        emulator.faults.fail_next(2, verb="watch", resource="pods", status=500)
        emulator.faults.close_watches()
        await admin.set_status(pod_name(changed.worker_id), RUNNING)
        await admin.delete_now(pod_name(deleted.worker_id))
        emulator.faults.compact()
        await recorder.wait_for(changed.worker_id, WorkerPhase.RUNNING)
        await recorder.wait_for(deleted.worker_id, WorkerPhase.GONE)
        # A later change is seen after any duplicate of the earlier ones (one ordered
        # stream), so once it arrives, the counts below are final.
        marker = worker_request()
        await provider.create_worker(marker)
        await admin.set_status(pod_name(marker.worker_id), RUNNING)
        await recorder.wait_for(marker.worker_id, WorkerPhase.RUNNING)
        assert [s.phase for s in recorder.of(changed.worker_id)] == [WorkerPhase.RUNNING]
        assert [s.phase for s in recorder.of(deleted.worker_id)] == [WorkerPhase.GONE]
        restarts = {
            s.labels["reason"]: s.value
            for m in provider.metrics.watch_restarts.collect()
            for s in m.samples
            if s.name.endswith("_total")
        }
        assert restarts.get("expired", 0) >= 1, restarts


@pytest.mark.parametrize("status", [429, 500, "drop"])
async def test_create_and_delete_are_retried(
    emulator: Any, admin: Admin, kubeconfig: Path, status: Any
) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, recorder):
        request = worker_request()
        emulator.faults.fail_next(1, verb="create", resource="pods", status=status, retry_after=1)
        await provider.create_worker(request)
        assert await admin.pod_names() == [pod_name(request.worker_id)]
        emulator.faults.fail_next(2, verb="delete", resource="pods", status=status, retry_after=1)
        await provider.delete_worker(request.worker_id)
        await recorder.wait_for(request.worker_id, WorkerPhase.GONE)
        counts = provider.metrics.request_counts()
        code = "error" if status == "drop" else str(status)
        assert counts[("create", code)] == 1
        # aiohttp itself re-sends an idempotent DELETE once when a kept-alive connection
        # drops, so a dropped delete may be retried below the client: at least one here.
        assert counts[("delete", code)] == 2 or (status == "drop" and counts[("delete", code)])


async def test_status_reads_diagnosis_from_the_watch(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, recorder):
        request = worker_request()
        await provider.create_worker(request)
        message = "0/1 nodes are available: 1 Insufficient cpu."
        await admin.set_status(
            pod_name(request.worker_id),
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ],
            },
        )
        status = await recorder.wait_for(
            request.worker_id, WorkerPhase.PENDING, where=lambda s: s.reason == "Unschedulable"
        )
        assert status.message == message
        assert provider.status(request.worker_id) == status


async def test_pending_timeout_fails_with_latest_diagnosis_and_deletes(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig, pending_timeout=1.0)
    async with running_provider(settings) as (provider, recorder):
        request = worker_request()
        await provider.create_worker(request)
        message = "0/1 nodes are available: 1 Insufficient cpu."
        await admin.set_status(
            pod_name(request.worker_id),
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ],
            },
        )
        failed = await recorder.wait_for(request.worker_id, WorkerPhase.FAILED)
        assert failed.reason == "Unschedulable"
        assert failed.message is not None
        assert message in failed.message and "HODEI_K8S_PENDING_TIMEOUT" in failed.message
        await recorder.wait_for(request.worker_id, WorkerPhase.GONE)
        assert await admin.pod_names() == []


async def test_list_workers_after_restart_and_orphan_cleanup(
    emulator: Any, admin: Admin, kubeconfig: Path
) -> None:
    settings = settings_for(kubeconfig)
    kept, orphan = worker_request(), worker_request()
    other = worker_request()
    async with running_provider(settings, instance="cp") as (provider, _):
        for r in (kept, orphan):
            await provider.create_worker(r)
    async with running_provider(settings, instance="someone-else") as (provider, _):
        await provider.create_worker(other)
    # A new life of the control plane "cp": it sees its two pods, not the other instance's.
    async with running_provider(settings, instance="cp") as (provider, recorder):
        listed = {s.worker_id for s in await provider.list_workers()}
        assert listed == {kept.worker_id, orphan.worker_id}
        deleted = await provider.delete_orphans(lambda wid: wid == kept.worker_id)
        assert deleted == [orphan.worker_id]
        await recorder.wait_for(orphan.worker_id, WorkerPhase.GONE)
    assert await admin.pod_names() == sorted([pod_name(kept.worker_id), pod_name(other.worker_id)])


async def test_health_is_ready_with_access(kubeconfig: Path) -> None:
    settings = settings_for(kubeconfig)
    async with running_provider(settings) as (provider, _):
        health = await provider.health()
        assert health.ok, health.message
