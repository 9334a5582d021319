"""Platform disruptions and create errors end to end, on the emulator with its kubelet:
a quota of one pod, an eviction, a `kubectl delete pod`, a drain, 20 s of 429 and a 422.

The job-level tests run a real control plane; the 429 test drives the provider alone
with an injected clock, so the 20 s of throttling cost no wall time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hodei.providers.base import WorkerPhase
from hodei.providers.kubernetes import KubernetesApiError, KubernetesProvider
from hodei.providers.kubernetes.client import KubeClient, load_client_config
from hodei.providers.kubernetes.pods import LABEL_JOB_ID
from hodei.providers.kubernetes.provider import DELETED_BY_OTHERS
from hodei.providers.kubernetes.ratelimit import TokenBucket
from tests.fixtures.waiting import eventually

from .conftest import CONTROL_PLANE, Cluster, Make
from .helpers import MANIFESTS, NAMESPACE, FakeTime, Recorder, settings_for, worker_request

pytestmark = pytest.mark.slow

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"}


async def show(cluster: Cluster, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = json.loads(await cluster.hodei("jobs", "show", job_id, "-o", "json"))
    return job


async def submit(cluster: Cluster, *command: str) -> str:
    return (await cluster.hodei("run", "--detach", "--", *command)).strip()


async def settled(cluster: Cluster, job_id: str, *, within: float = 60) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    async def ended() -> bool:
        seen[:] = [await show(cluster, job_id)]
        return seen[0]["state"] in TERMINAL

    await eventually(ended, within=within)
    return seen[0]


async def running_pod(cluster: Cluster, job_id: str) -> str:
    found: list[str] = []

    async def running() -> bool:
        pods = await cluster.admin.core.list_namespaced_pod(
            NAMESPACE, label_selector=f"{LABEL_JOB_ID}={job_id}"
        )
        found[:] = [p.metadata.name for p in pods.items if p.status.phase == "Running"]
        return bool(found)

    await eventually(running, within=30)
    return found[0]


def kubectl(cluster: Cluster, *args: str) -> str:
    result = cluster.emulator.kubectl(*args)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


async def test_quota_of_one_pod_runs_three_jobs_one_after_another(cluster_factory: Make) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="120")
    kubectl(cluster, "create", "quota", "one-pod", "-n", NAMESPACE, "--hard=pods=1")
    jobs = [await submit(cluster, "sh", "-c", f"sleep 1; echo {n}") for n in range(3)]
    waiting: list[dict[str, Any]] = []

    async def someone_waits_for_quota() -> bool:
        views = [await show(cluster, job) for job in jobs]
        waiting[:] = [v for v in views if (v["waiting_reason"] or "").startswith("waiting for")]
        return bool(waiting)

    await eventually(someone_waits_for_quota, within=30)
    assert waiting[0]["state"] == "QUEUED"
    assert waiting[0]["waiting_reason"] == (
        "waiting for quota: exceeded quota: one-pod, requested: pods=1, used: pods=1, "
        "limited: pods=1"
    )
    done = [await settled(cluster, job, within=90) for job in jobs]
    assert [(d["state"], d["attempt"]) for d in done] == [("SUCCEEDED", 1)] * 3
    assert [await cluster.hodei("jobs", "logs", job) for job in jobs] == ["0\n", "1\n", "2\n"]


async def test_evicted_job_succeeds_on_attempt_two(cluster_factory: Make, tmp_path: Path) -> None:
    cluster = await cluster_factory()
    job = await submit(cluster, "sh", "-c", "sleep 2; echo done")
    pod = await running_pod(cluster, job)
    eviction = tmp_path / "eviction.json"
    eviction.write_text(
        json.dumps(
            {
                "apiVersion": "policy/v1",
                "kind": "Eviction",
                "metadata": {"name": pod, "namespace": NAMESPACE},
            }
        )
    )
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/eviction"
    kubectl(cluster, "create", "--raw", path, "-f", str(eviction))
    done = await settled(cluster, job)
    assert (done["state"], done["attempt"]) == ("SUCCEEDED", 2), done
    first = done["attempts"][0]
    assert (first["reason"], first["message"], first["disruption"]) == (
        "Evicted",
        "EvictionByEvictionAPI: Eviction API: evicting",
        True,
    )
    shown = await cluster.hodei("jobs", "show", job)
    assert "Evicted" in shown and "Attempts:" in shown
    assert await cluster.no_pods_left() == []


async def test_pod_deleted_by_someone_else_is_a_lost_worker_retried(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    job = await submit(cluster, "sh", "-c", "sleep 2; echo done")
    pod = await running_pod(cluster, job)
    kubectl(cluster, "delete", "pod", pod, "-n", NAMESPACE, "--wait=false")
    done = await settled(cluster, job)
    assert (done["state"], done["attempt"]) == ("SUCCEEDED", 2), done
    assert [(a["reason"], a["message"]) for a in done["attempts"]] == [
        ("WorkerLost", DELETED_BY_OTHERS),
        ("Completed", None),
    ]
    assert await cluster.hodei("jobs", "logs", job) == "done\n"


async def test_drained_job_runs_again_once_the_node_is_uncordoned(cluster_factory: Make) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="120")
    job = await submit(cluster, "sh", "-c", "sleep 2; echo done")
    await running_pod(cluster, job)
    node = "emulator-node"
    drained = kubectl(
        cluster,
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--timeout=30s",
    )
    assert "evicted" in drained
    try:

        async def waits_for_the_node() -> bool:
            view = await show(cluster, job)
            return view["attempt"] == 2 and "unschedulable" in (view["waiting_reason"] or "")

        await eventually(waits_for_the_node, within=30)
    finally:
        kubectl(cluster, "uncordon", node)
    done = await settled(cluster, job)
    assert (done["state"], done["attempt"]) == ("SUCCEEDED", 2), done
    assert done["attempts"][0]["reason"] == "Evicted"


async def test_invalid_pod_is_one_create_and_a_clear_failure(cluster_factory: Make) -> None:
    cluster = await cluster_factory()
    cluster.emulator.faults.fail_next(1, verb="create", resource="pods", status=422)
    cluster.emulator.reset_request_counts()
    code, _, err = await cluster.run("--", "echo", "hi")
    assert code == 125, err
    assert "as invalid: HTTP 422" in err and "spec: Invalid value: injected fault" in err
    assert cluster.emulator.request_counts().get(("create", "pods")) == 1


async def test_twenty_seconds_of_429_are_ridden_out(kube_emulator_factory: Any) -> None:
    emulator = kube_emulator_factory(serviceaccounts=(CONTROL_PLANE,))
    emulator.apply_manifest(MANIFESTS / "namespace.yaml")
    emulator.apply_manifest(MANIFESTS / "rbac.yaml")
    settings = settings_for(
        Path(emulator.serviceaccount_kubeconfig(*CONTROL_PLANE)), pending_timeout=30.0
    )
    time = FakeTime()
    api = KubeClient(
        await load_client_config(settings),
        namespace=settings.namespace,
        limiter=TokenBucket(settings.qps, settings.burst),
    )
    provider = KubernetesProvider(
        settings=settings,
        api=api,
        instance="test",
        clock=time,
        sleep=time.wait,
        rand=lambda: 0.0,
    )
    await provider.start(Recorder())
    try:
        emulator.faults.fail_next(4, verb="create", resource="pods", status=429, retry_after=5)
        status = await provider.create_worker(worker_request())
        assert status.phase is WorkerPhase.PENDING
        assert time.slept == [5.0, 5.0, 5.0, 5.0]  # Retry-After honoured, 20 s in all
        assert emulator.request_counts()[("create", "pods")] == 5
        # Beyond the pending budget it gives up with the API's answer.
        emulator.faults.fail_next(100, verb="create", resource="pods", status=429, retry_after=5)
        with pytest.raises(KubernetesApiError) as caught:
            await provider.create_worker(worker_request())
        assert str(caught.value).endswith("gave up after 30s (HODEI_K8S_PENDING_TIMEOUT)")
    finally:
        await provider.close()


async def test_job_on_a_lost_node_runs_again_when_a_node_is_back(cluster_factory: Make) -> None:
    cluster = await cluster_factory(HODEI_K8S_PENDING_TIMEOUT="120")
    job = await submit(cluster, "sh", "-c", "sleep 2; echo done")
    await running_pod(cluster, job)
    cluster.emulator.faults.node_not_ready()
    try:

        async def retried() -> bool:
            return bool((await show(cluster, job))["attempts"])

        await eventually(retried, within=30, every=0.2)
    finally:
        cluster.emulator.faults.node_ready()
    done = await settled(cluster, job)
    assert (done["state"], done["attempt"]) == ("SUCCEEDED", 2), done
    first = done["attempts"][0]
    assert first["reason"] == "WorkerLost" and first["disruption"] is True
    assert first["message"].startswith('node "emulator-node" stopped reporting')
